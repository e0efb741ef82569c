"""What the call's waits sleep on: one signal for "something they wait for may have changed".

A unit finished, a unit started (a new deadline), a unit was dispatched, the call was doomed:
whoever changes that notifies, and a wait wakes, looks, and sleeps again until the next change
or its own deadline. Nothing here ever polls on a timer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Wakeup:
    """A generation counter under a condition: a wait never misses a change made before it
    slept, because it sleeps only while the generation it saw is still current."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._generation = 0

    def notify(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    @property
    def generation(self) -> int:
        with self._cond:
            return self._generation

    def sleep(self, seen: int, timeout: float | None) -> None:
        """Sleep until a change after generation `seen`, or `timeout` seconds."""
        with self._cond:
            if self._generation == seen:
                self._cond.wait(None if timeout is None else max(0.0, timeout))

    def wait_until(
        self, ready: Callable[[], bool], deadline: Callable[[], float | None] = lambda: None
    ) -> bool:
        """Sleep until `ready()` or the monotonic `deadline()` passes; True if ready. Both are
        read again after every change (a deadline may move: a unit started)."""
        while True:
            seen = self.generation
            if ready():
                return True
            until = deadline()
            if until is not None and time.monotonic() >= until:
                return False
            self.sleep(seen, None if until is None else until - time.monotonic())
