"""The `sql` tool: one read-only SQLite query on the bundled company database, run as soon as
its string is complete, with a row cap and a time limit.

The database is opened read-only (`mode=ro`, `PRAGMA query_only`) and an authorizer refuses
everything but reading (no ATTACH, no writes, no schema changes, only informational PRAGMAs).
The database file is built once into the cache from the committed dump eval/data/sql/company.sql.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgl_conveyor.errors import (
    ArgumentRejectedError,
    CallCancelledError,
    ToolExecutionError,
    ToolTimeoutError,
)
from sgl_conveyor.tools.base import CallContext, Tool, UnitResult
from sgl_conveyor.tools.builtin.bundled import cache_root, data_path, missing_data
from sgl_conveyor.tools.spec import ToolSpec
from sgl_conveyor.units.base import Unit

DATABASE = "sql/company.sql"
_READ_PRAGMAS = frozenset(
    {"table_info", "table_xinfo", "table_list", "index_list", "index_info", "foreign_key_list"}
)
_ALLOWED = frozenset(
    {sqlite3.SQLITE_READ, sqlite3.SQLITE_SELECT, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
_FIRST_WORD = re.compile(r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*\(*\s*([A-Za-z]+)", re.S)
_build_lock = threading.Lock()


def database_file(source: str | os.PathLike) -> Path:
    """The SQLite file for `source`: a .sqlite/.db file as is, or a .sql dump built (once,
    atomically) into the cache under a name that changes with the dump's content."""
    src = data_path(source)
    if not src.exists():
        raise missing_data(src, "sgl_conveyor.eval.data.gen_sql")
    if src.suffix != ".sql":
        return src
    text = src.read_text(encoding="utf-8")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    out = cache_root() / "sql" / f"{src.stem}-{digest}.sqlite"
    with _build_lock:
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.unlink(missing_ok=True)
            conn = sqlite3.connect(tmp)
            try:
                conn.executescript(text)
                conn.commit()
            finally:
                conn.close()
            os.replace(tmp, out)
    return out


