"""A tool that rejects the first line of its call (the model never starts one with 'ok'): the
invalid call whose early abort the serve, chat-API and router tests follow to the server."""

from __future__ import annotations

from sgl_conveyor import ArgumentRejectedError, Tool, ToolRegistry


class Picky(Tool):
    """Rejects the first line unless it starts with 'ok'."""

    def check_unit(self, unit, ctx):
        if not unit.value.lower().startswith("ok"):
            raise ArgumentRejectedError("each line must start with 'ok'")

    def finish(self, arguments, results, ctx):
        return "fine"


PICKY = {
    "type": "function",
    "function": {
        "name": "picky",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}},
    },
    "conveyor": {
        "format": "text",
        "text_field": "text",
        "units": [{"path": "/text", "split": "lines", "effect": "pure"}],
    },
}


def picky_registry() -> ToolRegistry:
    registry = ToolRegistry()
    registry.add(PICKY, Picky)
    return registry
