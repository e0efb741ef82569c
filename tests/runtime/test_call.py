"""The call scope on its own: units fed by hand, a recording tool, real threads."""

from __future__ import annotations

import threading
import time

import pytest

from sgl_conveyor.errors import (
    ArgumentRejectedError,
    ResultNotSerializableError,
    SchemaViolationError,
    ToolCallError,
    ToolExecutionError,
    ToolTimeoutError,
)
from sgl_conveyor.runtime.call import Mode, ToolCall
from sgl_conveyor.runtime.cost_model import CostModel
from sgl_conveyor.runtime.ledger import UnitLedger
from sgl_conveyor.tools.base import Tool
from sgl_conveyor.tools.spec import spec_from_dict
from sgl_conveyor.units.base import Unit


def make_spec(effect="pure", order="parallel", cost_model=False, **conv):
    return spec_from_dict(
        {
            "type": "function",
            "function": {
                "name": "rec",
                "description": "records",
                "parameters": {
                    "type": "object",
                    "properties": {"items": {"type": "array", "items": {"type": "string"}}},
                    "required": ["items"],
                },
            },
            "conveyor": {
                "units": [{"path": "/items/*", "effect": effect}],
                "order": order,
                "cost_model": cost_model,
                "unit_timeout_s": conv.pop("unit_timeout_s", 5),
                **conv,
            },
        }
    )


class Recorder(Tool):
    """Runs units by sleeping `ms` given in the item text ("a:30"), records everything."""

    def __init__(self, spec):
        super().__init__(spec)
        self.events: list[tuple[str, str, float]] = []
        self.lock = threading.Lock()
        self.undone: list[str] = []
        self.aborted = 0
        self.started = 0

    def _log(self, kind, what):
        with self.lock:
            self.events.append((kind, what, time.perf_counter()))

    def start(self, ctx):
        self.started += 1

    def check_unit(self, unit, ctx):
        if unit.value.startswith("bad"):
            raise ArgumentRejectedError(f"{unit.value} is rejected")

    def run_unit(self, unit, ctx):
        name, _, ms = unit.value.partition(":")
        self._log("start", name)
        if name == "boom":
            raise ValueError("kaboom")
        if name == "hang":
            ctx.sleep(60)
        if ms:
            ctx.sleep(int(ms) / 1000)
        self._log("end", name)
        if name == "unserializable":
            return object()
        if name == "deep":
            value: list = []
            for _ in range(100_000):
                value = [value]
            return value
        return name.upper()

    def undo_unit(self, unit, result, ctx):
        self.undone.append(unit.value)

    def finish(self, arguments, results, ctx):
        values = [r.value for r in results]
        if any(isinstance(v, object) and not isinstance(v, (str, int)) for v in values):
            return {"values": values}
        return {"values": values, "deps": dict(ctx.results)}

    def abort(self, ctx, error):
        self.aborted += 1


def unit(i, value, meta=None):
    return Unit(
        path=f"/items/{i}",
        index=i,
        value=value,
        text=f'"{value}"',
        start=0,
        end=0,
        meta=meta or {},
    )


def run_call(call, values, metas=None):
    call.begin()
    for i, v in enumerate(values):
        call.add_unit(unit(i, v, (metas or {}).get(i)))
    try:
        return call.close({"items": values})
    finally:
        call.end()


def new_call(spec, mode=Mode.PARTIAL, **kw):
    tool = Recorder(spec)
    kw.setdefault("ledger", UnitLedger())
    return ToolCall(tool, spec, mode, **kw), tool


def test_partial_dispatches_each_unit_before_the_call_closes():
    call, tool = new_call(make_spec())
    call.begin()
    call.add_unit(unit(0, "a:10"))
    call.add_unit(unit(1, "b:10"))
    time.sleep(0.1)  # the "decoder" is still busy: both units ran meanwhile
    started = {w for k, w, _ in tool.events if k == "end"}
    assert started == {"a", "b"}
    result = call.close({"items": ["a:10", "b:10"]})
    call.end()
    assert result["values"] == ["A", "B"]
    tl = call.timeline
    assert all(u.dispatched is not None and u.dispatched < tl.call_closed for u in tl.units)
    assert tl.leaked_threads == 0


def test_sequential_runs_nothing_before_the_call_closes():
    call, tool = new_call(make_spec(), Mode.SEQUENTIAL)
    call.begin()
    call.add_unit(unit(0, "a"))
    call.add_unit(unit(1, "b"))
    time.sleep(0.05)
    assert tool.events == [] and tool.started == 0
    assert call.close({"items": ["a", "b"]})["values"] == ["A", "B"]
    call.end()
    assert all(u.dispatched >= call.timeline.call_closed for u in call.timeline.units)


