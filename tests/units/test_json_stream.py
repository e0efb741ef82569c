"""The JSON unit detector, by example: what a tool sees while its call streams in."""

from __future__ import annotations

import json

import pytest

from sgl_conveyor.errors import IncompleteError, UnitError, UnitSchemaError
from sgl_conveyor.units import JsonUnitDetector, Ref, UnitPattern, make_detector


def feed_all(detector, chunks, finish=True):
    units = []
    for c in chunks:
        units += detector.feed(c)
    if finish:
        units += detector.finish()
    return units


def values(units):
    return [(u.path, u.value) for u in units]


# --- the moment a unit is emitted ------------------------------------------------------------


def test_queries_come_out_one_by_one_as_the_call_streams():
    d = JsonUnitDetector([UnitPattern("/queries/*")])
    assert d.feed('{"queries": ["paris pop') == []
    (u,) = d.feed('ulation", "lyon')
    assert (u.path, u.index, u.value) == ("/queries/0", 0, "paris population")
    assert u.text == '"paris population"' and (u.start, u.end) == (13, 31)
    assert d.feed(" population") == []
    (v,) = d.feed('"')
    assert (v.path, v.index, v.value) == ("/queries/1", 1, "lyon population")
    assert d.feed("]") == [] and not d.complete
    assert d.feed("}") == [] and d.complete
    assert d.finish() == []


def test_string_is_final_at_its_closing_quote():
    d = JsonUnitDetector([UnitPattern("/q")])
    assert d.feed('{"q": "abc') == []
    (u,) = d.feed('"')
    assert u.value == "abc" and u.start == 6 and u.end == 11


@pytest.mark.parametrize(
    ("doc", "cut", "value"),
    [
        ('{"n": 10}', 8, 10),  # `10` ends at `}`
        ('{"n": -0, "m": 1}', 8, 0),
        ("[1e-5]", 5, 1e-5),
        ('{"n": 1.5E+3 }', 12, 1500.0),
        ('{"n": 0.25\n}', 10, 0.25),
    ],
)
def test_number_is_final_only_when_the_next_character_proves_it_ended(doc, cut, value):
    pattern = "/0" if doc.startswith("[") else "/n"
    d = JsonUnitDetector([UnitPattern(pattern)])
    assert d.feed(doc[:cut]) == []  # the digits so far could still grow
    (u,) = d.feed(doc[cut])
    assert type(u.value) is type(value) and u.value == value
    assert u.text == doc[u.start : u.end] == doc[u.start : cut]


def test_int_and_float_types_follow_json_loads():
    doc = "[0, -0, 10, 1.0, 1e2, -0.0, 123456789012345678901234567890, 2.5e-324]"
    d = JsonUnitDetector([UnitPattern("/*")])
    got = [u.value for u in feed_all(d, [doc])]
    ref = json.loads(doc)
    assert [(type(v), repr(v)) for v in got] == [(type(v), repr(v)) for v in ref]


def test_top_level_number_ends_at_whitespace_or_finish():
    d = JsonUnitDetector([UnitPattern("")])
    assert d.feed("42") == []
    assert not d.complete
    (u,) = d.finish()
    assert u.value == 42 and d.complete and d.value() == 42
    d = JsonUnitDetector([UnitPattern("")])
    (u,) = d.feed("42 ")
    assert d.complete and d.consumed == 2


def test_literals_are_final_at_their_last_letter():
    d = JsonUnitDetector([UnitPattern("/*")])
    assert d.feed("[tru") == []
    assert values(d.feed("e")) == [("/0", True)]
    assert values(d.feed(", nul")) == []
    assert values(d.feed("l, fals")) == [("/1", None)]
    assert values(d.feed("e]")) == [("/2", False)]


def test_containers_are_final_at_their_closing_bracket_after_their_members():
    doc = '{"steps": [{"args": {"x": 1}}, {"args": []}]}'
    d = JsonUnitDetector(
        [
            UnitPattern("/steps/*/args"),
            UnitPattern("/steps/*"),
            UnitPattern(""),
            UnitPattern("/steps/*/args/x"),
        ]
    )
    units = feed_all(d, [doc])
    assert [(u.path, u.pattern) for u in units] == [
        ("/steps/0/args/x", 3),
        ("/steps/0/args", 0),
        ("/steps/0", 1),
        ("/steps/1/args", 0),
        ("/steps/1", 1),
        ("", 2),
    ]
    assert [u.index for u in units] == list(range(6))
    for u in units:
        assert doc[u.start : u.end] == u.text and json.loads(u.text) == u.value


