"""Tools for the chat tests that count every execution, so "exactly once" can be checked."""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sgl_conveyor.chat import ToolSet
from sgl_conveyor.tools.base import CallContext, Tool, UnitResult
from sgl_conveyor.tools.spec import load_spec
from sgl_conveyor.units.base import Unit


def lookup_definition(effect: str = "pure") -> dict[str, Any]:
    """A tool whose units are its queries; `cost_model: false` runs each at once."""
    return {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look facts up, one query each.",
            "parameters": {
                "type": "object",
                "properties": {
                    "queries": {
                        "type": "array",
                        "items": {"type": "string", "maxLength": 24},
                        "minItems": 1,
                    }
                },
                "required": ["queries"],
                "additionalProperties": False,
            },
        },
        "conveyor": {
            "units": [{"path": "/queries/*", "effect": effect}],
            "cost_model": False,
        },
    }


# A plain OpenAI definition: no conveyor section, so one irreversible unit, the whole call.
BOOK = {
    "type": "function",
    "function": {
        "name": "book",
        "description": "Book a table.",
        "parameters": {
            "type": "object",
            "properties": {"place": {"type": "string"}, "people": {"type": "integer"}},
            "required": ["place", "people"],
            "additionalProperties": False,
        },
    },
}


class CountingLookup(Tool):
    """Counts each unit it runs and each finish; `log` (an EventLog) orders them against
    the server's chunks; `ran` is set at the first unit that runs."""

    def __init__(self, spec: Any, log: Any = None):
        super().__init__(spec)
        self.runs: Counter = Counter()
        self.finished = 0
        self.undone: list[str] = []
        self.log = log
        self.ran = threading.Event()
        self._lock = threading.Lock()

    def run_unit(self, unit: Unit, ctx: CallContext) -> Any:
        with self._lock:
            self.runs[unit.value] += 1
        if self.log is not None:
            self.log.add("unit_run", unit.value)
        self.ran.set()
        return unit.value.upper()

    def undo_unit(self, unit: Unit, result: Any, ctx: CallContext) -> None:
        with self._lock:
            self.undone.append(unit.value)

    def finish(self, arguments: Any, results: Sequence[UnitResult], ctx: CallContext) -> Any:
        with self._lock:
            self.finished += 1
        return {"answers": [r.value for r in results]}


@dataclass
class Bookings:
    made: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, place: str, people: int) -> str:
        self.made.append((place, people))
        return f"booked {place} for {people}"


@dataclass
class Tools:
    lookup: CountingLookup
    bookings: Bookings
    toolset: ToolSet


@functools.cache
def lookup_spec(effect: str = "pure") -> Any:
    return load_spec(lookup_definition(effect))


@functools.cache
def book_spec() -> Any:
    return load_spec(BOOK)


def counting_tools(effect: str = "pure") -> Tools:
    """Fresh counters on specs loaded once (loading validates against the meta-schema)."""
    spec = lookup_spec(effect)
    lookup = CountingLookup(spec)
    bookings = Bookings()
    return Tools(lookup, bookings, ToolSet([(spec, lookup), (book_spec(), bookings)]))