def test_results_keep_unit_order_whatever_the_finish_order():
    call, _ = new_call(make_spec())
    assert run_call(call, ["slow:80", "fast:1", "mid:30"])["values"] == ["SLOW", "FAST", "MID"]


def test_irreversible_units_wait_for_validation():
    call, tool = new_call(make_spec(effect="irreversible"))
    call.begin()
    call.add_unit(unit(0, "a"))
    time.sleep(0.05)
    assert tool.events == []
    assert call.timeline.units[0].decision == "hold"
    assert call.close({"items": ["a"]})["values"] == ["A"]
    call.end()


def test_serial_tool_keeps_order_even_when_a_unit_is_held():
    spec = spec_from_dict(
        {
            "type": "function",
            "function": {
                "name": "rec",
                "parameters": {"type": "object", "properties": {"items": {"type": "array"}}},
            },
            "conveyor": {
                "units": [
                    {"path": "/items/0", "effect": "pure"},
                    {"path": "/items/1", "effect": "irreversible"},
                    {"path": "/items/*", "effect": "pure"},
                ],
                "order": "serial",
                "cost_model": False,
            },
        }
    )
    tool = Recorder(spec)
    call = ToolCall(tool, spec, Mode.PARTIAL, ledger=UnitLedger())
    call.begin()
    for i, (v, pat) in enumerate([("a:20", 0), ("b", 1), ("c", 2)]):
        call.add_unit(Unit(f"/items/{i}", i, v, v, 0, 0, pattern=pat))
    time.sleep(0.08)
    assert [w for k, w, _ in tool.events if k == "start"] == ["a"]  # c waits behind held b
    call.close({"items": ["a:20", "b", "c"]})
    call.end()
    assert [w for k, w, _ in tool.events if k == "start"] == ["a", "b", "c"]


def test_dag_units_run_after_their_dependencies_with_their_results():
    call, tool = new_call(make_spec(order="dag"))
    metas = {0: {"id": 1}, 1: {"id": 2, "deps": (1,)}, 2: {"id": 3}}
    result = run_call(call, ["a:40", "b", "c"], metas)
    starts = {w: t for k, w, t in tool.events if k == "start"}
    ends = {w: t for k, w, t in tool.events if k == "end"}
    assert starts["b"] >= ends["a"]
    assert starts["c"] < ends["a"]  # independent of a: did not wait
    assert result["deps"] == {1: "A", 2: "B", 3: "C"}


def test_a_raising_unit_fails_the_call_with_a_typed_error():
    call, tool = new_call(make_spec())
    call.begin()
    call.add_unit(unit(0, "boom"))
    deadline = time.time() + 2
    while call.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert isinstance(call.failure, ToolExecutionError)
    assert "kaboom" in str(call.failure) and call.failure.unit == "/items/0"
    with pytest.raises(ToolExecutionError):
        call.add_unit(unit(1, "x"))
    call.abort(call.failure)
    call.end()
    assert tool.aborted == 1 and call.timeline.leaked_threads == 0


def test_a_rejected_argument_fails_at_once_inline():
    call, _ = new_call(make_spec())
    call.begin()
    with pytest.raises(ArgumentRejectedError, match="bad-x is rejected"):
        call.add_unit(unit(0, "bad-x"))
    call.abort(call.failure)
    call.end()


def test_schema_violation_of_a_unit_is_detected_when_the_unit_completes():
    call, _ = new_call(make_spec())
    call.begin()
    with pytest.raises(SchemaViolationError, match="/items/0"):
        call.add_unit(unit(0, 42))
    call.abort(call.failure)
    call.end()


def test_a_hanging_unit_times_out_and_its_thread_is_gone():
    call, _ = new_call(make_spec(unit_timeout_s=0.2))
    before = threading.active_count()
    call.begin()
    call.add_unit(unit(0, "hang"))
    with pytest.raises(ToolTimeoutError, match=r"limit of 0\.2"):
        call.close({"items": ["hang"]})
    call.abort(call.failure)
    call.end()
    assert call.timeline.leaked_threads == 0
    assert threading.active_count() <= before


def test_abort_undoes_reversible_units_in_reverse_order():
    call, tool = new_call(make_spec(effect="reversible"))
    call.begin()
    call.add_unit(unit(0, "a"))
    call.add_unit(unit(1, "b"))
    time.sleep(0.05)
    call.abort(ValueError("program failed"))
    call.end()
    completed = [w for k, w, _ in tool.events if k == "end"]
    assert sorted(completed) == ["a", "b"]
    assert tool.undone == list(reversed(completed))  # last done, first undone
    assert tool.aborted == 1


