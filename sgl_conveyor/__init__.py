"""sgl-conveyor: tool partial execution for SGLang programs.

    import sglang as sgl
    import sgl_conveyor                      # registers sgl.partial_tool

    @sgl.function
    def research(s, question):
        s += sgl.system(sgl_conveyor.tool_prompt(["search"]))
        s += sgl.user(question)
        s += sgl.assistant(sgl.partial_tool("search", name="call", max_tokens=200))
        s += sgl.assistant(sgl.gen("answer", max_tokens=64))

    state = research.run(question="...", backend=sgl_conveyor.default_backend())
    state["call_result"]                     # what the tool returned
    sgl_conveyor.call_report(state, "call")  # when each unit was generated, dispatched, done

Each unit of the call (a query, a statement, a plan step, an argument) runs the moment it can
no longer change, while the model is still decoding the rest.
"""

from __future__ import annotations

import os

# Before sglang imports torch: OpenMP's default spin-waiting collapses decoding (18 to under 1
# token/s measured) when other processes share the cores. Has no effect if torch came first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sglang

from sgl_conveyor.backends.chat_templates import register as _register_chat_templates
from sgl_conveyor.errors import (
    ArgumentRejectedError,
    BackendError,
    CallCancelledError,
    ChatStreamError,
    ConveyorError,
    IncompleteError,
    MalformedCallError,
    ModelNotFoundError,
    RequestError,
    ResultNotSerializableError,
    SandboxError,
    SchemaViolationError,
    ScriptError,
    ToolCallError,
    ToolExecutionError,
    ToolSpecError,
    ToolTimeoutError,
    TruncatedCallError,
    UnconfirmedCallError,
    UnitError,
    UnitSchemaError,
    UnknownToolCallError,
    UnknownToolError,
)
from sgl_conveyor.lang.partial_tool import (
    SglPartialTool,
    cancel,
    get_default_mode,
    install,
    partial_tool,
    set_default_mode,
)
from sgl_conveyor.lang.prompting import tool_prompt
from sgl_conveyor.lang.render import Render
from sgl_conveyor.runtime.call import Mode
from sgl_conveyor.runtime.timeline import Timeline
from sgl_conveyor.tools.base import CallContext, FunctionTool, Tool, UnitResult
from sgl_conveyor.tools.registry import ToolRegistry, default_registry
from sgl_conveyor.tools.spec import Effect, Order, ToolSpec, load_spec
from sgl_conveyor.units.base import Unit

__version__ = "0.1.0"

__all__ = [
    "ArgumentRejectedError",
    "BackendError",
    "CallCancelledError",
    "CallContext",
    "ChatStreamError",
    "ConveyorError",
    "Effect",
    "FunctionTool",
    "IncompleteError",
    "MalformedCallError",
    "Mode",
    "ModelNotFoundError",
    "Order",
    "Render",
    "RequestError",
    "ResultNotSerializableError",
    "SandboxError",
    "SchemaViolationError",
    "ScriptError",
    "SglPartialTool",
    "Timeline",
    "Tool",
    "ToolCallError",
    "ToolExecutionError",
    "ToolRegistry",
    "ToolSpec",
    "ToolSpecError",
    "ToolTimeoutError",
    "TruncatedCallError",
    "UnconfirmedCallError",
    "Unit",
    "UnitError",
    "UnitResult",
    "UnitSchemaError",
    "UnknownToolCallError",
    "UnknownToolError",
    "call_report",
    "cancel",
    "default_backend",
    "default_registry",
    "get_default_mode",
    "load_spec",
    "partial_tool",
    "register_tool",
    "set_default_mode",
    "tool_prompt",
]


def register_tool(
    spec: ToolSpec | str | Path | Mapping[str, Any], impl: Any = None, *, replace: bool = True
) -> ToolSpec:
    """Add a tool to the default registry: a spec (object, JSON file, JSON text or mapping)
    and its implementation (a Tool subclass or instance, or a plain function)."""
    return default_registry().add(spec, impl, replace=replace)


def default_backend(**options: Any):
    """The embedded default backend: SmolLM2-135M-Instruct on this machine (CUDA if present),
    with a radix prefix cache. Created once per process."""
    from sgl_conveyor.backends.local import default_backend as _default

    return _default(**options)


def call_report(state: Any, name: str | int) -> dict[str, Any]:
    """The JSON view of a partial_tool call of a finished program: mode, error, and the
    timeline of each attempt (times in seconds from that attempt's stream start). On a chat
    turn (or run), `name` is the call's index: `call_report(turn, 0)`."""
    chat_report = getattr(state, "call_report", None)
    if chat_report is not None and isinstance(name, int):
        return chat_report(name)
    meta = state.get_meta_info(name) or {}
    conv = meta.get("conveyor")
    if conv is None:
        raise KeyError(f"{name!r} is not a partial_tool variable of this state")
    timelines: Sequence[Timeline] = conv.get("timelines", [])
    return {
        "tool": conv.get("tool"),
        "mode": conv.get("mode"),
        "attempts": conv.get("attempts"),
        "error": conv.get("error"),
        "calls": [t.to_dict() for t in timelines],
    }


def __getattr__(name: str) -> Any:
    """`sgl_conveyor.chat` without importing it first (it needs the optional `openai`)."""
    if name == "chat":
        import importlib

        return importlib.import_module("sgl_conveyor.chat")
    raise AttributeError(f"module 'sgl_conveyor' has no attribute {name!r}")


install()
sglang.partial_tool = partial_tool
_register_chat_templates()
