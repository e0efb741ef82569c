"""The units of a plan's DAG that wait for others: which may go, and when.

It only answers "may this unit run yet" and "which units did this result free"; dispatching
them is the scope's. Thread-safe: results arrive on the workers.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

from sgl_conveyor.units.base import Unit


def deps_of(unit: Unit) -> tuple[Hashable, ...]:
    return tuple(unit.meta.get("deps", ())) if unit.meta else ()


def unit_id(unit: Unit) -> Hashable:
    """What other units name it by in their deps (and ctx.results): its id, else its path."""
    uid = unit.meta.get("id") if unit.meta else None
    return uid if uid is not None else unit.path


class Dependencies:
    """The waiting units of one call, and the ids of those that finished."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[Unit] = []  # dependencies not finished yet
        self._freeing: set[int] = set()  # out of _waiting, not dispatched yet
        self._done: set[Hashable] = set()

    def _ready(self, unit: Unit) -> bool:
        return all(d in self._done for d in deps_of(unit))

    def hold_back(self, unit: Unit) -> bool:
        """True if the unit must wait (it then waits here); False if it may run now."""
        with self._lock:
            if self._ready(unit):
                return False
            self._waiting.append(unit)
            return True

    def finished(self, uid: Hashable) -> list[Unit]:
        """A unit finished OK: the units it freed, to dispatch, then to pass to `dispatched`."""
        with self._lock:
            self._done.add(uid)
            ready = [u for u in self._waiting if self._ready(u)]
            self._waiting = [u for u in self._waiting if u not in ready]
            self._freeing.update(u.index for u in ready)
        return ready

    def dispatched(self, unit: Unit) -> None:
        with self._lock:
            self._freeing.discard(unit.index)

    def pending(self, unit: Unit) -> bool:
        """Still waiting, or freed and about to be dispatched."""
        with self._lock:
            return unit in self._waiting or unit.index in self._freeing

    def drop(self) -> list[Unit]:
        """The call is aborted: the units still waiting, which now never run."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
        return waiting
