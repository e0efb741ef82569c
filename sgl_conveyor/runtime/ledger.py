"""The unit ledger: exactly-once execution across retries, attempts and forks.

Every unit that runs is claimed here first under a stable key. A second claim of the same key
(a retried stream, a program re-run from a fork, an identical pure unit) does not run the tool
again: it waits for and reuses the first execution's outcome. An execution that failed or was
undone is released, so a later call may run it for real.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from concurrent.futures import Future

from sgl_conveyor.tools.spec import Effect
from sgl_conveyor.units.base import Unit


def ledger_key(
    *, lineage: int, tool: str, call_key: str, unit: Unit, effect: Effect
) -> tuple[Hashable, ...]:
    """Pure units are keyed by content alone (within a program's lineage): the same query twice
    is one execution. Units with effects are also keyed by their call and position."""
    digest = unit.digest
    if effect is Effect.PURE:
        return (lineage, tool, unit.pattern, digest)
    return (lineage, tool, call_key, unit.path, digest)


class UnitLedger:
    """A bounded, thread-safe map from unit keys to the future of their one execution."""

    def __init__(self, capacity: int = 50_000):
        self.capacity = capacity
        self._entries: OrderedDict[tuple[Hashable, ...], tuple[Future, object]] = OrderedDict()
        self._lock = threading.Lock()
        self.executions = 0

    def claim(self, key: tuple[Hashable, ...], owner: object) -> tuple[bool, Future]:
        """(True, future) if the caller must run the unit and resolve the future; (False,
        future) if another execution owns it: wait on the future and reuse its outcome.

        `owner` is kept alive with the entry (the program's arguments object) so that the
        lineage id inside the key cannot be reused by a new object while the entry lives.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return False, entry[0]
            fut: Future = Future()
            fut.set_running_or_notify_cancel()
            self._entries[key] = (fut, owner)
            self.executions += 1
            while len(self._entries) > self.capacity:
                old_key, (old_fut, _) = next(iter(self._entries.items()))
                if not old_fut.done():
                    break  # never drop an execution still under way
                del self._entries[old_key]
            return True, fut

    def release(self, key: tuple[Hashable, ...], fut: Future) -> None:
        """Forget an execution that failed or was undone, so it can run again later."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] is fut:
                del self._entries[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


_DEFAULT = UnitLedger()


def default_ledger() -> UnitLedger:
    return _DEFAULT
