"""A bounded pool of worker threads owned by one tool call.

Structured concurrency: the call that creates the pool shuts it down when it ends, so no thread
outlives its call unless a tool ignores cancellation (then the thread is counted as leaked and
left as a daemon). Threads start lazily: a call with no early units starts none.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

_STOP = object()


class UnitPool:
    """FIFO task pool of at most `max_workers` threads. With one worker, tasks run in order."""

    def __init__(self, max_workers: int, name: str = "conveyor"):
        if max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        self.max_workers = max_workers
        self.name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        fut: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("pool is shut down")
            self._queue.put((fut, fn, args))
            if self._idle == 0 and len(self._threads) < self.max_workers:
                t = threading.Thread(
                    target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(t)
                t.start()
            else:
                self._idle -= 1 if self._idle > 0 else 0
        return fut

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            fut, fn, args = item
            if not fut.set_running_or_notify_cancel():
                with self._lock:
                    self._idle += 1
                continue
            try:
                value, error = fn(*args), None
            except BaseException as e:  # the future carries it to the waiter
                value, error = None, e
            # Idle before resolving: a waiter that submits more work right after must find us.
            with self._lock:
                self._idle += 1
            if error is None:
                fut.set_result(value)
            else:
                fut.set_exception(error)

    @property
    def threads_started(self) -> int:
        return len(self._threads)

    def shutdown(self, timeout: float = 2.0) -> int:
        """Stop accepting work, let queued tasks drain, and join the threads.

        Returns the number of threads still alive after `timeout` (leaked: a tool that ignores
        cancellation). Queued tasks whose futures were cancelled are skipped.
        """
        with self._lock:
            if self._closed:
                return sum(t.is_alive() for t in self._threads)
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(_STOP)
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return sum(t.is_alive() for t in threads)
