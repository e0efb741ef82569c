"""End to end through the official `openai` client over real HTTP on loopback: the scripted
server speaks the streaming chat protocol, and gates in its scripts prove the order of events
(a unit ran before the server sent the rest), never their timing."""

from __future__ import annotations

import random

from chat_checks import check_partial_turn, check_sequential_turn, named
from chat_chunks import Piece, call_script, chunk, content_script, usage
from chat_sse_server import AwaitDisconnect, Cut, ErrorEvent, Gate, HttpError

import sgl_conveyor
from sgl_conveyor import chat
from sgl_conveyor.errors import (
    ChatStreamError,
    SchemaViolationError,
    TruncatedCallError,
    UnconfirmedCallError,
)

QUESTION = [{"role": "user", "content": "Compare Paris and Rome."}]


def gated_lookup(tools, queries, *, finish="tool_calls"):
    """A lookup call whose first query is complete, then a gate that opens only once the
    tool ran that query, then the rest of the call."""
    first = '{"queries": [' + f'"{queries[0]}"'
    rest = "".join(f', "{q}"' for q in queries[1:]) + "]}"
    return [
        chunk(content="Let me look."),
        chunk([Piece(0, id="call_a", name="lookup", arguments="")]),
        chunk([Piece(0, arguments=first)]),
        chunk([Piece(0, arguments=",")]),  # the comma proves the first string ended
        Gate(tools.lookup.ran, "first unit ran"),
        chunk([Piece(0, arguments=rest[1:])]),
        chunk(finish_reason=finish),
        chunk(usage=usage(prompt=40, cached=32), choices=False),
    ]


def test_units_run_while_the_response_streams(sse_server, openai_client, tools):
    tools.lookup.log = sse_server.log
    sse_server.push(gated_lookup(tools, ["paris", "rome", "berlin"]))
    turn = check_partial_turn(
        openai_client, "m", tools=tools.toolset, messages=QUESTION, tool_choice="auto"
    )
    log = sse_server.log
    assert log.first("unit_run", "paris") < log.first("gate_open") < log.first("sent", "tool_calls")
    assert turn.calls[0].result == {"answers": ["PARIS", "ROME", "BERLIN"]}
    assert turn.content == "Let me look." and turn.finish_reason == "tool_calls"
    assert turn.cached_tokens == 32 and turn.prompt_tokens == 40
    request = sse_server.requests[0]
    assert request["stream"] is True and request["tool_choice"] == "auto"
    assert {t["function"]["name"] for t in request["tools"]} == {"lookup", "book"}
    assert all(t["function"]["strict"] is True for t in request["tools"])
    report = sgl_conveyor.call_report(turn, 0)
    assert [u["path"] for u in report["calls"][0]["units"]] == [f"/queries/{i}" for i in range(3)]


def test_the_stream_iterator_gives_content_and_call_events_in_order(
    sse_server, openai_client, tools
):
    sse_server.push(gated_lookup(tools, ["a", "b"]))
    with chat.stream(openai_client, model="m", messages=QUESTION, tools=tools.toolset) as events:
        kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "ContentDelta" and kinds[-1] == "TurnDone"
    order = [k for k in kinds if k in ("CallStarted", "UnitReady", "ArgumentsDone", "CallDone")]
    assert order == ["CallStarted", "UnitReady", "UnitReady", "ArgumentsDone", "CallDone"]
    assert events.turn.calls[0].result == {"answers": ["A", "B"]}


def test_sequential_runs_nothing_before_the_stream_ends(sse_server, openai_client, tools):
    script = call_script([("lookup", {"queries": ["x", "y"]})], random.Random(0))
    sse_server.push(script)
    turn = check_sequential_turn(
        openai_client, "m", tools=tools.toolset, messages=QUESTION, tool_choice="required"
    )
    assert turn.calls[0].result == {"answers": ["X", "Y"]}


