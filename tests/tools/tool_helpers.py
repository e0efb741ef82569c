"""Helpers for the built-in tools' tests: specs with overridden limits, contexts and units built
the way the runtime builds them, and the processes a test must not leave behind."""

from __future__ import annotations

import ast
import json
import time
from typing import Any

import psutil

from sgl_conveyor.tools.base import CallContext, Tool
from sgl_conveyor.tools.registry import BUNDLED_SPECS, ToolRegistry
from sgl_conveyor.tools.spec import ToolSpec, load_spec
from sgl_conveyor.units.base import Unit
from sgl_conveyor.units.text import TextUnitDetector

_counter = iter(range(1_000_000))


def spec_with(name: str, **limits: Any) -> ToolSpec:
    """The bundled spec of `name`, with some of its limits replaced."""
    data = json.loads((BUNDLED_SPECS / f"{name}.json").read_text())
    data["conveyor"].setdefault("limits", {}).update(limits)
    return load_spec(data)


def make_tool(name: str, **limits: Any) -> Tool:
    """A fresh instance of a bundled tool (search latency 0 unless a test sets it)."""
    if name in ("search", "plan", "get_local_news"):
        limits.setdefault("latency_ms", 0)
    reg = ToolRegistry()
    reg.add(spec_with(name, **limits))
    return reg.tool(name)


def make_ctx(tool: Tool, mode: str = "partial") -> CallContext:
    return CallContext(
        call_id=f"call{next(_counter)}", tool=tool.spec.name, mode=mode, spec=tool.spec
    )


def json_unit(path: str, value: Any, index: int = 0) -> Unit:
    text = json.dumps(value)
    return Unit(path=path, index=index, value=value, text=text, start=0, end=len(text))


def text_units(spec: ToolSpec, text: str, chunk: int = 7) -> list[Unit]:
    """The units the real detector emits for a text tool's call, streamed in small chunks."""
    u = spec.units[0]
    det = TextUnitDetector(u.path, u.split)
    out: list[Unit] = []
    for i in range(0, len(text), chunk):
        out.extend(det.feed(text[i : i + chunk]))
    out.extend(det.finish())
    return out


def statements(code: str) -> list[tuple[str, int]]:
    """Top-level statements of `code` with their first line (for Sandbox-level tests)."""
    lines = code.splitlines(keepends=True)
    return [
        ("".join(lines[n.lineno - 1 : n.end_lineno]).rstrip("\n"), n.lineno)
        for n in ast.parse(code).body
    ]


def live_children() -> list[psutil.Process]:
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def wait_until(predicate, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
