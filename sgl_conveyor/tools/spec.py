"""Tool specs as data: loading, validation against the meta-schema, and schema look-ups.

A spec is an OpenAI function-tool definition plus an optional `conveyor` section (units, effects,
order, limits, cost hints). Loading never runs tool code; errors name the file and the field.
"""

from __future__ import annotations

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
    limits: Mapping[str, Any] = field(default_factory=dict)
    implementation: str | None = None
    examples: tuple[Mapping[str, Any], ...] = ()
    source: str | None = None
    # Compiled sub-validators by unit path, held by the spec itself: a cache keyed by id(spec)
    # elsewhere would hand a dead spec's validators to a new spec at the same address.
    _subvalidators: dict[str, Draft202012Validator] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    # --- derived -----------------------------------------------------------------------------

    @property
    def patterns(self) -> list[UnitPattern]:
        return [u.pattern for u in self.units]

    @property
    def partial(self) -> bool:
        """True if the spec declares units finer than the whole call."""
        return any(u.path != "" or u.split for u in self.units)

    @cached_property
    def validator(self) -> Draft202012Validator:
        return Draft202012Validator(dict(self.parameters))

    def validate_arguments(self, arguments: Any) -> list[str]:
        """All schema violations of a complete argument value, as readable messages."""
        return [_describe(e) for e in self.validator.iter_errors(arguments)]

    def validate_unit(self, path: str, value: Any) -> list[str]:
        """Schema violations of one completed value at `path` (empty if no sub-schema applies)."""
        sub = subschema_at(self.parameters, path)
        if sub is None or sub is True:
            return []
        if sub is False:
            return [f"{path}: no value is allowed here"]
        validator = _subvalidator(self, path, sub)
        return [_describe(e, prefix=path) for e in validator.iter_errors(value)]

    def to_openai(self) -> dict[str, Any]:
        """The plain OpenAI function-tool definition (what a chat API or a parser expects)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }

    def decoding_schema(self) -> dict[str, Any] | None:
        """The JSON Schema that constrains decoding of the arguments (None for text tools)."""
        return dict(self.parameters) if self.format == "json" else None


def _subvalidator(spec: ToolSpec, path: str, sub: Mapping[str, Any]) -> Draft202012Validator:
    v = spec._subvalidators.get(path)
    if v is None:
        # $defs/$ref of the root must stay resolvable from the sub-schema.
        schema = dict(sub)
        if "$defs" in spec.parameters and "$defs" not in schema:
            schema["$defs"] = spec.parameters["$defs"]
        v = spec._subvalidators[path] = Draft202012Validator(schema)
    return v


def _describe(error: jsonschema.ValidationError, prefix: str = "") -> str:
    where = prefix + "".join(f"/{p}" for p in error.absolute_path)
    return f"{where or '/'}: {error.message}"


def subschema_at(schema: Mapping[str, Any] | bool, path: str) -> Any:
    """The sub-schema that applies to the value at JSON pointer `path`, or None if unknown.

    Follows `properties`, `items` / `prefixItems`, `additionalProperties` and local `$ref`s.
    Combinators (`anyOf`, `oneOf`) give None: the whole-call validation covers them.
    """
    root = schema
    node: Any = schema
    for token in _pointer_tokens(path):
        node = _deref(root, node)
        if not isinstance(node, Mapping):
            return None
        if "properties" in node or node.get("type") == "object":
            props = node.get("properties", {})
            if token in props:
                node = props[token]
                continue
            extra = node.get("additionalProperties", True)
            node = extra
            continue
        if "items" in node or "prefixItems" in node or node.get("type") == "array":
            if not token.isdigit():
                return None
            i = int(token)
            prefix = node.get("prefixItems", [])
            node = prefix[i] if i < len(prefix) else node.get("items", True)
            continue
        return None
    return _deref(root, node)


def _deref(root: Any, node: Any) -> Any:
    seen = 0
    while isinstance(node, Mapping) and "$ref" in node and seen < 32:
        ref = node["$ref"]
        if not ref.startswith("#"):
            return None
        target: Any = root
        for token in _pointer_tokens(ref[1:]):
            if not isinstance(target, Mapping) or token not in target:
                return None
            target = target[token]
        node = target
        seen += 1
    return node


def _pointer_tokens(path: str) -> list[str]:
    if path in ("", "/"):
        return [] if path == "" else [""]
    if not path.startswith("/"):
        raise ValueError(f"not a JSON pointer: {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


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
    _check_refs(parameters, origin)
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
            declared = _declared_at(parameters, path)
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
        if u.get("split") and path != "" and "*" not in path:
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
                split=u.get("split"),
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


def _check_refs(parameters: Mapping[str, Any], origin: str | None) -> None:
    """Every `$ref` of the parameters is local, resolves, and does not loop onto itself
    through other bare `$ref`s (a schema like `{"$ref": "#"}` validates nothing and never
    ends). Recursive schemas (a tree whose children are trees) are fine."""

    def resolve(ref: str, where: str) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise ToolSpecError(
                f"$ref {ref!r}: only local references (#/...) are supported",
                source=origin,
                field=where,
            )
        target: Any = parameters
        try:
            tokens = _pointer_tokens(ref[1:])
        except ValueError:
            tokens = None
        for token in tokens if tokens is not None else [None]:
            if token is None or not isinstance(target, Mapping) or token not in target:
                raise ToolSpecError(
                    f"$ref {ref!r} does not resolve in parameters", source=origin, field=where
                )
            target = target[token]
        return target

    def walk(node: Any, where: str) -> None:
        if isinstance(node, Mapping):
            if "$ref" in node:
                seen = [node["$ref"]]
                target = resolve(node["$ref"], where + "/$ref")
                while isinstance(target, Mapping) and "$ref" in target:
                    if target["$ref"] in seen:
                        chain = " -> ".join([*seen, target["$ref"]])
                        raise ToolSpecError(
                            f"$ref cycle in parameters: {chain}", source=origin, field=where
                        )
                    seen.append(target["$ref"])
                    target = resolve(target["$ref"], where + "/$ref")
            for k, v in node.items():
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")

    walk(parameters, "parameters")


def _declared_at(schema: Mapping[str, Any], path: str) -> Any:
    """The sub-schema declared for a unit path (`*` for any item or key): the schema, True when
    it cannot be told (combinators), None when nothing declares it, False when it is forbidden."""
    node: Any = schema
    for token in _pointer_tokens(path):
        node = _deref(schema, node)
        if node is False:
            return False
        if not isinstance(node, Mapping):
            return None
        if any(k in node for k in ("anyOf", "oneOf", "allOf", "if", "not")):
            return True  # the whole-call validation covers what this cannot follow
        if "properties" in node or node.get("type") == "object":
            props = node.get("properties", {})
            if token in props:
                node = props[token]
                continue
            extra = node.get("additionalProperties")
            pattern = node.get("patternProperties")
            if extra is False and not pattern:
                return False
            if isinstance(extra, Mapping):
                node = extra
                continue
            if pattern:
                return True
            return None
        if "items" in node or "prefixItems" in node or node.get("type") == "array":
            if token != "*" and not token.isdigit():
                return False
            prefix = node.get("prefixItems", [])
            if token.isdigit() and int(token) < len(prefix):
                node = prefix[int(token)]
            else:
                node = node.get("items", True)
            if node is True:
                return True
            continue
        if node.get("type") in ("string", "number", "integer", "boolean", "null"):
            return False  # a scalar has no items or keys
        return None
    node = _deref(schema, node)
    return False if node is False else (node if node is not None else None)


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
