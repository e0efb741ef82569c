"""The `plan` tool: steps from the real plan splitter, run in dependency order with `$k`
results substituted, against the real search service."""

from __future__ import annotations

import pytest
from tool_helpers import make_ctx, make_tool, text_units

from sgl_conveyor.errors import ArgumentRejectedError, ToolExecutionError
from sgl_conveyor.tools.base import UnitResult
from sgl_conveyor.tools.builtin.plan_tool import show, to_number


@pytest.fixture(scope="module")
def tool():
    t = make_tool("plan")
    yield t
    t.close()


def run_plan(tool, plan: str):
    """As the runtime does in partial mode: check each step when it arrives, run it once its
    dependencies are done, record its result under its id."""
    ctx = make_ctx(tool)
    tool.start(ctx)
    results = []
    for unit in text_units(tool.spec, plan):
        tool.check_unit(unit, ctx)
        assert all(d in ctx.results for d in unit.meta["deps"])
        value = tool.run_unit(unit, ctx)
        ctx.results[unit.meta["id"]] = value
        results.append(UnitResult(unit, value))
    return tool.finish({"plan": plan}, results, ctx)


def test_the_spec_examples_give_their_answers(tool):
    answers = [run_plan(tool, ex["call"])["answer"] for ex in tool.spec.examples]
    assert answers == [
        "Microsoft's market cap is 0.91 times Apple's",
        "Mount Everest is 238 metres higher than K2",
        2_010_000,
    ]


def test_each_step_s_result_is_reported(tool):
    out = run_plan(tool, tool.spec.examples[1]["call"])
    assert out == tool.spec.examples[1]["result"]


def test_references_inside_expressions_and_lists_are_substituted(tool):
    plan = (
        '1. lookup("Oslo", "population")\n'
        '2. lookup("Helsinki", "population")\n'
        "3. calc($1 / 1000 + 1)\n"
        "4. max([$1, $2])\n"
        '5. format("{} thousand; the larger is {}", $3, $4)\n'
    )
    assert run_plan(tool, plan)["answer"] == "701.0 thousand; the larger is 700000"


def test_the_paper_s_unquoted_plan_runs(tool):
    plan = (
        "$1 = search(Microsoft Market Cap)\n"
        "$2 = search(Apple Market Cap)\n"
        "$3 = compute_ratio($1, $2)\n"
        "$4 = format_ratio($3)\n"
    )
    assert run_plan(tool, plan)["answer"] == "0.91"


def test_a_final_join_makes_the_step_before_it_the_answer(tool):
    plan = '1. lookup("K2", "height")\n2. join()\n'
    assert run_plan(tool, plan)["answer"] == 8611


def test_sequential_execution_gives_the_same_result(tool):
    plan = tool.spec.examples[0]["call"]
    ctx = make_ctx(tool, mode="sequential")
    tool.start(ctx)
    assert tool.finish({"plan": plan}, [], ctx) == run_plan(tool, plan)


def test_an_unknown_step_tool_is_rejected_by_the_check(tool):
    unit = text_units(tool.spec, '1. wikipedia("Paris")\n')[0]
    with pytest.raises(ArgumentRejectedError, match="unknown step tool 'wikipedia'"):
        tool.check_unit(unit, make_ctx(tool))


def test_a_wrong_number_of_arguments_is_rejected_by_the_check(tool):
    unit = text_units(tool.spec, '1. lookup("Paris")\n')[0]
    with pytest.raises(ArgumentRejectedError, match=r"lookup\(\) takes 2 arguments, got 1"):
        tool.check_unit(unit, make_ctx(tool))


def test_a_failing_step_says_which_and_why(tool):
    unit = text_units(tool.spec, '1. lookup("Atlantis", "population")\n')[0]
    ctx = make_ctx(tool)
    with pytest.raises(ToolExecutionError, match=r"step 1 \(lookup\): lookup failed: no entity"):
        tool.run_unit(unit, ctx)


def test_a_step_whose_dependency_has_no_result_fails_clearly(tool):
    units = text_units(tool.spec, '1. lookup("K2", "height")\n2. round($1)\n')
    with pytest.raises(ToolExecutionError, match="needs the result of step 1"):
        tool.run_unit(units[1], make_ctx(tool))


def test_format_refuses_attribute_access():
    tool = make_tool("plan")
    unit = text_units(tool.spec, '1. format("{0.__class__}", 1)\n')[0]
    with pytest.raises(ToolExecutionError, match="format fields"):
        tool.run_unit(unit, make_ctx(tool))
    tool.close()


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("Microsoft has a market cap of about 3,100 billion US dollars (2024).", 3_100_000_000_000),
        ("It has a population of about 2,100,000.", 2_100_000),
        ("Its standard atomic weight is 55.845.", 55.845),
        ("Rome was founded in about 753 BC.", -753),
        ("K2: its height is 8,611 metres.", 8611),  # digits inside a name are not numbers
        (42, 42),
    ],
)
def test_numbers_are_read_from_step_results(text, number):
    assert to_number(text) == number


def test_numbers_are_shown_as_people_write_them():
    assert [show(x) for x in (2_100_000, 0.91176, 3.5, 12345.6, 2.0)] == [
        "2,100,000",
        "0.9118",
        "3.5",
        "12,346",
        "2",
    ]
