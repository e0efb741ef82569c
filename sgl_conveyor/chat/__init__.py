"""Partial tool execution on any OpenAI-compatible chat stream (SGLang's server, vLLM, a
provider), through the official `openai` client.

    client = OpenAI(base_url="http://127.0.0.1:30000/v1", api_key="none")
    turn = sgl_conveyor.chat.complete(client, model=..., messages=messages, tools=["search"])
    messages += turn.messages        # the assistant message, then one tool message per call
    turn.calls[0].result             # each unit ran while the response was still streaming

`run()` loops call, results, call... until the model answers; `stream()` yields content
deltas and call events as they happen. The modes, effects, ledger, cost model and timelines
are partial_tool's own (sgl_conveyor.runtime).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

try:
    import openai  # noqa: F401  (the SDK whose streams this package reads)
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "sgl_conveyor.chat needs the official openai client: pip install 'sgl-conveyor[chat]'"
    ) from e

from sgl_conveyor.chat.engine import TurnEngine, request_key
from sgl_conveyor.chat.events import (
    ArgumentsDelta,
    ArgumentsDone,
    CallDone,
    CallStarted,
    ChatEvent,
    ContentDelta,
    TurnDone,
    UnitReady,
)
from sgl_conveyor.chat.toolset import Binding, ToolEntry, ToolSet, tool_definitions
from sgl_conveyor.chat.turn import ChatCall, ChatRun, ChatTurn
from sgl_conveyor.runtime.call import Mode
from sgl_conveyor.tools.registry import ToolRegistry

__all__ = [
    "ArgumentsDelta",
    "ArgumentsDone",
    "Binding",
    "CallDone",
    "CallStarted",
    "ChatCall",
    "ChatEvent",
    "ChatRun",
    "ChatStream",
    "ChatTurn",
    "ContentDelta",
    "ToolSet",
    "TurnDone",
    "UnitReady",
    "complete",
    "run",
    "stream",
    "tool_definitions",
]

_OURS = ("stream", "tools")  # request fields complete() sets itself


class ChatStream:
    """An iterator of a turn's events (ContentDelta, CallStarted, ArgumentsDelta, UnitReady,
    ArgumentsDone, CallDone, then TurnDone). `turn` is complete once it is exhausted.
    Stopping early (`close()`, or leaving a `with` block) closes the response and ends every
    call it started."""

    def __init__(self, events: Iterator[Any], engine: TurnEngine):
        self._events = events
        self._engine = engine

    @property
    def turn(self) -> ChatTurn:
        return self._engine.turn

    def __iter__(self) -> Iterator[ChatEvent]:
        return self

    def __next__(self) -> ChatEvent:
        return next(self._events)

    def close(self) -> None:
        self._events.close()  # type: ignore[attr-defined]

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def stream(
    client: Any,
    *,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    tools: Iterable[ToolEntry] | ToolSet = (),
    mode: Mode | str | None = None,
    tool_choice: Any = "auto",
    registry: ToolRegistry | None = None,
    strict: bool = True,
    lineage: object | None = None,
    **create_kwargs: Any,
) -> ChatStream:
    """Send one streamed chat request and follow it: each tool call's units run while the
    response streams. `client` is an `openai.OpenAI`; `create_kwargs` go to
    `client.chat.completions.create` (max_tokens, temperature, extra_body...)."""
    clash = sorted(set(_OURS) & set(create_kwargs))
    if clash:
        raise TypeError(f"complete() sets {clash} itself")
    toolset = tools if isinstance(tools, ToolSet) else ToolSet(tools, registry)
    if mode is None:
        from sgl_conveyor.lang.partial_tool import get_default_mode

        mode = get_default_mode()
    mode = Mode(mode)
    messages = [dict(m) for m in messages]
    request: dict[str, Any] = {"model": model, "messages": messages, "stream": True}
    if len(toolset):
        request["tools"] = toolset.definitions(strict=strict)
        request["tool_choice"] = tool_choice
    request.setdefault("stream_options", {"include_usage": True})
    request.update(create_kwargs)
    engine = TurnEngine(
        toolset,
        mode,
        tool_choice=tool_choice,
        lineage=lineage,
        key_base=request_key(model, messages),
    )
    events = engine.run(lambda: client.chat.completions.create(**request))
    return ChatStream(events, engine)


def complete(
    client: Any,
    *,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    tools: Iterable[ToolEntry] | ToolSet = (),
    mode: Mode | str | None = None,
    tool_choice: Any = "auto",
    registry: ToolRegistry | None = None,
    on_event: Any = None,
    **create_kwargs: Any,
) -> ChatTurn:
    """One streamed response, its tool calls run partially while it streams; returns the
    ChatTurn (`turn.messages` to append, `turn.calls[i].result`). `on_event(event)` sees each
    event as it happens. Never raises for what the server or the model did: a failed call has
    its `.error`, a failed response `turn.error`."""
    with stream(
        client,
        model=model,
        messages=messages,
        tools=tools,
        mode=mode,
        tool_choice=tool_choice,
        registry=registry,
        **create_kwargs,
    ) as events:
        for event in events:
            if on_event is not None:
                on_event(event)
        return events.turn


def run(
    client: Any,
    *,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    tools: Iterable[ToolEntry] | ToolSet = (),
    max_rounds: int = 4,
    mode: Mode | str | None = None,
    tool_choice: Any = "auto",
    next_tool_choice: Any = "auto",
    registry: ToolRegistry | None = None,
    on_event: Any = None,
    **create_kwargs: Any,
) -> ChatRun:
    """The agent loop: a response, its tool results, the next response... until the model
    answers without a tool call, a response fails, or `max_rounds` responses were made.
    `tool_choice` applies to the first round, `next_tool_choice` to the later ones (a forced
    call every round would never let the model answer). Identical pure units of one run are
    executed once (the ledger's lineage is the run)."""
    if max_rounds < 1:
        raise ValueError("max_rounds must be >= 1")
    toolset = tools if isinstance(tools, ToolSet) else ToolSet(tools, registry)
    result = ChatRun()
    history = [dict(m) for m in messages]
    for round_no in range(max_rounds):
        with stream(
            client,
            model=model,
            messages=history,
            tools=toolset,
            mode=mode,
            tool_choice=tool_choice if round_no == 0 else next_tool_choice,
            lineage=result,
            **create_kwargs,
        ) as events:
            for event in events:
                if on_event is not None:
                    on_event(event)
            turn = events.turn
        result.turns.append(turn)
        history += turn.messages
        turn.mark_injected()
        result.messages += turn.messages
        if not turn.calls or turn.error is not None:
            break
    return result
