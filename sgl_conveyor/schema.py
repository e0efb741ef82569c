"""A JSON Schema as data compiled once (per tool spec) and reused by every call: JSON pointers,
local `$ref`s, sub-schemas, per-path validators, and the view the streaming detector checks.

It knows nothing of tools or streams. It never follows a remote `$ref`, and never raises for a
schema it cannot follow: what it cannot check is left to the full validation of the value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from jsonschema import Draft202012Validator

__all__ = [
    "NOTHING",
    "CompiledSchema",
    "StreamNode",
    "declared_at",
    "deref",
    "escape_token",
    "pointer_tokens",
    "ref_problem",
    "resolve_ref",
    "subschema_at",
]

_MAX_HOPS = 32  # bare `$ref`s followed in a row before a reference counts as unresolvable


# --- JSON pointers and `$ref` ---------------------------------------------------------------


def pointer_tokens(path: str) -> tuple[str, ...]:
    """`/a/*/b~1c` -> ("a", "*", "b/c"); "" is the root. (`*` is only a wildcard to callers
    that say so: unit patterns.)"""
    if path == "":
        return ()
    if not path.startswith("/"):
        raise ValueError(f"a JSON pointer starts with '/': {path!r}")
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/"))


def escape_token(token: str) -> str:
    """One pointer token as written in a path (`b/c` -> `b~1c`)."""
    return token.replace("~", "~0").replace("/", "~1") if ("~" in token or "/" in token) else token


def resolve_ref(root: Any, ref: Any) -> Any:
    """The target of a local `$ref` (`#/$defs/step`) in `root`; LookupError if it has none."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise LookupError(f"not a local reference: {ref!r}")
    try:
        tokens = pointer_tokens(ref[1:])
    except ValueError:
        raise LookupError(f"not a JSON pointer: {ref!r}") from None
    target = root
    for token in tokens:
        if isinstance(target, Mapping) and token in target:
            target = target[token]
        elif isinstance(target, list) and token.isdigit() and int(token) < len(target):
            target = target[int(token)]
        else:
            raise LookupError(f"{ref!r} does not resolve")
    return target


def deref(root: Any, node: Any) -> Any:
    """`node` with its bare `$ref`s followed; None if one does not resolve or they loop."""
    for _ in range(_MAX_HOPS):
        if not isinstance(node, Mapping) or "$ref" not in node:
            return node
        try:
            node = resolve_ref(root, node["$ref"])
        except LookupError:
            return None
    return None


def ref_problem(root: Any, where: str = "parameters") -> tuple[str, str] | None:
    """The first bad `$ref` of a schema, as (field, message): one that is not local, does not
    resolve, or loops onto itself through other bare `$ref`s (`{"$ref": "#"}` validates nothing
    and never ends). Recursive schemas (a tree whose children are trees) are fine."""

    def check(ref: Any, at: str) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise _Bad(at, f"$ref {ref!r}: only local references (#/...) are supported")
        try:
            return resolve_ref(root, ref)
        except LookupError:
            raise _Bad(at, f"$ref {ref!r} does not resolve in {where}") from None

    def walk(node: Any, at: str) -> None:
        if isinstance(node, Mapping):
            if "$ref" in node:
                seen = [node["$ref"]]
                target = check(node["$ref"], at + "/$ref")
                while isinstance(target, Mapping) and "$ref" in target:
                    if target["$ref"] in seen:
                        chain = " -> ".join([*seen, target["$ref"]])
                        raise _Bad(at, f"$ref cycle in {where}: {chain}")
                    seen.append(target["$ref"])
                    target = check(target["$ref"], at + "/$ref")
            for k, v in node.items():
                walk(v, f"{at}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{at}/{i}")

    try:
        walk(root, where)
    except _Bad as bad:
        return bad.field, bad.message
    return None


class _Bad(Exception):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message


# --- sub-schemas ----------------------------------------------------------------------------


