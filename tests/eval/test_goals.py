"""Each workload declares its goals; the summary checks those and no others."""

from __future__ import annotations

from sgl_conveyor.eval.goals import (
    CALL_EAGER,
    DEFAULT_GOALS,
    EARLY_ABORT,
    FAST_TOOL,
    OVERLAP_CAPTURED,
    Goal,
)
from sgl_conveyor.eval.metrics import goal_checks
from sgl_conveyor.eval.workload import bundled_goals


def test_a_goal_checks_one_number_of_the_summary_and_says_why_when_it_is_missing():
    goal = Goal("tool time", "mean_tool_s", "<=", 1.0, "needs runs")
    assert goal.check("mine", {"mean_tool_s": 0.5})["passed"] is True
    assert goal.check("mine", {"mean_tool_s": 2.0})["passed"] is False
    missing = goal.check("mine", {})
    assert missing["passed"] is None and missing["reason"] == "needs runs"


def test_a_nested_goal_reads_its_value_and_its_ideal_under_one_key():
    summary = {"invalid_first": {"partial_vs_sequential": 0.4, "ideal_vs_sequential": 0.3}}
    check = EARLY_ABORT.check("validation", summary)
    assert check["passed"] is True and check["value"] == 0.4 and check["ideal"] == 0.3


def test_a_workload_is_checked_on_the_goals_it_declares_in_their_order():
    summary = {"mine": {"partial_vs_sequential": 1.0, "ratio_vs_call_eager_3plus": 0.8}}
    checks = goal_checks(summary, {"mine": (FAST_TOOL, CALL_EAGER)})
    assert [c["goal"] for c in checks] == [FAST_TOOL.name, CALL_EAGER.name]
    assert all(c["workload"] == "mine" for c in checks)


def test_a_workload_that_declares_none_gets_the_call_eager_bar_only_where_it_applies():
    assert goal_checks({"mine": {"n_tasks_3plus": 0}}, {}) == []
    checks = goal_checks({"mine": {"n_tasks_3plus": 2, "ratio_vs_call_eager_3plus": 0.9}}, {})
    assert [c["goal"] for c in checks] == [g.name for g in DEFAULT_GOALS]
    assert checks[0]["passed"] is False


def test_the_bundled_workloads_declare_their_goals():
    goals = bundled_goals()
    for name in ("codegen", "search", "planning"):
        assert goals[name][0] == OVERLAP_CAPTURED
    assert goals["sql"] == goals["calculator"] == (FAST_TOOL,)
    assert EARLY_ABORT in goals["validation"]
