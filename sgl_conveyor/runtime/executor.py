"""Where a call's units run: its pool, one future per unit, one execution per identical unit
(of the call, and through the ledger of the program).

It owns threads, futures and the sharing of executions, nothing else: when a unit runs and
what its outcome means are the scope's (`runtime.call`). Every future it hands out notifies
the call's Wakeup when it is registered and when it resolves, so the scope's waits never poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from sgl_conveyor.runtime.ledger import UnitLedger
from sgl_conveyor.runtime.pool import UnitPool
from sgl_conveyor.runtime.wakeup import Wakeup


class Executor:
    """The workers of one call. Thread-safe; units are named by their index in the call."""

    def __init__(self, workers: int, name: str, wakeup: Wakeup, ledger: UnitLedger):
        self.pool = UnitPool(workers, name=name)
        self._wakeup = wakeup
        self._ledger = ledger
        self._lock = threading.Lock()
        self._futures: dict[int, Future] = {}  # unit index -> future of its UnitResult
        # Identical units of this call share one execution; the first copy (in stream order)
        # claims it, so which unit owns it (and names a failure) never depends on thread timing.
        self._keys: dict[int, tuple[Any, ...]] = {}  # each unit's ledger key, hashed once
        self._first_copy: dict[tuple[Any, ...], int] = {}
        self._claimed: dict[int, threading.Event] = {}

    # --- identical units ---------------------------------------------------------------------

    def add(self, index: int, key: tuple[Any, ...]) -> None:
        """A unit arrived with this ledger key; copies of one key share one claim."""
        with self._lock:
            self._keys[index] = key
            first = self._first_copy.setdefault(key, index)
            self._claimed[index] = self._claimed.get(first) or threading.Event()

    def key(self, index: int) -> tuple[Any, ...] | None:
        return self._keys.get(index)

    def _is_first(self, index: int, key: Hashable) -> bool:
        return self._first_copy.get(key, index) == index

    @contextmanager
    def turn(self, index: int, key: tuple[Any, ...], timeout: float) -> Iterator[None]:
        """A later copy waits (up to `timeout`) until the first copy has claimed the shared
        execution; the first copy lets them go when it leaves, claimed or not."""
        claimed = self._claimed.get(index)
        first = self._is_first(index, key)
        try:
            if not first and claimed is not None:
                claimed.wait(timeout)
            yield
        finally:
            if first and claimed is not None:
                claimed.set()

    def _claimed_by(self, index: int, key: tuple[Any, ...]) -> None:
        """The first copy holds the shared execution: later copies may now share it."""
        claimed = self._claimed.get(index)
        if claimed is not None and self._first_copy.get(key) == index:
            claimed.set()

    def run_once(
        self,
        index: int,
        key: tuple[Any, ...],
        lineage: object,
        run: Callable[[], Any],
        *,
        on_shared: Callable[[], None],
        timeout: float,
    ) -> tuple[bool, Any]:
        """`run()`, unless an identical unit of the program (the ledger's key) already runs or
        ran it: then its outcome, waited for up to `timeout` (FutureTimeout past it), told to
        `on_shared` first. Returns (whether this unit ran it, the value); raises as it raised."""
        owner, shared = self._ledger.claim(key, lineage)
        self._claimed_by(index, key)
        if not owner:
            on_shared()
            return False, shared.result(timeout=timeout)
        try:
            value = run()
        except BaseException as e:
            shared.set_exception(e)
            self._ledger.release(key, shared)
            raise
        shared.set_result(value)
        return True, value

    # --- futures -----------------------------------------------------------------------------

    def _register(self, index: int, fut: Future) -> None:
        with self._lock:
            self._futures[index] = fut
        fut.add_done_callback(lambda _: self._wakeup.notify())
        self._wakeup.notify()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Work of the call that is not a unit (warm-up, finish)."""
        return self.pool.submit(fn, *args)

    def submit_unit(self, index: int, fn: Callable[..., Any], *args: Any) -> None:
        self._register(index, self.pool.submit(fn, *args))

    def submit_batch(self, indices: list[int], fn: Callable[..., dict[int, Any]]) -> None:
        """One hand-off for several units: `fn()` returns each one's result by index."""
        batch_future = self.pool.submit(fn)
        for index in indices:
            fut: Future = Future()
            fut.set_running_or_notify_cancel()
            self._register(index, fut)
            batch_future.add_done_callback(_resolve_from_batch(fut, index))

    def run_inline(self, index: int, fn: Callable[..., Any], *args: Any) -> None:
        """Run on the caller's thread, with a future like any other unit's."""
        fut: Future = Future()
        fut.set_running_or_notify_cancel()
        fut.set_result(fn(*args))
        self._register(index, fut)

    def future(self, index: int) -> Future | None:
        with self._lock:
            return self._futures.get(index)

    def futures_before(self, index: int) -> list[Future]:
        with self._lock:
            return [f for i, f in self._futures.items() if i < index]

    # --- the end -----------------------------------------------------------------------------

    def cancel(self) -> list[Future]:
        """Cancel what has not started and let copies waiting for a first copy go; returns the
        futures to join."""
        with self._lock:
            futures = list(self._futures.values())
            claims = list(self._claimed.values())
        for event in claims:
            event.set()  # a copy waiting for a first copy that will never run: let it end
        for f in futures:
            f.cancel()
        return futures

    def shutdown(self, timeout: float) -> int:
        """Join the workers; returns how many are still alive (leaked)."""
        return self.pool.shutdown(timeout=timeout)


def _resolve_from_batch(fut: Future, index: int):
    def done(batch_future: Future) -> None:
        try:
            fut.set_result(batch_future.result()[index])
        except BaseException as e:
            fut.set_exception(e)

    return done
