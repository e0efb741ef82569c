"""A run record reads back every row results.jsonl has held, and writes it back unchanged."""

from __future__ import annotations

from sgl_conveyor.eval.records import RunRecord


def failed_row(**extra):
    """A run that failed before it was measured, as the runner writes it."""
    row = {
        "workload": "search",
        "task_id": "t1",
        "mode": "partial",
        "repeat": 0,
        "latency_s": None,
        "decode_s": None,
        "tool_s": None,
        "ideal_s": None,
        "n_units": None,
        "prompt_tokens": None,
        "cached_tokens": None,
        "error": "TimeoutError: the run took longer than 1 s",
        "invalid_first": False,
        "position": 2,
        "sweep": False,
        "tokens_per_second": 25.0,
        "backend": "replay",
        "concurrency": 16,
    }
    row.update(extra)
    return row


def test_a_failed_run_writes_back_without_the_keys_only_a_measurement_has():
    row = failed_row()
    record = RunRecord.from_dict(row)
    assert record.error and not record.ok and record.calls is None
    assert record.to_dict() == row and list(record.to_dict()) == list(row)


def test_keys_the_record_does_not_know_are_kept():
    row = failed_row(host="gpu-3")
    assert RunRecord.from_dict(row).to_dict() == row
