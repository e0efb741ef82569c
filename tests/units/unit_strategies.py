"""Generators of valid streamed calls (JSON, Python, plans) with their expected units, random
chunkings, and an independent oracle for the longest valid JSON prefix.

Nothing here imports the detectors' internals: expectations come from `json.loads`, from how a
program or plan was assembled, or from a small recursive-descent checker written for the tests.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from sgl_conveyor.errors import UnitError
from sgl_conveyor.units import Expr, Ref, UnitPattern, make_splitter
from sgl_conveyor.units.json_stream import MAX_DEPTH

# --- feeding --------------------------------------------------------------------------------


def chunked(text: str, cuts: Sequence[int]) -> list[str]:
    """`text` split at the given cut points (any ints; folded into range)."""
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points) if b > a]


@st.composite
def chunkings(draw: st.DrawFn, text: str) -> list[str]:
    """One character per chunk, everything at once, or random cuts."""
    how = draw(st.sampled_from(["chars", "whole", "cuts", "cuts", "cuts"]))
    if how == "chars":
        return list(text)
    if how == "whole" or not text:
        return [text]
    cuts = draw(st.lists(st.integers(0, len(text)), max_size=max(1, len(text) // 2)))
    return chunked(text, cuts)


@dataclass
class Run:
    units: list[Any] = field(default_factory=list)
    error: UnitError | None = None


def run_detector(detector: Any, chunks: Sequence[str], finish: bool = True) -> Run:
    run = Run()
    try:
        for c in chunks:
            run.units += detector.feed(c)
        if finish:
            run.units += detector.finish()
    except UnitError as e:
        run.error = e
    return run


def run_splitter(splitter: Any, chunks: Sequence[str]) -> Run:
    return run_detector(splitter, chunks)


def canon(value: Any) -> str:
    """Distinguishes 1 from 1.0 and True, and -0.0 from 0.0 (== does not)."""
    return json.dumps(value, sort_keys=False)


# --- JSON documents -------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    # Any code point but surrogates: a lone one is not text (the detector rejects it).
    | st.text(st.characters(codec=None, exclude_categories=("Cs",)), max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=25,
)

_WS = ["", "", "", " ", "  ", "\n", "\t", "\r\n", "\n    "]


def encode_json(value: Any, rnd: random.Random) -> str:
    """Valid JSON for `value`, with random whitespace, escapes and number spellings."""
    ws = lambda: rnd.choice(_WS)
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return rnd.choice([str(value), "-0"] if value == 0 else [str(value)])
    if isinstance(value, float):
        forms = [json.dumps(value), f"{value:e}", f"{value:E}", repr(value)]
        return rnd.choice([f for f in forms if _is_json_number(f)])
    if isinstance(value, str):
        return encode_string(value, rnd)
    if isinstance(value, list):
        if not value:
            return "[" + ws() + "]"
        return "[" + ",".join(ws() + encode_json(v, rnd) + ws() for v in value) + "]"
    items = [
        ws() + encode_string(k, rnd) + ws() + ":" + ws() + encode_json(v, rnd) + ws()
        for k, v in value.items()
    ]
    return "{" + (",".join(items) if items else ws()) + "}"


_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")


def _is_json_number(text: str) -> bool:
    return bool(_NUMBER.match(text))


_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r"}
_SHORT["\t"] = "\\t"


def encode_string(s: str, rnd: random.Random) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        r = rnd.random()
        if ch in _SHORT and r < 0.7:
            out.append(_SHORT[ch])
        elif ch in _SHORT or o < 0x20 or (0xD800 <= o <= 0xDFFF and r < 0.8) or r < 0.1:
            if o > 0xFFFF:
                hi, lo = 0xD800 + ((o - 0x10000) >> 10), 0xDC00 + ((o - 0x10000) & 0x3FF)
                out.append(f"\\u{hi:04x}\\u{lo:04X}")
            else:
                out.append(f"\\u{o:04x}" if r < 0.05 else f"\\u{o:04X}")
        elif ch == "/" and r < 0.5:
            out.append("\\/")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def pointer(segs: Sequence[str]) -> str:
    return "".join("/" + s.replace("~", "~0").replace("/", "~1") for s in segs)


def paths_of(value: Any, segs: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [segs]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths_of(v, (*segs, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths_of(v, (*segs, str(i)))
    return out


def _matches(pattern: tuple[str, ...], segs: tuple[str, ...]) -> bool:
    return len(pattern) == len(segs) and all(
        p in ("*", s) for p, s in zip(pattern, segs, strict=True)
    )


def pattern_segments(path: str) -> tuple[str, ...]:
    if not path:
        return ()
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/"))


@dataclass(frozen=True)
class Expected:
    path: str
    pattern: int
    value: Any
    piece: Any = None  # the splitter's Piece, for a piece of a split string


def expected_json_units(doc: Any, patterns: Sequence[UnitPattern]) -> list[Expected]:
    """Units in order of completion: children before their container, patterns in order; a
    split string gives the pieces its splitter finds while the string is open, then at its end
    (per pattern) the whole value or the splitter's last pieces. One split pattern per value."""
    psegs = [pattern_segments(p.path) for p in patterns]
    out: list[Expected] = []

    def walk(value: Any, segs: tuple[str, ...]) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*segs, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*segs, str(i)))
        match = [k for k, p in enumerate(psegs) if _matches(p, segs)]
        path = pointer(segs)
        splits = [k for k in match if patterns[k].split]
        assert len(splits) <= 1, "the reference handles one split pattern per value"
        last: list[Any] = []
        if splits:
            k = splits[0]
            splitter = make_splitter(patterns[k].split)
            early = splitter.feed(value)
            last = splitter.finish()
            out.extend(Expected(f"{path}#{n}", k, pc.text, pc) for n, pc in enumerate(early))
        for k in match:
            if patterns[k].split:
                base = len(early)
                out.extend(
                    Expected(f"{path}#{base + n}", k, pc.text, pc) for n, pc in enumerate(last)
                )
            else:
                out.append(Expected(path, k, value))

    walk(doc, ())
    return out


