"""The mark that asks a server to keep a request's prefix hot while the program's tool runs.

A partial tool's stream ends when the call is complete, but the program's next `gen` only comes
once the tool has finished: meanwhile other traffic may evict the prefix it will reuse. A
request whose id ends in `+pin<seconds>` asks the engine to pin its final sequence in the prefix
cache for that long; the pin goes as soon as a request reuses the prefix (the follow-up), or at
the deadline. The mark rides in the request id because that is the one free-form field SGLang's
router forwards unchanged (sglang-router 0.3.2 drops the fields it does not know, `session_id`
and unknown sampling parameters included) and any SGLang server accepts; a server that knows
nothing of it simply ignores it. Parsing never trusts the id: a malformed mark is no mark.
"""

from __future__ import annotations

import math
import uuid

PIN_MARK = "+pin"
_default_seconds = 30.0


def default_pin_seconds() -> float:
    """How long the frontend asks servers to keep a call's prefix (0: it does not ask)."""
    return _default_seconds


def set_default_pin_seconds(seconds: float) -> None:
    """Set how long partial tools ask servers to keep their prefix hot (0 turns it off)."""
    global _default_seconds
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"pin seconds must be a finite number >= 0, got {seconds!r}")
    _default_seconds = float(seconds)


def call_rid(seconds: float | None = None) -> str:
    """A fresh request id for a tool call's stream, marked to pin for `seconds` (default:
    `default_pin_seconds()`; no mark when 0)."""
    rid = uuid.uuid4().hex
    seconds = default_pin_seconds() if seconds is None else seconds
    if seconds > 0:
        rid += f"{PIN_MARK}{seconds:g}"
    return rid


def pin_seconds(rid: str | None) -> float | None:
    """The pin a request id asks for, in seconds; None when it asks for none (or the mark is
    malformed: not a finite positive number)."""
    if not isinstance(rid, str):
        return None
    head, sep, tail = rid.rpartition(PIN_MARK)
    if not sep or not head or not tail or len(tail) > 12:
        return None
    try:
        seconds = float(tail)
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return seconds
