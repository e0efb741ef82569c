"""Python statements, lines, and all-text calls, by example."""

from __future__ import annotations

import pytest

from sgl_conveyor.errors import IncompleteError, UnitError
from sgl_conveyor.units import (
    LineSplitter,
    PythonStatementSplitter,
    TextUnitDetector,
    UnitDetector,
    make_splitter,
)


def split(text, chunks=None):
    sp = PythonStatementSplitter()
    pieces = []
    for c in chunks if chunks is not None else [text]:
        pieces += sp.feed(c)
    return pieces + sp.finish()


def texts(pieces):
    return [p.text for p in pieces]


# --- Python: when a statement is final -----------------------------------------------------


def test_a_statement_is_final_when_the_next_one_starts():
    sp = PythonStatementSplitter()
    assert sp.feed("import os\n") == []  # the next line could be indented
    (p,) = sp.feed("x")
    assert (p.text, p.start, p.end, p.meta) == ("import os", 0, 9, {"kind": "import", "line": 1})
    assert sp.feed(" = 1\n    \n") == []
    assert texts(sp.finish()) == ["x = 1"]


def test_else_at_column_zero_waits_until_the_word_is_known():
    sp = PythonStatementSplitter()
    assert sp.feed("if x:\n    a()\n") == []
    assert sp.feed("e") == []
    assert sp.feed("ls") == []
    assert sp.feed("e") == []  # "else" or "elsewhere"?
    assert sp.feed(":\n    b()\n") == []
    assert sp.feed("ex") == []  # "except"? "exit"?
    (p,) = sp.feed("it()")
    assert p.text == "if x:\n    a()\nelse:\n    b()"
    assert texts(sp.finish()) == ["exit()"]


def test_exit_starts_a_statement_as_soon_as_it_cannot_be_a_keyword():
    sp = PythonStatementSplitter()
    sp.feed("a = 1\nex")
    assert texts(sp.feed("i")) == ["a = 1"]  # "exi" is no prefix of except


@pytest.mark.parametrize("word", ["elsewhere = 1", "else_ = 1", "finally_ = 2", "elifant()", "f()"])
def test_identifiers_that_start_like_keywords_are_statements(word):
    assert texts(split(f"a = 1\n{word}\n")) == ["a = 1", word]


def test_compound_statements_stay_whole():
    code = (
        "try:\n    x = 1\nexcept ValueError:\n    pass\nelse:\n    y = 2\nfinally:\n    z = 3\n"
        "for i in r:\n    pass\nelse:\n    done()\n"
        "while w:\n    break\nelse:\n    pass\n"
        "match cmd:\n    case [a]:\n        pass\n    case _:\n        pass\n"
        "with a() as b, c() as d:\n    pass\n"
        "async def g():\n    async with s:\n        await t()\n"
    )
    pieces = split(code)
    assert [p.text.split("\n")[0] for p in pieces] == [
        "try:",
        "for i in r:",
        "while w:",
        "match cmd:",
        "with a() as b, c() as d:",
        "async def g():",
    ]
    assert [p.meta["kind"] for p in pieces] == ["stmt"] * 5 + ["def"]
    assert "".join(p.text + "\n" for p in pieces) == code


def test_decorators_belong_to_their_def_or_class():
    code = (
        "@app.route('/',\n  methods=['GET'])\n@login\ndef index():\n    return 1\n"
        "@dataclass\nclass P:\n    x: int\n"
    )
    pieces = split(code)
    assert texts(pieces) == [
        "@app.route('/',\n  methods=['GET'])\n@login\ndef index():\n    return 1",
        "@dataclass\nclass P:\n    x: int",
    ]
    assert [(p.meta["kind"], p.meta["line"]) for p in pieces] == [("def", 1), ("class", 6)]


def test_triple_quoted_strings_spanning_lines_hide_column_zero_text():
    code = 's = """\nelse:\nimport os\n# not a comment\n"""\nt = \'\'\'a\'\'\' + """\n"""\nu = 1\n'
    assert texts(split(code)) == [
        's = """\nelse:\nimport os\n# not a comment\n"""',
        "t = '''a''' + \"\"\"\n\"\"\"",
        "u = 1",
    ]


def test_brackets_and_backslash_continuations_hide_column_zero_text():
    code = "x = [\n1,\n2]\ny = 1 + \\\n2\nz = {\n'a': (\n3)}\nw = 0\n"
    assert texts(split(code)) == ["x = [\n1,\n2]", "y = 1 + \\\n2", "z = {\n'a': (\n3)}", "w = 0"]