def test_identical_pure_units_share_one_execution():
    call, tool = new_call(make_spec())
    result = run_call(call, ["q:20", "q:20", "r"])
    assert result["values"] == ["Q", "Q", "R"]
    assert [w for k, w, _ in tool.events if k == "start"].count("q") == 1
    assert [u.decision for u in call.timeline.units].count("shared") == 1


def test_the_ledger_runs_a_unit_once_per_program_lineage():
    spec = make_spec(effect="idempotent")
    tool = Recorder(spec)
    ledger = UnitLedger()
    program = {"question": "x"}
    for _ in range(2):  # the same call, re-run (e.g. from a fork of the program)
        call = ToolCall(tool, spec, Mode.PARTIAL, ledger=ledger, lineage=program, call_key="k")
        assert run_call(call, ["a"])["values"] == ["A"]
    assert [w for k, w, _ in tool.events if k == "start"] == ["a"]
    other = ToolCall(tool, spec, Mode.PARTIAL, ledger=ledger, lineage={"q": 1}, call_key="k")
    run_call(other, ["a"])
    assert [w for k, w, _ in tool.events if k == "start"] == ["a", "a"]


def test_cost_model_defers_units_too_cheap_to_hand_off():
    cm = CostModel()
    spec = make_spec(cost_model=True)
    for _ in range(5):
        cm.observe_run("rec", 0, 0.00001)
    call, tool = new_call(spec, cost_model=cm)
    call.begin()
    call.add_unit(unit(0, "a"))
    assert call.timeline.units[0].decision == "defer"
    assert tool.events == []
    assert call.close({"items": ["a"]})["values"] == ["A"]
    call.end()
    assert call._pool.threads_started == 1  # only finish used a thread; the unit ran inline


def test_cost_model_runs_units_worth_it_at_once():
    cm = CostModel()
    for _ in range(5):
        cm.observe_run("rec", 0, 0.2)
    call, _ = new_call(make_spec(cost_model=True), cost_model=cm)
    call.begin()
    call.add_unit(unit(0, "a"))
    assert call.timeline.units[0].decision == "run"
    call.close({"items": ["a"]})
    call.end()


def test_a_result_that_cannot_be_rendered_is_a_typed_error():
    call, _ = new_call(make_spec())
    with pytest.raises(ResultNotSerializableError):
        run_call(call, ["unserializable"])


def test_a_result_nested_100k_deep_is_not_serializable_not_a_tool_failure():
    call, _ = new_call(make_spec())
    with pytest.raises(ResultNotSerializableError, match="nested too deeply"):
        run_call(call, ["deep"])


class Stubborn(Recorder):
    def run_unit(self, unit, ctx):
        time.sleep(3.0)  # ignores cancellation on purpose
        return "late"


def test_a_unit_that_ignores_cancellation_is_counted_as_leaked():
    spec = make_spec()
    call = ToolCall(Stubborn(spec), spec, Mode.PARTIAL, ledger=UnitLedger())
    call.begin()
    call.add_unit(unit(0, "a"))
    time.sleep(0.05)
    call.abort(ValueError("stop"))
    call.end()
    assert call.timeline.leaked_threads == 1
    assert any(n[1] == "leaked_threads" for n in call.timeline.notes)


def test_serial_order_holds_with_batched_held_and_deferred_units_mixed():
    spec = spec_from_dict(
        {
            "type": "function",
            "function": {
                "name": "rec",
                "parameters": {"type": "object", "properties": {"items": {"type": "array"}}},
            },
            "conveyor": {
                "units": [
                    {"path": "/items/1", "effect": "irreversible"},
                    {"path": "/items/*", "effect": "pure"},
                ],
                "order": "serial",
            },
        }
    )
    cm = CostModel()
    cm.observe_overhead(0.001)
    for _ in range(5):
        cm.observe_run("rec", 1, 0.004)  # between 2x and 10x the hand-off: batched
    tool = Recorder(spec)
    call = ToolCall(tool, spec, Mode.PARTIAL, ledger=UnitLedger(), cost_model=cm)
    call.begin()
    values = ["a", "b", "c", "d"]
    for i, v in enumerate(values):
        call.add_unit(Unit(f"/items/{i}", i, v, v, 0, 0, pattern=0 if i == 1 else 1))
    decisions = [u.decision for u in call.timeline.units]
    assert decisions == ["batch", "hold", "hold", "hold"]
    assert call.close({"items": values})["values"] == ["A", "B", "C", "D"]
    call.end()
    assert [w for k, w, _ in tool.events if k == "start"] == values


def test_a_burst_of_slow_hand_offs_does_not_defer_real_work():
    cm = CostModel()
    for _ in range(40):
        cm.observe_overhead(0.0002)
    for _ in range(10):  # a loaded machine: ten hand-offs stall 80 ms each
        cm.observe_overhead(0.08)
    assert cm.overhead_s() < 0.001
    cm.observe_run("search", 0, 0.4)
    assert cm.decide("search", 0, None)[0] == "run"
    for _ in range(64):  # even a machine that stays this loaded never defers a 400 ms unit
        cm.observe_overhead(0.08)
    assert cm.decide("search", 0, None)[0] == "run"


