"""The bundled tool specs: they load, their examples are valid calls that produce what they say,
and every string and list a model may generate is bounded."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tool_helpers import json_unit, make_ctx, make_tool, text_units

from sgl_conveyor.tools.base import UnitResult
from sgl_conveyor.tools.registry import BUNDLED_SPECS, ToolRegistry
from sgl_conveyor.tools.spec import Effect, Order

OURS = ["calculator", "faulty", "get_local_news", "plan", "python", "search", "sql"]
REPO = BUNDLED_SPECS.parent


@pytest.fixture(scope="module")
def registry():
    reg = ToolRegistry()
    reg.load_dir(BUNDLED_SPECS)
    yield reg
    reg.close()


def test_every_tool_of_the_workloads_is_registered_with_its_implementation(registry):
    assert set(OURS) <= set(registry.names())
    for name in OURS:
        spec = registry.spec(name)
        assert spec.implementation.startswith("sgl_conveyor.tools.builtin.")
        assert type(registry.tool(name)).__module__ == spec.implementation.split(":")[0]


def test_the_workload_shapes(registry):
    shape = {
        name: (
            [(u.path, u.split, u.effect) for u in registry.spec(name).units],
            registry.spec(name).order,
        )
        for name in OURS
    }
    assert shape["python"] == ([("/code", "python", Effect.REVERSIBLE)], Order.SERIAL)
    assert shape["search"] == ([("/queries/*", None, Effect.PURE)], Order.PARALLEL)
    assert shape["plan"] == ([("/plan", "plan", Effect.PURE)], Order.DAG)
    assert shape["get_local_news"][0] == [
        ("/location", None, Effect.PURE),
        ("/date", None, Effect.PURE),
        ("/days", None, Effect.PURE),
    ]
    assert shape["sql"][0] == [("/query", None, Effect.PURE)]
    assert shape["calculator"][0] == [("/expression", None, Effect.PURE)]


def _unbounded(schema, path="") -> list[str]:
    out = []
    if isinstance(schema, dict):
        t = schema.get("type")
        bounded = {"maxLength", "enum", "pattern"} & set(schema)
        if t == "string" and not bounded:
            out.append(path or "/")
        if t == "array" and "maxItems" not in schema:
            out.append(path or "/")
        for k, v in schema.get("properties", {}).items():
            out += _unbounded(v, f"{path}/{k}")
        if "items" in schema:
            out += _unbounded(schema["items"], f"{path}/*")
    return out


@pytest.mark.parametrize("name", OURS)
def test_what_a_model_generates_is_bounded(registry, name):
    assert _unbounded(dict(registry.spec(name).parameters)) == []


@pytest.mark.parametrize("name", OURS)
def test_examples_are_valid_calls(registry, name):
    spec = registry.spec(name)
    assert 2 <= len(spec.examples) <= 3
    for ex in spec.examples:
        call = ex["call"]
        args = {spec.text_field: call} if spec.format == "text" else call
        assert spec.validate_arguments(args) == [], ex


@pytest.mark.parametrize("name", ["search", "sql", "calculator", "get_local_news", "plan"])
def test_examples_that_state_a_result_produce_it(name):
    tool = make_tool(name)
    try:
        for ex in tool.spec.examples:
            ctx = make_ctx(tool)
            tool.start(ctx)
            if tool.spec.format == "text":
                units = text_units(tool.spec, ex["call"])
                args = {tool.spec.text_field: ex["call"]}
            elif name == "search":
                args = ex["call"]
                units = [json_unit(f"/queries/{i}", q, i) for i, q in enumerate(args["queries"])]
            else:
                args = ex["call"]
                units = [json_unit(f"/{k}", v, i) for i, (k, v) in enumerate(args.items())]
            results = []
            for u in units:
                tool.check_unit(u, ctx)
                value = tool.run_unit(u, ctx)
                if u.meta.get("id") is not None:
                    ctx.results[u.meta["id"]] = value
                results.append(UnitResult(u, value))
            out = tool.finish(args, results, ctx)
            if "result" in ex:
                assert out == ex["result"]
    finally:
        tool.close()


def test_python_examples_print_what_they_say():
    tool = make_tool("python")
    try:
        for ex in tool.spec.examples:
            ctx = make_ctx(tool)
            tool.start(ctx)
            out = tool.finish({"code": ex["call"]}, [], ctx)
            assert "Traceback" not in out, out
            if "result" in ex:
                assert out == ex["result"]
    finally:
        tool.close()


def test_the_bundled_data_is_what_the_generators_produce():
    proc = subprocess.run(
        [sys.executable, "-m", "sgl_conveyor.eval.data.generate", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
