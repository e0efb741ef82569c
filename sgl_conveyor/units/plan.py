"""The plan language (LLMCompiler style): one tool step per line, each final at its newline.

Parses a step's arguments into Python values, `Ref`s and `Expr`s, and checks that references
only point back to earlier steps. It never runs or evaluates anything (`ast.literal_eval` rules:
literals only), and never guesses a step out of a malformed line: that is a `UnitError`.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass
from typing import Any

from sgl_conveyor.errors import UnitError
from sgl_conveyor.pyast import parse as parse_python
from sgl_conveyor.units.base import Piece
from sgl_conveyor.units.splitters import register_splitter
from sgl_conveyor.units.text import LineSplitter

__all__ = ["Expr", "PlanSplitter", "Ref"]


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference `$k` (or `${k}`) to the result of plan step k."""

    id: int

    def __str__(self) -> str:
        return f"${self.id}"


@dataclass(frozen=True, slots=True)
class Expr:
    """An argument that is not a plain literal: `$1 / 2`, `2 * 3`, or unquoted text such as
    `Microsoft market cap` (the Conveyor paper's plans). `text` is the argument as written;
    `refs` are the step ids it mentions outside string literals, for the tool to substitute."""

    text: str
    refs: tuple[int, ...] = ()


_HEAD = re.compile(
    r"(?:(?P<num>\d+)\s*\.|\$\{?(?P<var>\d+)\}?\s*=)\s*(?P<tool>[A-Za-z_]\w*)\s*(?=\()"
)
_BARE_FINAL = re.compile(r"(?P<tool>join|finish)\s*(?=\()")
_STEP_START = re.compile(r"\d+\s*\.|\$\{?\d+\}?\s*=")
_THOUGHT = re.compile(r"thought\s*:", re.I)
_END_MARK = "<END_OF_PLAN>"
_FINAL_TOOLS = ("join", "finish")

# Tokens of an argument list that matter before parsing it: string literals (skipped, so `$1`
# inside quotes stays text), references, brackets, and a quote that opens no complete literal.
_ARG_TOKENS = re.compile(
    r"""(?P<s>'''(?:[^\\]|\\.)*?'''|\"\"\"(?:[^\\]|\\.)*?\"\"\"|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")"""
    r"|\$\{(?P<b>\d+)\}|\$(?P<r>\d+)|(?P<o>[(\[{])|(?P<c>[)\]}])|(?P<q>['\"])",
    re.S,
)
_REF_NAME = "__conveyor_ref_{}__"
_REF_NAME_RE = re.compile(r"__conveyor_ref_(\d+)__")
_PAIRS = {")": "(", "]": "[", "}": "{"}


class _NotLiteral(Exception):
    pass


