"""Incremental, strict JSON parsing that emits each value at a unit pattern's path once it is final.

Every character is looked at once (string contents and digit runs are skipped by precompiled
regexes), so the cost per token is small and constant. It must never emit a unit from text after
the first invalid character, nor raise anything but `UnitError` for bad input.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

from sgl_conveyor.errors import IncompleteError, UnitError, UnitSchemaError
from sgl_conveyor.schema import NOTHING, CompiledSchema, StreamNode, escape_token, pointer_tokens
from sgl_conveyor.units.base import Piece, TextSplitter, Unit, UnitPattern
from sgl_conveyor.units.splitters import make_splitter

__all__ = ["JsonUnitDetector"]

# Parser states.
_VALUE = 0  # a value must come (top level, after `:`, after `,` in an array)
_ARR_FIRST = 1  # after `[`: a value or `]`
_OBJ_FIRST = 2  # after `{`: a key or `}`
_KEY = 3  # after `,` in an object: a key
_COLON = 4
_AFTER = 5  # after a value in a container: `,` or the closing bracket
_STRING = 6  # inside a string (a key or a value)
_NUMBER = 7
_LITERAL = 8  # inside true / false / null
_DONE = 9

# Number states: where we are in -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?
_N_MINUS, _N_ZERO, _N_INT, _N_DOT, _N_FRAC, _N_E, _N_ESIGN, _N_EXP = range(8)
_N_CAN_END = (False, True, True, False, True, False, False, True)
_N_NAMES = ("after '-'", "", "", "after '.'", "", "after the exponent mark", "after its sign", "")

_WS = " \t\n\r"
_WS_RUN = re.compile(r"[ \t\n\r]+")
# String content that needs no attention: plain characters and two-character escapes (a `\\u`
# escape, an escape cut by a chunk boundary, a quote, a control character or a surrogate stops it).
_STR_RUN = re.compile(
    r'[^"\\\x00-\x1f\ud800-\udfff]*(?:\\["\\/bfnrt][^"\\\x00-\x1f\ud800-\udfff]*)*'
)
_DIGITS = re.compile(r"[0-9]*")
_HEX = frozenset("0123456789abcdefABCDEF")
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r"}
_SIMPLE_ESCAPES["t"] = "\t"
_LITERALS = {"t": ("true", True), "f": ("false", False), "n": ("null", None)}
_NONE: tuple[int, ...] = ()
_BLOCK = 64  # recent chunks kept apart before they are joined into one block
MAX_DEPTH = 512  # nested objects and arrays a document may open (json.loads recurses per level)
_LONE = "lone surrogate: UTF-16 surrogates are only text as a \\u escape pair (high, then low)"


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise ValueError(f"duplicate key {k!r}")
            seen.add(k)
    return d


def _loads(text: str) -> Any:
    """`json.loads` that rejects duplicate keys, as the streaming parser does (it only ever sees
    text the parser accepted: a disagreement would be a bug, not a quirk of the input)."""
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except (ValueError, RecursionError) as e:
        raise UnitError(f"invalid JSON: {e}") from None


# --- the detector ---------------------------------------------------------------------------


class _Frame:
    """An open object or array."""

    __slots__ = (
        "alive",
        "c_alive",
        "c_match",
        "c_path",
        "c_schema",
        "count",
        "depth",
        "key_end",
        "key_start",
        "keys",
        "match",
        "obj",
        "path",
        "schema",
        "start",
    )

    def __init__(
        self,
        obj: bool,
        start: int,
        depth: int,
        path: str | None,
        match: tuple[int, ...],
        alive: tuple[int, ...],
        schema: StreamNode | None,
    ) -> None:
        self.obj = obj
        self.start = start
        self.depth = depth  # number of segments in this container's path
        self.path = path  # None when no pattern can match here or below
        self.match = match  # patterns matching this container
        self.alive = alive  # patterns that may match something below
        self.schema = schema
        self.count = 0  # members so far
        self.key_start = self.key_end = -1  # the current member's key (objects)
        self.c_match = self.c_alive = _NONE  # the current member's patterns (objects)
        self.c_path: str | None = None
        self.c_schema: StreamNode | None = None
        self.keys: set[str] | None = set() if obj else None  # property names so far


class _Sink:
    """A split pattern feeding an open string's decoded text to its splitter."""

    __slots__ = ("count", "path", "pattern", "splitter")

    def __init__(self, pattern: int, path: str, splitter: TextSplitter) -> None:
        self.pattern = pattern
        self.path = path
        self.splitter = splitter
        self.count = 0


