"""A call's time limits: each unit's, counted from the unit's start, and the call's, counted on
the tool's own work (`runtime.clock`). Pure arithmetic on the timeline; the scope asks.

`exceeded` says which limit has passed (the scope dooms the call with it); `next_deadline`
says when one could next pass, which is what the scope's waits sleep until.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sgl_conveyor.errors import ToolTimeoutError
from sgl_conveyor.runtime.clock import WorkClock
from sgl_conveyor.runtime.timeline import UnitTimes
from sgl_conveyor.tools.spec import ToolSpec
from sgl_conveyor.units.base import Unit


class CallLimits:
    """The limits of one call of `spec`, whose own work `clock` measures."""

    def __init__(self, spec: ToolSpec, clock: WorkClock):
        self.spec = spec
        self.clock = clock

    def of_unit(self, unit: Unit | None) -> float:
        """The unit's limit: its pattern's `timeout_s`, else the spec's `unit_timeout_s`."""
        if unit is not None and unit.pattern < len(self.spec.units):
            own = self.spec.units[unit.pattern].timeout_s
            if own:
                return own
        return self.spec.unit_timeout_s

    def exceeded(
        self, running: Sequence[tuple[UnitTimes, float]], now: float
    ) -> ToolTimeoutError | None:
        """The error of the first running unit past its limit (`running`: each with its
        limit; `now` on the perf_counter clock), else of the call's limit if it has passed."""
        for ut, limit in running:
            if now - (ut.started or now) > limit:
                return ToolTimeoutError(
                    f"unit {ut.path} ran longer than its limit of {limit:g} s",
                    tool=self.spec.name,
                    unit=ut.path,
                )
        if self.clock.expired():
            return self.call_exceeded()
        return None

    def call_exceeded(self) -> ToolTimeoutError:
        return ToolTimeoutError(
            f"{self.spec.name} spent longer than the call's limit of {self.spec.timeout_s:g} s "
            "on its own work (warm-up, units after the stream ended, finish)",
            tool=self.spec.name,
        )

    def next_deadline(self, running: Sequence[tuple[UnitTimes, float]]) -> float | None:
        """When `exceeded` could next find a limit passed (monotonic), or None."""
        offset = time.monotonic() - time.perf_counter()
        ends = [(ut.started or 0.0) + limit + offset for ut, limit in running]
        if self.clock.running:
            ends.append(time.monotonic() + max(0.0, self.clock.remaining()))
        # A hair past the limit: the comparisons in `exceeded` are strict.
        return min(ends) + 0.001 if ends else None
