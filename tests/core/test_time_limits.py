"""Time limits are on the tool's own work, never on the model's decoding (replay backend).

A unit's limit counts from the unit's start; the call's limit counts the warm-up and what the
tool does after the stream ended. A call decoded far slower than its limit must succeed in
every mode; a tool that hangs must still fail within its limit after the point it starts.
"""

from __future__ import annotations

import pytest
import sglang as sgl

from sgl_conveyor import Tool, ToolRegistry, ToolTimeoutError
from sgl_conveyor.backends.replay import ReplayBackend

MODES = ("partial", "sequential", "call-eager")
UNIT_LIMIT_S = 1.0  # each unit's limit
CALL_LIMIT_S = 1.5  # the call's: both far shorter than the decoding below
GRACE_S = 1.5  # detection (polling), thread hand-offs and a loaded CI machine


def lookup_spec(name: str) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": "Look up facts.",
            "parameters": {
                "type": "object",
                "properties": {"queries": {"type": "array", "items": {"type": "string"}}},
                "required": ["queries"],
            },
        },
        "conveyor": {
            "units": [{"path": "/queries/*", "effect": "pure", "timeout_s": UNIT_LIMIT_S}],
            "timeout_s": CALL_LIMIT_S,
            "unit_timeout_s": UNIT_LIMIT_S,
            "cost_model": False,
        },
    }


class Lookup(Tool):
    """Warms up for 0.2 s, runs each query for 0.1 s; `hang` makes one phase never return
    (until the call is cancelled, as a well-behaved tool does)."""

    hang: str | None = None

    def _maybe_hang(self, phase: str, ctx) -> None:
        if self.hang == phase:
            ctx.cancelled.wait(30)

    def start(self, ctx):
        ctx.sleep(0.2)
        self._maybe_hang("start", ctx)

    def run_unit(self, unit, ctx):
        ctx.sleep(0.1)
        if unit.index == 1:
            self._maybe_hang("unit", ctx)
        return f"facts about {unit.value}"

    def finish(self, arguments, results, ctx):
        self._maybe_hang("finish", ctx)
        return [r.value for r in results]


def registry_with(hang: str | None) -> ToolRegistry:
    cls = type("HangingLookup", (Lookup,), {"hang": hang})
    reg = ToolRegistry()
    reg.add(lookup_spec("lookup"), cls)
    return reg


CALL = '{"queries": ["Paris population", "Berlin population", "Rome population", "Oslo"]}'


def run(registry, mode, tps):
    task = {"id": "t", "input": {"question": "q"}, "outputs": [CALL, "Done."]}

    @sgl.function
    def program(s, question, task_id=None):
        s += sgl.user(question)
        s += sgl.assistant(sgl.partial_tool("lookup", name="call", mode=mode, registry=registry))
        s += sgl.assistant(sgl.gen("answer", max_tokens=8))

    backend = ReplayBackend([task], tokens_per_second=tps, ttft_s=0.05)
    state = program.run(question="q", backend=backend)
    state.sync()
    timeline = state.get_meta_info("call")["conveyor"]["timelines"][-1]
    return state, timeline


@pytest.mark.parametrize("mode", MODES)
def test_a_call_decoded_far_slower_than_its_limit_succeeds(mode):
    # About 25 tokens at 5 tokens/s: the decoding takes about 5 s against a 1.5 s limit.
    state, tl = run(registry_with(None), mode, tps=5)
    assert tl.stream_end - tl.stream_start > 2 * CALL_LIMIT_S
    assert state["call_result"] == [
        f"facts about {q}"
        for q in ("Paris population", "Berlin population", "Rome population", "Oslo")
    ]
    assert state["answer"] == "Done."


def test_a_call_decoded_at_two_tokens_per_second_succeeds():
    state, tl = run(registry_with(None), "partial", tps=2)
    assert tl.stream_end - tl.stream_start > 5 * CALL_LIMIT_S
    assert not isinstance(state["call_result"], Exception), state["call_result"]


def _failed_at(tl) -> float:
    assert tl.aborted is not None, "the call was not aborted"
    return tl.aborted


@pytest.mark.parametrize("mode", MODES)
def test_a_hanging_unit_fails_within_its_limit_of_its_start(mode):
    state, tl = run(registry_with("unit"), mode, tps=8)
    err = state["call_result"]
    assert isinstance(err, ToolTimeoutError), err
    assert "/queries/1" in str(err)
    started = tl.units[1].started
    assert started is not None
    assert UNIT_LIMIT_S <= _failed_at(tl) - started < UNIT_LIMIT_S + GRACE_S


@pytest.mark.parametrize("mode", MODES)
def test_a_hanging_finish_fails_within_the_call_limit_after_the_stream(mode):
    state, tl = run(registry_with("finish"), mode, tps=8)
    err = state["call_result"]
    assert isinstance(err, ToolTimeoutError), err
    # The stream itself took longer than the limit: only what followed it counts.
    assert tl.call_closed - tl.stream_start > CALL_LIMIT_S
    assert CALL_LIMIT_S - 0.5 < _failed_at(tl) - tl.call_closed < CALL_LIMIT_S + GRACE_S


def test_a_hanging_warm_up_fails_within_the_call_limit_of_its_start():
    state, tl = run(registry_with("start"), "partial", tps=5)
    err = state["call_result"]
    assert isinstance(err, ToolTimeoutError), err
    assert tl.tool_start is not None
    # Partial mode warms the tool up when the stream starts: the limit runs from there, and
    # the call fails while it is still being decoded, not at its end.
    assert CALL_LIMIT_S <= _failed_at(tl) - tl.tool_start < CALL_LIMIT_S + GRACE_S
    assert len(state["call"]) < len(CALL)  # decoding stopped early