class JsonUnitDetector:
    """A UnitDetector for a JSON document (a tool call's arguments), strict RFC 8259.

    Emits a Unit for each value whose JSON pointer matches a pattern, the moment it is final:
    a string at its closing quote, `true`/`false`/`null` at their last letter, an object or
    array at its closing bracket, and a number when the next character proves it ended
    (whitespace, `,`, `]`, `}`; a top-level number at whitespace or `finish()`). `value` is what
    `json.loads` gives for the literal, `text` the literal as streamed, `start`/`end` its offsets
    in the stream. A value matching several patterns gives one Unit per pattern, in pattern
    order; inner values finish first. A duplicate key (in any object, matched or not) is an
    error at the closing quote of its second occurrence, so no unit of a value that a lenient
    parser would drop is ever emitted. Nesting deeper than `max_depth` (512) objects and arrays
    is an error at the bracket that goes too deep (json.loads would recurse past Python's
    limit). A surrogate is only text as a `\\u` escape of a high half followed by one of a low
    half: a lone one (escaped or raw) is an error at the first character that proves it, since
    json.loads would keep a value no UTF-8 text can hold.

    A string at a `split` pattern streams its decoded content into the splitter while it is still
    open; each piece is a Unit at `f"{path}#{k}"` whose value and text are the piece's decoded
    text and whose `start`/`end` are offsets in the decoded string (not in the stream). A split
    pattern on a value that is not a string raises `UnitSchemaError`.

    The document ends at its top-level value: `complete` becomes True there, `consumed` stops
    there, and any text after it (whitespace, a closing fence, junk) is ignored; the caller stops
    reading. Before the first value only whitespace is allowed.

    With `schema`, documents that cannot match are rejected at the first character that proves
    it (`UnitSchemaError`): a value of the wrong type at its first character, a property whose
    schema is `false` (e.g. not allowed by `additionalProperties: false`) at its key's closing
    quote, a string that can no longer equal any `enum`/`const` string (while it has no escape),
    an item past `maxItems`, and at a container's end a missing `required` key or too few items.
    `properties`, `patternProperties`, `additionalProperties`, `items`, `prefixItems` and local
    `$ref`s are followed; other keywords are left to the full validation of finished values.
    `schema` is a `CompiledSchema` (a spec's `spec.schema`, shared by all its calls) or a raw
    schema, then compiled for this detector alone.

    After an error the detector is dead: `feed` and `finish` raise the same error again. A chunk
    that contains an invalid character returns no units at all (the call is going to be aborted).
    """

    def __init__(
        self,
        patterns: Sequence[UnitPattern],
        schema: CompiledSchema | Mapping[str, Any] | bool | None = None,
        *,
        max_depth: int = MAX_DEPTH,
    ) -> None:
        if max_depth < 1:
            raise ValueError("max_depth must be >= 1")
        self.max_depth = max_depth
        self.patterns = tuple(patterns)
        self._psegs = tuple(pointer_tokens(p.path) for p in self.patterns)
        for p in self.patterns:
            if p.split is not None:
                make_splitter(p.split)  # unknown names fail here, not mid-stream
        self._splits = tuple(p.split for p in self.patterns)
        self._has_split = any(self._splits)
        if schema is None:
            self._schema: StreamNode | None = None
        else:
            compiled = schema if isinstance(schema, CompiledSchema) else CompiledSchema(schema)
            self._schema = compiled.stream_root
        self._root_match = tuple(k for k, s in enumerate(self._psegs) if not s)
        self._root_alive = tuple(k for k, s in enumerate(self._psegs) if s)

        self._chunks: list[str] = []  # the stream so far: sealed blocks, then recent chunks
        self._starts: list[int] = []
        self._sealed = 0
        self._total = 0
        self._state = _VALUE
        self._stack: list[_Frame] = []
        self._index = 0
        self._doc_start = -1
        self._doc_end = -1
        self._error: UnitError | None = None
        self._finished = False
        self._value: Any = None
        self._has_value = False

        # The scalar being parsed.
        self._v_start = -1
        self._v_match = _NONE
        self._v_path: str | None = None
        self._in_key = False
        self._esc: str | None = None  # characters after a backslash, while an escape is open
        self._pair = False  # a high-surrogate \\u escape was decoded: its low half must follow
        self._enum: tuple[str, ...] | None = None  # enum strings still to check the prefix of
        self._enum_text = ""
        self._nstate = _N_MINUS
        self._lit = ""
        self._lit_i = 0
        self._lit_value: Any = None

        # An open string at split patterns: its sinks and decoded text not yet given to them.
        self._sinks: list[_Sink] | None = None
        self._dec: list[str] = []
        self._dec_len = 0  # decoded characters so far (given or pending)
        self._hi: str | None = None  # a high-surrogate escape awaiting its pair

    # --- protocol ---------------------------------------------------------------------------

    def feed(self, chunk: str) -> list[Unit]:
        if self._error is not None:
            raise self._error
        if self._finished:
            raise RuntimeError("feed() after finish()")
        if not chunk or self._state == _DONE:
            return []
        base = self._total
        if len(self._chunks) - self._sealed >= _BLOCK:
            self._seal()
        self._chunks.append(chunk)
        self._starts.append(base)
        self._total += len(chunk)
        out: list[Unit] = []
        try:
            self._run(chunk, base, out)
            if self._dec:
                self._flush_split(out)
        except UnitError as e:
            self._error = e
            raise
        return out

    def finish(self) -> list[Unit]:
        if self._error is not None:
            raise self._error
        if self._finished:
            return []
        self._finished = True
        out: list[Unit] = []
        try:
            if self._state == _NUMBER and not self._stack and _N_CAN_END[self._nstate]:
                self._state = self._end_number(self._total, out)
            if self._state != _DONE:
                raise IncompleteError(self._incomplete_message(), offset=self._total)
        except UnitError as e:
            self._error = e
            raise
        return out

    @property
    def complete(self) -> bool:
        return self._state == _DONE

    @property
    def consumed(self) -> int:
        return self._doc_end if self._state == _DONE else self._total

    def value(self) -> Any:
        """The whole document as `json.loads` gives it (once complete)."""
        if self._state != _DONE:
            raise IncompleteError("the JSON document is not complete yet", offset=self._total)
        if not self._has_value:
            self._value = _loads(self._slice(self._doc_start, self._doc_end))
            self._has_value = True
        return self._value

    # --- the scanner ------------------------------------------------------------------------

    def _run(self, s: str, base: int, out: list[Unit]) -> None:
        n = len(s)
        i = 0
        state = self._state
        stack = self._stack
        while i < n:
            if state == _STRING:
                if self._esc is not None:
                    i = self._escape(s, i, base)
                    continue
                if self._pair:
                    if s[i] != "\\":
                        self._fail(f"{_LONE}; got {s[i]!r} after a high surrogate", base + i)
                    self._esc = ""
                    i += 1
                    continue
                j = _STR_RUN.match(s, i).end()
                if j != i:
                    if self._sinks is not None:
                        run = s[i:j]
                        self._decoded(scanstring(run + '"', 0)[0] if "\\" in run else run, True)
                    if self._enum is not None:
                        if "\\" in s[i:j]:
                            self._enum = None  # prefix checks only cover escape-free strings
                        else:
                            self._enum_prefix(s[i:j])
                    if j == n:
                        break
                c = s[j]
                i = j + 1
                if c == '"':
                    state = (
                        self._key_end(base + i) if self._in_key else self._string_end(base + i, out)
                    )
                elif c == "\\":
                    self._esc = ""
                elif "\ud800" <= c <= "\udfff":
                    self._fail(f"{_LONE}; got a raw {c!r}", base + j)
                else:
                    self._fail(f"control character {c!r} in a string", base + j)
                continue
            if state == _NUMBER:
                self._state = state
                i = self._number(s, i, base, out)
                state = self._state
                continue
            if state == _LITERAL:
                word = self._lit
                k = self._lit_i
                m = min(len(word) - k, n - i)
                if s[i : i + m] != word[k : k + m]:
                    bad = next(x for x in range(m) if s[i + x] != word[k + x])
                    self._fail(f"invalid literal (expected {word!r})", base + i + bad)
                i += m
                k += m
                self._lit_i = k
                if k == len(word):
                    state = self._scalar_end(base + i, self._lit_value, out)
                continue
            c = s[i]
            if c in _WS:
                i = _WS_RUN.match(s, i).end()
                continue
            if state == _AFTER:
                fr = stack[-1]
                if c == ",":
                    state = _KEY if fr.obj else _VALUE
                    i += 1
                elif c == ("}" if fr.obj else "]"):
                    i += 1
                    state = self._container_end(base + i, out)
                else:
                    expected = "',' or '}'" if fr.obj else "',' or ']'"
                    self._fail(f"expected {expected}, got {c!r}", base + i)
            elif state in (_VALUE, _ARR_FIRST):
                if c == "]" and state == _ARR_FIRST:
                    i += 1
                    state = self._container_end(base + i, out)
                else:
                    state = self._value_start(c, base + i)
                    i += 1
            elif state in (_OBJ_FIRST, _KEY):
                if c == '"':
                    stack[-1].key_start = base + i
                    self._in_key = True
                    state = _STRING
                    i += 1
                elif c == "}" and state == _OBJ_FIRST:
                    i += 1
                    state = self._container_end(base + i, out)
                else:
                    self._fail(f"expected a property name in double quotes, got {c!r}", base + i)
            elif state == _COLON:
                if c != ":":
                    self._fail(f"expected ':', got {c!r}", base + i)
                state = _VALUE
                i += 1
            else:  # _DONE: the rest of the stream is not part of the document
                break
        self._state = state

    # --- values -----------------------------------------------------------------------------

    def _value_start(self, c: str, off: int) -> int:
        """The first character of a value: find its patterns and schema, check its type."""
        stack = self._stack
        if c not in '"{[tfn-0123456789':
            self._fail(f"expected a JSON value, got {c!r}", off)
        if stack:
            fr = stack[-1]
            if fr.obj:
                match, alive, path, sch = fr.c_match, fr.c_alive, fr.c_path, fr.c_schema
            else:
                idx = fr.count
                fr.count = idx + 1
                sch = None
                if fr.schema is not None:
                    mx = fr.schema.max_items
                    if mx is not None and idx >= mx:
                        self._schema_fail(f"more than {mx} items", off)
                    sch = fr.schema.item(idx)
                if fr.alive:
                    match, alive, path = self._descend(fr.alive, fr.depth, str(idx), fr.path)
                else:
                    match = alive = _NONE
                    path = None
        else:
            self._doc_start = off
            match, alive, path, sch = self._root_match, self._root_alive, "", self._schema
        if sch is not None and sch.first is not None and c not in sch.first:
            if sch is NOTHING:
                self._schema_fail("no value is allowed here", off)
            self._schema_fail(f"{_describe(sch.first)} expected, got {_kind(c)}", off)
        if c == '"':
            self._v_start = off
            self._v_match = match
            self._v_path = path
            self._in_key = False
            if self._has_split and match:
                self._open_sinks(match, path)
            if sch is not None and sch.enum is not None:
                self._enum = sch.enum
                self._enum_text = ""
            return _STRING
        if self._has_split and any(self._splits[p] for p in match):
            self._schema_fail(f"a split pattern needs a string, got {_kind(c)}", off)
        if c == "{" or c == "[":
            if len(stack) >= self.max_depth:
                self._fail(f"nested deeper than {self.max_depth} objects and arrays", off)
            stack.append(_Frame(c == "{", off, len(stack), path, match, alive, sch))
            return _OBJ_FIRST if c == "{" else _ARR_FIRST
        self._v_start = off
        self._v_match = match
        self._v_path = path
        if c in _LITERALS:
            self._lit, self._lit_value = _LITERALS[c]
            self._lit_i = 1
            return _LITERAL
        self._nstate = _N_MINUS if c == "-" else _N_ZERO if c == "0" else _N_INT
        return _NUMBER

    def _descend(
        self, alive: tuple[int, ...], depth: int, seg: str, path: str | None
    ) -> tuple[tuple[int, ...], tuple[int, ...], str | None]:
        """Patterns matching a member (`match`) and those that may match below it (`alive`)."""
        match: list[int] = []
        below: list[int] = []
        for p in alive:
            segs = self._psegs[p]
            t = segs[depth]
            if t == "*" or t == seg:
                (match if len(segs) == depth + 1 else below).append(p)
        if not match and not below:
            return _NONE, _NONE, None
        return tuple(match), tuple(below), f"{path}/{escape_token(seg)}"

    def _after(self, end: int) -> int:
        if self._stack:
            return _AFTER
        self._doc_end = end
        return _DONE

    def _scalar_end(self, end: int, value: Any, out: list[Unit]) -> int:
        match = self._v_match
        if match:
            text = self._slice(self._v_start, end)
            for p in match:
                self._emit(out, self._v_path, p, value, text, self._v_start, end)
            if self._v_start == self._doc_start:
                self._value, self._has_value = value, True
        return self._after(end)

    def _container_end(self, end: int, out: list[Unit]) -> int:
        fr = self._stack.pop()
        sch = fr.schema
        if sch is not None:
            if fr.keys is not None:
                missing = [k for k in sch.required if k not in fr.keys]
                if missing:
                    self._stack.append(fr)  # so the error names this object's path
                    self._schema_fail(f"missing required property {missing[0]!r}", end - 1)
            if sch.min_items is not None and not fr.obj and fr.count < sch.min_items:
                self._stack.append(fr)
                self._schema_fail(f"fewer than {sch.min_items} items", end - 1)
        if fr.match:
            text = self._slice(fr.start, end)
            value = _loads(text)
            for p in fr.match:
                self._emit(out, fr.path, p, value, text, fr.start, end)
            if not self._stack:
                self._value, self._has_value = value, True
        return self._after(end)

    def _emit(
        self,
        out: list[Unit],
        path: str | None,
        pattern: int,
        value: Any,
        text: str,
        start: int,
        end: int,
    ) -> None:
        out.append(Unit(path or "", self._index, value, text, start, end, pattern))
        self._index += 1

    # --- strings ----------------------------------------------------------------------------

    def _key_end(self, end: int) -> int:
        """A property name closed: find the member's patterns and schema."""
        fr = self._stack[-1]
        fr.key_end = end
        fr.count += 1
        key = self._key(fr)
        keys = fr.keys
        if key in keys:
            # Strict parsers reject it, lenient ones keep the last value: units from the first
            # one could run while the tool got the other, so the call dies at this quote.
            self._fail(f"duplicate key {key!r} at {self._where()}", end - 1)
        keys.add(key)
        if fr.schema is not None:
            sch = fr.schema.prop(key)
            if sch is NOTHING:
                self._schema_fail(f"property {key!r} is not allowed", end - 1)
            fr.c_schema = sch
        else:
            fr.c_schema = None
        if fr.alive:
            fr.c_match, fr.c_alive, fr.c_path = self._descend(fr.alive, fr.depth, key, fr.path)
        else:
            fr.c_match = fr.c_alive = _NONE
            fr.c_path = None
        return _COLON

    def _key(self, fr: _Frame) -> str:
        raw = self._slice(fr.key_start, fr.key_end)
        return json.loads(raw) if "\\" in raw else raw[1:-1]

    def _string_end(self, end: int, out: list[Unit]) -> int:
        start = self._v_start
        if self._enum is not None:
            if self._enum_text not in self._enum:
                self._schema_fail(f"{self._enum_text!r} is not one of the allowed values", end - 1)
            self._enum = None
        match = self._v_match
        if not match:
            return self._after(end)
        sinks = self._sinks
        if sinks is None or start == self._doc_start or len(sinks) < len(match):
            text = self._slice(start, end)
            value = json.loads(text) if "\\" in text else text[1:-1]
        else:  # only split patterns here: the pieces are the units, the value is not needed
            text = value = ""

        if sinks is not None:
            if self._hi is not None:  # a lone high surrogate right before the closing quote
                hi, self._hi = self._hi, None
                self._decoded(hi, False)
            self._flush_split(out)
            self._sinks = None
            by_pattern = {sk.pattern: sk for sk in sinks}
            for p in match:
                sk = by_pattern.get(p)
                if sk is None:
                    self._emit(out, self._v_path, p, value, text, start, end)
                    continue
                try:
                    pieces = sk.splitter.finish()
                except UnitError as e:
                    self._split_fail(e, sk, end - 1)
                self._emit_pieces(sk, pieces, out)
        else:
            for p in match:
                self._emit(out, self._v_path, p, value, text, start, end)
        if start == self._doc_start:
            self._value, self._has_value = value, True
        return self._after(end)

    def _escape(self, s: str, i: int, base: int) -> int:
        """Continue the escape after a backslash; returns the index after what it consumed."""
        esc = self._esc
        if not esc:
            c = s[i]
            if c != "u":
                if self._pair:
                    self._fail(f"{_LONE}; got '\\{c}' after a high surrogate", base + i)
                ch = _SIMPLE_ESCAPES.get(c)
                if ch is None:
                    self._fail(f"invalid escape '\\{c}'", base + i)
                self._esc = None
                self._escaped(ch)
                return i + 1
            esc = "u"
            i += 1
        n = len(s)
        while len(esc) < 5:
            if i == n:
                self._esc = esc
                return i
            c = s[i]
            if c not in _HEX:
                self._fail(f"invalid \\u escape: {c!r} is not a hex digit", base + i)
            k = len(esc)
            if k == 1 and self._pair and c not in "dD":
                self._fail(f"{_LONE}; a high surrogate is not followed by a low one", base + i)
            if k == 2 and (esc[1] in "dD" and c in "cdefCDEF") != self._pair:
                # \\uDC00-\\uDFFF is a low half: right after a high one, and only there
                why = "a high surrogate is not followed by a low one" if self._pair else "a low one"
                self._fail(
                    f"{_LONE}; {why}" + ("" if self._pair else " without a high one"), base + i
                )
            esc += c
            i += 1
        self._esc = None
        code = int(esc[1:], 16)
        self._pair = 0xD800 <= code <= 0xDBFF
        self._escaped(chr(code))
        return i

    def _escaped(self, ch: str) -> None:
        """A character decoded from an escape (`\\n`, `\\u00e9`, half of a surrogate pair)."""
        self._enum = None  # prefix checks only cover escape-free strings
        if self._sinks is None:
            return
        hi = self._hi
        if hi is not None:
            self._hi = None
            if "\udc00" <= ch <= "\udfff":  # json.loads joins an escaped surrogate pair
                self._decoded(chr(0x10000 + ((ord(hi) - 0xD800) << 10) + (ord(ch) - 0xDC00)), False)
                return
            self._decoded(hi, False)
        if "\ud800" <= ch <= "\udbff":
            self._hi = ch
            return
        self._decoded(ch, False)

    def _enum_prefix(self, run: str) -> None:
        text = self._enum_text + run
        enum = self._enum
        if not any(v.startswith(text) for v in enum):
            best = 0  # the first character no allowed value agrees with
            for v in enum:
                k = 0
                for a, b in zip(v, text, strict=False):
                    if a != b:
                        break
                    k += 1
                best = max(best, k)
            self._schema_fail(
                f"the string can no longer be one of the allowed values {list(enum)!r}",
                self._v_start + 1 + best,
            )
        self._enum_text = text

    # --- split strings ----------------------------------------------------------------------

    def _open_sinks(self, match: tuple[int, ...], path: str | None) -> None:
        sinks = [
            _Sink(p, path or "", make_splitter(self._splits[p])) for p in match if self._splits[p]
        ]
        if sinks:
            self._sinks = sinks
            self._dec.clear()
            self._dec_len = 0
            self._hi = None

    def _decoded(self, text: str, run: bool) -> None:
        """Queue decoded string content for the splitters (`run`: not from a `\\u` escape)."""
        if run and self._hi is not None:
            hi, self._hi = self._hi, None
            self._dec.append(hi)
            self._dec_len += 1
        self._dec.append(text)
        self._dec_len += len(text)

    def _flush_split(self, out: list[Unit]) -> None:
        """Give the queued decoded text to the splitters and emit their finished pieces."""
        if not self._dec:
            return
        text = "".join(self._dec)
        self._dec.clear()
        sinks = self._sinks
        if len(sinks) == 1:
            sk = sinks[0]
            try:
                pieces = sk.splitter.feed(text)
            except UnitError as e:
                self._split_fail(e, sk, None)
            self._emit_pieces(sk, pieces, out)
            return
        # Several splitters on one string: feed them character by character so that their
        # pieces interleave in the order they became final, whatever the chunking.
        for ch in text:
            for sk in sinks:
                try:
                    pieces = sk.splitter.feed(ch)
                except UnitError as e:
                    self._split_fail(e, sk, None)
                self._emit_pieces(sk, pieces, out)

    def _emit_pieces(self, sk: _Sink, pieces: list[Piece], out: list[Unit]) -> None:
        for pc in pieces:
            out.append(
                Unit(
                    f"{sk.path}#{sk.count}",
                    self._index,
                    pc.text,
                    pc.text,
                    pc.start,
                    pc.end,
                    sk.pattern,
                    pc.meta,
                    sk.path,
                )
            )
            self._index += 1
            sk.count += 1

    def _split_fail(self, e: UnitError, sk: _Sink, at_end: int | None) -> None:
        """Re-raise a splitter's error with its offset mapped into the stream."""
        off = at_end
        if e.offset is not None and e.offset < self._dec_len:
            off = self._stream_offset(e.offset)
        if off is None:
            off = self._total
        where = f"{e} (in the decoded string at {sk.path or '/'})"
        # The string itself closed: code cut inside it is malformed, not a truncated stream.
        self._dec.clear()
        self._fail(where, off)

    def _stream_offset(self, target: int) -> int:
        """Stream offset of the open string's decoded character `target` (re-decodes the string's
        raw text: only on the error path, so the hot path keeps no offset map)."""
        raw = self._slice(self._v_start + 1, self._total)
        i = d = 0
        n = len(raw)
        while i < n and d < target:
            if raw[i] != "\\":
                i += 1
            elif raw[i + 1 : i + 2] != "u":
                i += 2
            else:
                hi = raw[i + 2 : i + 6]
                lo = raw[i + 8 : i + 12] if raw[i + 6 : i + 8] == "\\u" else ""
                pair = (
                    len(lo) == 4
                    and all(h in _HEX for h in hi + lo)
                    and 0xD800 <= int(hi, 16) <= 0xDBFF
                    and 0xDC00 <= int(lo, 16) <= 0xDFFF
                )
                i += 12 if pair else 6
            d += 1
        return self._v_start + 1 + i

    # --- numbers ----------------------------------------------------------------------------

    def _number(self, s: str, i: int, base: int, out: list[Unit]) -> int:
        ns = self._nstate
        n = len(s)
        while i < n:
            c = s[i]
            if "0" <= c <= "9":
                if ns == _N_ZERO:
                    self._fail("leading zero in a number", base + i)
                if ns == _N_MINUS:
                    ns = _N_ZERO if c == "0" else _N_INT
                elif ns == _N_DOT:
                    ns = _N_FRAC
                elif ns in (_N_E, _N_ESIGN):
                    ns = _N_EXP
                i = i + 1 if ns == _N_ZERO else _DIGITS.match(s, i + 1).end()
                continue
            if c == ".":
                if ns in (_N_ZERO, _N_INT):
                    ns = _N_DOT
                    i += 1
                    continue
            elif c == "e" or c == "E":
                if ns in (_N_ZERO, _N_INT, _N_FRAC):
                    ns = _N_E
                    i += 1
                    continue
            elif (c == "+" or c == "-") and ns == _N_E:
                ns = _N_ESIGN
                i += 1
                continue
            self._nstate = ns
            if not _N_CAN_END[ns]:
                self._fail(f"number cut {_N_NAMES[ns]}: unexpected {c!r}", base + i)
            if c in "+-.eE":
                self._fail(f"unexpected {c!r} in a number", base + i)
            if not self._stack and c not in _WS:
                self._fail(f"unexpected {c!r} after a number", base + i)
            self._state = self._end_number(base + i, out)
            return i
        self._nstate = ns
        return n

    def _end_number(self, end: int, out: list[Unit]) -> int:
        if not self._v_match and self._stack:
            return _AFTER
        text = self._slice(self._v_start, end)
        try:
            value: Any = int(text) if self._nstate in (_N_ZERO, _N_INT) else float(text)
        except ValueError:  # more digits than int() converts (json.loads fails the same way)
            self._fail("number too long to convert", self._v_start)
        return self._scalar_end(end, value, out)

    # --- errors and text --------------------------------------------------------------------

    def _fail(self, message: str, off: int, cls: type[UnitError] = UnitError) -> None:
        if self._dec and self._sinks is not None:
            # Decoded text before the bad character may hold an earlier error of its own.
            self._flush_split([])
        raise cls(message, offset=off, text="".join(self._chunks))

    def _schema_fail(self, message: str, off: int) -> None:
        self._fail(f"{self._where()}: {message}", off, UnitSchemaError)

    def _where(self) -> str:
        """JSON pointer of the value being parsed (for messages)."""
        segs = []
        for fr in self._stack:
            if fr.obj:
                if fr.key_end > fr.key_start >= 0:
                    segs.append(escape_token(self._key(fr)))
            elif fr.count:
                segs.append(str(fr.count - 1))
        return "/" + "/".join(segs) if segs else "/"

    def _incomplete_message(self) -> str:
        if self._doc_start < 0:
            return "the stream ended before any JSON value"
        what = {
            _STRING: "inside a string",
            _NUMBER: "inside a number",
            _LITERAL: "inside a literal",
            _COLON: "after a property name",
        }.get(self._state, "before the document was closed")
        return f"the JSON document ends {what} at {self._where()}"

    def _seal(self) -> None:
        """Join the recent chunks into one block: a token-sized string per chunk would cost far
        more memory than the text itself on long calls."""
        k = self._sealed
        self._chunks[k:] = ["".join(self._chunks[k:])]
        del self._starts[k + 1 :]
        self._sealed = k + 1

    def _slice(self, a: int, b: int) -> str:
        starts = self._starts
        last = starts[-1]
        if a >= last:
            return self._chunks[-1][a - last : b - last]
        k = bisect_right(starts, a) - 1
        joined = "".join(self._chunks[k:])
        return joined[a - starts[k] : b - starts[k]]


def _kind(c: str) -> str:
    return {
        '"': "a string",
        "{": "an object",
        "[": "an array",
        "t": "a boolean",
        "f": "a boolean",
        "n": "null",
    }.get(c, "a number")


def _describe(first: frozenset[str]) -> str:
    kinds = sorted({_kind(c) for c in first})
    return " or ".join(kinds) if kinds else "nothing"