def subschema_at(root: Mapping[str, Any] | bool, path: str) -> Any:
    """The sub-schema that applies to the value at JSON pointer `path`, or None if unknown.

    Follows `properties`, `items` / `prefixItems`, `additionalProperties` and local `$ref`s.
    Combinators (`anyOf`, `oneOf`) give None: the whole-call validation covers them.
    """
    node: Any = root
    for token in pointer_tokens(path):
        node = deref(root, node)
        if not isinstance(node, Mapping):
            return None
        if "properties" in node or node.get("type") == "object":
            props = node.get("properties", {})
            node = props[token] if token in props else node.get("additionalProperties", True)
            continue
        if "items" in node or "prefixItems" in node or node.get("type") == "array":
            if not token.isdigit():
                return None
            i = int(token)
            prefix = node.get("prefixItems", [])
            node = prefix[i] if i < len(prefix) else node.get("items", True)
            continue
        return None
    return deref(root, node)


def declared_at(root: Mapping[str, Any], path: str) -> Any:
    """The sub-schema declared for a unit path (`*` for any item or key): the schema, True when
    it cannot be told (combinators), None when nothing declares it, False when it is forbidden."""
    node: Any = root
    for token in pointer_tokens(path):
        node = deref(root, node)
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
    node = deref(root, node)
    return False if node is False else node


# --- the streaming view: what can be checked at a value's first character -------------------

_NUMBER_START = "-0123456789"
_TYPE_CHARS = {
    "string": '"',
    "object": "{",
    "array": "[",
    "boolean": "tf",
    "null": "n",
    "number": _NUMBER_START,
    "integer": _NUMBER_START,
}


def _first_chars(value: Any) -> str:
    """First characters a JSON text of `value` can start with."""
    if value is True:
        return "t"
    if value is False:
        return "f"
    if value is None:
        return "n"
    if isinstance(value, str):
        return '"'
    if isinstance(value, (int, float)):
        return _NUMBER_START
    if isinstance(value, list):
        return "["
    if isinstance(value, dict):
        return "{"
    return ""


class StreamNode:
    """One schema object as the streaming detector sees it, compiled on first use. Keywords are
    conjunctive in JSON Schema, so using only some of them (and ignoring anyOf/oneOf/allOf/not/if
    branches, unevaluated*, formats, bounds...) can miss violations but never reports a false
    one."""

    __slots__ = (
        "_compiled",
        "enum",
        "extra",
        "first",
        "items",
        "keys_unknown",
        "max_items",
        "min_items",
        "pattern_props",
        "prefix",
        "props",
        "required",
    )

    def __init__(self, compiled: CompiledSchema, raw: Mapping[str, Any]) -> None:
        self._compiled = compiled
        first: set[str] | None = None
        types = raw.get("type")
        if isinstance(types, str):
            types = [types]
        if isinstance(types, list) and all(t in _TYPE_CHARS for t in types):
            first = set("".join(_TYPE_CHARS[t] for t in types))
        enum: tuple[str, ...] | None = None
        if "const" in raw:
            c = raw["const"]
            first = set(_first_chars(c)) & (first if first is not None else set(_first_chars(c)))
            enum = (c,) if isinstance(c, str) else ()
        if isinstance(raw.get("enum"), list):
            values = raw["enum"]
            allowed = set("".join(_first_chars(v) for v in values))
            first = allowed if first is None else first & allowed
            strings = tuple(v for v in values if isinstance(v, str))
            enum = strings if enum is None else tuple(s for s in enum if s in strings)
        self.first = frozenset(first) if first is not None else None
        self.enum = enum if enum else None
        props = raw.get("properties")
        self.props = props if isinstance(props, Mapping) else None
        self.pattern_props: list[tuple[re.Pattern[str], Any]] | None = None
        self.keys_unknown = False
        pats = raw.get("patternProperties")
        if isinstance(pats, Mapping) and pats:
            try:
                self.pattern_props = [(re.compile(p), s) for p, s in pats.items()]
            except (re.error, TypeError):
                self.keys_unknown = True  # a regex Python cannot read: no key checks here
        self.extra = raw.get("additionalProperties", True)
        req = raw.get("required")
        self.required = tuple(k for k in req if isinstance(k, str)) if isinstance(req, list) else ()
        items = raw.get("items", True)
        prefix = raw.get("prefixItems")
        if isinstance(items, list):  # draft 7 tuple form
            prefix, items = items, raw.get("additionalItems", True)
        self.prefix = prefix if isinstance(prefix, list) else None
        self.items = items
        mx, mn = raw.get("maxItems"), raw.get("minItems")
        self.max_items = mx if isinstance(mx, int) and not isinstance(mx, bool) else None
        self.min_items = mn if isinstance(mn, int) and not isinstance(mn, bool) else None

    @property
    def checks_nothing(self) -> bool:
        return (
            self.first is None
            and self.enum is None
            and self.props is None
            and self.pattern_props is None
            and self.extra is True
            and not self.required
            and self.prefix is None
            and self.items is True
            and self.max_items is None
            and self.min_items is None
        )

    def prop(self, key: str) -> StreamNode | None:
        """The node of the value at `key` (`NOTHING` if no value is allowed there)."""
        if self.props is not None and key in self.props:
            return self._compiled.node(self.props[key])
        if self.pattern_props:
            for rx, sub in self.pattern_props:
                if rx.search(key):
                    return self._compiled.node(sub)
        if self.keys_unknown:
            return None
        return self._compiled.node(self.extra)

    def item(self, index: int) -> StreamNode | None:
        if self.prefix is not None and index < len(self.prefix):
            return self._compiled.node(self.prefix[index])
        return self._compiled.node(self.items)


