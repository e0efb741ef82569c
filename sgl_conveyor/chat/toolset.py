"""The tools a chat request offers: registry names, ToolSpecs, Tool objects, or plain OpenAI
tool definitions paired with a Python function, all resolved through the registry machinery.

Resolving never runs tool code beyond instantiating an implementation; a bad entry raises a
ToolSpecError or UnknownToolError that names it, before any request is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sgl_conveyor.errors import ToolSpecError
from sgl_conveyor.tools.base import Tool
from sgl_conveyor.tools.registry import ToolRegistry, default_registry
from sgl_conveyor.tools.spec import Effect, ToolSpec, load_spec
from sgl_conveyor.units.base import UnitPattern

# What `tools=` accepts, one entry each.
ToolEntry = str | ToolSpec | Tool | tuple[ToolSpec | Mapping[str, Any], Tool | Callable[..., Any]]


@dataclass(frozen=True)
class Binding:
    """One offered tool: its spec, its implementation, and the unit patterns over its JSON
    arguments (a text tool's field is a string inside the arguments object on this path)."""

    spec: ToolSpec
    tool: Tool
    patterns: tuple[UnitPattern, ...]

    @property
    def early_close(self) -> bool:
        """Whether the call may end before the server confirms the response: only when no unit
        has an effect that confirmation guards (reversible work is undone, irreversible waits)."""
        return all(u.effect in (Effect.PURE, Effect.IDEMPOTENT) for u in self.spec.units)


def chat_patterns(spec: ToolSpec) -> tuple[UnitPattern, ...]:
    """The spec's unit patterns over the JSON arguments a chat API sends: a text tool's units
    (its whole text, "", or the field itself) sit at `/<text_field>`."""
    if spec.format != "text":
        return tuple(spec.patterns)
    field = f"/{spec.text_field}"
    return tuple(
        UnitPattern(field if p.path in ("", field) else p.path, p.split) for p in spec.patterns
    )


class ToolSet:
    """The resolved tools of one request (or of every round of a `chat.run`)."""

    def __init__(
        self,
        tools: Iterable[ToolEntry],
        registry: ToolRegistry | None = None,
        *,
        patterns: Mapping[str, Mapping[str, str]] | None = None,
    ):
        """`patterns`: per tool, regexes for top-level string arguments, sent as the JSON
        Schema `pattern` so the server constrains them (a program's `regex=`, for a chat call:
        a small model writes a plan's lines inside a JSON string only when held to them)."""
        self.registry = registry or default_registry()
        self.patterns = {name: dict(p) for name, p in (patterns or {}).items()}
        self._private = ToolRegistry()  # plain definitions and unregistered specs
        self._bindings: dict[str, Binding] = {}
        for i, entry in enumerate(tools or ()):
            spec, tool = self._resolve(entry, i)
            if spec.name in self._bindings:
                raise ToolSpecError(f"tool {spec.name!r} is offered twice", field=f"tools/{i}")
            self._bindings[spec.name] = Binding(spec, tool, chat_patterns(spec))

    def _resolve(self, entry: Any, i: int) -> tuple[ToolSpec, Tool]:
        if isinstance(entry, str):
            return self.registry.spec(entry), self.registry.tool(entry)
        if isinstance(entry, Tool):
            spec = getattr(entry, "spec", None)
            if not isinstance(spec, ToolSpec):
                raise ToolSpecError(
                    "a Tool object offered alone needs its .spec", field=f"tools/{i}"
                )
            return spec, entry
        if isinstance(entry, ToolSpec):
            if entry.name in self.registry:
                return entry, self.registry.tool(entry.name)
            if entry.implementation:
                return self._private_tool(entry, None)
            raise ToolSpecError(
                f"tool {entry.name!r} has no implementation: register it, or pass (spec, fn)",
                field=f"tools/{i}",
            )
        if isinstance(entry, tuple) and len(entry) == 2:
            definition, impl = entry
            spec = definition if isinstance(definition, ToolSpec) else load_spec(definition)
            return self._private_tool(spec, impl)
        if isinstance(entry, Mapping):
            spec = load_spec(entry)
            if spec.implementation:
                return self._private_tool(spec, None)
            raise ToolSpecError(
                f"plain definition of {spec.name!r} without a function: pass (definition, fn)",
                field=f"tools/{i}",
            )
        raise ToolSpecError(
            f"cannot offer {type(entry).__name__} as a tool: give a registry name, a ToolSpec, "
            "a Tool, or (OpenAI definition, function)",
            field=f"tools/{i}",
        )

    def _private_tool(self, spec: ToolSpec, impl: Any) -> tuple[ToolSpec, Tool]:
        spec = self._private.add(spec, impl)
        return spec, self._private.tool(spec.name)

    def get(self, name: str) -> Binding | None:
        return self._bindings.get(name)

    def names(self) -> list[str]:
        return list(self._bindings)

    def __len__(self) -> int:
        return len(self._bindings)

    def definitions(self, strict: bool = True) -> list[dict[str, Any]]:
        """The request's `tools=[...]` in the OpenAI function-tool shape."""
        out = []
        for b in self._bindings.values():
            d = b.spec.to_openai()
            if strict:
                d["function"]["strict"] = True
            for name, regex in self.patterns.get(b.spec.name, {}).items():
                prop = d["function"]["parameters"].get("properties", {}).get(name)
                if not isinstance(prop, dict) or prop.get("type") != "string":
                    raise ToolSpecError(
                        f"pattern for {b.spec.name}.{name}: not a string argument of the tool",
                        field=f"patterns/{b.spec.name}/{name}",
                    )
                prop["pattern"] = regex
            out.append(d)
        return out


def tool_definitions(
    tools: Iterable[ToolEntry] | ToolSet,
    registry: ToolRegistry | None = None,
    *,
    strict: bool = True,
) -> list[dict[str, Any]]:
    """OpenAI `tools=[{"type": "function", "function": {name, description, parameters,
    strict}}]` for registry names, ToolSpecs, Tools or (definition, function) pairs.
    `strict: true` is what makes servers such as vLLM constrain the arguments to the schema."""
    toolset = tools if isinstance(tools, ToolSet) else ToolSet(tools, registry)
    return toolset.definitions(strict=strict)
