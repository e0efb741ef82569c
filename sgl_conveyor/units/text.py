"""Text splitters (top-level Python statements, lines) and the detector for all-text tool calls.

A splitter turns streamed text into pieces that can no longer change, scanning each character
once; it never judges whether the text is good Python (the tool's interpreter does that) and
never re-indents or rewrites what it emits.
"""

from __future__ import annotations

import re
from typing import Any

from sgl_conveyor.errors import IncompleteError, UnitError
from sgl_conveyor.units.base import Piece, Unit
from sgl_conveyor.units.splitters import SPLITTERS, make_splitter, register_splitter

__all__ = [
    "SPLITTERS",
    "LineSplitter",
    "PythonStatementSplitter",
    "TextUnitDetector",
    "make_splitter",
]

# --- lines ----------------------------------------------------------------------------------


@register_splitter("lines")
class LineSplitter:
    """Each line is a piece, final at its `\\n`; the last line is final at `finish()`.

    A piece's text excludes its terminator (`\\n` or `\\r\\n`; a lone `\\r` is not a line end).
    With `skip_blank`, lines of only whitespace produce no piece (and take no piece index).
    meta: `{"line": 1-based line number}`.
    """

    def __init__(self, skip_blank: bool = True) -> None:
        self.skip_blank = skip_blank
        self._parts: list[str] = []  # the current, unfinished line
        self._line_start = 0
        self._pos = 0
        self._line = 1
        self._finished = False

    def feed(self, text: str) -> list[Piece]:
        if self._finished:
            raise RuntimeError("feed() after finish()")
        out: list[Piece] = []
        find = text.find
        i = 0
        while True:
            j = find("\n", i)
            if j < 0:
                break
            if self._parts:
                self._parts.append(text[i:j])
                line = "".join(self._parts)
                self._parts.clear()
            else:
                line = text[i:j]
            self._emit(line, out)
            self._line_start = self._pos + j + 1
            self._line += 1
            i = j + 1
        if i < len(text):
            self._parts.append(text[i:])
        self._pos += len(text)
        return out

    def finish(self) -> list[Piece]:
        if self._finished:
            return []
        self._finished = True
        out: list[Piece] = []
        if self._parts:
            self._emit("".join(self._parts), out)
            self._parts.clear()
        return out

    def _emit(self, line: str, out: list[Piece]) -> None:
        if line.endswith("\r"):
            line = line[:-1]
        if self.skip_blank and (not line or line.isspace()):
            return
        start = self._line_start
        out.append(Piece(line, start, start + len(line), {"line": self._line}))


# --- Python statements ----------------------------------------------------------------------

_CONTINUATIONS = ("else", "elif", "except", "finally")
_WORD = re.compile(r"\w*")
_KIND = re.compile(r"(?:async[ \t]+)?(def|class)\b|(import|from)\b")


def _case_variants(prefix: str) -> set[str]:
    out = {""}
    for ch in prefix:
        out = {p + c for p in out for c in (ch, ch.upper())}
    return out


_PREFIXES = frozenset().union(
    *(_case_variants(p) for p in ("r", "u", "b", "f", "t", "br", "rb", "fr", "rf", "tr", "rt"))
)
_FIELD_PREFIXES = frozenset(p for p in _PREFIXES if "f" in p.lower() or "t" in p.lower())

# Runs of characters that cannot change the lexical state, per context.
_CODE_RUN = re.compile(r"[^'\"#()\[\]{}\\\n]*")
_FIELD_RUN = re.compile(r"[^'\"#()\[\]{}\\\n:]*")
_SPEC_RUN = re.compile(r"[^{}\n]*")
_STRING_RUN = {
    (q, f): re.compile("[^\\\\\\n" + q + ("{}" if f else "") + "]*")
    for q in ("'", '"')
    for f in (False, True)
}

# Lexical contexts nested inside module code (innermost last on the stack).
_STR, _FIELD, _SPEC = 0, 1, 2
_HOLD = -1  # "cannot decide before more text arrives"