def test_a_value_matching_several_patterns_is_one_unit_per_pattern_in_pattern_order():
    d = JsonUnitDetector([UnitPattern("/a/*"), UnitPattern("/*/0"), UnitPattern("/a/0")])
    units = feed_all(d, ['{"a": ["x"]}'])
    assert [(u.path, u.pattern) for u in units] == [("/a/0", 0), ("/a/0", 1), ("/a/0", 2)]


def test_pointer_escapes_in_patterns_and_paths():
    d = JsonUnitDetector([UnitPattern("/a~1b/~0c")])
    units = feed_all(d, ['{"a/b": {"~c": 1, "c": 2}}'])
    assert values(units) == [("/a~1b/~0c", 1)]
    d = JsonUnitDetector([UnitPattern("/*")])
    assert values(feed_all(d, ['{"x/y": 1, "\\u0041": 2}'])) == [("/x~1y", 1), ("/A", 2)]


# --- strings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "literal",
    [
        r'"\" \\ \/ \b \f \n \r \t"',
        r'"caf\u00e9 \u00E9"',
        '"raw unicode: é 😀 日本"',
        r'"\ud83d\ude00"',  # a surrogate pair is one character
        r'"\uD83D\uDE00 \udbff\udfff"',
        '"\x7f"',
    ],
)
def test_string_values_equal_json_loads(literal):
    d = JsonUnitDetector([UnitPattern("")])
    for chunks in ([literal], list(literal)):
        d = JsonUnitDetector([UnitPattern("")])
        (u,) = feed_all(d, chunks)
        assert u.value == json.loads(literal) and u.text == literal


# --- the document's end -----------------------------------------------------------------------


def test_text_after_the_document_is_ignored():
    d = JsonUnitDetector([UnitPattern("/a")])
    units = d.feed('  {"a": 1}\n```\nmore')
    assert values(units) == [("/a", 1)]
    assert d.complete and d.consumed == len('  {"a": 1}')
    assert d.feed("anything") == []
    assert d.finish() == [] and d.value() == {"a": 1}


def test_cut_document_raises_incomplete_at_finish():
    for text in ['{"a": [1, 2', '{"a": "abc', '{"a"', "[tr", "-", "", "   ", '"\\u12']:
        d = JsonUnitDetector([UnitPattern("/a")])
        d.feed(text)
        with pytest.raises(IncompleteError) as e:
            d.finish()
        assert e.value.offset == len(text)
        with pytest.raises(IncompleteError):
            d.finish()  # dead: the same error again


def test_value_before_completion_is_an_incomplete_error():
    d = JsonUnitDetector([])
    d.feed('{"a": 1')
    with pytest.raises(IncompleteError):
        d.value()


