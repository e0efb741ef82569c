"""The text splitters a unit pattern's `split` can name, by name: one registration per kind.

    @register_splitter("sql")
    class SqlStatementSplitter: ...      # a TextSplitter: feed(text) / finish() -> [Piece]

The registry only maps names to factories; it never imports a splitter's module (each module
registers its own kinds), so splitters know nothing of each other or of tools.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TypeVar

from sgl_conveyor.units.base import TextSplitter

__all__ = ["SPLITTERS", "make_splitter", "register_splitter"]

Factory = Callable[[], TextSplitter]
F = TypeVar("F", bound=Factory)

_REGISTRY: dict[str, Factory] = {}
SPLITTERS: Mapping[str, Factory] = MappingProxyType(_REGISTRY)  # a live, read-only view


def register_splitter(name: str, factory: F | None = None) -> F | Callable[[F], F]:
    """Make `split: name` mean "each piece `factory()` emits is a unit". `factory` is a class (or
    any callable) giving a fresh TextSplitter per string; used bare it is a class decorator.
    A name already taken by another factory is a ValueError: kinds are never silently replaced."""

    def add(f: F) -> F:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a splitter name is a non-empty string, not {name!r}")
        if not callable(f):
            raise TypeError(f"splitter {name!r}: {f!r} is not a class or a callable")
        known = _REGISTRY.get(name)
        if known is not None and known is not f:
            raise ValueError(f"splitter {name!r} is already registered ({known!r})")
        _REGISTRY[name] = f
        return f

    return add if factory is None else add(factory)


def make_splitter(name: str) -> TextSplitter:
    """A fresh splitter for a UnitPattern's `split` name."""
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ValueError(f"unknown splitter {name!r} (known: {', '.join(_REGISTRY)})")
    return factory()