@pytest.mark.parametrize(
    "stmt",
    [
        'a = f"{d["k"]}"',  # Python 3.12 nested quotes
        "a = f'{x!r:>{width}} {{literal}} {y:{\"}\"}}'",
        "a = rf'\\{x}' + Rb'\\'' + br\"\\\"\"",
        "a = f'''{\n1 +\n2}'''",
        "a = '#' + \"#\"  # a real comment with 'quotes\"",
        "a = b'x' if c else u'y'",
    ],
)
def test_string_prefixes_and_fstrings(stmt):
    code = f"{stmt}\nnext_statement()\n"
    for chunks in ([code], list(code)):
        assert texts(split(code, chunks)) == [stmt, "next_statement()"]


def test_blank_and_comment_lines_between_statements_belong_to_no_statement():
    code = (
        "#!/usr/bin/env python\n# header\n\nimport os\n\n# about x\n   # indented\n"
        "x = 1  # kept\n\n"
    )
    pieces = split(code)
    assert texts(pieces) == ["import os", "x = 1  # kept"]
    assert [p.meta["line"] for p in pieces] == [4, 8]
    assert all(code[p.start : p.end] == p.text for p in pieces)


def test_comment_and_blank_lines_inside_a_block_are_kept():
    code = "def f():\n    a = 1\n\n# column-0 comment inside\n    return a\n\n# after\ng()\n"
    assert texts(split(code)) == [
        "def f():\n    a = 1\n\n# column-0 comment inside\n    return a",
        "g()",
    ]


def test_crlf_line_endings():
    code = "import os\r\nif x:\r\n    y\r\nelse:\r\n    z\r\n"
    pieces = split(code)
    assert texts(pieces) == ["import os", "if x:\r\n    y\r\nelse:\r\n    z"]
    assert all(code[p.start : p.end] == p.text for p in pieces)


@pytest.mark.parametrize(
    "code",
    [
        "x = (1,\n",
        "s = '''abc\n",
        "s = 'abc",
        "y = 1 + \\\n",
        "y = \\\n  ",
        "y = \\",
        "f'{x'",
        "a = [\n#]\n",
    ],
)
def test_code_cut_inside_a_construct_is_incomplete(code):
    sp = PythonStatementSplitter()
    sp.feed(code)
    with pytest.raises(IncompleteError) as e:
        sp.finish()
    assert e.value.offset == len(code)


def test_empty_and_comment_only_code_has_no_statement():
    assert split("") == [] and split("\n\n# nothing\n") == []


# --- lines ----------------------------------------------------------------------------------


def test_lines_final_at_newline_with_crlf_and_blank_lines():
    ls = LineSplitter()
    assert ls.feed("first\r") == []
    (p,) = ls.feed("\n\n  \nsecond")
    assert (p.text, p.start, p.end, p.meta) == ("first", 0, 5, {"line": 1})
    (q,) = ls.finish()
    assert (q.text, q.start, q.end, q.meta) == ("second", 11, 17, {"line": 4})


def test_lines_keeping_blanks():
    ls = LineSplitter(skip_blank=False)
    assert texts(ls.feed("a\n\nb\n")) == ["a", "", "b"]
    assert ls.finish() == []  # no line after the last newline


# --- all-text calls -------------------------------------------------------------------------


def test_text_detector_streams_statements_with_stream_offsets():
    d = TextUnitDetector("/code", "python")
    assert isinstance(d, UnitDetector)
    (u,) = d.feed("import os\nprint(os.getcwd())\n")
    assert (u.path, u.index, u.value, u.start, u.end, u.pattern) == (
        "/code#0",
        0,
        "import os",
        0,
        9,
        0,
    )
    assert not d.complete and d.consumed == 29
    (v,) = d.finish()
    assert (v.path, v.index, v.text, v.start) == ("/code#1", 1, "print(os.getcwd())", 10)
    assert d.complete and d.value() == "import os\nprint(os.getcwd())\n"


def test_text_detector_without_split_is_one_unit_at_finish():
    d = TextUnitDetector("")
    assert d.feed("anything at all") == []
    with pytest.raises(IncompleteError):
        d.value()
    (u,) = d.finish()
    assert (u.path, u.value, u.text, u.start, u.end) == (
        "",
        "anything at all",
        "anything at all",
        0,
        15,
    )


def test_text_detector_is_dead_after_an_error():
    d = TextUnitDetector("/plan", "plan")
    with pytest.raises(UnitError) as e:
        d.feed("1. a()\nnot a step\n")
    with pytest.raises(UnitError) as again:
        d.feed("2. b()\n")
    assert again.value is e.value
    with pytest.raises(UnitError):
        d.finish()


def test_make_splitter_names():
    assert isinstance(make_splitter("lines"), LineSplitter)
    with pytest.raises(ValueError):
        make_splitter("sql")