@register_splitter("plan")
class PlanSplitter:
    """Plan steps of a streamed plan, one per line, each final at its newline (or at finish).

    Step forms: `1. search("Paris population")` and `$3 = compute_ratio($1, $2)`; a final
    `join()` / `finish()` may be numbered or bare (a bare one takes the next id). Blank lines,
    `Thought: ...` lines and an `<END_OF_PLAN>` marker are skipped; any other line is an error.
    A piece's text is the step without surrounding blanks or the marker. meta:
    `{"id", "tool", "args" (positional, tuple), "kwargs" (dict), "deps" (sorted tuple of step ids),
    "args_text" (raw), "line"}`. Arguments are Python literals, with `$k` kept as `Ref(k)` (also
    inside lists and dicts); anything else is an `Expr`. `$k` inside a string literal is text,
    not a dependency. A final step depends on every earlier step (LLMCompiler's join).

    Raises `UnitError` (offset in the plan text) for a line that is not a step, unbalanced
    brackets or quotes, a duplicate id, a reference to an unknown or later step, or a step after
    the final one.
    """

    def __init__(self) -> None:
        self._lines = LineSplitter(skip_blank=True)
        self._ids: list[int] = []
        self._seen: set[int] = set()
        self._final = False

    def feed(self, text: str) -> list[Piece]:
        return self._steps(self._lines.feed(text))

    def finish(self) -> list[Piece]:
        return self._steps(self._lines.finish())

    def _steps(self, lines: list[Piece]) -> list[Piece]:
        out = []
        for line in lines:
            step = self._step(line)
            if step is not None:
                out.append(step)
        return out

    def _step(self, line: Piece) -> Piece | None:
        raw = line.text
        body = raw.strip()
        lead = len(raw) - len(raw.lstrip())
        if body.endswith(_END_MARK):
            body = body[: -len(_END_MARK)].rstrip()
        if not body or _THOUGHT.match(body):
            return None
        start = line.start + lead
        where = f"line {line.meta['line']}: {body!r}"
        m = _HEAD.match(body)
        bare = None if m else _BARE_FINAL.match(body)
        if m is None and bare is None:
            if _STEP_START.match(body):
                raise UnitError(
                    f"a plan step needs `tool(args)` ({where})", offset=start + len(body)
                )
            raise UnitError(f"not a plan step ({where})", offset=start)
        if self._final:
            raise UnitError(f"a step after the plan's final step ({where})", offset=start)
        if m is not None:
            step_id = int(m.group("num") or m.group("var"))
            if step_id in self._seen:
                at = start + (m.start("num") if m.group("num") else m.start("var"))
                raise UnitError(f"duplicate plan step id {step_id} ({where})", offset=at)
            head = m
        else:
            step_id = max(self._ids, default=0) + 1
            head = bare
        tool = head.group("tool")
        close, source, refs = self._scan_call(body, head.end(), start, step_id, where)
        args_text = body[head.end() + 1 : close]
        args, kwargs = _parse_args(args_text, source)
        deps = set(refs)
        if tool in _FINAL_TOOLS:
            self._final = True
            deps.update(self._ids)
        self._ids.append(step_id)
        self._seen.add(step_id)
        meta = {
            "id": step_id,
            "tool": tool,
            "args": args,
            "kwargs": kwargs,
            "deps": tuple(sorted(deps)),
            "args_text": args_text,
            "line": line.meta["line"],
        }
        return Piece(body, start, start + len(body), meta)

    def _scan_call(
        self, body: str, paren: int, start: int, step_id: int, where: str
    ) -> tuple[int, str, list[int]]:
        """Check the call's brackets, quotes and references, from its `(` to the line's end.

        Returns the index of the call's closing `)`, the argument text with each `$k` made a
        Python name (so the arguments parse), and the referenced step ids.
        """
        refs: list[int] = []
        stack: list[str] = []
        pieces: list[str] = []
        last = paren + 1
        close = -1
        for m in _ARG_TOKENS.finditer(body, paren):
            kind = m.lastgroup
            at = start + m.start()
            if close >= 0:
                what = f"unbalanced {m.group()!r}" if kind == "c" else "text after the call"
                raise UnitError(f"{what} in plan step ({where})", offset=at)
            if kind == "s":
                continue
            if kind == "q":
                raise UnitError(f"unterminated string in plan step ({where})", offset=at)
            if kind == "o":
                stack.append(m.group())
            elif kind == "c":
                if not stack or stack[-1] != _PAIRS[m.group()]:
                    raise UnitError(f"unbalanced {m.group()!r} in plan step ({where})", offset=at)
                stack.pop()
                if not stack:
                    close = m.start()
            else:
                k = int(m.group(kind))
                if k not in self._seen:
                    later = "itself" if k == step_id else "a later or unknown step"
                    raise UnitError(
                        f"plan step {step_id} refers to ${k}, {later} ({where})", offset=at
                    )
                refs.append(k)
                pieces.append(body[last : m.start()])
                pieces.append(_REF_NAME.format(k))
                last = m.end()
        if close < 0:
            raise UnitError(
                f"unclosed {stack[-1]!r} in plan step ({where})", offset=start + len(body)
            )
        tail = body[close + 1 :]
        if tail.strip():
            at = start + close + 1 + len(tail) - len(tail.lstrip())
            raise UnitError(f"text after the call in plan step ({where})", offset=at)
        pieces.append(body[last:close])
        return close, "".join(pieces), refs


def _parse_args(args_text: str, source: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Positional and keyword arguments; text that is no argument list is one argument."""
    if not args_text.strip():
        return (), {}
    try:
        if "\\" in source:  # `"\d"` in a model's plan must not print a warning in the user's run
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                call = parse_python(f"_({source})", mode="eval").body
        else:
            call = parse_python(f"_({source})", mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        call = None
    if (
        not isinstance(call, ast.Call)
        or any(isinstance(a, ast.Starred) for a in call.args)
        or any(k.arg is None for k in call.keywords)
    ):
        return (_whole(args_text.strip(), source.strip()),), {}
    code = f"_({source})"
    args = tuple(_arg(a, code) for a in call.args)
    kwargs = {k.arg: _arg(k.value, code) for k in call.keywords if k.arg is not None}
    return args, kwargs


def _whole(text: str, source: str) -> Any:
    refs = tuple(int(r) for r in _REF_NAME_RE.findall(source))
    return Expr(text, refs) if refs else text


def _arg(node: ast.expr, code: str) -> Any:
    try:
        return _literal(node)
    except (_NotLiteral, ValueError, TypeError):
        pass
    segment = ast.get_source_segment(code, node) or ""
    refs = tuple(int(r) for r in _REF_NAME_RE.findall(segment))
    return Expr(_REF_NAME_RE.sub(r"$\1", segment), refs)


def _literal(node: ast.expr) -> Any:
    """ast.literal_eval's rules, plus references as `Ref`s."""
    if isinstance(node, ast.Name):
        m = _REF_NAME_RE.fullmatch(node.id)
        if m:
            return Ref(int(m.group(1)))
        raise _NotLiteral
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    if isinstance(node, ast.Set):
        return {_literal(e) for e in node.elts}
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise _NotLiteral
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values, strict=True)}
    if not _REF_NAME_RE.search(ast.dump(node)):
        return ast.literal_eval(node)  # -1, 1+2j, set(): literal_eval knows the corner cases
    raise _NotLiteral
