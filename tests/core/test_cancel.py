"""`sgl_conveyor.cancel(state)` reaches every phase of a call: a tool with no units (a plain
OpenAI tool) is cancelled inside its `finish`, and the result is CallCancelledError."""

from __future__ import annotations

import threading
import time

import sglang as sgl

import sgl_conveyor
from sgl_conveyor import CallCancelledError, Tool, ToolRegistry
from sgl_conveyor.backends.replay import ReplayBackend

PLAIN_TOOL = {  # an OpenAI tool definition as is: one irreversible unit, the whole call
    "type": "function",
    "function": {
        "name": "book",
        "description": "Book a table.",
        "parameters": {
            "type": "object",
            "properties": {"restaurant": {"type": "string"}},
            "required": ["restaurant"],
        },
    },
}
CALL = '{"restaurant": "Chez Nous"}'


class SlowBooking(Tool):
    """`finish` takes 20 s unless cancelled (`ctx.sleep` wakes on cancellation)."""

    def __init__(self, spec=None):
        super().__init__(spec)
        self.finishing = threading.Event()

    def finish(self, arguments, results, ctx):
        self.finishing.set()
        ctx.sleep(20)
        return "booked"


def test_cancel_reaches_a_tools_finish():
    reg = ToolRegistry()
    reg.add(PLAIN_TOOL, SlowBooking)
    tool = reg.tool("book")

    @sgl.function
    def program(s, question, task_id=None):
        s += sgl.user(question)
        s += sgl.assistant(sgl.partial_tool("book", name="call", registry=reg))

    task = {"id": "t", "input": {"question": "q"}, "outputs": [CALL]}
    state = program.run(
        question="q", backend=ReplayBackend([task], tokens_per_second=200), stream=True
    )
    assert tool.finishing.wait(20), "finish never started"
    t0 = time.monotonic()
    sgl_conveyor.cancel(state)
    state.sync()
    waited = time.monotonic() - t0
    assert isinstance(state["call_result"], CallCancelledError), state["call_result"]
    assert waited < 10  # ended by the cancellation, not by finish's 20 s
