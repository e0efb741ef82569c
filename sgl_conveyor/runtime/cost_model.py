"""The cost model: decides per unit whether running it early can pay.

Running a unit early saves at most its own run time, and costs a hand-off to a worker thread
(and CPU shared with decoding). From online estimates it picks: `run` now, `batch` with the next
units until the batch is worth a hand-off, or `defer` to the end of the call where it runs inline
with no hand-off at all. It never changes what runs, only when.

Run times are exponentially weighted means per tool, unit pattern and unit kind (a plan step's
function, a Python statement's kind: a `lookup` step and a `ratio` step of one plan differ by
four orders of magnitude). The hand-off overhead is the median of recent hand-offs, so a burst of
scheduler noise on a loaded machine cannot talk the model into deferring real work; and a unit
expected to take longer than `max_defer_s` always runs at once, since deferring it puts its whole
run time after the stream while a hand-off never costs that much.
"""

from __future__ import annotations

import statistics
import threading
from collections import deque
from collections.abc import Hashable, Mapping
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
class RecentMedian:
    """The median of the last `window` samples: robust to the outliers a hand-off sees when
    the machine is busy (one 50 ms stall must not move the estimate)."""

    window: int = 64
    _samples: deque[float] = field(default_factory=deque)

    def add(self, x: float) -> None:
        self._samples.append(x)
        if len(self._samples) > self.window:
            self._samples.popleft()

    @property
    def value(self) -> float | None:
        return statistics.median(self._samples) if self._samples else None

    @property
    def n(self) -> int:
        return len(self._samples)


def unit_kind(meta: object) -> Hashable:
    """What makes units of one pattern differ in cost: a plan step's tool, a statement's kind."""
    if not isinstance(meta, Mapping):
        return None
    return meta.get("tool") or meta.get("kind")


@dataclass
class CostModel:
    """Online estimates of unit run time and dispatch overhead, and the decision rule.

    defer_ratio: a unit whose expected run time is below defer_ratio x the hand-off overhead is
        deferred (running it early cannot win back what the hand-off costs).
    batch_ratio: below batch_ratio x overhead, units are batched until the batch's expected
        time reaches that bound, then dispatched together.
    max_defer_s: a unit expected to run longer than this always runs at once, whatever the
        overhead estimate says.
    """

    defer_ratio: float = 2.0
    batch_ratio: float = 10.0
    max_defer_s: float = 0.005
    initial_overhead_s: float = 0.0003
    _run: dict[tuple[str, int, Hashable], Estimate] = field(default_factory=dict)
    _overhead: RecentMedian = field(default_factory=RecentMedian)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def expected_run_s(
        self, tool: str, pattern: int, hint_ms: float | None, kind: Hashable = None
    ) -> float | None:
        with self._lock:
            est = self._run.get((tool, pattern, kind))
            if est is not None and est.mean is not None:
                return est.mean
        return None if hint_ms is None else hint_ms / 1000.0

    def overhead_s(self) -> float:
        with self._lock:
            m = self._overhead.value
        return self.initial_overhead_s if m is None else m

    def decide(
        self, tool: str, pattern: int, hint_ms: float | None, kind: Hashable = None
    ) -> tuple[str, float | None]:
        """(decision, expected run time). Unknown cost: run (the safe bet for latency)."""
        t = self.expected_run_s(tool, pattern, hint_ms, kind)
        if t is None or t >= self.max_defer_s:
            return RUN, t
        o = self.overhead_s()
        if t < self.defer_ratio * o:
            return DEFER, t
        if t < self.batch_ratio * o:
            return BATCH, t
        return RUN, t

    def batch_target_s(self) -> float:
        return min(self.batch_ratio * self.overhead_s(), self.max_defer_s)

    def observe_run(self, tool: str, pattern: int, seconds: float, kind: Hashable = None) -> None:
        with self._lock:
            self._run.setdefault((tool, pattern, kind), Estimate()).add(max(0.0, seconds))

    def observe_overhead(self, seconds: float) -> None:
        with self._lock:
            self._overhead.add(max(0.0, seconds))

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "overhead_s": self._overhead.value,
                "run_s": {
                    "#".join(str(p) for p in k if p is not None): (v.mean, v.n)
                    for k, v in self._run.items()
                },
            }


_DEFAULT = CostModel()


def default_cost_model() -> CostModel:
    """The process-wide cost model (estimates are shared by all calls of a tool)."""
    return _DEFAULT