def _authorize(action: int, arg1: str | None, arg2: str | None, db: str | None, src: str | None):
    if action in _ALLOWED:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _READ_PRAGMAS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def open_readonly(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    conn.execute("PRAGMA query_only = ON")
    conn.set_authorizer(_authorize)
    return conn


@dataclass
class _CallState:
    conn: sqlite3.Connection
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False


class SqlTool(Tool):
    """`{"query": "SELECT ..."}`. limits: `database` (a .sql dump or a SQLite file, relative to
    eval/data/), `max_rows`, `query_timeout_s`."""

    def __init__(self, spec: ToolSpec | None = None):
        super().__init__(spec)
        self._path: Path | None = None
        self._lock = threading.RLock()

    @property
    def path(self) -> Path:
        with self._lock:
            return self._database()

    def _database(self) -> Path:
        if self._path is None:
            self._path = database_file(self.spec.limits.get("database", DATABASE))
        return self._path

    def start(self, ctx: CallContext) -> None:
        self._state(ctx)

    def _state(self, ctx: CallContext) -> _CallState:
        # start() runs on a worker and may race the check of the query: one connection only.
        with self._lock:
            st = ctx.state.get("sql")
            if st is None:
                st = ctx.state["sql"] = _CallState(open_readonly(self._database()))
            return st

    def check_unit(self, unit: Unit, ctx: CallContext) -> None:
        if unit.path != "/query":
            return
        query = str(unit.value)
        m = _FIRST_WORD.match(query)
        if m is None or m.group(1).upper() not in ("SELECT", "WITH", "VALUES", "PRAGMA"):
            raise ArgumentRejectedError(
                "only read-only queries are allowed: SELECT (or WITH ... SELECT)",
                tool=self.spec.name,
                unit=unit.path,
            )
        st = self._state(ctx)
        with st.lock:
            try:
                # Compiles the query (names, syntax, permissions) without running it.
                st.conn.execute("EXPLAIN " + query).fetchmany(1)
            except sqlite3.Error as e:
                raise ArgumentRejectedError(
                    f"{_message(e)}{self._schema_hint(e, st.conn)}",
                    tool=self.spec.name,
                    unit=unit.path,
                ) from None

    def run_unit(self, unit: Unit, ctx: CallContext) -> dict[str, Any] | None:
        if unit.path != "/query":
            return None
        return self._query(str(unit.value), ctx)

    def _query(self, query: str, ctx: CallContext) -> dict[str, Any]:
        st = self._state(ctx)
        lim = self.spec.limits
        max_rows = int(lim.get("max_rows", 200))
        deadline = time.monotonic() + float(lim.get("query_timeout_s", 5.0))
        stopped: list[str] = []

        def progress() -> int:
            if ctx.cancelled.is_set():
                stopped.append("cancelled")
                return 1
            if time.monotonic() > deadline:
                stopped.append("timeout")
                return 1
            return 0

        with st.lock:
            if st.closed:
                raise CallCancelledError("the call was aborted", tool=self.spec.name)
            st.conn.set_progress_handler(progress, 1000)
            try:
                cur = st.conn.execute(query)
                columns = _unique([d[0] for d in cur.description or ()])
                rows = cur.fetchmany(max_rows + 1)
            except sqlite3.Error as e:
                if ctx.cancelled.is_set() or (stopped and stopped[0] == "cancelled"):
                    raise CallCancelledError("the call was cancelled", tool=self.spec.name) from e
                if stopped:
                    raise ToolTimeoutError(
                        f"the query ran longer than {lim.get('query_timeout_s', 5.0)} s",
                        tool=self.spec.name,
                    ) from e
                raise ToolExecutionError(_message(e), tool=self.spec.name) from None
            finally:
                st.conn.set_progress_handler(None, 0)
        truncated = len(rows) > max_rows
        rows = rows[:max_rows]
        return {
            "columns": columns,
            "rows": [dict(zip(columns, map(_jsonable, r), strict=True)) for r in rows],
            "row_count": len(rows),
            "truncated": truncated,
        }

    def finish(self, arguments: Any, results: Sequence[UnitResult], ctx: CallContext) -> Any:
        try:
            for r in results:
                same = r.unit.path == "/query" and r.unit.value == arguments["query"]
                if r.ok and same and isinstance(r.value, Mapping):
                    return r.value
            return self._query(str(arguments["query"]), ctx)
        finally:
            self._close(ctx)

    def abort(self, ctx: CallContext, error: BaseException | None) -> None:
        st: _CallState | None = ctx.state.get("sql")
        if st is not None:
            st.conn.interrupt()  # a running query stops at once
        self._close(ctx)

    def _close(self, ctx: CallContext) -> None:
        st: _CallState | None = ctx.state.get("sql")
        if st is None:
            return
        with st.lock:
            if not st.closed:
                st.closed = True
                st.conn.close()

    def _schema_hint(self, error: sqlite3.Error, conn: sqlite3.Connection) -> str:
        text = str(error)
        if "no such table" not in text and "no such column" not in text:
            return ""
        conn.set_authorizer(None)
        try:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            parts = []
            for t in tables:
                cols = [r[1] for r in conn.execute(f"PRAGMA table_info({_ident(t)})")]
                parts.append(f"{t}({', '.join(cols)})")
        finally:
            conn.set_authorizer(_authorize)
        return ". Tables: " + "; ".join(parts)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _message(e: sqlite3.Error) -> str:
    text = str(e)
    if "not authorized" in text:
        return "not allowed: this database is read-only (SELECT queries only)"
    return f"SQL error: {text}"


def _unique(columns: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for c in columns:
        n = seen.get(c, 0) + 1
        seen[c] = n
        out.append(c if n == 1 else f"{c}_{n}")
    return out


def _jsonable(v: Any) -> Any:
    return v.hex() if isinstance(v, bytes) else v
