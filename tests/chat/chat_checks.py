"""Checks of `sgl_conveyor.chat` against any OpenAI-compatible server, written once for the
loopback test server and for real ones: point `client` at `sgl-conveyor serve`'s `/v1` (or at
vLLM) and call them with its model name.

    client = OpenAI(base_url=f"{serve_url}/v1", api_key="none", max_retries=0)
    check_partial_turn(client, "smollm2", tools=["search"], messages=[...], tool_choice=NAMED)

Each asserts what a user relies on, from the turn alone: the call ended with a result, its
messages are well formed, and (partial mode) a unit was dispatched before the response's
stream ended, or (sequential) none was. Order of events, never durations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sgl_conveyor
from sgl_conveyor import chat


def named(tool: str) -> dict[str, Any]:
    """A named tool choice (servers constrain the arguments to the tool's schema)."""
    return {"type": "function", "function": {"name": tool}}


def check_turn_messages(turn: chat.ChatTurn) -> None:
    """The messages to send back: the assistant message with every call, then one tool
    message per call in index order, each answering its call's id."""
    messages = turn.messages
    assert messages[0]["role"] == "assistant"
    calls = messages[0].get("tool_calls") or []
    assert [c["id"] for c in calls] == [m["tool_call_id"] for m in messages[1:]]
    assert all(m["role"] == "tool" and isinstance(m["content"], str) for m in messages[1:])
    assert [c.index for c in turn.calls] == sorted(c.index for c in turn.calls)


def dispatched_before_end(turn: chat.ChatTurn, index: int = 0) -> list[str]:
    """The units of call `index` dispatched before the response's stream ended."""
    timeline = turn.calls[index].timeline
    assert timeline is not None and turn.stream_end is not None
    return [
        u.path
        for u in timeline.units
        if u.dispatched is not None and u.dispatched < turn.stream_end
    ]


def check_partial_turn(
    client: Any,
    model: str,
    *,
    tools: Sequence[Any],
    messages: Sequence[Mapping[str, Any]],
    tool_choice: Any,
    **create_kwargs: Any,
) -> chat.ChatTurn:
    """One partial-mode turn: a result, well-formed messages, a unit dispatched while the
    response was still streaming, and the report `call_report` gives for it."""
    turn = chat.complete(
        client,
        model=model,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        mode="partial",
        **create_kwargs,
    )
    assert turn.error is None, turn.error
    assert turn.calls, f"no tool call (content {turn.content!r})"
    assert turn.calls[0].error is None, turn.calls[0].error
    check_turn_messages(turn)
    assert dispatched_before_end(turn), "no unit was dispatched before the stream ended"
    report = sgl_conveyor.call_report(turn, 0)
    assert report["mode"] == "partial" and report["calls"][0]["units"]
    return turn


def check_sequential_turn(
    client: Any,
    model: str,
    *,
    tools: Sequence[Any],
    messages: Sequence[Mapping[str, Any]],
    tool_choice: Any,
    **create_kwargs: Any,
) -> chat.ChatTurn:
    """The baseline: the same result, and nothing dispatched before the stream ended."""
    turn = chat.complete(
        client,
        model=model,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        mode="sequential",
        **create_kwargs,
    )
    assert turn.error is None, turn.error
    assert turn.calls and turn.calls[0].error is None, turn.calls and turn.calls[0].error
    check_turn_messages(turn)
    assert dispatched_before_end(turn) == []
    return turn