class _Nothing(StreamNode):
    """The schema `false`: nothing is allowed."""

    def __init__(self) -> None:
        self.first = frozenset()
        self.enum = None
        self.props = self.pattern_props = self.prefix = None
        self.keys_unknown = False
        self.extra = self.items = False
        self.required = ()
        self.max_items = self.min_items = None


NOTHING: StreamNode = _Nothing()


# --- the compiled schema --------------------------------------------------------------------


class CompiledSchema:
    """A root schema and everything derived from it, each computed once and kept: streaming
    nodes (keyed by the id of their raw object, which the root keeps alive), sub-schemas and
    validators by path. Shared by all the calls of one spec (dict writes are atomic, so threads
    at worst compile a piece twice)."""

    def __init__(self, root: Mapping[str, Any] | bool) -> None:
        self.root = root
        self._nodes: dict[int, StreamNode | None] = {}
        self._validators: dict[str, Draft202012Validator | bool | None] = {}

    @cached_property
    def validator(self) -> Draft202012Validator:
        """The validator of a whole value."""
        return Draft202012Validator(
            dict(self.root) if isinstance(self.root, Mapping) else self.root
        )

    @property
    def stream_root(self) -> StreamNode | None:
        """The streaming view of the root (None: nothing to check early)."""
        return self.node(self.root)

    def node(self, raw: Any) -> StreamNode | None:
        """The streaming view of a schema object inside the root (`$ref`s followed)."""
        raw = deref(self.root, raw)
        if raw is False:
            return NOTHING
        if not isinstance(raw, Mapping):
            return None  # `true`, or something we cannot follow: no checks
        key = id(raw)
        try:
            return self._nodes[key]
        except KeyError:
            pass
        node: StreamNode | None = StreamNode(self, raw)
        if node.checks_nothing:
            node = None
        self._nodes[key] = node
        return node

    def subschema_at(self, path: str) -> Any:
        return subschema_at(self.root, path)

    def validator_at(self, path: str) -> Draft202012Validator | bool | None:
        """The validator of the value at `path`: None when no sub-schema applies (or `true`),
        False when no value is allowed there."""
        try:
            return self._validators[path]
        except KeyError:
            pass
        sub = subschema_at(self.root, path)
        v: Draft202012Validator | bool | None
        if sub is None or sub is True:
            v = None
        elif sub is False:
            v = False
        else:
            # $defs/$ref of the root must stay resolvable from the sub-schema.
            schema = dict(sub)
            if isinstance(self.root, Mapping) and "$defs" in self.root and "$defs" not in schema:
                schema["$defs"] = self.root["$defs"]
            v = Draft202012Validator(schema)
        self._validators[path] = v
        return v