# --- strictness -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("[1, 2,]", 6),  # trailing comma
        ('{"a": 1,}', 8),
        ("[1 // c\n]", 3),  # comments
        ("[1 /* c */]", 3),
        ("NaN", 0),
        ("[Infinity]", 1),
        ("[-Infinity]", 2),
        ("[01]", 2),  # leading zero
        ("[-01]", 3),
        ("[.5]", 1),
        ("[+1]", 1),
        ("[1.]", 3),
        ("[1.e5]", 3),
        ("[1e]", 3),
        ("[1.5.2]", 4),
        ('"\\x"', 2),  # bad escape
        ('"\\u12G4"', 5),
        ('"a\nb"', 2),  # a raw control character in a string
        ('"\x00"', 1),
        ("['a']", 1),
        ("{a: 1}", 1),
        ('{"a" 1}', 5),
        ('{"a": 1 "b": 2}', 8),
        ("[1 2]", 3),
        ("[tru]", 4),
        ("[nul1]", 4),
        ("\ufeff[]", 0),  # a byte order mark
        ("12x", 2),  # a top-level number runs into text
        ("[1]]", -1),  # not an error: the document ended at the first `]`
        ('{"a": 1, "a": 2}', 11),  # a duplicate key, at its closing quote
        ('{"a": 1, "\\u0061": 2}', 16),  # the same key through an escape
        ('[{"x": {"k": [], "k": 2}}]', 19),  # in an object no pattern looks at
        ('{"a": {"b": 1}, "b": {"a": 1, "b": 2}}', -1),  # same names, different objects
        # Lone surrogates: json.loads keeps them, but no UTF-8 text can hold one (the value
        # would fail later, in the tool or on the wire), so they are malformed here.
        (r'"\ud800"', 7),  # a high half, then the closing quote
        (r'"\ud800x"', 7),
        (r'"\ud800\n"', 8),  # then another escape
        (r'"\ud800\u0041"', 9),  # then a \u escape that cannot be a low half
        (r'"\ud83d\ud83d\ude00"', 10),
        (r'"\udc00"', 4),  # a low half alone: certain at its second digit
        (r'{"\uDFFF": 1}', 5),  # in a key too
        ('"\ud800"', 1),  # a raw surrogate code point in the text
        ("[" * 512 + "]" * 512, -1),  # nesting: up to 512 levels
        ("[" * 513, 512),
        ('{"a": ' * 600, 6 * 512),
    ],
)
def test_invalid_text_raises_at_the_first_bad_character(text, offset):
    for chunks in ([text], list(text)):
        d = JsonUnitDetector([UnitPattern("/*")])
        if offset < 0:
            feed_all(d, chunks)
            assert d.complete
            continue
        with pytest.raises(UnitError) as e:
            feed_all(d, chunks)
        assert type(e.value) is UnitError
        assert e.value.offset == offset, str(e.value)


def test_a_duplicate_key_fails_at_its_second_closing_quote_before_its_value():
    """`{"items": [A], "items": [B]}`: a lenient parser keeps B, so a unit for A would be work
    the tool's arguments do not contain; the detector dies the moment the second key closes."""
    text = '{"items": ["DELETE-A"], "items": ["DELETE-B"]}'
    second = text.index('"items"', 5) + len('"items"') - 1
    for chunks in ([text], list(text)):
        d = JsonUnitDetector([UnitPattern("/items/*"), UnitPattern("/items")])
        got = []
        with pytest.raises(UnitError) as e:
            for c in chunks:
                got += d.feed(c)
        assert type(e.value) is UnitError and e.value.offset == second
        assert "duplicate key 'items'" in str(e.value)
        assert all("DELETE-B" not in json.dumps(u.value) for u in got)
        with pytest.raises(UnitError):
            d.value()


def test_a_dead_detector_raises_the_same_error_and_emits_nothing_more():
    d = JsonUnitDetector([UnitPattern("/*")])
    assert values(d.feed('["a", ')) == [("/0", "a")]
    with pytest.raises(UnitError) as first:
        d.feed('"b", x, "c"]')  # "b" is valid but its chunk holds the error: nothing comes out
    with pytest.raises(UnitError) as again:
        d.feed('"d"]')
    assert again.value is first.value
    with pytest.raises(UnitError) as at_finish:
        d.finish()
    assert at_finish.value is first.value


def test_unknown_splitter_and_bad_pointer_fail_at_construction():
    with pytest.raises(ValueError):
        JsonUnitDetector([UnitPattern("/code", "cobol")])
    with pytest.raises(ValueError):
        JsonUnitDetector([UnitPattern("code")])


# --- split strings ----------------------------------------------------------------------------


def test_python_statements_come_out_while_the_code_string_is_still_open():
    code = "import math\nx = math.pi\nif x > 3:\n    print('big')\nelse:\n    print('small')\n"
    doc = json.dumps({"code": code, "timeout": 5})
    d = JsonUnitDetector([UnitPattern("/code", "python")])
    close = doc.index('", "timeout"')
    early = feed_all(d, [doc[:close]], finish=False)
    assert [(u.path, u.value) for u in early] == [
        ("/code#0", "import math"),
        ("/code#1", "x = math.pi"),
    ]
    assert early[0].meta == {"kind": "import", "line": 1}
    # offsets are in the decoded string, not in the stream (which holds `\n` escapes)
    assert [(u.start, u.end) for u in early] == [(0, 11), (12, 23)]
    assert code[early[1].start : early[1].end] == early[1].text
    rest = feed_all(d, [doc[close:]])
    assert [(u.path, u.text) for u in rest] == [
        ("/code#2", "if x > 3:\n    print('big')\nelse:\n    print('small')")
    ]
    assert d.value() == {"code": code, "timeout": 5}


