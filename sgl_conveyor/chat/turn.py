"""What one streamed chat response produced: its content, its tool calls with their results or
errors and timelines, and the messages to send back.

Plain data, filled in by `chat.engine`; reading it never blocks.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sgl_conveyor.errors import ChatStreamError, ToolCallError
from sgl_conveyor.lang.render import Render, result_text
from sgl_conveyor.runtime.timeline import Timeline

_RENDER = Render()


@dataclass
class ChatCall:
    """One tool call of a response, by its index in the stream."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: Any = None  # the parsed arguments, once complete
    arguments_text: str = ""  # as streamed
    result: Any = None
    error: ToolCallError | None = None
    timelines: list[Timeline] = field(default_factory=list)  # one per attempt (a redo adds one)
    mode: str | None = None
    result_max_chars: int = 8000

    @property
    def timeline(self) -> Timeline | None:
        return self.timelines[-1] if self.timelines else None

    @property
    def ok(self) -> bool:
        return self.error is None

    def content(self) -> str:
        """The tool message's text: the result, or the error for the model to read."""
        value = self.error if self.error is not None else self.result
        return result_text(value, _RENDER, self.result_max_chars)

    def report(self) -> dict[str, Any]:
        """The JSON view `sgl_conveyor.call_report` gives for a partial_tool call."""
        return {
            "tool": self.name,
            "mode": self.mode,
            "attempts": len(self.timelines),
            "error": self.error.to_dict() if self.error is not None else None,
            "calls": [t.to_dict() for t in self.timelines],
        }


@dataclass
class ChatTurn:
    """One streamed response and its tool calls.

    `messages` is what to append to the conversation: the assistant message with its
    `tool_calls`, then one tool message per call in index order. `error` is set when the
    response itself failed (a server error, a cut stream); `stopped` says why sgl_conveyor
    closed the stream early (a call that could not succeed).
    """

    content: str = ""
    calls: list[ChatCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Any = None
    id: str | None = None
    model: str | None = None
    mode: str | None = None
    error: ChatStreamError | None = None
    stopped: str | None = None
    requested: float | None = None  # perf_counter: the request was sent
    first_chunk: float | None = None
    stream_end: float | None = None
    chunks: int = 0

    @property
    def cached_tokens(self) -> int | None:
        details = getattr(self.usage, "prompt_tokens_details", None)
        return getattr(details, "cached_tokens", None)

    @property
    def prompt_tokens(self) -> int | None:
        return getattr(self.usage, "prompt_tokens", None)

    @property
    def completion_tokens(self) -> int | None:
        return getattr(self.usage, "completion_tokens", None)

    @property
    def assistant_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name or "", "arguments": c.arguments_text},
                }
                for c in self.calls
            ]
        elif message["content"] is None:
            message["content"] = ""
        return message

    @property
    def messages(self) -> list[dict[str, Any]]:
        out = [self.assistant_message]
        out += [{"role": "tool", "tool_call_id": c.id, "content": c.content()} for c in self.calls]
        return out

    def call_report(self, index: int) -> dict[str, Any]:
        return self.calls[index].report()

    def mark_injected(self) -> None:
        """The tool messages entered the conversation (the timelines' `result_injected`)."""
        t = time.perf_counter()
        for c in self.calls:
            for tl in c.timelines:
                tl.mark("result_injected", t)


def ensure_ids(calls: Sequence[ChatCall]) -> None:
    """A call the server sent without an id gets one, so its tool message can refer to it."""
    for c in calls:
        if not c.id:
            c.id = f"call_{uuid.uuid4().hex[:24]}"


@dataclass
class ChatRun:
    """The rounds of `chat.run`: each turn, and the messages they added (assistant and tool
    messages, in order). `answered` is True when the last turn had no tool call."""

    turns: list[ChatTurn] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        return bool(self.turns) and not self.turns[-1].calls and self.turns[-1].error is None

    @property
    def content(self) -> str:
        return self.turns[-1].content if self.turns else ""

    @property
    def calls(self) -> list[ChatCall]:
        return [c for t in self.turns for c in t.calls]

    def call_report(self, index: int) -> dict[str, Any]:
        """The report of the run's `index`-th call, counting across rounds."""
        return self.calls[index].report()
