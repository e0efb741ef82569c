"""The small parts the call scope is made of, each on its own: DAG waiting, failure order, waits."""

from __future__ import annotations

import threading
import time

from sgl_conveyor.errors import ToolCallError, ToolExecutionError
from sgl_conveyor.runtime.dag import Dependencies
from sgl_conveyor.runtime.failures import comes_first, raised
from sgl_conveyor.runtime.wakeup import Wakeup
from sgl_conveyor.units.base import Unit


def step(i, deps=()):
    return Unit(path=f"/steps/{i}", index=i, value={}, text="{}", start=0, end=0,
                meta={"id": i, "deps": list(deps)})  # fmt: skip


def test_a_dag_unit_waits_until_each_of_its_dependencies_finished():
    dag = Dependencies()
    first, second, third = step(0), step(1, [0]), step(2, [0, 1])
    assert not dag.hold_back(first)
    assert dag.hold_back(second) and dag.hold_back(third)
    assert [u.index for u in dag.finished(0)] == [1]
    assert dag.pending(second)  # freed, not dispatched yet: still not "never scheduled"
    dag.dispatched(second)
    assert not dag.pending(second) and dag.pending(third)
    assert [u.index for u in dag.finished(1)] == [2]


def test_an_aborted_dag_drops_its_waiting_units():
    dag = Dependencies()
    dag.hold_back(step(1, [0]))
    assert [u.index for u in dag.drop()] == [1]
    assert dag.finished(0) == []


def test_the_error_of_the_earlier_unit_comes_first_and_a_call_error_never_displaces_one():
    positions = {"/a": 0, "/b": 1}
    a, b = ToolCallError("a", unit="/a"), ToolCallError("b", unit="/b")
    assert comes_first(a, b, positions) and not comes_first(b, a, positions)
    assert not comes_first(ToolCallError("whole call"), b, positions)


def test_a_tools_exception_says_where_it_raised():
    try:
        raise KeyError("k")
    except KeyError as e:
        err = raised("calc", e, "/x")
    assert isinstance(err, ToolExecutionError) and err.unit == "/x"
    assert "calc raised on unit /x: KeyError" in str(err) and "test_scope_parts.py:" in str(err)


def test_a_wait_wakes_on_a_change_not_on_a_timer():
    wake, flag = Wakeup(), threading.Event()

    def later():
        time.sleep(0.1)
        flag.set()
        wake.notify()

    threading.Thread(target=later).start()
    t0 = time.monotonic()
    assert wake.wait_until(flag.is_set)
    assert time.monotonic() - t0 < 2.0


def test_a_wait_ends_at_its_deadline():
    wake = Wakeup()
    until = time.monotonic() + 0.05
    assert not wake.wait_until(lambda: False, lambda: until)
    assert time.monotonic() >= until