def test_split_and_whole_patterns_on_the_same_string():
    doc = json.dumps({"lines": "a\r\nb\n\nc"})
    d = JsonUnitDetector([UnitPattern("/lines", "lines"), UnitPattern("/lines")])
    units = feed_all(d, list(doc))
    assert [(u.path, u.value, u.pattern) for u in units] == [
        ("/lines#0", "a", 0),
        ("/lines#1", "b", 0),
        ("/lines#2", "c", 0),  # at the closing quote, patterns in order: the last line, then
        ("/lines", "a\r\nb\n\nc", 1),  # the whole string
    ]
    assert [u.index for u in units] == [0, 1, 2, 3]


def test_split_string_with_escapes_and_surrogate_pairs_across_chunks():
    code = 'x = "😀 é \\"q\\""\ny = "\U00010000"\n'
    doc = json.dumps({"code": code}, ensure_ascii=True)
    ref = feed_all(JsonUnitDetector([UnitPattern("/code", "python")]), [doc])
    assert [u.text for u in ref] == ['x = "😀 é \\"q\\""', 'y = "\U00010000"']
    for size in (1, 2, 3, 5, 7):
        chunks = [doc[i : i + size] for i in range(0, len(doc), size)]
        assert feed_all(JsonUnitDetector([UnitPattern("/code", "python")]), chunks) == ref


def test_split_plan_inside_json_maps_errors_to_stream_offsets():
    plan = '1. search("caf\u00e9 \U0001f600 \\"q\\"")\n2. calc($3)\n'
    doc = json.dumps({"plan": plan})  # \u00e9, \ud83d\ude00, \\\" and \n escapes before $3
    for chunks in ([doc], list(doc), [doc[i : i + 5] for i in range(0, len(doc), 5)]):
        d = JsonUnitDetector([UnitPattern("/plan", "plan")])
        with pytest.raises(UnitError) as e:
            feed_all(d, chunks)
        assert doc[e.value.offset : e.value.offset + 2] == "$3"
        assert "$3" in str(e.value) and "/plan" in str(e.value)


def test_code_cut_inside_a_closed_string_is_malformed_not_truncated():
    doc = json.dumps({"code": "x = (1,\n"})
    d = JsonUnitDetector([UnitPattern("/code", "python")])
    with pytest.raises(UnitError) as e:
        feed_all(d, [doc])
    assert type(e.value) is UnitError  # the stream is complete; the code in it is not


def test_split_pattern_on_a_non_string_is_a_schema_error():
    d = JsonUnitDetector([UnitPattern("/code", "python")])
    with pytest.raises(UnitSchemaError) as e:
        d.feed('{"code": [')
    assert e.value.offset == 9


def test_several_splitters_on_one_string_interleave_whatever_the_chunking():
    code = "a = 1\nb = 2\n\nif a:\n    b\nc\n"
    doc = json.dumps({"code": code})
    pats = [UnitPattern("/code", "python"), UnitPattern("/code", "lines")]
    ref = feed_all(JsonUnitDetector(pats), [doc])
    assert [(u.path, u.value) for u in ref] == [
        ("/code#0", "a = 1"),
        ("/code#0", "a = 1"),
        ("/code#1", "b = 2"),
        ("/code#1", "b = 2"),
        ("/code#2", "if a:"),
        ("/code#3", "    b"),
        ("/code#2", "if a:\n    b"),
        ("/code#4", "c"),
        ("/code#3", "c"),
    ]
    # a line is final at its newline, a statement only when the next one starts
    assert [u.pattern for u in ref] == [1, 0, 1, 0, 1, 1, 0, 1, 0]
    assert feed_all(JsonUnitDetector(pats), list(doc)) == ref


# --- schema: impossible documents are rejected at the first character that proves it -----------

