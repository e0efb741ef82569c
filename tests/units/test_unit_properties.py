"""Properties every detector keeps, whatever the chunking of the stream.

Valid calls give exactly the reference units (from `json.loads`, or from how a program or plan
was assembled) in one character per chunk, one chunk, or random chunks; broken calls only ever
raise `UnitError`, at the first bad character, after units of the valid prefix only.
"""

from __future__ import annotations

import ast
import json
import os
import sys

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unit_strategies import (
    _WS,
    PY_STATEMENTS,
    adversarial_json,
    canon,
    chunkings,
    encode_json,
    encode_string,
    expected_json_units,
    json_patterns,
    json_prefix_status,
    json_values,
    mutated,
    plans,
    python_programs,
    run_detector,
)

from sgl_conveyor.errors import IncompleteError, UnitError, UnitSchemaError
from sgl_conveyor.units import (
    JsonUnitDetector,
    LineSplitter,
    PlanSplitter,
    PythonStatementSplitter,
    TextUnitDetector,
    UnitPattern,
)
from sgl_conveyor.units.json_stream import MAX_DEPTH

# UNITS_MAX_EXAMPLES=5000 for a deeper search than the default run's.
SETTINGS = settings(
    max_examples=int(os.environ.get("UNITS_MAX_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _reject_constant(name: str) -> None:
    raise ValueError(name)  # NaN / Infinity are not JSON


def _unique_keys(pairs):
    if len({k for k, _ in pairs}) != len(pairs):
        raise ValueError("duplicate key")  # what strict parsers (and the detector) say
    return dict(pairs)


def _depth(value) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def strict_loads(text: str):
    """json.loads, strict where the detector is: duplicate keys, NaN, lone surrogates (which
    no UTF-8 text can hold) and nesting past the depth limit are errors."""
    value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    json.dumps(value, ensure_ascii=False).encode()  # UnicodeEncodeError is a ValueError
    if _depth(value) > MAX_DEPTH:
        raise ValueError("nested too deeply")
    return value


def check_json_units(doc: str, patterns, units) -> None:
    """`units` are exactly the reference units of the (valid, complete) document."""
    ref = strict_loads(doc)
    expected = expected_json_units(ref, patterns)
    assert [(u.path, u.pattern) for u in units] == [(e.path, e.pattern) for e in expected]
    for k, (u, e) in enumerate(zip(units, expected, strict=True)):
        assert u.index == k
        if e.piece is not None:
            assert (u.value, u.text, u.start, u.end, dict(u.meta)) == (
                e.piece.text,
                e.piece.text,
                e.piece.start,
                e.piece.end,
                dict(e.piece.meta),
            )
        else:
            assert canon(u.value) == canon(e.value)
            assert doc[u.start : u.end] == u.text
            assert canon(strict_loads(u.text)) == canon(u.value)


# --- JSON -------------------------------------------------------------------------------------


@SETTINGS
@given(st.data())
def test_json_units_equal_json_loads_whatever_the_chunking(data):
    value = data.draw(json_values)
    rnd = data.draw(st.randoms(use_true_random=False))
    doc = rnd.choice(_WS) + encode_json(value, rnd) + rnd.choice(["", " ", "\n"])
    ref = strict_loads(doc)
    patterns = data.draw(json_patterns(ref))
    chunks = data.draw(chunkings(doc))
    det = JsonUnitDetector(patterns)
    run = run_detector(det, chunks)
    assert run.error is None
    check_json_units(doc, patterns, run.units)
    assert det.complete and canon(det.value()) == canon(ref)
    status, end = json_prefix_status(doc)
    assert status == "complete" and det.consumed == end
    assert run_detector(JsonUnitDetector(patterns), [doc]).units == run.units


def _field_text(kind: str, data) -> str:
    if kind == "python":
        return data.draw(python_programs()).text
    if kind == "plan":
        return data.draw(plans()).text
    pieces = st.sampled_from(["a", "é", "😀", " ", "\n", "\r\n", "\t", '"', "\\"])
    return data.draw(st.lists(pieces, max_size=30).map("".join))


@SETTINGS
@given(st.data(), st.sampled_from(["python", "plan", "lines"]))
def test_split_strings_inside_json_give_the_splitters_pieces(data, split):
    rnd = data.draw(st.randoms(use_true_random=False))
    text = _field_text(split, data)
    doc_value = {"before": [1, "x"], "field": text, "after": {"n": None}}
    doc = encode_json(doc_value, rnd)
    patterns = [UnitPattern("/field", split), UnitPattern("/*")]
    if data.draw(st.booleans()):
        patterns.append(UnitPattern("/field"))
    chunks = data.draw(chunkings(doc))
    run = run_detector(JsonUnitDetector(patterns), chunks)
    assert run.error is None
    check_json_units(doc, patterns, run.units)


@SETTINGS
@given(st.data())
def test_broken_json_fails_at_the_first_bad_character_after_valid_units_only(data):
    value = data.draw(json_values)
    rnd = data.draw(st.randoms(use_true_random=False))
    good = encode_json(value, rnd)
    text = data.draw(mutated(good))
    status, off = json_prefix_status(text)

    # the oracle agrees with json.loads wherever json.loads has an opinion
    try:
        strict_loads(text)
        loads_ok = True
    except ValueError:
        loads_ok = False
    trailing_ws = status == "complete" and not text[off:].strip(" \t\n\r")
    assert loads_ok == trailing_ws

    check_broken_json(text, data.draw(json_patterns(value)), data)


@SETTINGS
@given(st.data())
def test_adversarial_json_fails_at_the_same_character_whatever_the_chunking(data):
    """Duplicate keys, deep nesting, lone surrogates: the same strict error, at the same
    offset, in any chunking; the valid ones give the usual units."""
    text = data.draw(adversarial_json())
    status, off = json_prefix_status(text)
    try:
        strict_loads(text)
        loads_ok = True
    except ValueError:
        loads_ok = False
    assert loads_ok == (status == "complete" and not text[off:].strip(" \t\n\r"))
    patterns = data.draw(json_patterns(json.loads(text) if status == "complete" else []))
    patterns.append(UnitPattern("/items/*"))
    check_broken_json(text, patterns, data)


def check_broken_json(text: str, patterns, data) -> None:
    status, off = json_prefix_status(text)
    chunks = data.draw(chunkings(text)) if text else [""]
    det = JsonUnitDetector(patterns)
    run = run_detector(det, chunks)
    if status == "complete":
        assert run.error is None and det.complete and det.consumed == off
        check_json_units(text[:off], patterns, run.units)
        return
    if status == "incomplete":
        assert isinstance(run.error, IncompleteError) and run.error.offset == len(text)
    else:
        assert type(run.error) is UnitError and run.error.offset == off, str(run.error)
    # units come only from the longest valid prefix, and are its units
    prefix = text[:off] if status == "invalid" else text
    ref = run_detector(JsonUnitDetector(patterns), [prefix], finish=False)
    assert ref.error is None
    assert run.units == ref.units[: len(run.units)]
    if all(len(c) == 1 for c in chunks):
        assert run.units == ref.units
    for u in run.units:
        assert u.end <= off and text[u.start : u.end] == u.text
        assert canon(strict_loads(u.text)) == canon(u.value)
    # a dead detector stays dead
    with pytest.raises(UnitError):
        det.feed("]")


# --- schema early checks: never a false alarm, and a real violation at its first character ----


def schema_of(value, rnd) -> dict:
    """A tight schema that `value` satisfies."""
    if value is None:
        return {"type": "null"}
    if isinstance(value, bool):
        return {"type": "boolean"} if rnd.random() < 0.5 else {"const": value}
    if isinstance(value, int):
        return {"type": rnd.choice(["integer", "number"])}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        r = rnd.random()
        if r < 0.3:
            return {"enum": [value, value + "x", "other"]}
        if r < 0.4:
            return {"const": value}
        return {"type": "string"}
    if isinstance(value, list):
        if value and rnd.random() < 0.5:
            return {
                "type": "array",
                "prefixItems": [schema_of(v, rnd) for v in value],
                "items": False,
                "minItems": len(value),
                "maxItems": len(value),
            }
        return {"type": "array", "items": {"anyOf": [{}, {"type": "null"}]}}
    return {
        "type": "object",
        "properties": {k: schema_of(v, rnd) for k, v in value.items()},
        "required": list(value),
        "additionalProperties": False,
    }


@SETTINGS
@given(st.data())
def test_schema_checks_never_reject_a_matching_document(data):
    value = data.draw(json_values)
    rnd = data.draw(st.randoms(use_true_random=False))
    schema = {"$defs": {"root": schema_of(value, rnd)}, "$ref": "#/$defs/root"}
    jsonschema.validate(value, schema)  # the generator is right
    doc = encode_json(value, rnd)
    run = run_detector(JsonUnitDetector([UnitPattern("")], schema), data.draw(chunkings(doc)))
    assert run.error is None, str(run.error)


@SETTINGS
@given(st.data())
def test_schema_errors_are_real_violations(data):
    """Against a schema for another document, every early rejection is one jsonschema agrees
    with, and raising at all means the document does not match."""
    value = data.draw(json_values)
    other = data.draw(json_values)
    rnd = data.draw(st.randoms(use_true_random=False))
    schema = schema_of(other, rnd)
    doc = encode_json(value, rnd)
    run = run_detector(JsonUnitDetector([], schema), data.draw(chunkings(doc)))
    if run.error is not None:
        assert type(run.error) is UnitSchemaError
        assert not jsonschema.Draft202012Validator(schema).is_valid(value)
        # the whole stream after the error was never needed: the same error from a prefix
        prefix = doc[: run.error.offset + 1]
        again = run_detector(JsonUnitDetector([], schema), [prefix], finish=False)
        assert again.error is not None and again.error.offset == run.error.offset


# --- Python statements -----------------------------------------------------------------------


# Syntax newer than some Pythons we support: the splitter must handle it on any version.
NEWER_SYNTAX = {'{d["k"]}': (3, 12), "except*": (3, 11)}


def test_every_statement_template_is_one_top_level_statement():
    """The generator's expectations are Python's own: each template is one statement (or simple
    statements joined by `;`), starting on its first line (decorators included)."""
    for _, lines in PY_STATEMENTS:
        code = "\n".join(lines)
        newer = [v for k, v in NEWER_SYNTAX.items() if k in code]
        if newer and sys.version_info < max(newer):
            with pytest.raises(SyntaxError):
                ast.parse(code)
            continue
        tree = ast.parse(code)
        starts = {
            min([n.lineno] + [d.lineno for d in getattr(n, "decorator_list", [])])
            for n in tree.body
        }
        assert starts == {1}, code


@SETTINGS
@given(python_programs(), st.data())
def test_python_statements_whatever_the_chunking(program, data):
    chunks = data.draw(chunkings(program.text))
    run = run_detector(PythonStatementSplitter(), chunks)
    assert run.error is None
    assert [(p.text, p.start, p.end, dict(p.meta)) for p in run.units] == program.expected
    # the same through the text detector, as units of the field
    det = TextUnitDetector("/code", "python")
    units = run_detector(det, chunks).units
    assert [(u.path, u.index, u.value, u.start, u.end) for u in units] == [
        (f"/code#{k}", k, t, s, e) for k, (t, s, e, _) in enumerate(program.expected)
    ]
    assert det.complete and det.value() == program.text


PY_TOKENS = st.sampled_from(
    [
        "else",
        "elif",
        "except",
        "finally",
        "exit",
        "e",
        "f",
        "def ",
        "class ",
        "@d",
        "x = 1",
        "'''",
        '"""',
        "'",
        '"',
        "f'",
        'rb"',
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        "\\",
        "\\\n",
        "\n",
        "\r\n",
        "    ",
        "#",
        ":",
        "é",
        "\t",
    ]
)


@SETTINGS
@given(st.lists(PY_TOKENS, max_size=40).map("".join), st.data())
def test_python_splitter_is_chunking_invariant_on_any_text(text, data):
    ref = run_detector(PythonStatementSplitter(), [text])
    run = run_detector(PythonStatementSplitter(), data.draw(chunkings(text)))
    assert run.units == ref.units
    assert (type(run.error), str(run.error)) == (type(ref.error), str(ref.error))
    assert ref.error is None or isinstance(ref.error, IncompleteError)
    for p in ref.units:
        assert text[p.start : p.end] == p.text and p.text.strip()


# --- lines and plans ---------------------------------------------------------------------------


@SETTINGS
@given(
    st.lists(st.sampled_from(["a", "b", " ", "\n", "\r", "\r\n", "é"]), max_size=30).map("".join),
    st.booleans(),
    st.data(),
)
def test_lines_whatever_the_chunking(text, skip_blank, data):
    expected = []
    pos = 0
    parts = text.split("\n")
    for k, line in enumerate(parts):
        start = pos
        pos += len(line) + 1
        if k == len(parts) - 1 and not line:
            break
        body = line[:-1] if line.endswith("\r") else line
        if skip_blank and not body.strip():
            continue
        expected.append((body, start, start + len(body), {"line": k + 1}))
    run = run_detector(LineSplitter(skip_blank), data.draw(chunkings(text)))
    assert [(p.text, p.start, p.end, dict(p.meta)) for p in run.units] == expected


@SETTINGS
@given(plans(), st.data())
def test_plan_steps_whatever_the_chunking(plan, data):
    run = run_detector(PlanSplitter(), data.draw(chunkings(plan.text)))
    assert run.error is None, str(run.error)
    assert [(p.text, p.start, dict(p.meta)) for p in run.units] == plan.expected
    for p in run.units:
        assert plan.text[p.start : p.end] == p.text


@SETTINGS
@given(plans(), st.data())
def test_broken_plans_fail_the_same_way_whatever_the_chunking(plan, data):
    text = data.draw(mutated(plan.text))
    ref = run_detector(PlanSplitter(), [text])
    run = run_detector(PlanSplitter(), data.draw(chunkings(text)) if text else [""])
    assert (type(run.error), str(run.error)) == (type(ref.error), str(ref.error))
    if ref.error is None:
        assert run.units == ref.units
        return
    # the steps that came out are steps of the text before the bad character
    assert 0 <= ref.error.offset <= len(text)
    valid = run_detector(PlanSplitter(), [text[: ref.error.offset]], finish=False)
    assert valid.error is None
    assert run.units == valid.units[: len(run.units)]


@SETTINGS
@given(plans(), st.data())
def test_plan_errors_inside_json_point_at_the_same_character(plan, data):
    """A splitter's error offset (in the decoded string) lands on the stream character that
    decodes to it, through any escapes."""
    text = data.draw(mutated(plan.text))
    rnd = data.draw(st.randoms(use_true_random=False))
    doc = '{"plan": ' + encode_string(text, rnd) + "}"
    ref = run_detector(PlanSplitter(), [text])
    run = run_detector(JsonUnitDetector([UnitPattern("/plan", "plan")]), data.draw(chunkings(doc)))
    if ref.error is None:
        assert run.error is None
        assert [(u.text, u.start, u.end, dict(u.meta)) for u in run.units] == [
            (p.text, p.start, p.end, dict(p.meta)) for p in ref.units
        ]
        return
    assert type(run.error) is UnitError
    content = len('{"plan": "')
    if ref.error.offset < len(text):
        decoded = json.loads('"' + doc[content : run.error.offset] + '"')
        assert len(decoded) == ref.error.offset
    else:  # found at the end of the text: at the string's closing quote
        assert run.error.offset == len(doc) - 2
