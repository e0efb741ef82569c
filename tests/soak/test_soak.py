"""The soak test at a size that fits the default suite (`make soak` runs 200 programs)."""

from __future__ import annotations

from sgl_conveyor.eval.soak import Soak, summary_line


def test_a_hundred_faulty_programs_end_cleanly():
    report = Soak(programs=100, seed=11).run()
    print(summary_line(report))
    assert report["batch_error"] is None
    assert report["hangs"] == 0, report["hung"]
    assert report["leaked"] == 0, (report["leaked_threads"], report["leaked_processes"])
    assert report["double_executions"] == 0
    assert report["unclear"] == []
    # The faults really happened: every kind of failure was met and reported with its type.
    kinds = report["errors_by_kind"]
    for kind in ("tool_error", "timeout", "truncated_call", "malformed_call"):
        assert kinds.get(kind, 0) > 0, kinds
