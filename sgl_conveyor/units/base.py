"""What a unit is, and the contract every unit detector keeps.

A unit is a piece of a streamed tool call that can no longer change. Detectors turn a stream of
text chunks into units; they know nothing about tools, backends or threads, and never look back
at text they have already consumed (total work is linear in the length of the call).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class UnitPattern:
    """Which parts of a call are units.

    `path` is a JSON pointer whose segments may be `*` (any array index or object key):
    `/queries/*`, `/steps/*/args`, `/location`; the empty string is the whole call. `split` names
    a registered text splitter (`units.register_splitter`; built in: "python", "lines", "plan")
    applied to the string found at `path`: each statement, line or plan step of that string is
    then a unit of its own.
    """

    path: str
    split: str | None = None


@dataclass(frozen=True, slots=True)
class Unit:
    """One finished unit of a call.

    path:    JSON pointer of the value (`/queries/1`); for a piece of a split string, the pointer
             of the string, `#`, and the piece's 0-based index (`/code#3`).
    index:   0-based position among all units the detector emitted for this call.
    pattern: index of the UnitPattern that matched (0 for single-pattern detectors).
    value:   the parsed JSON value, or the text of the statement / line / plan step.
    text:    the unit's source text: a JSON literal exactly as streamed (quotes and escapes
             included), or the piece of a split string (statement, line, step) as decoded.
    start, end: offsets of `text`, end exclusive: in the whole stream for JSON values and for
             text calls; for a piece of a split JSON string, in the *decoded* string (the
             stream holds it escaped, so stream offsets would not slice to `text`).
    meta:    detector-specific facts, e.g. a plan step's `id`, `tool`, `args`, `deps`; a Python
             statement's `kind` and `line`.
    piece_of: for a piece of a split string, the pointer of that string (`/code`); None for a
             whole value. Read this, not the path: a JSON key may itself hold a `#`.
    """

    path: str
    index: int
    value: Any
    text: str
    start: int
    end: int
    pattern: int = 0
    meta: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    piece_of: str | None = None

    @property
    def digest(self) -> str:
        """A hash of the unit's content: its identity, with its call and path, wherever a unit
        must not run twice (the runtime's ledger, a tool's idempotency key)."""
        return content_hash(self.value)


def content_hash(value: Any) -> str:
    """A short, stable hash of a JSON-like value (keys sorted, non-JSON values by `str`)."""
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@runtime_checkable
class UnitDetector(Protocol):
    """Incremental unit detection over a stream of text chunks.

    Guarantees, whatever the chunking (one character at a time, or many units in one chunk):
    every unit is emitted exactly once, in order, with the same fields; `feed` raises
    `UnitError` at the first character that makes the text invalid and emits nothing from an
    invalid prefix; total work is linear in the total length fed.
    """

    def feed(self, chunk: str) -> list[Unit]:
        """Consume the next chunk; return the units that became final."""
        ...

    def finish(self) -> list[Unit]:
        """Declare the end of the stream; return the last units.

        Raises `IncompleteError` if the text is not complete (a cut JSON document, an
        unterminated string); a text splitter treats the end of the stream as the end of its
        last piece.
        """
        ...

    @property
    def complete(self) -> bool:
        """True once the call's text is closed (a JSON document's last bracket); text that
        arrives after that is not part of the call."""
        ...

    @property
    def consumed(self) -> int:
        """Number of characters of the stream that belong to the call so far."""
        ...

    def value(self) -> Any:
        """The whole parsed call once complete (the JSON value, or the text)."""
        ...


@dataclass(frozen=True, slots=True)
class Piece:
    """One finished piece of a split text (a statement, a line, a plan step).

    `start`/`end` are offsets in the text given to the splitter, end exclusive; `text` is that
    slice (a splitter may trim line terminators or surrounding blanks from it).
    """

    text: str
    start: int
    end: int
    meta: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


class TextSplitter(Protocol):
    """Incremental splitting of streamed text into pieces that can no longer change.

    Same guarantees as a UnitDetector: pieces come out once, in order, identical whatever the
    chunking; work is linear in the text fed. Errors are `UnitError`s with offsets in the text.
    """

    def feed(self, text: str) -> list[Piece]:
        """Consume more text; return the pieces that became final."""
        ...

    def finish(self) -> list[Piece]:
        """The text ended: return the last pieces (raises `IncompleteError` if cut)."""
        ...
