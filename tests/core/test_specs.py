"""Tool specs as data: loading, the meta-schema's errors, schema look-ups, the registry."""

from __future__ import annotations

import json

import pytest

from sgl_conveyor.errors import ToolSpecError, UnknownToolError
from sgl_conveyor.tools.base import FunctionTool, Tool
from sgl_conveyor.tools.registry import ToolRegistry, default_registry
from sgl_conveyor.tools.spec import Effect, Order, load_spec, spec_from_dict, subschema_at

OPENAI_WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get current temperature for a given location.",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City and country"},
                "units": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location", "units"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


def test_an_openai_tool_definition_loads_unchanged_as_one_irreversible_unit():
    spec = spec_from_dict(OPENAI_WEATHER)
    assert spec.name == "get_weather"
    assert [(u.path, u.effect) for u in spec.units] == [("", Effect.IRREVERSIBLE)]
    assert not spec.partial
    assert spec.to_openai()["function"]["parameters"] == OPENAI_WEATHER["function"]["parameters"]


def test_the_flat_responses_api_shape_loads_too():
    flat = {"type": "function", **OPENAI_WEATHER["function"]}
    assert spec_from_dict(flat).name == "get_weather"


def test_a_spec_file_with_a_bad_effect_names_the_file_and_the_field(tmp_path):
    bad = dict(OPENAI_WEATHER, conveyor={"units": [{"path": "/location", "effect": "sometimes"}]})
    f = tmp_path / "weather.json"
    f.write_text(json.dumps(bad))
    with pytest.raises(ToolSpecError) as info:
        load_spec(f)
    msg = str(info.value)
    assert str(f) in msg and "conveyor/units/0/effect" in msg and "sometimes" in msg


def test_a_spec_file_that_is_not_json_names_the_line(tmp_path):
    f = tmp_path / "broken.json"
    f.write_text('{"type": "function",\n "function": {"name": }}')
    with pytest.raises(ToolSpecError, match=r"broken\.json: not valid JSON.*line 2"):
        load_spec(f)


def test_parameters_must_be_a_json_schema():
    bad = {"type": "function", "function": {"name": "x", "parameters": {"type": "strnig"}}}
    with pytest.raises(ToolSpecError, match="parameters is not a valid JSON Schema"):
        spec_from_dict(bad)


def test_a_text_tool_needs_its_text_field():
    spec = {
        "type": "function",
        "function": {"name": "py", "parameters": {"type": "object", "properties": {}}},
        "conveyor": {"format": "text", "units": [{"path": "", "split": "python"}]},
    }
    with pytest.raises(ToolSpecError, match="conveyor/text_field"):
        spec_from_dict(spec)


def test_split_needs_a_string_field():
    spec = {
        "type": "function",
        "function": {
            "name": "x",
            "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}},
        },
        "conveyor": {"units": [{"path": "/n", "split": "lines"}]},
    }
    with pytest.raises(ToolSpecError, match="split needs a string field"):
        spec_from_dict(spec)


def test_subschema_follows_properties_items_and_refs():
    schema = {
        "type": "object",
        "$defs": {"step": {"type": "object", "properties": {"args": {"type": "array"}}}},
        "properties": {
            "queries": {"type": "array", "items": {"type": "string", "maxLength": 5}},
            "steps": {"type": "array", "items": {"$ref": "#/$defs/step"}},
            "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]},
        },
        "additionalProperties": {"type": "number"},
    }
    assert subschema_at(schema, "/queries/3") == {"type": "string", "maxLength": 5}
    assert subschema_at(schema, "/steps/0/args") == {"type": "array"}
    assert subschema_at(schema, "/pair/1") == {"type": "string"}
    assert subschema_at(schema, "/other") == {"type": "number"}
    assert subschema_at(schema, "/queries/x") is None


def test_validate_unit_reports_the_path():
    spec = spec_from_dict(
        {
            **OPENAI_WEATHER,
            "conveyor": {"units": [{"path": "/units", "effect": "pure"}], "order": "serial"},
        }
    )
    assert spec.order is Order.SERIAL
    assert spec.validate_unit("/units", "celsius") == []
    (problem,) = spec.validate_unit("/units", "kelvin")
    assert problem.startswith("/units:") and "kelvin" in problem
    assert spec.validate_arguments({"location": "Paris"})  # missing "units"


def test_registry_names_known_tools_on_a_typo():
    reg = ToolRegistry()
    reg.add(OPENAI_WEATHER, lambda location, units: f"20 {units} in {location}")
    with pytest.raises(UnknownToolError, match="known tools: get_weather"):
        reg.spec("get_wether")
    tool = reg.tool("get_weather")
    assert isinstance(tool, FunctionTool)
    assert tool.call(location="Oslo", units="celsius") == "20 celsius in Oslo"
    assert reg.tool("get_weather") is tool  # one instance per process


def test_registry_reports_an_implementation_that_cannot_be_imported():
    reg = ToolRegistry()
    reg.add({**OPENAI_WEATHER, "conveyor": {"implementation": "no_such_module:Weather"}})
    with pytest.raises(ToolSpecError, match="cannot import implementation"):
        reg.tool("get_weather")


def test_registry_accepts_tool_classes():
    class Weather(Tool):
        def call(self, location, units):
            return {"location": location}

    reg = ToolRegistry()
    reg.add(OPENAI_WEATHER, Weather)
    assert reg.tool("get_weather").call(location="Rome", units="celsius") == {"location": "Rome"}


