"""The built-in tools inside the runtime's call scope (ToolCall), as a program uses them: units
added while "decoding", the call closed or aborted, nothing left running afterwards."""

from __future__ import annotations

import dataclasses
import time

import pytest
from tool_helpers import json_unit, make_tool, text_units, wait_until

from sgl_conveyor.errors import ArgumentRejectedError, ToolCallError
from sgl_conveyor.runtime.call import ToolCall
from sgl_conveyor.tools.builtin.faulty import FaultLedger, FaultyTool, faulty_spec

CODE = "import math\nr = 2\narea = math.pi * r ** 2\nprint(round(area, 3))\n"


def run_call(tool, units, arguments, mode="partial"):
    call = ToolCall(tool, tool.spec, mode)
    try:
        call.begin()
        for u in units:
            call.add_unit(u)
        return call.close(arguments)
    except ToolCallError as e:
        call.abort(e)
        raise
    finally:
        call.end()


def test_python_in_every_mode_gives_the_script_s_output(no_leaks):
    tool = make_tool("python")
    try:
        for mode in ("partial", "sequential", "call-eager"):
            units = text_units(tool.spec, CODE)
            assert run_call(tool, units, {"code": CODE}, mode) == "12.566\n"
    finally:
        tool.close()


def test_python_aborted_mid_call_discards_its_interpreter(no_leaks):
    tool = make_tool("python")
    try:
        call = ToolCall(tool, dataclasses.replace(tool.spec, cost_model=False), "partial")
        call.begin()
        for u in text_units(tool.spec, "x = 1\ny = 2\n"):
            call.add_unit(u)
        assert wait_until(lambda: len(call.ctx.results) == 2)
        sandbox = call.ctx.state["python"].future.result(timeout=20)
        call.abort(None)
        call.end()
        assert not sandbox.alive
    finally:
        tool.close()


def test_a_syntax_error_stops_the_call_at_its_statement(no_leaks):
    tool = make_tool("python")
    try:
        with pytest.raises(ArgumentRejectedError, match="line 2"):
            code = "print('ran')\nprint(\n"
            units = text_units(tool.spec, "print('ran')\nprint(1 +)\n")
            run_call(tool, units, {"code": code})
    finally:
        tool.close()


def test_search_queries_overlap_with_the_rest_of_the_call(no_leaks):
    tool = make_tool("search", latency_ms=300, latency_sigma=0)
    try:
        queries = ["Oslo population", "Rome population", "Lima population"]
        # The runtime's cost model is out of this test: it may batch units it thinks cheap.
        call = ToolCall(tool, dataclasses.replace(tool.spec, cost_model=False), "partial")
        call.begin()
        for i, q in enumerate(queries):
            call.add_unit(json_unit(f"/queries/{i}", q, i))
            time.sleep(0.3)  # the model writing the next query
        t0 = time.perf_counter()
        out = call.close({"queries": queries})
        waited = time.perf_counter() - t0
        call.end()
        assert [r["hits"][0]["title"] for r in out["results"]] == ["Oslo", "Rome", "Lima"]
        assert waited < 0.3 + 0.25  # only the last query was still in flight
    finally:
        tool.close()


def test_an_invalid_news_location_stops_the_call_at_that_argument(no_leaks):
    tool = make_tool("get_local_news")
    try:
        call = ToolCall(tool, tool.spec, "partial")
        call.begin()
        with pytest.raises(ArgumentRejectedError, match="Did you mean: New York, NY"):
            call.add_unit(json_unit("/location", "New York"))
        call.abort(call.failure)
        call.end()
    finally:
        tool.close()


def test_a_hanging_faulty_step_ends_when_the_call_is_aborted(no_leaks):
    ledger = FaultLedger()
    tool = FaultyTool(faulty_spec(), ledger=ledger)
    call = ToolCall(tool, tool.spec, "partial")
    call.begin()
    call.add_unit(json_unit("/steps/0", {"op": "ok"}, 0))
    call.add_unit(json_unit("/steps/1", {"op": "hang"}, 1))
    assert wait_until(lambda: ledger.active == 1)
    t0 = time.monotonic()
    call.abort(None)
    call.end()
    assert time.monotonic() - t0 < 3 and ledger.active == 0
    assert sorted(ledger.runs().values()) == [1, 1] and not ledger.duplicates()