def test_an_invalid_call_closes_the_stream_and_the_server_sees_it(sse_server, openai_client, tools):
    sse_server.push(
        [
            chunk([Piece(0, id="c", name="lookup", arguments='{"queries": ["ok", "')]),
            chunk([Piece(0, arguments="far too long for the schema of lookup" + '", ')]),
            AwaitDisconnect(),
            chunk([Piece(0, arguments='"never"]}')]),
            chunk(finish_reason="tool_calls"),
        ]
    )
    turn = chat.complete(openai_client, model="m", messages=QUESTION, tools=tools.toolset)
    assert isinstance(turn.calls[0].error, SchemaViolationError)
    assert turn.calls[0].error.unit == "/queries/1"
    assert turn.stopped is not None
    assert sse_server.ended(1) == [True]
    assert "done" not in sse_server.log.kinds()
    assert "never" not in tools.lookup.runs
    # The model reads why in the tool message of the next round.
    assert "too long" in turn.messages[1]["content"]


def test_parallel_calls_then_the_answer(sse_server, openai_client, tools):
    """Two lookups and a booking in one response; their results go back in index order, and
    the second round answers."""
    calls = [
        ("lookup", {"queries": ["paris", "rome"]}),
        ("book", {"place": "Rome", "people": 2}),
        ("lookup", {"queries": ["oslo"]}),
    ]
    sse_server.push(
        call_script(calls, random.Random(5), per_chunk=2),
        content_script("Rome is bigger.", random.Random(1)),
    )
    run = chat.run(
        openai_client,
        model="m",
        messages=QUESTION,
        tools=tools.toolset,
        tool_choice="required",
        max_rounds=3,
    )
    assert run.answered and run.content == "Rome is bigger."
    assert [c.result for c in run.turns[0].calls] == [
        {"answers": ["PARIS", "ROME"]},
        "booked Rome for 2",
        {"answers": ["OSLO"]},
    ]
    second = sse_server.requests[1]
    assert second["tool_choice"] == "auto"
    sent = second["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool", "tool"]
    assert [m["tool_call_id"] for m in sent[2:]] == ["call_0", "call_1", "call_2"]
    assert tools.bookings.made == [("Rome", 2)]


def test_failures_of_the_server_are_typed_and_lose_nothing(sse_server, openai_client, tools):
    # An HTTP error before any chunk.
    sse_server.push(HttpError(400, "model 'm' not found"))
    turn = chat.complete(openai_client, model="m", messages=QUESTION, tools=tools.toolset)
    assert isinstance(turn.error, ChatStreamError) and turn.error.status == 400
    assert "not found" in str(turn.error) and turn.calls == []

    # An error event mid-stream: the cut call is truncated, the complete booking unconfirmed.
    sse_server.push(
        [
            chunk([Piece(0, id="b", name="book", arguments='{"place": "Nice", "people": 1}')]),
            chunk([Piece(1, id="l", name="lookup", arguments='{"queries": ["a"')]),
            ErrorEvent("engine overloaded"),
        ]
    )
    turn = chat.complete(openai_client, model="m", messages=QUESTION, tools=tools.toolset)
    assert isinstance(turn.error, ChatStreamError) and "engine overloaded" in str(turn.error)
    assert isinstance(turn.calls[0].error, UnconfirmedCallError)
    assert isinstance(turn.calls[1].error, TruncatedCallError)
    assert tools.bookings.made == []
    assert len(turn.messages) == 3  # every call still gets its tool message

    # The connection cut without [DONE] or a finish reason.
    sse_server.push(
        [chunk([Piece(0, id="l", name="lookup", arguments='{"queries": ["z"]}')]), Cut()]
    )
    turn = chat.complete(openai_client, model="m", messages=QUESTION, tools=tools.toolset)
    assert isinstance(turn.error, ChatStreamError)
    assert turn.calls[0].result == {"answers": ["Z"]}  # complete and pure: it stands


def test_a_named_choice_is_confirmed_by_stop(sse_server, openai_client, tools):
    sse_server.push(
        call_script(
            [("book", {"place": "Oslo", "people": 4})], random.Random(2), finish_reason="stop"
        )
    )
    turn = chat.complete(
        openai_client, model="m", messages=QUESTION, tools=tools.toolset, tool_choice=named("book")
    )
    assert turn.calls[0].result == "booked Oslo for 4"
    assert sse_server.requests[0]["tool_choice"] == named("book")