def test_every_bundled_spec_loads_and_names_an_importable_implementation():
    reg = default_registry()
    names = reg.names()
    assert names, "tool_specs/ is empty"
    for name in names:
        spec = reg.spec(name)
        assert spec.implementation, f"{name} has no implementation"
        assert isinstance(reg.tool(name), Tool)


def test_a_new_spec_never_inherits_a_dead_specs_validators():
    # The sub-validators were once cached by id(spec): a new spec allocated at a dead spec's
    # address got its validators (a string-typed one accepted "ok" for an integer field).
    import gc

    def spec_of(kind: str):
        return spec_from_dict(
            {
                "type": "function",
                "function": {
                    "name": "t",
                    "parameters": {"type": "object", "properties": {"x": {"type": kind}}},
                },
                "conveyor": {"units": [{"path": "/x", "effect": "pure"}]},
            }
        )

    for i in range(200):
        kind = "string" if i % 2 == 0 else "integer"
        spec = spec_of(kind)
        problems = spec.validate_unit("/x", "ok")
        assert bool(problems) == (kind == "integer"), (i, kind, problems)
        del spec
        gc.collect()


def _with_conveyor(**conveyor):
    return {**OPENAI_WEATHER, "conveyor": conveyor}


@pytest.mark.parametrize(
    ("spec", "field", "message"),
    [
        (_with_conveyor(result_max_chars=100.0), "conveyor/result_max_chars", "whole number"),
        (_with_conveyor(max_concurrency=2.0), "conveyor/max_concurrency", "whole number"),
        (_with_conveyor(timeout_s=float("inf")), "conveyor/timeout_s", "maximum"),
        (_with_conveyor(timeout_s=1e999), "conveyor/timeout_s", "maximum"),
        (_with_conveyor(unit_timeout_s=float("nan")), "conveyor/unit_timeout_s", "usable"),
        (
            _with_conveyor(
                units=[{"path": "/location", "effect": "pure", "cost_ms": float("nan")}]
            ),
            "conveyor/units/0/cost_ms",
            "usable",
        ),
        (_with_conveyor(units=[{"path": "/nowhere"}]), "conveyor/units/0/path", "forbidden"),
        (_with_conveyor(units=[{"path": "/location/*"}]), "conveyor/units/0/path", "forbidden"),
    ],
)
def test_specs_that_would_load_and_then_fail_every_call_are_rejected_at_load(spec, field, message):
    with pytest.raises(ToolSpecError, match=message) as e:
        spec_from_dict(json.loads(json.dumps(spec)))
    assert e.value.field == field


def test_a_unit_path_the_schema_does_not_declare_is_rejected():
    spec = json.loads(json.dumps(OPENAI_WEATHER))
    del spec["function"]["parameters"]["additionalProperties"]  # /extra allowed, not declared
    spec["conveyor"] = {"units": [{"path": "/extra", "effect": "pure"}]}
    with pytest.raises(ToolSpecError, match="not declared") as e:
        spec_from_dict(spec)
    assert e.value.field == "conveyor/units/0/path"


@pytest.mark.parametrize(
    "parameters",
    [
        {"$ref": "#"},
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
        {"type": "object", "properties": {"x": {"$ref": "#/properties/x"}}},
    ],
)
def test_a_self_referencing_schema_is_rejected_at_load(parameters):
    spec = {"type": "function", "function": {"name": "t", "parameters": parameters}}
    with pytest.raises(ToolSpecError, match=r"\$ref cycle"):
        spec_from_dict(spec)


def test_a_recursive_schema_that_makes_progress_loads():
    tree = {
        "type": "object",
        "properties": {"children": {"type": "array", "items": {"$ref": "#"}}},
    }
    spec = {"type": "function", "function": {"name": "t", "parameters": tree}}
    assert spec_from_dict(spec).name == "t"


def test_an_unresolvable_or_remote_ref_is_rejected_at_load():
    for ref in ("#/$defs/missing", "https://example.invalid/schema.json"):
        params = {"type": "object", "properties": {"x": {"$ref": ref}}}
        with pytest.raises(ToolSpecError, match=r"\$ref"):
            spec_from_dict({"type": "function", "function": {"name": "t", "parameters": params}})


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"memory_mb": -1}, "memory_mb"),
        ({"statement_timeout_s": 0}, "statement_timeout_s"),
        ({"isolate_network": "no"}, "isolate_network"),
        ({"pool_size": 1.5}, "pool_size"),
    ],
)
def test_python_sandbox_limits_that_disable_themselves_are_rejected_at_load(limits, message):
    from pathlib import Path

    spec = json.loads(Path(default_registry().spec("python").source).read_text())
    spec["conveyor"]["limits"].update(limits)
    with pytest.raises(ToolSpecError, match=message) as e:
        ToolRegistry().add(spec)  # at registration, not at the first call
    assert e.value.field == "conveyor/limits"


def test_interrupt_on_error_is_off_unless_asked_and_must_be_a_boolean():
    assert spec_from_dict(OPENAI_WEATHER).interrupt_on_error is False
    assert default_registry().spec("python").interrupt_on_error is True
    bad = {**OPENAI_WEATHER, "conveyor": {"interrupt_on_error": "yes"}}
    with pytest.raises(ToolSpecError, match="interrupt_on_error"):
        spec_from_dict(bad)
