"""The per-call timeline: what happened to the stream and to each unit, and when.

One Timeline per tool call; everything that measures partial execution (the demo's table, the
eval's G, T and ideal bound, the tests that check a unit ran before the stream ended) reads it.
Times are `time.perf_counter()` seconds; `to_dict(origin)` makes them relative.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class UnitTimes:
    """The life of one unit. `None` means the event did not happen (e.g. a deferred unit was
    never dispatched early, or the call was aborted first)."""

    path: str
    index: int
    generated: float
    decision: str = "run"  # run | defer | batch | hold | skip | shared
    dispatched: float | None = None
    started: float | None = None
    finished: float | None = None
    ok: bool | None = None
    error: str | None = None
    deps: tuple[Any, ...] = ()
    id: Any = None
    work: str | None = None  # the ledger's key of its execution: identical units share one
    piece_of: str | None = None  # the text field it is a piece of (a statement of /code)

    @property
    def run_s(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


@dataclass
class Timeline:
    """Events of one tool call. Thread-safe: units finish on worker threads."""

    call_id: str
    tool: str
    mode: str
    created: float = field(default_factory=time.perf_counter)
    stream_start: float | None = None
    first_token: float | None = None
    call_closed: float | None = None  # the arguments were complete (last bracket / end of text)
    stream_end: float | None = None
    tool_start: float | None = None  # the tool's warm-up began
    tool_ready: float | None = None  # ... and ended
    finish_start: float | None = None
    finish_end: float | None = None
    result_ready: float | None = None
    result_injected: float | None = None
    aborted: float | None = None
    abort_reason: str | None = None
    attempt: int = 0
    units: list[UnitTimes] = field(default_factory=list)
    notes: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    leaked_threads: int = 0
    overhead_s: float = 0.0  # time the decoding thread spent detecting and dispatching units
    chunks: int = 0  # stream events (tokens, or several tokens under speculative decoding)
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> float:
        return time.perf_counter()

    def mark(self, attr: str, t: float | None = None) -> float:
        t = self.now() if t is None else t
        with self._lock:
            if getattr(self, attr) is None:
                setattr(self, attr, t)
        return t

    def unit(self, path: str, index: int, **fields: Any) -> UnitTimes:
        ut = UnitTimes(path=path, index=index, generated=self.now(), **fields)
        with self._lock:
            self.units.append(ut)
        return ut

    def note(self, event: str, **fields: Any) -> None:
        with self._lock:
            self.notes.append((self.now(), event, fields))

    # --- summaries ---------------------------------------------------------------------------

    def decode_s(self) -> float | None:
        """G: the time the model spent producing the call."""
        if self.stream_start is None or self.stream_end is None:
            return None
        return self.stream_end - self.stream_start

    def tool_s(self) -> float:
        """T: the tool's busy time for this call: warm-up, every unit, and finish (serial sum)."""
        total = 0.0
        if self.tool_start is not None and self.tool_ready is not None:
            total += self.tool_ready - self.tool_start
        for u in self.units:
            if u.run_s is not None:
                total += u.run_s
        if self.finish_start is not None and self.finish_end is not None:
            total += self.finish_end - self.finish_start
        return total

    def to_dict(self, origin: float | None = None) -> dict[str, Any]:
        """A JSON-ready view; times relative to `origin` (default: the stream start)."""
        o = origin if origin is not None else (self.stream_start or self.created)

        def rel(t: float | None) -> float | None:
            return None if t is None else round(t - o, 6)

        with self._lock:
            units = list(self.units)
            notes = list(self.notes)
        return {
            "call_id": self.call_id,
            "tool": self.tool,
            "mode": self.mode,
            "attempt": self.attempt,
            "stream_start_s": rel(self.stream_start),
            "first_token_s": rel(self.first_token),
            "call_closed_s": rel(self.call_closed),
            "stream_end_s": rel(self.stream_end),
            "tool_start_s": rel(self.tool_start),
            "tool_ready_s": rel(self.tool_ready),
            "finish_start_s": rel(self.finish_start),
            "finish_end_s": rel(self.finish_end),
            "result_ready_s": rel(self.result_ready),
            "result_injected_s": rel(self.result_injected),
            "aborted_s": rel(self.aborted),
            "abort_reason": self.abort_reason,
            "decode_s": self.decode_s(),
            "tool_s": self.tool_s(),
            "leaked_threads": self.leaked_threads,
            "overhead_s": self.overhead_s,
            "chunks": self.chunks,
            "completion_tokens": self.completion_tokens,
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "units": [
                {
                    "path": u.path,
                    "piece_of": u.piece_of,
                    "index": u.index,
                    "id": u.id,
                    "deps": list(u.deps),
                    "decision": u.decision,
                    "generated_s": rel(u.generated),
                    "dispatched_s": rel(u.dispatched),
                    "started_s": rel(u.started),
                    "finished_s": rel(u.finished),
                    "ok": u.ok,
                    "error": u.error,
                    "work": u.work,
                }
                for u in units
            ],
            "notes": [{"t_s": rel(t), "event": e, **_plain(f)} for t, e, f in notes],
        }


def _plain(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v))
        for k, v in fields.items()
    }
