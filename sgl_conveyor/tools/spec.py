"""Tool specs as data: loading, validation against the meta-schema, and schema look-ups.

A spec is an OpenAI function-tool definition plus an optional `conveyor` section (units, effects,
order, limits, cost hints). Loading never runs tool code; errors name the file and the field.
"""

from __future__ import annotations

import copy
import enum
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from sgl_conveyor.errors import ToolSpecError
from sgl_conveyor.schema import CompiledSchema, declared_at, ref_problem, subschema_at
from sgl_conveyor.units import SPLITTERS
from sgl_conveyor.units.base import UnitPattern

_META_SCHEMA_PATH = Path(__file__).with_name("meta_schema.json")


class Effect(str, enum.Enum):
    """What running a unit does to the world, which decides when it may run.

    pure and idempotent units run as soon as they are final; reversible units run early and are
    undone if the call is aborted; irreversible units wait until the whole call is complete and
    valid. A spec that says nothing is irreversible: the safe default.
    """

    PURE = "pure"
    IDEMPOTENT = "idempotent"
    REVERSIBLE = "reversible"
    IRREVERSIBLE = "irreversible"

    @property
    def runs_early(self) -> bool:
        return self is not Effect.IRREVERSIBLE


class Order(str, enum.Enum):
    """How the units of one call relate: independent, one after another, or a plan's DAG."""

    PARALLEL = "parallel"
    SERIAL = "serial"
    DAG = "dag"


@dataclass(frozen=True, slots=True)
class UnitSpec:
    """One entry of a spec's `units`: a pattern plus what running such a unit means."""

    path: str
    split: str | None = None
    effect: Effect = Effect.IRREVERSIBLE
    timeout_s: float | None = None
    cost_ms: float | None = None

    @property
    def pattern(self) -> UnitPattern:
        return UnitPattern(self.path, self.split)


