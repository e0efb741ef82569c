"""Incremental unit detectors: streamed tool-call text in, final units out.

    detector = make_detector([UnitPattern("/queries/*")], schema=spec.schema)
    for chunk in stream:
        for unit in detector.feed(chunk):
            run(unit)            # unit.path == "/queries/0", unit.value == "paris population"
    detector.finish()            # IncompleteError if the stream was cut

Detectors know nothing about tools, backends or threads; they never block and never re-read
text they have consumed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sgl_conveyor.schema import CompiledSchema
from sgl_conveyor.units.base import Piece, TextSplitter, Unit, UnitDetector, UnitPattern
from sgl_conveyor.units.json_stream import JsonUnitDetector

# Importing a splitter's module registers its kinds ("lines", "python"; "plan").
from sgl_conveyor.units.plan import Expr, PlanSplitter, Ref
from sgl_conveyor.units.splitters import SPLITTERS, make_splitter, register_splitter
from sgl_conveyor.units.text import LineSplitter, PythonStatementSplitter, TextUnitDetector

__all__ = [
    "SPLITTERS",
    "Expr",
    "JsonUnitDetector",
    "LineSplitter",
    "Piece",
    "PlanSplitter",
    "PythonStatementSplitter",
    "Ref",
    "TextSplitter",
    "TextUnitDetector",
    "Unit",
    "UnitDetector",
    "UnitPattern",
    "make_detector",
    "make_splitter",
    "register_splitter",
]


def make_detector(
    patterns: Sequence[UnitPattern],
    schema: CompiledSchema | Mapping[str, Any] | None = None,
    format: str = "json",
) -> UnitDetector:
    """A fresh detector for one call.

    format "json": the call is a JSON document; `schema` enables early rejection (pass the spec's
    `CompiledSchema`, `spec.schema`, so that every call shares one compilation). format "text":
    the call is raw text for one field; `patterns` holds its single pattern (the field's path,
    e.g. `/code`, or "", optionally with `split`); `schema` is ignored.
    """
    if format == "json":
        return JsonUnitDetector(patterns, schema)
    if format == "text":
        pats = list(patterns)
        if len(pats) != 1:
            raise ValueError(
                f"a text call has exactly one unit pattern (its field, optionally split), "
                f"got {len(pats)}: {[p.path for p in pats]}"
            )
        return TextUnitDetector(pats[0].path, pats[0].split)
    raise ValueError(f"unknown call format {format!r} (known: 'json', 'text')")
