"""One tool call's argument fragments, as a chat stream sends them, into units and final
arguments, whatever the server's way of splitting them.

The truth of a call is the concatenation of its fragments (what the OpenAI client itself
accumulates). The detector turns it into units while it streams; at the end the final
arguments are parsed, text after the document is accepted only as an exact repeat of it, and
the streamed units are checked against units re-derived from the parsed arguments (parsed JSON
compared, never strings). It never runs anything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sgl_conveyor.errors import MalformedCallError, UnitError
from sgl_conveyor.units import make_detector
from sgl_conveyor.units.base import Unit, UnitPattern


class ArgumentStream:
    """The argument text of one call, fed fragment by fragment."""

    def __init__(self, tool: str, patterns: Sequence[UnitPattern], schema: Any):
        self.tool = tool
        self._patterns = tuple(patterns)
        self._schema = schema
        self._detector = make_detector(self._patterns, schema=schema, format="json")
        self._parts: list[str] = []
        self._tail: list[str] = []  # text after the document closed
        self.units: list[Unit] = []
        self.repeat_ignored = False

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def document(self) -> str:
        """The text of the JSON document alone (without what came after it closed)."""
        text, tail = self.text, sum(len(t) for t in self._tail)
        return text[: len(text) - tail] if tail else text

    @property
    def complete(self) -> bool:
        return self._detector.complete

    def feed(self, fragment: str) -> list[Unit]:
        """The next fragment; the units it made final. Raises UnitError at invalid text."""
        self._parts.append(fragment)
        if self._detector.complete:
            self._tail.append(fragment)
            return []
        before = self._detector.consumed
        units = self._detector.feed(fragment)
        if self._detector.complete:
            self._tail.append(fragment[self._detector.consumed - before :])
        self.units += units
        return units

    def finish(self) -> list[Unit]:
        """The call's text ended: the last units (IncompleteError if the document is cut). An
        empty argument text is `{}` (what servers mean by it for a call without parameters)."""
        units = self.feed("{}") if not self.text.strip() else []
        if not self._detector.complete:
            more = self._detector.finish()
            self.units += more
            units += more
        return units

    def value(self) -> Any:
        """The final arguments. Text after the document is allowed only if it is whitespace or
        the same arguments again (a server that repeats the call at the end); anything else
        makes the call malformed rather than guessed."""
        value = self._detector.value()
        tail = "".join(self._tail).strip()
        if tail:
            try:
                again = json.loads(tail)
            except ValueError:
                again = _NOT_JSON
            if again is _NOT_JSON or not same_json(again, value):
                raise MalformedCallError(
                    f"{self.tool} arguments go on after the JSON document closed: {tail[:80]!r}",
                    tool=self.tool,
                )
            self.repeat_ignored = True
        return value

    def mismatches(self, value: Any) -> list[str]:
        """Paths where the streamed units differ from those of the final arguments (re-derived
        by a fresh detector from their canonical JSON): empty when every early unit is
        confirmed."""
        fresh = make_detector(self._patterns, schema=self._schema, format="json")
        try:
            final = fresh.feed(json.dumps(value)) + fresh.finish()
        except UnitError as e:
            return [f"(the final arguments do not re-parse: {e})"]
        out = []
        for i in range(max(len(final), len(self.units))):
            a = self.units[i] if i < len(self.units) else None
            b = final[i] if i < len(final) else None
            if a is None or b is None or a.path != b.path or not same_json(a.value, b.value):
                out.append((a or b).path)  # type: ignore[union-attr]
        return out


_NOT_JSON = object()


def same_json(a: Any, b: Any) -> bool:
    """Equality of parsed JSON values: `true` is not `1`, key order does not matter."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
        )
    if isinstance(a, (list, tuple)):
        return (
            isinstance(b, (list, tuple))
            and len(a) == len(b)
            and all(same_json(x, y) for x, y in zip(a, b, strict=True))
        )
    return type(a) is type(b) and a == b
