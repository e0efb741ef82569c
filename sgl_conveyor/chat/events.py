"""What `sgl_conveyor.chat.stream` yields while a response streams: content deltas and call
events, in the order they happened. Plain frozen records; nothing here runs or waits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


def _now() -> float:
    return time.perf_counter()


@dataclass(frozen=True)
class ContentDelta:
    """Text of the assistant's message."""

    text: str
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class CallStarted:
    """A tool call began (its index and function name are known)."""

    index: int
    id: str | None
    name: str
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class ArgumentsDelta:
    """A fragment of a call's argument text, as the server sent it."""

    index: int
    text: str
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class UnitReady:
    """A unit of a call became final and went to its tool (run now, held or deferred: the
    call's timeline says which)."""

    index: int
    path: str
    value: Any
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class ArgumentsDone:
    """A call's arguments are complete (the next call began, or the stream ended)."""

    index: int
    arguments: Any
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class CallDone:
    """A call ended: its result, or its error (a ToolCallError)."""

    index: int
    result: Any
    error: Exception | None
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class TurnDone:
    """The response and every call of it ended; `turn` is the ChatTurn."""

    turn: Any
    at: float = field(default_factory=_now)


ChatEvent = (
    ContentDelta | CallStarted | ArgumentsDelta | UnitReady | ArgumentsDone | CallDone | TurnDone
)
