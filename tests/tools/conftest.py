"""Fixtures of the built-in tools' tests: nothing (process, thread) may be left behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from tool_helpers import live_children, wait_until


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fails the test if it leaves a child process or a thread running."""
    procs = {p.pid for p in live_children()}
    threads = set(threading.enumerate())
    yield
    assert wait_until(lambda: {p.pid for p in live_children()} <= procs), [
        (p.pid, p.cmdline()[:3]) for p in live_children() if p.pid not in procs
    ]
    assert wait_until(lambda: set(threading.enumerate()) <= threads), [
        t.name for t in set(threading.enumerate()) - threads
    ]
