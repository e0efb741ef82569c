"""The plan language, by example: LLMCompiler-style steps with `$k` dependencies."""

from __future__ import annotations

import re

import pytest

from sgl_conveyor.errors import UnitError
from sgl_conveyor.units import Expr, PlanSplitter, Ref


def steps(text, chunks=None):
    sp = PlanSplitter()
    out = []
    for c in chunks if chunks is not None else [text]:
        out += sp.feed(c)
    return out + sp.finish()


PLAN = """Thought: I need both populations first.
1. search("Paris population")
2. search(query="Lyon population", top_k=3)

$3 = compute_ratio($1, $2)
4. calc($3 / 2)
5. search(Microsoft market cap)
6. format(["$1 stays text", ${3}], {"k": $4})
join()<END_OF_PLAN>
"""


def test_a_step_is_final_at_its_newline():
    sp = PlanSplitter()
    assert sp.feed('1. search("Paris population")') == []
    (p,) = sp.feed("\n")
    assert p.text == '1. search("Paris population")'
    assert p.meta == {
        "id": 1,
        "tool": "search",
        "args": ("Paris population",),
        "kwargs": {},
        "deps": (),
        "args_text": '"Paris population"',
        "line": 1,
    }


def test_plan_steps_args_and_deps():
    pieces = steps(PLAN)
    assert [(p.meta["id"], p.meta["tool"], p.meta["deps"]) for p in pieces] == [
        (1, "search", ()),
        (2, "search", ()),
        (3, "compute_ratio", (1, 2)),
        (4, "calc", (3,)),
        (5, "search", ()),
        (6, "format", (3, 4)),
        (7, "join", (1, 2, 3, 4, 5, 6)),  # a bare join takes the next id and waits for all
    ]
    by_id = {p.meta["id"]: p.meta for p in pieces}
    assert by_id[2]["args"] == () and by_id[2]["kwargs"] == {"query": "Lyon population", "top_k": 3}
    assert by_id[3]["args"] == (Ref(1), Ref(2))
    assert by_id[4]["args"] == (Expr("$3 / 2", (3,)),)
    assert by_id[5]["args"] == ("Microsoft market cap",)  # unquoted text, as in the paper
    assert by_id[6]["args"] == (["$1 stays text", Ref(3)], {"k": Ref(4)})
    assert pieces[-1].text == "join()"
    for p in pieces:
        assert PLAN[p.start : p.end] == p.text


def test_plan_steps_do_not_depend_on_chunking():
    ref = steps(PLAN)
    assert steps(PLAN, list(PLAN)) == ref
    assert steps(PLAN, [PLAN[i : i + 7] for i in range(0, len(PLAN), 7)]) == ref


def test_numbered_join_and_crlf():
    pieces = steps("1. a()\r\n2. b($1)\r\n3. join()\r\n")
    assert [p.text for p in pieces] == ["1. a()", "2. b($1)", "3. join()"]
    assert pieces[2].meta["deps"] == (1, 2)


@pytest.mark.parametrize(
    ("plan", "bad", "message"),
    [
        ('1. search("x"\n', "\n", "unclosed"),
        ("1. search(x))\n", ")\n", "unbalanced"),
        ("1. f([1, 2)\n", ")", "unbalanced"),
        ('1. search("x)\n', '"', "unterminated string"),
        ("1. a()\n1. b()\n", "1. b", "duplicate"),
        ("1. a($2)\n", "$2", "later or unknown"),
        ("1. a()\n2. b(${2})\n", "${2}", "itself"),
        ("1. a()\n3. b([$2])\n", "$2", "later or unknown"),
        ("Here is my plan:\n", "Here", "not a plan step"),
        ("1. search\n", "\n", "tool(args)"),
        ("1. a()\njoin()\n2. b()\n", "2. b", "after the plan's final step"),
    ],
)
def test_malformed_steps_raise_with_the_offset(plan, bad, message):
    for chunks in ([plan], list(plan)):
        sp = PlanSplitter()
        with pytest.raises(UnitError, match=re.escape(message)) as e:
            for c in chunks:
                sp.feed(c)
            sp.finish()
        assert e.value.offset == plan.index(bad)


def test_dollar_inside_strings_is_text_not_a_dependency():
    (p,) = steps("1. echo('$1', \"${2}\", '''$3''')")
    assert p.meta["deps"] == () and p.meta["args"] == ("$1", "${2}", "$3")


def test_a_cut_last_step_is_checked_at_finish():
    sp = PlanSplitter()
    (first,) = sp.feed('1. search("a")\n2. search("b')
    assert first.meta["id"] == 1
    with pytest.raises(UnitError, match="unterminated string"):
        sp.finish()


def test_odd_escapes_in_arguments_do_not_warn(recwarn):
    (p,) = steps('1. grep("\\d+", r"\\w")\n')
    assert p.meta["args"] == ("\\d+", "\\w")
    assert not [w for w in recwarn if issubclass(w.category, (DeprecationWarning, SyntaxWarning))]