@register_splitter("python")
class PythonStatementSplitter:
    """Top-level statements of streamed Python code, each final when the next one starts.

    A statement starts at the first significant character in column 0 of a new logical line:
    outside brackets, strings (any prefix, triple-quoted, f-strings with nested fields and
    quotes), comments and backslash continuations. A column-0 `else`/`elif`/`except`/`finally`
    continues the statement (the splitter waits until the first word is decidable, so `exit()`
    and `else_ = 1` start statements), and a decorated `def`/`class` is one statement with its
    decorators. Compound statements therefore stay whole.

    Blank lines and comment-only lines between statements belong to no piece: a statement's text
    runs from its first character to the end of its last line that holds code (trailing comment
    on that line included, line terminator excluded), exactly as written. Text before the first
    statement (a shebang, comments) is dropped the same way. `\\r\\n` is handled; a lone `\\r` is
    whitespace. meta: `{"kind": "import" | "def" | "class" | "stmt", "line": first line (1-based)}`.

    `finish()` raises `IncompleteError` if the code ends inside a string, a bracket or after a
    backslash continuation: the last statement was certainly cut.
    """

    def __init__(self) -> None:
        self._pos = 0  # offset of the first character not yet scanned (the hold starts here)
        self._hold = ""  # a short undecided tail (quote, brace, first word) awaiting more text
        self._parts: list[str] = []  # scanned text from `_parts_start` on
        self._parts_start = 0
        self._tail = ""  # last 3 characters scanned (string prefix look-back)
        self._ctx: list[list[Any]] = []  # open strings, f-string fields and format specs
        self._depth = 0  # bracket depth of module code
        self._open_line = 0  # line of the outermost open bracket / of the open string
        self._str_line = 0
        self._cont = False  # a backslash continuation is pending
        self._joined = False  # the logical line goes on after a backslash-newline
        self._comment = False
        self._at_bol = True  # at column 0 of a logical line of module code
        self._line = 1
        self._line_code = False  # the current physical line holds code
        self._start = -1  # current statement: first character, or -1 before the first one
        self._start_line = 0
        self._head = -1  # first non-decorator line of the statement (-1: decorators only)
        self._code_end = -1  # end of the statement's last line that holds code
        self._held_at = -1  # set by _hold_at() during a scan
        self._finished = False

    # --- protocol ---------------------------------------------------------------------------

    def feed(self, text: str) -> list[Piece]:
        if self._finished:
            raise RuntimeError("feed() after finish()")
        out: list[Piece] = []
        if text:
            t = self._hold + text if self._hold else text
            self._hold = ""
            self._scan(t, False, out)
        return out

    def finish(self) -> list[Piece]:
        if self._finished:
            return []
        self._finished = True
        out: list[Piece] = []
        t, self._hold = self._hold, ""
        if t:
            self._scan(t, True, out)
        if self._ctx or self._depth or self._cont or (self._joined and not self._line_code):
            what = (
                f"inside a string (opened on line {self._str_line})"
                if self._ctx
                else f"inside an open bracket (line {self._open_line})"
                if self._depth
                else f"after a backslash continuation (line {self._line - (not self._cont)})"
            )
            raise IncompleteError(f"the Python code ended {what}", offset=self._pos)
        if self._start >= 0:
            if self._line_code:
                self._code_end = self._pos
            out.append(self._piece())
        return out

    # --- scanning ---------------------------------------------------------------------------

    def _scan(self, t: str, final: bool, out: list[Piece]) -> None:
        base = self._pos
        self._parts.append(t)
        n = len(t)
        i = 0
        ctx = self._ctx
        while i < n:
            if self._comment:
                j = t.find("\n", i)
                if j < 0:
                    i = n
                    break
                self._comment = False
                i = j  # the newline ends the line like any other
                continue
            if ctx:
                i = self._nested(t, i, base, final)
                if i < 0:
                    break
                continue
            if self._at_bol:
                c = t[i]
                if c == "\n":  # a blank line
                    self._newline(base + i)
                    i += 1
                    continue
                if c not in " \t\f\r#" and self._column0(t, i, base, final, out) < 0:
                    break
                self._at_bol = False
            j = _CODE_RUN.match(t, i).end()
            if j > i:
                if not self._line_code and not t[i:j].isspace():
                    self._line_code = True
                if j == n:
                    i = n
                    break
                i = j
            c = t[i]
            if c == "\n":
                self._newline(base + i)
                if self._cont:
                    self._joined = True
                elif not self._depth:
                    self._at_bol = True
                    self._joined = False
                self._cont = False
                i += 1
            elif c == "#":
                self._comment = True
                i += 1
            elif c in "([{":
                if not self._depth:
                    self._open_line = self._line
                self._depth += 1
                self._line_code = True
                i += 1
            elif c in ")]}":
                if self._depth:
                    self._depth -= 1
                self._line_code = True
                i += 1
            elif c == "\\":
                self._cont = True
                self._line_code = True
                i += 1
            else:
                i = self._open_string(t, i, final)
                if i < 0:
                    break
        if self._held_at >= 0:  # keep the undecided tail for the next feed
            i, self._held_at = self._held_at, -1
            self._hold = t[i:]
            last = self._parts[-1]
            self._parts[-1] = last[: len(last) - (n - i)]
        self._tail = (self._tail + t[:i])[-3:] if i < 3 else t[i - 3 : i]
        self._pos = base + i

    def _hold_at(self, i: int) -> int:
        self._held_at = i
        return _HOLD

    def _column0(self, t: str, i: int, base: int, final: bool, out: list[Piece]) -> int:
        """A significant character in column 0 of a logical line: a new statement or not."""
        p = base + i
        c = t[i]
        if self._start < 0:
            self._begin(p, c)
            return i
        if self._head < 0:  # decorators so far: this line belongs to the decorated statement
            if c != "@":
                self._head = p
            return i
        if c == "e" or c == "f":
            m = _WORD.match(t, i)
            word = m.group()
            if m.end() == len(t) and not final and any(k.startswith(word) for k in _CONTINUATIONS):
                return self._hold_at(i)
            if word in _CONTINUATIONS:
                return i
        out.append(self._piece())
        self._drop_before(p)
        self._begin(p, c)
        return i

    def _begin(self, p: int, c: str) -> None:
        self._start = p
        self._start_line = self._line
        self._head = -1 if c == "@" else p
        self._code_end = -1
        self._line_code = True

    def _newline(self, off: int) -> None:
        if self._line_code:
            self._code_end = off
        self._line += 1
        self._line_code = bool(self._ctx)  # a line inside an open string is code

    def _open_string(self, t: str, i: int, final: bool) -> int:
        q = t[i]
        look = t[i - 3 : i] if i >= 3 else (self._tail + t[:i])[-3:]
        k = len(look)
        while k and (look[k - 1].isalnum() or look[k - 1] == "_"):
            k -= 1
        prefix = look[k:]
        fstring = prefix in _FIELD_PREFIXES
        n = len(t)
        self._line_code = True
        self._str_line = self._line
        if i + 1 >= n:
            if not final:
                return self._hold_at(i)
            self._ctx.append([_STR, q, False, fstring])
            return i + 1
        if t[i + 1] != q:
            self._ctx.append([_STR, q, False, fstring])
            return i + 1
        if i + 2 >= n:
            return i + 2 if final else self._hold_at(i)  # `""` at the end: an empty string
        if t[i + 2] == q:
            self._ctx.append([_STR, q, True, fstring])
            return i + 3
        return i + 2  # an empty string

    def _nested(self, t: str, i: int, base: int, final: bool) -> int:
        """Scan inside the innermost open string, f-string field or format spec."""
        ctx = self._ctx
        top = ctx[-1]
        n = len(t)
        kind = top[0]
        if kind == _STR:
            _, q, triple, fstring = top
            j = _STRING_RUN[q, fstring].match(t, i).end()
            if j == n:
                return n
            c = t[j]
            if c == q:
                if not triple:
                    ctx.pop()
                    return j + 1
                if j + 1 < n and t[j + 1] != q:
                    return j + 1
                if j + 2 >= n:
                    return n if final else self._hold_at(j)
                if t[j + 2] == q:
                    ctx.pop()
                    return j + 3
                return j + 2  # two quotes inside a triple-quoted string
            if c == "\\":
                if j + 1 >= n:
                    return n if final else self._hold_at(j)
                nxt = t[j + 1]
                if nxt == "\n":
                    self._newline(base + j + 1)
                elif fstring and (nxt == "{" or nxt == "}"):
                    return j + 1  # a backslash does not escape an f-string brace
                return j + 2
            if c == "\n":
                if triple:
                    self._newline(base + j)
                    return j + 1
                ctx.pop()  # an unterminated one-line string ends with its line
                return j
            # `{` or `}` in an f-string
            if j + 1 >= n and not final:
                return self._hold_at(j)
            if j + 1 < n and t[j + 1] == c:
                return j + 2  # `{{` or `}}`: a literal brace
            if c == "{":
                ctx.append([_FIELD, 0])
            return j + 1
        if kind == _FIELD:
            j = _FIELD_RUN.match(t, i).end()
            if j == n:
                return n
            c = t[j]
            if c in "([{":
                top[1] += 1
            elif c in ")]}":
                if top[1]:
                    top[1] -= 1
                elif c == "}":
                    ctx.pop()
            elif c == ":":
                if not top[1]:
                    ctx[-1] = [_SPEC]
            elif c == "\n":
                self._newline(base + j)
            elif c == "#":
                self._comment = True
            elif c != "\\":
                return self._open_string(t, j, final)
            return j + 1
        # format spec
        j = _SPEC_RUN.match(t, i).end()
        if j == n:
            return n
        c = t[j]
        if c == "{":
            ctx.append([_FIELD, 0])
        elif c == "}":
            ctx.pop()
        else:
            self._newline(base + j)
        return j + 1

    # --- pieces -----------------------------------------------------------------------------

    def _piece(self) -> Piece:
        start, end = self._start, self._code_end
        joined = "".join(self._parts)
        self._parts = [joined]
        text = joined[start - self._parts_start : end - self._parts_start]
        if text.endswith("\r"):
            text = text[:-1]
            end -= 1
        kind = "stmt"
        if self._head >= 0:
            m = _KIND.match(joined, self._head - self._parts_start)
            if m:
                kind = m.group(1) or "import"
        return Piece(text, start, end, {"kind": kind, "line": self._start_line})

    def _drop_before(self, p: int) -> None:
        joined = self._parts[0] if len(self._parts) == 1 else "".join(self._parts)
        self._parts = [joined[p - self._parts_start :]]
        self._parts_start = p


