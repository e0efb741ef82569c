"""What a workload module exports, how tasks load, and how the eval finds workloads."""

from __future__ import annotations

import pytest
from tiny_workload import make_workload

from sgl_conveyor.eval.workload import Task, Workload, WorkloadError, discover, load_tasks, select


def test_tasks_load_in_order_and_keep_their_extra_fields(tmp_path):
    wl = make_workload(tmp_path)
    tasks = wl.tasks()
    assert [t.id for t in tasks] == ["cities", "rivers", "bad"]
    assert [t.invalid_first for t in tasks] == [False, False, True]
    assert wl.tasks(limit=2) == tasks[:2]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"id": 1, "input": {}}\n{"id": 1, "input": {}}\n', "appears twice"),
        ('{"id": 1}\n', 'needs "id" and an object "input"'),
        ("{not json\n", "not valid JSON"),
    ],
)
def test_bad_task_files_name_the_line_and_the_problem(tmp_path, text, problem):
    path = tmp_path / "tasks.jsonl"
    path.write_text(text)
    with pytest.raises(WorkloadError, match=problem):
        load_tasks(path)


def test_program_arguments_are_the_input_it_takes_plus_mode_and_task_id(tmp_path):
    wl = make_workload(tmp_path)
    task = Task("t", {"question": "q", "invalid_first": True, "notes": "x"})
    assert wl.args_for(task, "call-eager") == {
        "question": "q",
        "mode": "call-eager",
        "task_id": "t",
    }
    custom = Workload(
        "c", wl.program, wl.tasks_path, make_args=lambda t, m: {"question": t.id, "mode": m}
    )
    assert custom.args_for(task, "partial") == {"question": "t", "mode": "partial"}
    clash = Workload("c", wl.program, wl.tasks_path, make_args=lambda t, m: {"stop": "x"})
    with pytest.raises(WorkloadError, match="rename them"):
        clash.args_for(task, "partial")


def test_discovery_reports_modules_that_fail_and_keeps_the_others(tmp_path):
    programs = tmp_path / "some_programs"
    programs.mkdir()
    (programs / "tiny.py").write_text(
        "from pathlib import Path\n"
        "from tiny_workload import make_workload\n"
        "WORKLOAD = [make_workload(Path(__file__).parent / 'a', name='one'),\n"
        "            make_workload(Path(__file__).parent / 'b', name='two')]\n"
    )
    (programs / "helper.py").write_text("X = 1\n")  # no WORKLOAD: not a workload, no error
    (programs / "broken.py").write_text("import no_such_module_here\n")
    (programs / "_private.py").write_text("raise SystemExit\n")
    found = discover(programs)
    assert sorted(found.workloads) == ["one", "two"]
    assert list(found.errors) == ["some_programs.broken"]
    assert "no_such_module_here" in found.errors["some_programs.broken"]
    assert [w.name for w in select(found.workloads, "all")] == ["one", "two"]
    assert [w.name for w in select(found.workloads, "two,one")] == ["two", "one"]
    with pytest.raises(WorkloadError, match="known: one, two"):
        select(found.workloads, "three")
