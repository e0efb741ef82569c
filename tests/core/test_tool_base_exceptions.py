"""A tool that raises SystemExit (or any BaseException) in any phase: the program still ends,
with a ToolExecutionError in the state (it once killed the executor thread and hung)."""

from __future__ import annotations

import sys
import threading

import pytest
import sglang as sgl

from sgl_conveyor import Tool, ToolExecutionError, ToolRegistry
from sgl_conveyor.backends.replay import ReplayBackend

SPEC = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look up facts.",
        "parameters": {
            "type": "object",
            "properties": {"queries": {"type": "array", "items": {"type": "string"}}},
            "required": ["queries"],
        },
    },
    "conveyor": {"units": [{"path": "/queries/*", "effect": "reversible"}], "cost_model": False},
}
CALL = '{"queries": ["Paris", "Rome"]}'


class Exiting(Tool):
    phases: tuple[str, ...] = ()

    def _exit(self, phase: str) -> None:
        if phase in self.phases:
            sys.exit(3)  # what argparse or a plain function's sys.exit does

    def start(self, ctx):
        self._exit("start")

    def check_unit(self, unit, ctx):
        self._exit("check_unit")

    def run_unit(self, unit, ctx):
        self._exit("run_unit")
        return unit.value

    def undo_unit(self, unit, value, ctx):
        self._exit("undo_unit")

    def finish(self, arguments, results, ctx):
        self._exit("finish")
        return [r.value for r in results]


def run(phases: tuple[str, ...], mode: str):
    reg = ToolRegistry()
    reg.add(SPEC, type("ExitingLookup", (Exiting,), {"phases": phases}))
    task = {"id": "t", "input": {"question": "q"}, "outputs": [CALL, "Done."]}

    @sgl.function
    def program(s, question, task_id=None):
        s += sgl.user(question)
        s += sgl.assistant(sgl.partial_tool("lookup", name="call", mode=mode, registry=reg))
        s += sgl.assistant(sgl.gen("answer", max_tokens=8))

    holder = {}

    def target():
        st = program.run(question="q", backend=ReplayBackend([task], tokens_per_second=200))
        st.sync()
        holder["state"] = st

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), f"the program hung on SystemExit in {phases}"
    return holder["state"]


@pytest.mark.parametrize("mode", ["partial", "sequential"])
@pytest.mark.parametrize("phase", ["start", "check_unit", "run_unit", "finish"])
def test_system_exit_in_a_tool_becomes_a_clear_error(phase, mode):
    st = run((phase,), mode)
    err = st["call_result"]
    assert isinstance(err, ToolExecutionError), err
    assert "SystemExit" in str(err)
    assert st["answer"] == "Done."  # the program went on


def test_system_exit_while_undoing_still_ends_the_program():
    # The units ran, finish exits, so the reversible units are undone: and undo exits too.
    st = run(("finish", "undo_unit"), "partial")
    err = st["call_result"]
    assert isinstance(err, ToolExecutionError) and "SystemExit" in str(err), err
    assert st["answer"] == "Done."
