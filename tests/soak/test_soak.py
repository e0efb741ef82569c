"""The soak test at a size that fits the default suite (`make soak` runs 200 programs)."""

from __future__ import annotations

import pytest

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


def test_hostile_generated_code_never_escapes_the_sandbox():
    # Font-cache symlinks to the host's environment, a host Unix socket, forged reply frames,
    # memory across processes, the disk: each judged from the host's side.
    report = Soak(programs=100, seed=3, hostile=True).run()
    print(summary_line(report))
    assert report["escapes"] == 0, report["escaped"]
    assert report["attacks_contained"] >= 6, report["contained"]  # every attack, and the host
    assert report["hangs"] == 0 and report["leaked"] == 0 and report["unclear"] == []
    assert summary_line(report).endswith(
        f"{report['attacks_contained']} attacks contained, 0 escapes"
    )


@pytest.mark.model
def test_hostile_clients_never_take_a_real_serve_down():
    # A real `sgl-conveyor serve` process: huge, malformed and deeply nested bodies, a client
    # that disconnects mid-body and one that idles mid-body; each gets a 4xx or is closed, and
    # /health answers after each.
    report = Soak(programs=20, seed=5, include_sandbox=False, attack_serve=True).run()
    assert report["escapes"] == 0, report["escaped"]
    serve = [c for c in report["contained"] if c.startswith("serve:")]
    assert len(serve) >= 14, serve
    assert report["leaked"] == 0