# --- the all-text detector ------------------------------------------------------------------


class TextUnitDetector:
    """A UnitDetector for tools whose whole call is raw text (code after a fence, a plan).

    The stream is the text of the field at `path`. With `split`, each piece is a Unit at
    `f"{path}#{k}"` whose offsets are offsets in the stream; without, the whole text is one Unit
    at `path`, emitted at `finish()`. The text has no end of its own: `complete` is False until
    `finish()`.
    """

    def __init__(self, path: str = "", split: str | None = None) -> None:
        self.path = path
        self.split = split
        self._splitter = make_splitter(split) if split else None
        self._parts: list[str] = []
        self._n = 0
        self._index = 0
        self._count = 0
        self._done = False
        self._error: UnitError | None = None
        self._text: str | None = None

    def feed(self, chunk: str) -> list[Unit]:
        if self._error is not None:
            raise self._error
        if self._done:
            raise RuntimeError("feed() after finish()")
        if not chunk:
            return []
        self._parts.append(chunk)
        self._n += len(chunk)
        if self._splitter is None:
            return []
        try:
            pieces = self._splitter.feed(chunk)
        except UnitError as e:
            self._error = e
            raise
        return self._units(pieces)

    def finish(self) -> list[Unit]:
        if self._error is not None:
            raise self._error
        if self._done:
            return []
        self._done = True
        if self._splitter is None:
            text = self.value()
            unit = Unit(self.path, self._index, text, text, 0, len(text))
            self._index += 1
            return [unit]
        try:
            pieces = self._splitter.finish()
        except UnitError as e:
            self._error = e
            raise
        return self._units(pieces)

    @property
    def complete(self) -> bool:
        return self._done

    @property
    def consumed(self) -> int:
        return self._n

    def value(self) -> str:
        """The whole text (available once `finish()` has been called)."""
        if not self._done:
            raise IncompleteError("the text call is not finished yet", offset=self._n)
        if self._text is None:
            self._text = "".join(self._parts)
            self._parts = [self._text]
        return self._text

    def _units(self, pieces: list[Piece]) -> list[Unit]:
        out = []
        for pc in pieces:
            out.append(
                Unit(
                    f"{self.path}#{self._count}",
                    self._index,
                    pc.text,
                    pc.text,
                    pc.start,
                    pc.end,
                    0,
                    pc.meta,
                    self.path,
                )
            )
            self._index += 1
            self._count += 1
        return out