SCHEMA = {
    "type": "object",
    "properties": {
        "queries": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "mode": {"enum": ["fast", "thorough"]},
        "unit": {"const": "celsius"},
        "point": {"$ref": "#/$defs/point"},
        "tags": {"anyOf": [{"type": "string"}, {"type": "array"}]},
        "meta": {"type": "object", "patternProperties": {"^x-": {"type": "integer"}}},
    },
    "required": ["queries"],
    "additionalProperties": False,
    "$defs": {
        "point": {
            "type": "array",
            "prefixItems": [{"type": "number"}, {"type": "number"}],
            "items": False,
        }
    },
}


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ('{"queries": "paris"}', '"paris"'),  # a string where an array is required
        ('{"queries": ["a", 1]}', "1]"),
        ('{"queries": ["a", "b", "c", "d"]}', '"d"'),  # past maxItems
        ('{"extra": 1}', '": 1'),  # not allowed by additionalProperties (at the key's quote)
        ('{"queries": [], "mode": "slow"}', 'slow"'),  # enum prefix: "s" starts no allowed value
        ('{"queries": [], "mode": "fastest"}', 'est"'),
        ('{"queries": [], "mode": "fas"}', '"}'),  # a prefix, but it ended
        ('{"queries": [], "unit": "kelvin"}', "kelvin"),
        ('{"queries": [], "point": [1, "2"]}', '"2"'),  # $ref and prefixItems
        ('{"queries": [], "point": [1, 2, 3]}', "3]"),  # items: false after the prefix
        ('{"queries": [], "meta": {"x-a": "s"}}', '"s"'),  # patternProperties
        ('{"mode": "fast"}', "}"),  # required, at the object's end
        ("[]", "[]"),
    ],
)
def test_schema_violations_are_raised_at_the_first_proving_character(text, bad):
    for chunks in ([text], list(text)):
        d = JsonUnitDetector([UnitPattern("/queries/*")], schema=SCHEMA)
        with pytest.raises(UnitSchemaError) as e:
            feed_all(d, chunks)
        assert e.value.offset == text.index(bad), str(e.value)


def test_schema_checks_never_reject_a_valid_document():
    ok = (
        '{"queries": ["a", "b"], "mode": "thorough", "unit": "celsius", "point": [1, 2.5],'
        ' "tags": ["any", 1], "meta": {"x-n": 3, "other": "free"}}'
    )
    d = JsonUnitDetector([UnitPattern("/queries/*")], schema=SCHEMA)
    assert values(feed_all(d, list(ok))) == [("/queries/0", "a"), ("/queries/1", "b")]
    # escapes switch the enum prefix check off rather than guessing
    d = JsonUnitDetector([], schema=SCHEMA)
    feed_all(d, ['{"queries": [], "mode": "f\\u0061st"}'])


def test_schema_error_names_the_path():
    d = JsonUnitDetector([], schema=SCHEMA)
    with pytest.raises(UnitSchemaError, match="/queries/1"):
        d.feed('{"queries": ["a", {')


def test_recursive_and_unresolvable_refs():
    tree = {
        "$ref": "#/$defs/node",
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            }
        },
    }
    d = JsonUnitDetector([], schema=tree)
    with pytest.raises(UnitSchemaError):
        d.feed('{"kids": [{"kids": [{"kids": 3')
    d = JsonUnitDetector([], schema={"$ref": "https://example.com/s.json"})
    feed_all(d, ["[1]"])  # cannot follow: no checks, no false errors


def test_make_detector_builds_json_and_text_detectors():
    d = make_detector([UnitPattern("/q")], schema={"type": "object"})
    assert isinstance(d, JsonUnitDetector)
    t = make_detector([UnitPattern("/plan", "plan")], format="text")
    (u,) = t.feed("1. a()\n2. b($1)\n")[1:]
    assert u.path == "/plan#1" and u.meta["args"] == (Ref(1),)
    with pytest.raises(ValueError):
        make_detector([UnitPattern("/a"), UnitPattern("/b")], format="text")
    with pytest.raises(ValueError):
        make_detector([], format="yaml")


def test_long_calls_fed_a_character_at_a_time():
    value = {"items": [{"q": f"query {i} é", "n": i * 1.5} for i in range(300)], "end": True}
    doc = json.dumps(value, ensure_ascii=False, indent=1)
    d = JsonUnitDetector([UnitPattern("/items/*"), UnitPattern("")])
    units = feed_all(d, list(doc))
    assert [u.value for u in units[:-1]] == value["items"]
    assert units[-1].text == doc and units[-1].value == value == d.value()
    assert all(doc[u.start : u.end] == u.text for u in units)
