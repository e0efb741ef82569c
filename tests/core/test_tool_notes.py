"""A tool's own notes (`ctx.note`) land in the call's timeline, beside the runtime's."""

from __future__ import annotations

import sglang as sgl

import sgl_conveyor
from sgl_conveyor import Tool, ToolRegistry
from sgl_conveyor.backends.replay import ReplayBackend

SPEC = {
    "type": "function",
    "function": {
        "name": "fetch",
        "description": "Fetch pages.",
        "parameters": {
            "type": "object",
            "properties": {"urls": {"type": "array", "items": {"type": "string"}}},
        },
    },
    "conveyor": {"units": [{"path": "/urls/*", "effect": "pure"}], "cost_model": False},
}


class Fetch(Tool):
    def start(self, ctx):
        ctx.note("connected", pool=2)

    def run_unit(self, unit, ctx):
        return len(unit.value)

    def finish(self, arguments, results, ctx):
        ctx.note("fetched", pages=len(results))
        return [r.value for r in results]


def test_a_tools_notes_are_in_the_call_report():
    reg = ToolRegistry()
    reg.add(SPEC, Fetch)

    @sgl.function
    def program(s, q, task_id=None):
        s += sgl.user(q)
        s += sgl.assistant(sgl.partial_tool("fetch", name="call", registry=reg))

    task = {"id": "t", "input": {"q": "q"}, "outputs": ['{"urls": ["a.b", "c.de"]}']}
    st = program.run(q="q", backend=ReplayBackend([task], tokens_per_second=300))
    assert st["call_result"] == [3, 4]
    (call,) = sgl_conveyor.call_report(st, "call")["calls"]
    notes = {n["event"]: n for n in call["notes"]}
    assert notes["connected"]["pool"] == 2 and notes["fetched"]["pages"] == 2