@st.composite
def json_patterns(draw: st.DrawFn, doc: Any) -> list[UnitPattern]:
    """Patterns that hit the document (real paths, some segments made wildcards) and a few
    generic ones."""
    real = paths_of(doc)
    pats = []
    for _ in range(draw(st.integers(1, 4))):
        segs = draw(st.sampled_from(real))
        pats.append(UnitPattern(_ptr([("*" if draw(st.booleans()) else s) for s in segs])))
    for p in draw(st.lists(st.sampled_from(["", "/*", "/*/*", "/0", "/*/*/*"]), max_size=2)):
        pats.append(UnitPattern(p))
    return pats


def _ptr(segs: Sequence[str]) -> str:
    return "".join("/" + (s if s == "*" else s.replace("~", "~0").replace("/", "~1")) for s in segs)


# --- an independent oracle for JSON prefixes --------------------------------------------------


class _Invalid(Exception):
    def __init__(self, pos: int) -> None:
        self.pos = pos


class _Short(Exception):
    """The text ran out: everything so far is a valid prefix."""


_NUM_RUN = re.compile(r"[0-9+\-.eE]*")
# Prefixes of JSON numbers (strings that can still grow into one).
_NUM_PREFIX = re.compile(r"(?:-|-?(?:0|[1-9][0-9]*)(?:\.[0-9]*|(?:\.[0-9]+)?[eE][+-]?[0-9]*)?)?\Z")


