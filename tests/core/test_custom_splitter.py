"""A unit kind from outside the package: one splitter class, one registration, and a tool spec
that names it, run end to end on the replay backend."""

from __future__ import annotations

import pytest
import sglang as sgl

import sgl_conveyor
from sgl_conveyor import Tool, ToolRegistry
from sgl_conveyor.backends.replay import ReplayBackend
from sgl_conveyor.errors import ToolSpecError
from sgl_conveyor.tools.spec import spec_from_dict
from sgl_conveyor.units import JsonUnitDetector, Piece, UnitPattern, register_splitter


@register_splitter("sql_statements")
class SqlStatementSplitter:
    """Each statement is a piece, final at its `;` (no quoting rules: a sketch, not SQL)."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._start = 0
        self._pos = 0

    def feed(self, text: str) -> list[Piece]:
        out = []
        i = 0
        while (j := text.find(";", i)) >= 0:
            self._parts.append(text[i : j + 1])
            self._emit("".join(self._parts), self._pos + j + 1, out)
            self._parts.clear()
            i = j + 1
        self._parts.append(text[i:])
        self._pos += len(text)
        return out

    def finish(self) -> list[Piece]:
        out: list[Piece] = []
        self._emit("".join(self._parts), self._pos, out)
        return out

    def _emit(self, text: str, end: int, out: list[Piece]) -> None:
        start, self._start = self._start, end
        if text.strip():
            out.append(Piece(text.strip(), start, end))


SQL_SPEC = {
    "type": "function",
    "function": {
        "name": "sql_script",
        "description": "Run SQL statements, one after another.",
        "parameters": {
            "type": "object",
            "properties": {"script": {"type": "string"}},
            "required": ["script"],
        },
    },
    "conveyor": {
        "units": [{"path": "/script", "split": "sql_statements", "effect": "pure"}],
        "order": "serial",
        "cost_model": False,
    },
}


class SqlScript(Tool):
    def run_unit(self, unit, ctx):
        return f"ran {unit.value}"

    def finish(self, arguments, results, ctx):
        return [r.value for r in results]


def test_a_splitter_registered_outside_the_package_runs_a_tool_call_end_to_end():
    registry = ToolRegistry()
    registry.add(SQL_SPEC, SqlScript)
    call = '{"script": "CREATE TABLE t (x INT); INSERT INTO t VALUES (1);\\nSELECT x FROM t;"}'
    task = {"id": "sql", "input": {"q": "x"}, "outputs": [call]}

    @sgl.function
    def program(s, q, task_id=None):
        s += sgl.user(q)
        s += sgl.assistant(sgl.partial_tool("sql_script", name="run", registry=registry))

    backend = ReplayBackend([task], tokens_per_second=50, ttft_s=0.01)
    st = program.run(q="x", backend=backend)
    assert st["run_result"] == [
        "ran CREATE TABLE t (x INT);",
        "ran INSERT INTO t VALUES (1);",
        "ran SELECT x FROM t;",
    ]
    (report,) = sgl_conveyor.call_report(st, "run")["calls"]
    assert [u["path"] for u in report["units"]] == ["/script#0", "/script#1", "/script#2"]
    assert report["units"][0]["finished_s"] < report["stream_end_s"]


def test_a_piece_knows_the_string_it_came_from():
    d = JsonUnitDetector([UnitPattern("/script", "sql_statements"), UnitPattern("/a#1")])
    units = d.feed('{"a#1": 2, "script": "SELECT 1; SELECT 2;"}')
    assert [(u.path, u.piece_of) for u in units] == [
        ("/a#1", None),
        ("/script#0", "/script"),
        ("/script#1", "/script"),
    ]


def test_an_unknown_split_names_the_field_and_the_known_kinds():
    bad = dict(SQL_SPEC, conveyor={"units": [{"path": "/script", "split": "cobol"}]})
    with pytest.raises(ToolSpecError) as info:
        spec_from_dict(bad)
    msg = str(info.value)
    assert "conveyor/units/0/split" in msg and "'cobol'" in msg
    assert all(kind in msg for kind in ("python", "lines", "plan", "sql_statements"))


def test_a_kind_is_never_silently_replaced():
    with pytest.raises(ValueError, match="already registered"):
        register_splitter("lines", SqlStatementSplitter)


def test_the_spec_compiles_its_schema_once_for_all_its_calls():
    spec = spec_from_dict(SQL_SPEC)
    assert spec.schema is spec.schema
    assert spec.schema.validator_at("/script") is spec.schema.validator_at("/script")
    assert spec.validate_unit("/script", 3) == ["/script: 3 is not of type 'string'"]
    # the detector takes the compiled schema as it is
    d = JsonUnitDetector([UnitPattern("/script")], spec.schema)
    assert [u.value for u in d.feed('{"script": "x"}')] == ["x"]
