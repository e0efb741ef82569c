"""One run of the eval as a typed record: the row of results.jsonl that the runner writes and
metrics and report read.

`RunRecord.from_dict(row).to_dict() == row` for every row the runner writes, so results files
written before this type existed still load. It never measures anything itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

# The row's keys in the order the runner writes them: what every run has, what a measured run
# adds (all or none: a run that failed before its measurement has none), and what the runner
# adds about the run's place in the eval.
_RUN_KEYS = (
    "workload",
    "task_id",
    "mode",
    "repeat",
    "latency_s",
    "decode_s",
    "tool_s",
    "ideal_s",
    "n_units",
    "prompt_tokens",
    "cached_tokens",
    "error",
    "invalid_first",
)
_MEASURED_KEYS = (
    "hideable_s",
    "n_calls",
    "max_units_per_call",
    "overhead_s",
    "chunks",
    "call_errors",
    "calls",
    "generations",
)
_PLACE_KEYS = ("position", "sweep", "tokens_per_second", "backend", "concurrency")
# Written only when measured (rows written before they existed load and write back unchanged):
# whether the last tool call of the run succeeded (a script that ran without error), and the
# tokens decoded over all generations of the run.
_OPTIONAL_KEYS = ("final_ok", "decode_tokens")


@dataclass(frozen=True)
class RunRecord:
    """One run of a program on one task in one mode. Times are seconds from the run's start.

    `calls` (the tool calls' timelines, as `Timeline.to_dict` writes them) is None when the run
    was never measured; `position` is None when the runner did not place it (a warm-up run).
    `extra` keeps keys of the row this type does not know, so they are written back.
    """

    workload: str
    task_id: str
    mode: str
    repeat: int = 0
    latency_s: float | None = None
    decode_s: float | None = None
    tool_s: float | None = None
    ideal_s: float | None = None
    n_units: int | None = None
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    error: str | None = None
    invalid_first: bool = False
    # measured
    hideable_s: float | None = None
    n_calls: int | None = None
    max_units_per_call: int | None = None
    overhead_s: float | None = None
    chunks: int | None = None
    call_errors: Sequence[str] = ()
    calls: Sequence[Mapping[str, Any]] | None = None
    generations: Sequence[Mapping[str, Any]] = ()
    final_ok: bool | None = None
    decode_tokens: int | None = None
    # placed by the runner
    position: int | None = None
    sweep: bool = False
    tokens_per_second: float | None = None
    backend: str | None = None
    concurrency: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """The run finished without an error and has a latency: it counts in every mean."""
        return not self.error and self.latency_s is not None

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> RunRecord:
        """A record from a row of results.jsonl (a missing key takes its default)."""
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in row.items() if k in known}
        if "task_id" in values:
            values["task_id"] = str(values["task_id"])
        for key in ("invalid_first", "sweep"):
            values[key] = bool(values.get(key))
        for key in ("call_errors", "generations"):
            if values.get(key) is None:
                values.pop(key, None)
        extra = {k: v for k, v in row.items() if k not in known}
        return cls(**values, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The row of results.jsonl, keys in the runner's order."""
        keys = list(_RUN_KEYS)
        if self.calls is not None:
            keys += _MEASURED_KEYS
        if self.position is not None:
            keys += _PLACE_KEYS
        keys += [k for k in _OPTIONAL_KEYS if getattr(self, k) is not None]
        row = {k: getattr(self, k) for k in keys}
        for key in ("call_errors", "generations"):
            if key in row:
                row[key] = list(row[key])
        row.update(self.extra)
        return row


def as_records(rows: Iterable[RunRecord | Mapping[str, Any]]) -> list[RunRecord]:
    """Records from records or rows of results.jsonl (so a caller may pass either)."""
    return [r if isinstance(r, RunRecord) else RunRecord.from_dict(r) for r in rows]