def json_prefix_status(text: str) -> tuple[str, int]:
    """("complete", end of the document) | ("incomplete", len) | ("invalid", first bad offset),
    with the detector's documented rules: text after the top-level value is ignored, but a
    top-level number must be followed by whitespace or the end; a duplicate key in an object is
    invalid at its closing quote; nesting stops at MAX_DEPTH; a surrogate is only allowed as
    the `\\u` escape of a high half followed by that of a low half."""
    n = len(text)

    def ws(i: int) -> int:
        while i < n and text[i] in " \t\n\r":
            i += 1
        return i

    def need(i: int) -> str:
        if i >= n:
            raise _Short
        return text[i]

    def value(i: int, top: bool, depth: int = 0) -> int:
        c = need(i)
        if c in "{[" and depth == MAX_DEPTH:
            raise _Invalid(i)
        if c == "{":
            i = ws(i + 1)
            if need(i) == "}":
                return i + 1
            keys: set[str] = set()
            while True:
                if need(i) != '"':
                    raise _Invalid(i)
                k = string(i)
                key = json.loads(text[i:k])
                if key in keys:
                    raise _Invalid(k - 1)  # a duplicate key: invalid at its closing quote
                keys.add(key)
                i = ws(k)
                if need(i) != ":":
                    raise _Invalid(i)
                i = value(ws(i + 1), False, depth + 1)
                i = ws(i)
                c = need(i)
                if c == "}":
                    return i + 1
                if c != ",":
                    raise _Invalid(i)
                i = ws(i + 1)
        if c == "[":
            i = ws(i + 1)
            if need(i) == "]":
                return i + 1
            while True:
                i = ws(value(i, False, depth + 1))
                c = need(i)
                if c == "]":
                    return i + 1
                if c != ",":
                    raise _Invalid(i)
                i = ws(i + 1)
        if c == '"':
            return string(i)
        for word in ("true", "false", "null"):
            if c == word[0]:
                for k, ch in enumerate(word):
                    if need(i + k) != ch:
                        raise _Invalid(i + k)
                return i + len(word)
        if c in "-0123456789":
            return number(i, top)
        raise _Invalid(i)

    def number(i: int, top: bool) -> int:
        j = _NUM_RUN.match(text, i).end()
        lit = text[i:j]
        for k in range(1, len(lit) + 1):
            if not _NUM_PREFIX.match(lit[:k]):
                raise _Invalid(i + k - 1)
        if not _NUMBER.match(lit):
            if j == n:
                raise _Short
            raise _Invalid(j)
        if j == n:
            if top:
                return j
            raise _Short
        if top and text[j] not in " \t\n\r":
            raise _Invalid(j)
        return j

    def string(i: int) -> int:
        i += 1
        pair = False  # after a high surrogate escape: only its low half may follow
        while True:
            c = need(i)
            if pair and c != "\\":
                raise _Invalid(i)
            if c == '"':
                return i + 1
            if c == "\\":
                e = need(i + 1)
                if e == "u":
                    h = ""
                    for k in range(4):
                        d = need(i + 2 + k)
                        if d not in "0123456789abcdefABCDEF":
                            raise _Invalid(i + 2 + k)
                        if k == 0 and pair and d not in "dD":
                            raise _Invalid(i + 2)
                        if k == 1 and pair != (h in "dD" and d in "cdefCDEF"):
                            raise _Invalid(i + 3)
                        h += d
                    pair = 0xD800 <= int(h, 16) <= 0xDBFF
                    i += 6
                    continue
                if pair or e not in '"\\/bfnrt':
                    raise _Invalid(i + 1)
                i += 2
                continue
            if ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF:
                raise _Invalid(i)
            i += 1

    try:
        end = value(ws(0), True)
    except _Invalid as e:
        return "invalid", e.pos
    except _Short:
        return "incomplete", n
    return "complete", end


@st.composite
def adversarial_json(draw: st.DrawFn) -> str:
    """Documents a hostile model could write: an object that repeats a key (spelled the same or
    through escapes), placed at the top level or inside `/items/*`; nesting around the depth
    limit; surrogate escapes, paired or not, and raw surrogates."""
    rnd = draw(st.randoms(use_true_random=False))
    kind = draw(st.sampled_from(["dup", "dup", "deep", "surrogate"]))
    if kind == "deep":
        depth = draw(st.sampled_from([MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, MAX_DEPTH + 40]))
        opens = [rnd.choice(["[", '{"k": ']) for _ in range(depth)]
        closes = "".join("]" if o == "[" else "}" for o in reversed(opens))
        return '{"items": ' + "".join(opens) + "0" + closes + "}"
    if kind == "surrogate":
        bits = [r"\ud83d\ude00", r"\uD800\uDC00", "a", r"\n", r"\ud800", r"\udfff"]
        bits += [r"\ud83d\u0041", r"\ud83d\ud83d", r"\ud83dx", "\ud800", "\udc00", "😀"]
        body = "".join(draw(st.lists(st.sampled_from(bits), min_size=1, max_size=4)))
        return '{"items": ["ok", "' + body + '"], "n": 1}'

    members = draw(st.dictionaries(st.text(max_size=4), json_values, min_size=1, max_size=4))
    keys = list(members)
    parts = [(k, encode_json(v, rnd)) for k, v in members.items()]
    dup = rnd.choice(keys)
    again = encode_json(draw(json_values), rnd)
    parts.insert(rnd.randrange(keys.index(dup) + 1, len(parts) + 1), (dup, again))
    ws = lambda: rnd.choice(_WS)
    obj = "{" + ",".join(ws() + encode_string(k, rnd) + ws() + ":" + ws() + v for k, v in parts)
    obj += ws() + "}"
    where = draw(st.sampled_from(["top", "items", "deep"]))
    if where == "items":
        return '{"items": [' + encode_json("DELETE-A", rnd) + ", " + obj + "]}"
    if where == "deep":
        return '{"a": {"b": [[' + obj + "]]}}"
    return obj


