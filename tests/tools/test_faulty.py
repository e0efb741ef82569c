"""The `faulty` tool: every fault on demand, every execution counted."""

from __future__ import annotations

import json
import threading
import time

import pytest
from tool_helpers import json_unit, make_ctx

from sgl_conveyor.errors import ArgumentRejectedError, CallCancelledError
from sgl_conveyor.tools.base import UnitResult
from sgl_conveyor.tools.builtin.faulty import (
    FaultLedger,
    FaultyTool,
    InjectedFault,
    Opaque,
    faulty_spec,
)
from sgl_conveyor.tools.spec import Effect, Order


@pytest.fixture
def tool():
    return FaultyTool(faulty_spec(), ledger=FaultLedger())


def step(i: int, **fields):
    return json_unit(f"/steps/{i}", fields, i)


def test_each_op_does_what_it_says(tool):
    ctx = make_ctx(tool)
    assert tool.run_unit(step(0, op="ok", tag="a"), ctx) == {"step": 0, "op": "ok", "tag": "a"}
    t0 = time.monotonic()
    tool.run_unit(step(1, op="sleep", ms=120), ctx)
    assert time.monotonic() - t0 >= 0.12
    with pytest.raises(InjectedFault, match="step 2"):
        tool.run_unit(step(2, op="raise"), ctx)
    assert len(tool.run_unit(step(3, op="big", size=1_000_000), ctx)) == 1_000_000
    opaque = tool.run_unit(step(4, op="unserializable"), ctx)
    assert isinstance(opaque, Opaque) and repr(opaque) == "<Opaque step 4>"
    with pytest.raises(TypeError):
        json.dumps(opaque)
    with pytest.raises(ArgumentRejectedError, match="step 5 is rejected"):
        tool.check_unit(step(5, op="reject"), ctx)


def test_hang_ends_only_when_the_call_is_cancelled(tool):
    ctx = make_ctx(tool)
    threading.Timer(0.2, ctx.cancelled.set).start()
    t0 = time.monotonic()
    with pytest.raises(CallCancelledError):
        tool.run_unit(step(0, op="hang"), ctx)
    assert 0.15 < time.monotonic() - t0 < 3
    assert tool.ledger.active == 0


def test_every_execution_undo_and_abort_is_counted_by_unit_key(tool):
    ctx = make_ctx(tool)
    units = [step(i, op="ok") for i in range(3)]
    for u in units:
        tool.check_unit(u, ctx)
        tool.run_unit(u, ctx)
    tool.run_unit(units[1], ctx)  # a double execution, on purpose
    assert tool.ledger.executions() == 4
    assert tool.ledger.duplicates() == {ctx.key(units[1]): 2}
    tool.undo_unit(units[0], None, ctx)
    tool.abort(ctx, None)
    assert tool.ledger.undos() == {ctx.key(units[0]): 1}
    assert tool.ledger.aborts() == {ctx.call_id: 1}
    tool.ledger.reset()
    assert tool.ledger.executions() == 0


def test_finish_reports_each_step_in_order(tool):
    ctx = make_ctx(tool)
    units = [step(i, op="ok", tag=str(i)) for i in range(3)]
    results = [UnitResult(u, tool.run_unit(u, ctx)) for u in reversed(units)]
    out = tool.finish({"steps": [u.value for u in units]}, results, ctx)
    assert [s["tag"] for s in out["steps"]] == ["0", "1", "2"]


def test_spec_variants_change_the_effect_order_and_limits():
    spec = faulty_spec("irreversible", "serial", name="faulty_serial", unit_timeout_s=0.5)
    assert spec.name == "faulty_serial"
    assert spec.units[0].effect is Effect.IRREVERSIBLE and spec.order is Order.SERIAL
    assert spec.unit_timeout_s == 0.5
    assert faulty_spec().units[0].effect is Effect.PURE
