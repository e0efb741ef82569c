"""The registry: tool names to specs and implementations.

The default registry loads the bundled `tool_specs/` folder (installed as the data package
`sgl_conveyor.tool_specs`) on first use, or the folders named in CONVEYOR_TOOL_SPECS, separated
by os.pathsep. Implementations are imported lazily from the spec's `implementation`
("module:Class") the first time a call needs them.
"""

from __future__ import annotations

import importlib
import inspect
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sgl_conveyor import resources
from sgl_conveyor.errors import ToolSpecError, UnknownToolError
from sgl_conveyor.tools.base import FunctionTool, Tool
from sgl_conveyor.tools.spec import ToolSpec, load_spec

BUNDLED_SPECS = resources.tool_specs_dir()

ToolImpl = Tool | type[Tool] | Callable[..., Any]


class ToolRegistry:
    """Maps tool names to their spec and implementation. Thread-safe."""

    def __init__(self) -> None:
        self._specs: dict[str, ToolSpec] = {}
        self._impls: dict[str, ToolImpl | None] = {}
        self._tools: dict[str, Tool] = {}
        self._lock = threading.RLock()

    def add(
        self,
        spec: ToolSpec | str | Path | Mapping[str, Any],
        impl: ToolImpl | None = None,
        *,
        replace: bool = True,
    ) -> ToolSpec:
        """Register a spec (object, file, JSON text or mapping) with an optional implementation.

        Without `impl`, the spec's `implementation` import path is used when the tool is needed.
        """
        if not isinstance(spec, ToolSpec):
            spec = load_spec(spec)
        _check_against_implementation(spec, impl)
        with self._lock:
            if spec.name in self._specs and not replace:
                raise ToolSpecError(f"tool {spec.name!r} is already registered", source=spec.source)
            self._specs[spec.name] = spec
            self._impls[spec.name] = impl
            old = self._tools.pop(spec.name, None)
        if old is not None:
            old.close()
        return spec

    def load_dir(self, folder: str | Path) -> list[ToolSpec]:
        """Register every `*.json` spec of a folder (sorted by file name)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise ToolSpecError("tool spec folder does not exist", source=str(folder))
        return [self.add(p) for p in sorted(folder.glob("*.json"))]

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._specs)

    def __contains__(self, name: str) -> bool:
        with self._lock:
            return name in self._specs

    def spec(self, name: str) -> ToolSpec:
        with self._lock:
            try:
                return self._specs[name]
            except KeyError:
                raise UnknownToolError(name, list(self._specs)) from None

    def tool(self, name: str) -> Tool:
        """The implementation of a tool, instantiated once and reused by every call."""
        with self._lock:
            tool = self._tools.get(name)
            if tool is not None:
                return tool
            spec = self.spec(name)
            tool = _instantiate(spec, self._impls.get(name))
            self._tools[name] = tool
            return tool

    def close(self) -> None:
        """Close every instantiated tool (servers, sandboxes)."""
        with self._lock:
            tools, self._tools = list(self._tools.values()), {}
        for t in tools:
            t.close()


def _import_implementation(path: str) -> Any:
    """The object a spec's `implementation` ('module:Class') names; raises ImportError or
    AttributeError."""
    module_name, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _check_against_implementation(spec: ToolSpec, impl: ToolImpl | None) -> None:
    """Let the implementation reject a spec it cannot serve (bad limits, say) when the spec is
    registered, not at its first call. An implementation that cannot be imported yet is left
    to `tool()`, which reports it."""
    if impl is None and spec.implementation:
        try:
            impl = _import_implementation(spec.implementation)
        except (ImportError, AttributeError):
            return
    cls = impl if inspect.isclass(impl) else type(impl) if isinstance(impl, Tool) else None
    if cls is not None and issubclass(cls, Tool):
        cls.check_spec(spec)


def _instantiate(spec: ToolSpec, impl: ToolImpl | None) -> Tool:
    if impl is None:
        if not spec.implementation:
            raise ToolSpecError(
                f"tool {spec.name!r} has no implementation: register one, or name it in "
                "conveyor.implementation as 'module:Class'",
                source=spec.source,
                field="conveyor/implementation",
            )
        try:
            impl = _import_implementation(spec.implementation)
        except (ImportError, AttributeError) as e:
            raise ToolSpecError(
                f"cannot import implementation {spec.implementation!r}: {e}",
                source=spec.source,
                field="conveyor/implementation",
            ) from e
    if isinstance(impl, Tool):
        impl.spec = spec
        return impl
    if inspect.isclass(impl) and issubclass(impl, Tool):
        return impl(spec)
    if callable(impl):
        return FunctionTool(spec, impl)
    raise ToolSpecError(f"implementation of {spec.name!r} is not a Tool or a callable")


_DEFAULT: ToolRegistry | None = None
_DEFAULT_LOCK = threading.Lock()


def default_registry() -> ToolRegistry:
    """The process-wide registry, with the bundled specs loaded on first use."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            reg = ToolRegistry()
            env = os.environ.get("CONVEYOR_TOOL_SPECS")
            folders = [Path(p) for p in env.split(os.pathsep) if p] if env else [BUNDLED_SPECS]
            for folder in folders:
                if folder.is_dir():
                    reg.load_dir(folder)
            _DEFAULT = reg
        return _DEFAULT