def test_units_of_one_pattern_are_costed_by_kind():
    cm = CostModel()
    for _ in range(5):
        cm.observe_run("plan", 0, 0.6, "lookup")
        cm.observe_run("plan", 0, 0.00005, "ratio")
    assert cm.decide("plan", 0, None, "lookup")[0] == "run"
    assert cm.decide("plan", 0, None, "ratio")[0] == "defer"
    assert cm.decide("plan", 0, None, "unseen")[0] == "run"  # unknown cost: run at once


class FailsSlowlyOnX(Recorder):
    """Identical pure units fail; the error names the unit that ran the shared execution."""

    def run_unit(self, unit, ctx):
        time.sleep(0.05)
        if unit.value == "x":
            raise ValueError(f"failed in {unit.path}")
        return unit.value


@pytest.mark.parametrize("mode", [Mode.SEQUENTIAL, Mode.PARTIAL])
def test_the_first_of_identical_units_owns_their_execution_whatever_the_threads_do(mode):
    spec = make_spec()
    for _ in range(15):
        call = ToolCall(FailsSlowlyOnX(spec), spec, mode, ledger=UnitLedger())
        with pytest.raises(ToolCallError) as err:
            run_call(call, ["x", "y", "x", "x"])
        assert "/items/0" in str(err.value), err.value
        decisions = [u.decision for u in call.timeline.units]
        assert decisions[2] == decisions[3] == "shared"


def test_an_aborted_call_frees_copies_waiting_for_a_first_copy_that_never_ran():
    cm = CostModel()
    for _ in range(5):
        cm.observe_run("rec", 0, 0.00001)  # cheap: deferred to the close, which never comes
    spec = make_spec(cost_model=True)
    call, _ = new_call(spec, cost_model=cm)
    call.begin()
    call.add_unit(unit(0, "a"))
    cm._run.clear()  # now unknown: the copy runs at once, and waits for the first copy
    call.add_unit(unit(1, "a"))
    time.sleep(0.05)
    t0 = time.perf_counter()
    call.abort(ValueError("stop"))
    call.end()
    assert time.perf_counter() - t0 < 2.0
    assert call.timeline.leaked_threads == 0


class FailsAfter(Recorder):
    """Every unit fails after the milliseconds in its text ("x:50")."""

    def run_unit(self, unit, ctx):
        name, ms = unit.value.split(":")
        time.sleep(int(ms) / 1000)
        raise ValueError(f"{name} failed")


def test_when_several_units_fail_the_call_fails_with_the_earliest_units_error():
    spec = make_spec()
    call = ToolCall(FailsAfter(spec), spec, Mode.SEQUENTIAL, ledger=UnitLedger())
    call.begin()
    for i, v in enumerate(["x:80", "z:5"]):
        call.add_unit(unit(i, v))
    with pytest.raises(ToolCallError) as first:
        call.close({"items": ["x:80", "z:5"]})
    assert "z failed" in str(first.value)  # fail fast: the first failure in time stops the call
    call.abort(first.value)
    call.end()
    assert "x failed" in str(call.failure)  # what the call reports: the earliest unit's error


def test_leaving_the_with_block_ends_the_call_and_aborts_it_if_the_block_raised():
    call, tool = new_call(make_spec(effect="reversible"))
    with pytest.raises(RuntimeError, match="the node failed"), call:
        call.begin()
        call.add_unit(unit(0, "a"))
        time.sleep(0.05)
        raise RuntimeError("the node failed")
    assert tool.undone == ["a"] and tool.aborted == 1
    assert call.ctx.cancelled.is_set()
    assert call.timeline.leaked_threads == 0


def test_a_call_used_with_with_returns_its_result_and_leaves_no_thread():
    before = threading.active_count()
    call, tool = new_call(make_spec())
    with call:
        call.begin()
        call.add_unit(unit(0, "a:10"))
        assert call.close({"items": ["a:10"]})["values"] == ["A"]
    assert tool.aborted == 0
    assert threading.active_count() <= before


def test_waiting_for_slow_units_after_the_stream_does_not_spin():
    call, _ = new_call(make_spec())
    polls = 0
    poll = call.poll

    def counted():
        nonlocal polls
        polls += 1
        return poll()

    call.poll = counted
    with call:
        call.begin()
        call.add_unit(unit(0, "a:400"))
        call.close({"items": ["a:400"]})
    # Woken by changes (a start, a result), never by a timer: a handful of looks, not one per tick.
    assert polls < 6