_MUTATION_CHARS = '{}[]",:\\ -0123456789.eEtrufalsn/\x00\x1f\n\u00e9x'


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """`text` with a few random edits (delete, insert, replace) and perhaps truncated."""
    rnd = draw(st.randoms(use_true_random=False))
    s = list(text)
    for _ in range(draw(st.integers(1, 3))):
        op = rnd.choice(["del", "ins", "rep", "cut"])
        k = rnd.randrange(len(s) + 1)
        if op == "del" and s:
            del s[min(k, len(s) - 1)]
        elif op == "ins":
            s.insert(k, rnd.choice(_MUTATION_CHARS))
        elif op == "rep" and s:
            s[min(k, len(s) - 1)] = rnd.choice(_MUTATION_CHARS)
        elif op == "cut":
            s = s[:k]
    return "".join(s)


# --- Python programs ------------------------------------------------------------------------

# (kind, lines): each a whole top-level statement, written to trip a splitter up.
PY_STATEMENTS: list[tuple[str, list[str]]] = [
    ("import", ["import os"]),
    ("import", ["from collections import (", "    OrderedDict,", "defaultdict)"]),
    ("stmt", ["x = 1"]),
    ("stmt", ["x = [", "1,", "2]"]),
    ("stmt", ["s = '''", "else:", "def f(): pass", "'''"]),
    ("stmt", ['y = f"{x!r:>{w}} {{}} {d["k"]} {\'#\'}"']),
    ("stmt", ["z = rb'\\x00' + Rb\"'\" + r'\\'' + u\"\\\"\""]),
    ("stmt", ["t = 1 + \\", "2"]),
    ("stmt", ["exit()"]),
    ("stmt", ["else_ = 2"]),
    ("stmt", ["elif_x = 3"]),
    ("stmt", ["finally_ = 4"]),
    ("stmt", ["excepted = 5"]),
    ("stmt", ["e = 6"]),
    ("stmt", ["f(1)"]),
    ("stmt", ["print('a#b', \"c'd\")  # a trailing comment"]),
    ("stmt", ["a = 1; b = 2"]),
    ("stmt", ['doc = """one', "", '"" two', '"""']),
    ("stmt", ["q = f'''{", "  1 + 2", "}'''"]),
    ("stmt", ["if x:", "    pass", "elif y:", "    pass", "else:", "    pass"]),
    ("stmt", ["if a:", "    pass", "# between the branches", "else:", "    pass"]),
    (
        "stmt",
        [
            "try:",
            "    pass",
            "except (A, B) as e:",
            "    pass",
            "else:",
            "    pass",
            "finally:",
            "    pass",
        ],
    ),
    ("stmt", ["try:", "    pass", "except* TypeError:", "    pass"]),
    ("stmt", ["for i in range(3):", "    print(i)", "else:", "    print('done')"]),
    ("stmt", ["while False:", "    break", "else:", "    pass"]),
    ("stmt", ["with open(p) as f, open(q) as g:", "    data = f.read()"]),
    ("stmt", ["match cmd:", "    case [x, y]:", "        pass", "    case _:", "        pass"]),
    (
        "stmt",
        [
            "if x:",
            "    y = '''",
            "not a statement",
            "'''",
            "    # indented comment",
            "",
            "    z = 1",
        ],
    ),
    ("def", ["def f(a, b=1):", "    '''doc", "string'''", "    return a + b"]),
    ("def", ["async def g():", "    await h()"]),
    ("def", ["@decorator", "def h():", "    pass"]),
    ("def", ["def c():", "# a column-0 comment inside", "    return 1"]),
    ("class", ["class A:", "    pass"]),
    (
        "class",
        [
            "@a.b(1,",
            "  2)",
            "@c",
            "class K(Base):",
            "    x = 1",
            "",
            "    def m(self):",
            "        return self.x",
        ],
    ),
]
PY_GAPS = ["", "", "", "#", "# a comment", "   # an indented comment", "", "\t"]


@dataclass
class Program:
    text: str
    expected: list[tuple[str, int, int, dict[str, Any]]]  # text, start, end, meta


