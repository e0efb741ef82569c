"""Prompt helpers that teach a model to write a tool's call: a description plus few-shot examples.

Small models (SmolLM2-135M) do not write tool calls when merely asked; with the argument schema
enforced by constrained decoding and two or three worked examples from the tool spec, they do.
Pure text: nothing here runs a model or touches sglang.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sgl_conveyor.lang.render import role_affixes
from sgl_conveyor.tools.registry import ToolRegistry, default_registry
from sgl_conveyor.tools.spec import ToolSpec


def _spec(tool: str | ToolSpec, registry: ToolRegistry) -> ToolSpec:
    return tool if isinstance(tool, ToolSpec) else registry.spec(tool)


def call_text(spec: ToolSpec, call: Any) -> str:
    """How a call is written in the examples: compact JSON, or the raw text of a text tool."""
    if spec.format == "text":
        if isinstance(call, dict):
            return str(call.get(spec.text_field, ""))
        return str(call)
    return json.dumps(call, ensure_ascii=False)


def tool_prompt(
    tools: Sequence[str | ToolSpec] | str | ToolSpec,
    *,
    examples: int | None = None,
    registry: ToolRegistry | None = None,
    intro: str | None = None,
) -> str:
    """A system prompt that describes the tools and shows worked calls from their specs.

    examples: how many examples per tool (None: all the spec has).
    """
    registry = registry or default_registry()
    if isinstance(tools, (str, ToolSpec)):
        tools = [tools]
    specs = [_spec(t, registry) for t in tools]
    lines = [
        intro
        or (
            "You are a helpful assistant that calls tools. When the user asks something, "
            "answer with the tool call only: "
            + ("the JSON arguments of the tool." if specs[0].format == "json" else "its text.")
        )
    ]
    for spec in specs:
        lines.append("")
        lines.append(f"Tool {spec.name}: {spec.description}".rstrip())
        if spec.format == "json":
            props = spec.parameters.get("properties", {})
            fields = ", ".join(f"{k} ({v.get('type', 'any')})" for k, v in props.items())
            if fields:
                lines.append(f"Arguments: {fields}.")
        shown = spec.examples if examples is None else spec.examples[:examples]
        for ex in shown:
            lines.append(f"Request: {ex['request']}")
            lines.append(f"Call: {call_text(spec, ex['call'])}")
    return "\n".join(lines)


def tool_turn(content: str, *, role: str = "tool", chat_template: str = "chatml") -> str:
    """The text of a tool message as partial_tool's reinjection writes it (Render's default,
    role "tool"), for worked examples shown to the model as chat turns: a few-shot turn then
    looks exactly like the real results the model will read. `chat_template` is the sglang
    template name of the model (SmolLM2 and the replay backend use ChatML)."""
    from sglang.lang.chat_template import get_chat_template

    prefix, suffix = role_affixes(get_chat_template(chat_template).role_prefix_and_suffix, role)
    return prefix + content + suffix


def example_turns(
    tool: str | ToolSpec, *, examples: int | None = None, registry: ToolRegistry | None = None
) -> list[tuple[str, str]]:
    """The spec's worked examples as (request, call text) pairs, for programs that show them
    as chat turns (user request, assistant call) rather than inside the system prompt: small
    models copy the shape of a previous assistant turn more faithfully than a listed example."""
    spec = _spec(tool, registry or default_registry())
    shown = spec.examples if examples is None else spec.examples[:examples]
    return [(ex["request"], call_text(spec, ex["call"])) for ex in shown]


def worked_example(
    tool: str | ToolSpec, request: str, call: Any, *, registry: ToolRegistry | None = None
) -> str:
    """One more worked example in tool_prompt's format (`Request: ...` / `Call: ...`), for a
    program that shows examples of its own after the spec's."""
    spec = _spec(tool, registry or default_registry())
    return f"Request: {request}\nCall: {call_text(spec, call)}"
