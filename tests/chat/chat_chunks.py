"""Chat streams shaped like the ones real servers send, built from the official SDK's own
`ChatCompletionChunk` objects: one call's arguments split the ways parsers split them (token
by token, re-serialised JSON prefixes, one member per fragment, the whole call at the end),
several calls per chunk, repeated and empty fragments.

Expectations never come from sgl_conveyor: a script is built from the calls' arguments, and
what a test expects is computed from those arguments with `json`.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import (
    Choice,
    ChoiceDelta,
    ChoiceDeltaToolCall,
    ChoiceDeltaToolCallFunction,
)
from openai.types.completion_usage import CompletionUsage, PromptTokensDetails

STYLES = ("tokens", "reserialised", "per_member", "whole_at_end", "chars")


@dataclass(frozen=True)
class Piece:
    """One tool-call delta: the call's index, and its start (id, name) or an argument text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str | None = None


def chunk(
    pieces: Sequence[Piece] = (),
    *,
    content: str | None = None,
    finish_reason: str | None = None,
    usage: CompletionUsage | None = None,
    choices: bool = True,
) -> ChatCompletionChunk:
    """One real SDK chunk holding these deltas."""
    tool_calls = [
        ChoiceDeltaToolCall(
            index=p.index,
            id=p.id,
            type="function" if p.name else None,
            function=ChoiceDeltaToolCallFunction(name=p.name, arguments=p.arguments),
        )
        for p in pieces
    ] or None
    delta = ChoiceDelta(content=content, tool_calls=tool_calls, role=None)
    return ChatCompletionChunk(
        id="chatcmpl-test",
        object="chat.completion.chunk",
        created=0,
        model="scripted",
        choices=[Choice(index=0, delta=delta, finish_reason=finish_reason)] if choices else [],
        usage=usage,
    )


def usage(prompt: int = 10, completion: int = 5, cached: int | None = None) -> CompletionUsage:
    details = PromptTokensDetails(cached_tokens=cached) if cached is not None else None
    return CompletionUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=details,
    )


def argument_fragments(arguments: Any, style: str, rng: random.Random) -> list[str]:
    """The argument text of one call, split the way one kind of parser splits it."""
    if style == "reserialised":  # SGLang's JSON parsers: prefixes of json.dumps, any cut
        text = json.dumps(arguments)
    else:  # the model's own spacing
        text = json.dumps(arguments, indent=rng.choice([None, 2]), separators=(",", ": "))
    if style == "whole_at_end":
        return [text]
    if style == "chars":
        return list(text)
    if style == "per_member" and isinstance(arguments, dict) and arguments:
        members = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in arguments.items()]
        return ["{" + members[0], *[", " + m for m in members[1:]], "}"]
    cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, rng.randint(1, 12))))
    points = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(points) if b > a]


def call_script(
    calls: Sequence[tuple[str, Any]],
    rng: random.Random,
    *,
    style: str | None = None,
    finish_reason: str = "tool_calls",
    per_chunk: int = 1,
    empty_fragments: bool = False,
    repeat_at_end: bool = False,
    content: str | None = None,
    with_usage: bool = True,
) -> list[ChatCompletionChunk]:
    """A whole response of tool calls as SDK chunks. `per_chunk` packs that many deltas into
    one chunk (speculative decoding, SGLang #37634); `whole_at_end` puts every call's arguments
    into the finishing chunk (gpt-oss, pythonic); `repeat_at_end` sends each call's arguments
    again once they are done (a server repeating what it streamed)."""
    deltas: list[Piece] = []
    at_end: list[Piece] = []
    for i, (name, arguments) in enumerate(calls):
        how = style or rng.choice(STYLES)
        target = at_end if style == "whole_at_end" else deltas
        opening = "" if rng.random() < 0.5 else None
        target.append(Piece(i, id=f"call_{i}", name=name, arguments=opening))
        fragments = argument_fragments(arguments, how, rng)
        for f in fragments:
            if empty_fragments and rng.random() < 0.3:
                target.append(Piece(i, arguments=""))
            target.append(Piece(i, arguments=f))
        if repeat_at_end:
            target.append(Piece(i, arguments=json.dumps(arguments)))
    out: list[ChatCompletionChunk] = []
    if content:
        out.append(chunk(content=content))
    for k in range(0, len(deltas), per_chunk):
        out.append(chunk(deltas[k : k + per_chunk]))
    out.append(chunk(at_end, finish_reason=finish_reason))
    if with_usage:
        out.append(chunk(usage=usage(cached=4), choices=False))
    return out


def content_script(text: str, rng: random.Random) -> list[ChatCompletionChunk]:
    """A plain answer, no tool call."""
    cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, 4))) if len(text) > 1 else []
    points = [0, *cuts, len(text)]
    parts = [text[a:b] for a, b in itertools.pairwise(points) if b > a]
    return [*(chunk(content=p) for p in parts), chunk(finish_reason="stop")]