@dataclass(frozen=True)
class ToolSpec:
    """A loaded, validated tool spec. Immutable; compiled validators are cached on it."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    format: str = "json"
    text_field: str | None = None
    units: tuple[UnitSpec, ...] = ()
    order: Order = Order.PARALLEL
    max_concurrency: int = 4
    timeout_s: float = 120.0
    unit_timeout_s: float = 60.0
    result_max_chars: int = 8000
    cost_model: bool = True
    # A unit that fails at run time fails the call; in partial mode decoding stops at once.
    interrupt_on_error: bool = False
    limits: Mapping[str, Any] = field(default_factory=dict)
    implementation: str | None = None
    examples: tuple[Mapping[str, Any], ...] = ()
    source: str | None = None

    # --- derived -----------------------------------------------------------------------------

    @property
    def patterns(self) -> list[UnitPattern]:
        return [u.pattern for u in self.units]

    @property
    def partial(self) -> bool:
        """True if the spec declares units finer than the whole call."""
        return any(u.path != "" or u.split for u in self.units)

    @cached_property
    def schema(self) -> CompiledSchema:
        """The parameters compiled once, held by the spec itself (a cache keyed by id(spec)
        elsewhere would hand a dead spec's compilation to a new spec at the same address):
        the streaming detector's view, sub-schemas and validators by path."""
        return CompiledSchema(self.parameters)

    @property
    def validator(self) -> Draft202012Validator:
        return self.schema.validator

    def validate_arguments(self, arguments: Any) -> list[str]:
        """All schema violations of a complete argument value, as readable messages."""
        return [_describe(e) for e in self.validator.iter_errors(arguments)]

    def validate_unit(self, path: str, value: Any) -> list[str]:
        """Schema violations of one completed value at `path` (empty if no sub-schema applies)."""
        validator = self.schema.validator_at(path)
        if validator is None:
            return []
        if validator is False:
            return [f"{path}: no value is allowed here"]
        return [_describe(e, prefix=path) for e in validator.iter_errors(value)]

    def to_openai(self) -> dict[str, Any]:
        """The plain OpenAI function-tool definition (what a chat API or a parser expects): a
        copy, which the caller may change without changing the spec."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": copy.deepcopy(dict(self.parameters)),
            },
        }

    def decoding_schema(self) -> dict[str, Any] | None:
        """The JSON Schema that constrains decoding of the arguments (None for text tools)."""
        return dict(self.parameters) if self.format == "json" else None


def _describe(error: jsonschema.ValidationError, prefix: str = "") -> str:
    where = prefix + "".join(f"/{p}" for p in error.absolute_path)
    return f"{where or '/'}: {error.message}"


# --- loading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _MetaSchema:
    validator: Draft202012Validator


_META: _MetaSchema | None = None


def _meta() -> _MetaSchema:
    global _META
    if _META is None:
        schema = json.loads(_META_SCHEMA_PATH.read_text())
        _META = _MetaSchema(Draft202012Validator(schema))
    return _META


def load_spec(source: str | Path | Mapping[str, Any]) -> ToolSpec:
    """Load a spec from a JSON file, a JSON string or an already parsed mapping."""
    origin: str | None = None
    if isinstance(source, Path) or (
        isinstance(source, str) and not source.lstrip().startswith("{")
    ):
        path = Path(source)
        origin = str(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise ToolSpecError(f"cannot read tool spec: {e}", source=origin) from e
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ToolSpecError(
                f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})", source=origin
            ) from e
    elif isinstance(source, str):
        try:
            data = json.loads(source)
        except json.JSONDecodeError as e:
            raise ToolSpecError(f"not valid JSON: {e.msg}") from e
    else:
        data = source
    return spec_from_dict(data, origin=origin)


def spec_from_dict(data: Mapping[str, Any], origin: str | None = None) -> ToolSpec:
    """Validate a spec mapping against the meta-schema and build the ToolSpec."""
    if not isinstance(data, Mapping):
        raise ToolSpecError("a tool spec must be a JSON object", source=origin)
    errors = sorted(_meta().validator.iter_errors(data), key=lambda e: len(list(e.path)))
    if errors:
        raise _spec_error(errors, data, origin)

    fn = data.get("function", data)
    name = fn["name"]
    parameters = fn.get("parameters") or {"type": "object", "properties": {}}
    try:
        Draft202012Validator.check_schema(parameters)
    except jsonschema.SchemaError as e:
        field_path = "/".join(str(p) for p in e.path)
        raise ToolSpecError(
            f"parameters is not a valid JSON Schema: {e.message}",
            source=origin,
            field=f"parameters/{field_path}".rstrip("/"),
        ) from e
    bad_ref = ref_problem(parameters)
    if bad_ref is not None:
        raise ToolSpecError(bad_ref[1], source=origin, field=bad_ref[0])
    conv = dict(data.get("conveyor") or {})
    _check_numbers(conv, origin)

    fmt = conv.get("format", "json")
    text_field = conv.get("text_field")
    if fmt == "text":
        if not text_field:
            raise ToolSpecError(
                "format 'text' needs text_field: the argument that receives the text",
                source=origin,
                field="conveyor/text_field",
            )
        props = parameters.get("properties", {})
        if text_field not in props:
            raise ToolSpecError(
                f"text_field {text_field!r} is not a property of parameters",
                source=origin,
                field="conveyor/text_field",
            )

    units: list[UnitSpec] = []
    for i, u in enumerate(conv.get("units", [])):
        path = u["path"]
        if fmt == "text" and path not in ("", f"/{text_field}"):
            raise ToolSpecError(
                f"a text tool's units must be at /{text_field}, not {path!r}",
                source=origin,
                field=f"conveyor/units/{i}/path",
            )
        if fmt == "json" and path != "":
            declared = declared_at(parameters, path)
            if declared is False:
                raise ToolSpecError(
                    f"unit path {path} is forbidden by the parameters' schema (no value can be "
                    "there, so the unit would never run)",
                    source=origin,
                    field=f"conveyor/units/{i}/path",
                )
            if declared is None:
                raise ToolSpecError(
                    f"unit path {path} is not declared in the parameters' schema (partial "
                    "execution would silently never happen): declare it under properties/items",
                    source=origin,
                    field=f"conveyor/units/{i}/path",
                )
        split = u.get("split")
        if split is not None and split not in SPLITTERS:
            raise ToolSpecError(
                f"unknown split {split!r} (known: {', '.join(SPLITTERS)}; a new kind is one "
                "sgl_conveyor.units.register_splitter call)",
                source=origin,
                field=f"conveyor/units/{i}/split",
            )
        if split and path != "" and "*" not in path:
            sub = subschema_at(parameters, path)
            if isinstance(sub, Mapping) and sub.get("type") not in (None, "string"):
                raise ToolSpecError(
                    f"split needs a string field, but {path} has type {sub.get('type')!r}",
                    source=origin,
                    field=f"conveyor/units/{i}/split",
                )
        units.append(
            UnitSpec(
                path=path,
                split=split,
                effect=Effect(u.get("effect", "irreversible")),
                timeout_s=u.get("timeout_s"),
                cost_ms=u.get("cost_ms"),
            )
        )
    if fmt == "text" and len(units) > 1:
        raise ToolSpecError(
            "a text tool has one unit pattern (its text, split or whole)",
            source=origin,
            field="conveyor/units",
        )
    if not units:
        # Existing OpenAI definitions: the whole call is one unit, with the safe effect.
        units.append(UnitSpec(path="", effect=Effect.IRREVERSIBLE))

    return ToolSpec(
        name=name,
        description=fn.get("description", ""),
        parameters=parameters,
        format=fmt,
        text_field=text_field,
        units=tuple(units),
        order=Order(conv.get("order", "parallel")),
        max_concurrency=conv.get("max_concurrency", 4),
        timeout_s=float(conv.get("timeout_s", 120.0)),
        unit_timeout_s=float(conv.get("unit_timeout_s", 60.0)),
        result_max_chars=conv.get("result_max_chars", 8000),
        cost_model=conv.get("cost_model", True),
        interrupt_on_error=conv.get("interrupt_on_error", False),
        limits=dict(conv.get("limits", {})),
        implementation=conv.get("implementation"),
        examples=tuple(conv.get("examples", ())),
        source=origin,
    )


_INTEGERS = ("max_concurrency", "result_max_chars")


def _check_numbers(conv: Mapping[str, Any], origin: str | None) -> None:
    """Numbers the runtime uses as they are: whole where counts are meant, finite everywhere
    (JSON Schema's `integer` accepts 100.0, and Python's JSON reads 1e999 and NaN)."""
    for key in _INTEGERS:
        v = conv.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise ToolSpecError(
                f"{key} must be a whole number, not {v!r}", source=origin, field=f"conveyor/{key}"
            )

    def walk(node: Any, where: str) -> None:
        if isinstance(node, float) and not math.isfinite(node):
            raise ToolSpecError(f"{node!r} is not a usable number here", source=origin, field=where)
        if isinstance(node, Mapping):
            for k, v in node.items():
                if where == "conveyor" and k == "examples":
                    continue  # a worked call may hold any value the schema allows
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")

    walk(conv, "conveyor")


def _spec_error(
    errors: Sequence[jsonschema.ValidationError], data: Mapping[str, Any], origin: str | None
) -> ToolSpecError:
    # oneOf hides the useful message: pick the branch that matches the document's shape.
    best = errors[0]
    if best.validator == "oneOf" and best.context:
        wanted = 0 if "function" in data else 1
        branch = [e for e in best.context if e.relative_schema_path[0] == wanted] or list(
            best.context
        )
        best = min(branch, key=lambda e: -len(list(e.absolute_path)))
    field_path = "/".join(str(p) for p in best.absolute_path) or None
    return ToolSpecError(best.message, source=origin, field=field_path)