@st.composite
def python_programs(draw: st.DrawFn) -> Program:
    nl = draw(st.sampled_from(["\n", "\r\n"]))
    stmts = draw(st.lists(st.sampled_from(PY_STATEMENTS), min_size=1, max_size=8))
    parts: list[str] = []
    pos = 0
    line = 1
    expected = []
    lead = draw(st.lists(st.sampled_from(["#!/usr/bin/env python", "", "# header"]), max_size=2))
    for g in lead:
        parts.append(g + nl)
        pos += len(g) + len(nl)
        line += 1
    for k, (kind, lines) in enumerate(stmts):
        body = nl.join(lines)
        expected.append((body, pos, pos + len(body), {"kind": kind, "line": line}))
        last = k == len(stmts) - 1
        tail = nl if not last or draw(st.booleans()) else ""
        parts.append(body + tail)
        pos += len(body) + len(tail)
        line += len(lines)
        if tail:
            for g in draw(st.lists(st.sampled_from(PY_GAPS), max_size=2)):
                parts.append(g + nl)
                pos += len(g) + len(nl)
                line += 1
    return Program("".join(parts), expected)


# --- plans ----------------------------------------------------------------------------------

PLAN_TOOLS = ["search", "calc", "compute_ratio", "lookup", "format_ratio"]
PLAN_LITERALS: list[tuple[str, Any]] = [
    ('"Paris population"', "Paris population"),
    ("'it costs $1'", "it costs $1"),
    ('"a, (b"', "a, (b"),
    ("42", 42),
    ("-1.5", -1.5),
    ("None", None),
    ("True", True),
    ("[1, 'x']", [1, "x"]),
    ('{"k": (1, 2)}', {"k": (1, 2)}),
]


@dataclass
class Plan:
    text: str
    expected: list[tuple[str, int, dict[str, Any]]]  # text, start, meta (end = start + len)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    nl = draw(st.sampled_from(["\n", "\r\n"]))
    n = draw(st.integers(1, 6))
    ids: list[int] = []
    lines: list[tuple[str, dict[str, Any] | None]] = []
    next_id = draw(st.integers(1, 3))
    for _ in range(n):
        if draw(st.booleans()):
            lines.append((draw(st.sampled_from(["Thought: I need data.", "", "  "])), None))
        sid = next_id
        next_id += draw(st.integers(1, 2))
        tool = draw(st.sampled_from(PLAN_TOOLS))
        args_src: list[str] = []
        args: list[Any] = []
        deps: set[int] = set()
        for _ in range(draw(st.integers(0, 3))):
            kind = draw(st.sampled_from(["lit", "lit", "ref", "expr", "list"])) if ids else "lit"
            if kind == "lit":
                src, val = draw(st.sampled_from(PLAN_LITERALS))
            elif kind == "ref":
                k = draw(st.sampled_from(ids))
                src, val = draw(st.sampled_from([f"${k}", f"${{{k}}}"])), Ref(k)
                deps.add(k)
            elif kind == "expr":
                k = draw(st.sampled_from(ids))
                src, val = f"${k} / 2", Expr(f"${k} / 2", (k,))
                deps.add(k)
            else:
                k = draw(st.sampled_from(ids))
                src, val = f"[${k}, 'x']", [Ref(k), "x"]
                deps.add(k)
            args_src.append(src)
            args.append(val)
        kwargs: dict[str, Any] = {}
        if draw(st.booleans()):
            src, val = draw(st.sampled_from(PLAN_LITERALS))
            args_src.append(f"key={src}")
            kwargs["key"] = val
        args_text = ", ".join(args_src)
        form = draw(st.sampled_from(["num", "var"]))
        text = f"{sid}. {tool}({args_text})" if form == "num" else f"${sid} = {tool}({args_text})"
        meta = {
            "id": sid,
            "tool": tool,
            "args": tuple(args),
            "kwargs": kwargs,
            "deps": tuple(sorted(deps)),
            "args_text": args_text,
        }
        lines.append((text, meta))
        ids.append(sid)
    if draw(st.booleans()):
        numbered = draw(st.booleans())
        sid = next_id if numbered else max(ids) + 1
        text = f"{sid}. join()" if numbered else "join()"
        meta = {
            "id": sid,
            "tool": "join",
            "args": (),
            "kwargs": {},
            "deps": tuple(sorted(ids)),
            "args_text": "",
        }
        lines.append((text, meta))
        end_mark = draw(st.booleans())
        if end_mark:
            lines[-1] = (text + "<END_OF_PLAN>", meta)
    parts = []
    pos = 0
    expected = []
    for lineno, (text, meta) in enumerate(lines, start=1):
        if meta is not None:
            body = text.replace("<END_OF_PLAN>", "")
            expected.append((body, pos, {**meta, "line": lineno}))
        parts.append(text + nl)
        pos += len(text) + len(nl)
    text = "".join(parts)
    if draw(st.booleans()):
        text = text[: -len(nl)]  # no newline after the last line
    return Plan(text, expected)
