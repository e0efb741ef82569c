"""The bundled workloads on their recorded traces: each program runs end to end on the replay
backend, gives the same results with partial execution as sequentially, and its tasks and
trace agree with each other."""

from __future__ import annotations

import json
from typing import Any

import pytest

import sgl_conveyor
from sgl_conveyor import ToolCallError
from sgl_conveyor.backends.replay import ReplayBackend
from sgl_conveyor.eval.workload import discover
from sgl_conveyor.resources import demo_trace

NAMES = ("agent", "calculator", "codegen", "planning", "search", "sql", "validation")
WORKLOADS = discover().workloads
TRACE_LIMIT_BYTES = 300_000


def trace_rows(name: str) -> list[dict[str, Any]]:
    path = WORKLOADS[name].trace()
    assert path is not None and path.exists(), f"{name} has no bundled trace"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_all_seven_workloads_are_bundled():
    assert set(NAMES) <= set(WORKLOADS), discover().errors


@pytest.mark.parametrize("name", NAMES)
def test_tasks_load_and_there_are_at_least_twenty(name):
    tasks = WORKLOADS[name].tasks()
    assert len(tasks) >= 20
    assert len({t.id for t in tasks}) == len(tasks)
    for t in tasks:
        WORKLOADS[name].args_for(t, "partial")  # no clash with program.run()'s own names


@pytest.mark.parametrize("name", NAMES)
def test_every_trace_task_is_a_task_with_the_same_input(name):
    tasks = {t.id: t for t in WORKLOADS[name].tasks()}
    rows = trace_rows(name)
    assert rows
    for row in rows:
        assert row["id"] in tasks, f"trace task {row['id']!r} is not in the tasks file"
        assert row["input"] == dict(tasks[row["id"]].input)
        assert row["workload"] == name


@pytest.mark.parametrize("name", NAMES)
def test_traces_are_small(name):
    assert WORKLOADS[name].trace().stat().st_size < TRACE_LIMIT_BYTES


def _comparable(value: Any) -> Any:
    if isinstance(value, ToolCallError):
        return (type(value).__name__, value.message)
    return value


def _results(state: Any) -> dict[str, Any]:
    """What the program's tools returned, by variable name."""
    variables = state.stream_executor.variables
    return {k: _comparable(v) for k, v in variables.items() if k.endswith("_result")}


def _rewritten(row: dict[str, Any]) -> bool:
    """A validation trace row whose first call was rejected: two calls, then the answer."""
    return len(row["outputs"]) > 2


def _chosen(name: str) -> list[str]:
    """Two traced tasks of the workload; for validation, one whose first call was rejected."""
    rows = trace_rows(name)
    ids = [r["id"] for r in rows]
    if name == "validation":
        invalid = [r["id"] for r in rows if _rewritten(r)]
        valid = [i for i in ids if i not in invalid]
        assert invalid and valid
        return [invalid[0], valid[0]]
    return ids[:2]


@pytest.mark.parametrize("name", NAMES)
def test_the_program_runs_on_its_trace_with_the_same_results_in_both_modes(name):
    wl = WORKLOADS[name]
    tasks = {t.id: t for t in wl.tasks()}
    backend = ReplayBackend(wl.trace(), tokens_per_second=2000.0, ttft_s=0.0)
    rows = {r["id"]: r for r in trace_rows(name)}
    for task_id in _chosen(name):
        task = tasks[task_id]
        results = {}
        for mode in ("sequential", "partial"):
            state = wl.program.run(backend=backend, **wl.run_options, **wl.args_for(task, mode))
            state.sync()
            assert state.error() is None, (task_id, mode, state.error())
            results[mode] = _results(state)
            calls = [k[: -len("_result")] for k in results[mode]]
            assert calls, f"{name} {task_id}: no tool call"
            for call in calls:
                assert sgl_conveyor.call_report(state, call)["mode"] == mode
            if name == "validation" and _rewritten(rows[task_id]):
                assert sgl_conveyor.call_report(state, "news")["attempts"] == 2
        assert results["partial"] == results["sequential"], task_id


def test_the_demo_trace_replays_the_demo_question():
    from sgl_conveyor.programs.search import DEMO_QUESTION

    spec = sgl_conveyor.default_registry().spec("search")
    assert DEMO_QUESTION not in [ex["request"] for ex in spec.examples]
    rows = [json.loads(x) for x in demo_trace().read_text().splitlines()]
    assert [r["id"] for r in rows] == ["demo"]
    assert rows[0]["input"] == {"question": DEMO_QUESTION}
