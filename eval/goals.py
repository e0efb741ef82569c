"""The bars a workload's numbers must clear: each workload declares its goals
(`Workload(..., goals=(OVERLAP_CAPTURED, ...))`) and the summary checks them (README,
"Evaluation").

A goal reads one number of a workload's summary; it never computes a metric of its own (every
value it checks comes from eval.metrics).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

CALL_EAGER_MIN_UNITS = 3  # the call-eager goal is about calls with something to overlap


@dataclass(frozen=True)
class Goal:
    """`value op threshold` on a workload's summary (`value` is a key of it; `a.b` a key of
    the object at `a`).

    unmeasured: why the value can be missing, shown when it is (unless the summary says why at
                `reason`).
    ideal:      the key of the same ratio for the ideal schedule (what no policy can beat).
    applies_if: the goal is checked only where this key of the summary is truthy (None: always).
    """

    name: str
    value: str
    op: str
    threshold: float
    unmeasured: str
    ideal: str | None = None
    reason: str | None = None
    applies_if: str | None = None

    def where(self, key: str) -> Goal:
        """The same goal, checked only where the summary's `key` is truthy."""
        return replace(self, applies_if=key)

    def check(self, workload: str, summary: Mapping[str, Any]) -> dict[str, Any] | None:
        """The goal's check on one workload's summary (as summary.json writes it); None when
        the goal does not apply to it. `passed` is None when the value is not measured."""
        if self.applies_if is not None and not _lookup(summary, self.applies_if):
            return None
        value = _lookup(summary, self.value)
        passed = None
        if value is not None:
            passed = value >= self.threshold if self.op == ">=" else value <= self.threshold
        why = (self.reason and _lookup(summary, self.reason)) or self.unmeasured
        return {
            "goal": self.name,
            "workload": workload,
            "value": value,
            "op": self.op,
            "threshold": self.threshold,
            "passed": passed,
            "reason": why if value is None else None,
            "ideal": None if self.ideal is None else _lookup(summary, self.ideal),
        }


def _lookup(summary: Mapping[str, Any], key: str) -> Any:
    value: Any = summary
    for part in key.split("."):
        value = (value or {}).get(part)
    return value


OVERLAP_CAPTURED = Goal(
    "overlap captured",
    "overlap_captured",
    ">=",
    0.90,
    "needs sequential and partial runs",
    reason="overlap_captured_reason",
)
CALL_EAGER = Goal(
    f"L_partial / L_call-eager (calls of >= {CALL_EAGER_MIN_UNITS} units)",
    "ratio_vs_call_eager_3plus",
    "<=",
    0.85,
    f"needs call-eager and partial runs of tasks with a call of >= {CALL_EAGER_MIN_UNITS} units",
    ideal="ideal_vs_call_eager_3plus",
)
FAST_TOOL = Goal(
    "L_partial / L_seq (fast tool)",
    "partial_vs_sequential",
    "<=",
    1.02,  # a tool too fast to gain from overlap must not lose to it either
    "needs sequential and partial runs",
    ideal="ideal_vs_sequential",
)
EARLY_ABORT = Goal(
    "L_partial / L_seq (invalid first call)",
    "invalid_first.partial_vs_sequential",
    "<=",
    0.5,
    "needs tasks with invalid_first and sequential and partial runs",
    ideal="invalid_first.ideal_vs_sequential",
)

INTERRUPT_SPEEDUP = Goal(
    "L_seq / L_partial+interrupt (1 retry each)",
    "interrupt.speedup_vs_sequential",
    ">=",
    1.25,
    "needs sequential and partial+interrupt runs",
)
INTERRUPT_SUCCESS = Goal(
    "success(partial+interrupt) - success(sequential), final script without error",
    "interrupt.success_vs_sequential",
    ">=",
    0.0,  # stopping early must not cost repairs: no worse than sequential + one retry
    "needs sequential and partial+interrupt runs that report whether the final script ran",
)

# The call-eager bar where the workload has tasks with a call of >= CALL_EAGER_MIN_UNITS units
# (a workload whose calls are always that long declares CALL_EAGER itself).
CALL_EAGER_WHERE_MEASURED = CALL_EAGER.where("n_tasks_3plus")

# What a workload that declares no goals is held to.
DEFAULT_GOALS: tuple[Goal, ...] = (CALL_EAGER_WHERE_MEASURED,)
