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
    from sgl_conveyor.programs.validation import DEMO_REQUEST

    rows = [json.loads(x) for x in demo_trace().read_text().splitlines()]
    assert [r["id"] for r in rows] == ["demo", "demo-news"]
    assert rows[0]["input"] == {"question": DEMO_QUESTION}
    assert rows[1]["input"] == {"request": DEMO_REQUEST}


def test_the_demo_shows_the_rejected_call_stopped_and_the_gain(capsys):
    # The default demo on its recorded run: the misspelled place is rejected as soon as it is
    # decoded (before the rest of the call), the call written again runs its units while it
    # streams, and the report carries each mode's median and spread.
    from sgl_conveyor.demo import run_demo

    report = run_demo("replay", as_json=True, repeats=2)
    assert report["workload"] == "news" and report["error"] is None
    first, second = report["attempts"]
    assert "Milwaukie" in first["abort_reason"]
    assert first["aborted_s"] is not None and first["units"][0]["dispatched_s"] is None
    assert json.loads(report["call"])["location"] == "Milwaukee, WI"
    location = second["units"][0]
    assert location["path"] == "/location" and location["dispatched_s"] < second["stream_end_s"]
    for mode in ("sequential", "partial"):
        assert len(report["latencies_s"][mode]) == 2
    spread = report["latency_spread_s"]
    assert spread["min"] <= report["latency_s"] <= spread["max"] and spread["n"] == 2
    for key in (
        "backend",
        "mode",
        "latency_s",
        "sequential_latency_s",
        "stream_start_s",
        "stream_end_s",
        "units",
        "prompt_tokens",
        "cached_tokens",
    ):
        assert key in report  # the fields of the demo's JSON before the spread was added
    assert json.loads(capsys.readouterr().out)["gain"] == report["gain"]
