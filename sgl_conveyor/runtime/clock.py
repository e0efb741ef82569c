"""The call's limit, measured on the tool's own work and never on the model's decoding.

A call's `timeout_s` bounds what the tool spends on the call as a whole: its warm-up, and
everything from the end of the stream to the result (units still running, held and deferred
units, `finish`). Time the tool only waits for the model to decode does not count, so a slow or
loaded server never fails a valid call. Unit limits are separate: each counts from the unit's
start.
"""

from __future__ import annotations

import threading
import time


class WorkClock:
    """Seconds of call-level tool work, against a budget. Runs while any phase holds it.

    Phases overlap (a warm-up still running when the stream ends): the clock counts the union
    of their intervals once, not their sum.
    """

    def __init__(self, budget_s: float):
        self.budget_s = float(budget_s)
        self._lock = threading.Lock()
        self._holders = 0
        self._spent = 0.0
        self._since = 0.0

    def hold(self) -> None:
        """A phase of tool work starts (the clock runs)."""
        with self._lock:
            if self._holders == 0:
                self._since = time.monotonic()
            self._holders += 1

    def release(self) -> None:
        """A phase of tool work ends (the clock stops when no phase holds it)."""
        with self._lock:
            if self._holders == 0:
                return
            self._holders -= 1
            if self._holders == 0:
                self._spent += time.monotonic() - self._since

    @property
    def running(self) -> bool:
        return self._holders > 0

    def spent(self) -> float:
        with self._lock:
            running = time.monotonic() - self._since if self._holders else 0.0
            return self._spent + running

    def remaining(self) -> float:
        """Seconds of tool work left (it only counts down while the clock runs)."""
        return self.budget_s - self.spent()

    def expired(self) -> bool:
        return self.spent() > self.budget_s
