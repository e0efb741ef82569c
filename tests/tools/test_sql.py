"""The `sql` tool on the real (generated) SQLite database: read-only, capped, interruptible."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from tool_helpers import json_unit, make_ctx, make_tool

from sgl_conveyor.errors import (
    ArgumentRejectedError,
    CallCancelledError,
    ToolExecutionError,
    ToolTimeoutError,
)
from sgl_conveyor.tools.base import UnitResult
from sgl_conveyor.tools.builtin.sql import database_file

RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


@pytest.fixture(scope="module")
def tool():
    t = make_tool("sql")
    yield t
    t.close()


def run(tool, query: str):
    ctx = make_ctx(tool)
    tool.start(ctx)
    unit = json_unit("/query", query)
    try:
        tool.check_unit(unit, ctx)
        value = tool.run_unit(unit, ctx)
        return tool.finish({"query": query}, [UnitResult(unit, value)], ctx)
    except BaseException as e:
        tool.abort(ctx, e)
        raise


def test_the_spec_examples_run_and_match_their_stated_results(tool):
    for ex in tool.spec.examples:
        out = run(tool, ex["call"]["query"])
        if "result" in ex:
            assert out == ex["result"]
    names = run(tool, tool.spec.examples[0]["call"]["query"])
    assert names["row_count"] == 120 and names["columns"] == ["first_name", "last_name"]


def test_rows_are_capped(tool):
    out = run(tool, "SELECT * FROM order_items")
    assert out["row_count"] == 200 and out["truncated"] is True
    assert set(out["rows"][0]) == {"order_id", "product_id", "quantity", "unit_price"}


def test_duplicate_column_names_stay_distinct(tool):
    out = run(tool, "SELECT e.id, d.id FROM employees e JOIN departments d LIMIT 1")
    assert out["columns"] == ["id", "id_2"]


@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM employees",
        "UPDATE employees SET salary = 0",
        "DROP TABLE orders",
        "ATTACH DATABASE 'other.db' AS other",
        "PRAGMA query_only = OFF",
        "SELECT 1; DELETE FROM employees",
        "WITH x AS (SELECT 1) DELETE FROM employees",
    ],
)
def test_anything_but_reading_is_rejected_and_nothing_changes(tool, query):
    with pytest.raises((ArgumentRejectedError, ToolExecutionError)):
        run(tool, query)
    assert run(tool, "SELECT COUNT(*) AS n FROM employees")["rows"] == [{"n": 120}]


def test_a_misspelled_name_is_rejected_with_the_schema(tool):
    with pytest.raises(ArgumentRejectedError, match="no such column: salry") as e:
        run(tool, "SELECT salry FROM employees")
    assert "employees(id, first_name, last_name" in str(e.value)


def test_a_runaway_query_is_stopped_at_its_time_limit():
    tool = make_tool("sql", query_timeout_s=0.3)
    t0 = time.monotonic()
    with pytest.raises(ToolTimeoutError):
        run(tool, RUNAWAY)
    assert time.monotonic() - t0 < 5
    tool.close()


def test_abort_interrupts_a_running_query(tool):
    ctx = make_ctx(tool)
    tool.start(ctx)
    errors = []

    def go():
        try:
            tool.run_unit(json_unit("/query", RUNAWAY), ctx)
        except CallCancelledError as e:
            errors.append(e)

    t = threading.Thread(target=go)
    t.start()
    time.sleep(0.2)
    ctx.cancelled.set()
    tool.abort(ctx, None)
    t.join(timeout=5)
    assert not t.is_alive() and errors


def test_the_database_file_is_read_only_even_for_sqlite_itself(tool):
    conn = sqlite3.connect(f"{database_file('sql/company.sql').as_uri()}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM employees")
    conn.close()
