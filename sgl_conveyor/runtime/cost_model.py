"""The cost model: decides per unit whether running it early can pay.

Running a unit early saves at most its own run time, and costs a hand-off to a worker thread
(and CPU shared with decoding). From online estimates (exponentially weighted means per tool and
unit pattern) it picks: `run` now, `batch` with the next units until the batch is worth a
hand-off, or `defer` to the end of the call where it runs inline with no hand-off at all. It
never changes what runs, only when.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

RUN = "run"
BATCH = "batch"
DEFER = "defer"


@dataclass
class Estimate:
    """An exponentially weighted mean with a count (alpha = weight of the newest sample)."""

    mean: float | None = None
    n: int = 0
    alpha: float = 0.3

    def add(self, x: float) -> None:
        self.mean = x if self.mean is None else (1 - self.alpha) * self.mean + self.alpha * x
        self.n += 1


@dataclass
class CostModel:
    """Online estimates of unit run time and dispatch overhead, and the decision rule.

    defer_ratio: a unit whose expected run time is below defer_ratio x the hand-off overhead is
        deferred (running it early cannot win back what the hand-off costs).
    batch_ratio: below batch_ratio x overhead, units are batched until the batch's expected
        time reaches that bound, then dispatched together.
    """

    defer_ratio: float = 2.0
    batch_ratio: float = 10.0
    initial_overhead_s: float = 0.0003
    _run: dict[tuple[str, int], Estimate] = field(default_factory=dict)
    _overhead: Estimate = field(default_factory=Estimate)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def expected_run_s(self, tool: str, pattern: int, hint_ms: float | None) -> float | None:
        with self._lock:
            est = self._run.get((tool, pattern))
            if est is not None and est.mean is not None:
                return est.mean
        return None if hint_ms is None else hint_ms / 1000.0

    def overhead_s(self) -> float:
        with self._lock:
            m = self._overhead.mean
        return self.initial_overhead_s if m is None else m

    def decide(self, tool: str, pattern: int, hint_ms: float | None) -> tuple[str, float | None]:
        """(decision, expected run time). Unknown cost: run (the safe bet for latency)."""
        t = self.expected_run_s(tool, pattern, hint_ms)
        if t is None:
            return RUN, None
        o = self.overhead_s()
        if t < self.defer_ratio * o:
            return DEFER, t
        if t < self.batch_ratio * o:
            return BATCH, t
        return RUN, t

    def batch_target_s(self) -> float:
        return self.batch_ratio * self.overhead_s()

    def observe_run(self, tool: str, pattern: int, seconds: float) -> None:
        with self._lock:
            self._run.setdefault((tool, pattern), Estimate()).add(max(0.0, seconds))

    def observe_overhead(self, seconds: float) -> None:
        with self._lock:
            self._overhead.add(max(0.0, seconds))

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "overhead_s": self._overhead.mean,
                "run_s": {f"{k[0]}#{k[1]}": (v.mean, v.n) for k, v in self._run.items()},
            }


_DEFAULT = CostModel()


def default_cost_model() -> CostModel:
    """The process-wide cost model (estimates are shared by all calls of a tool)."""
    return _DEFAULT
