"""The `python` tool: each top-level statement of generated code runs in a sandboxed REPL while
the model is still writing the next one; the call's result is the script's output.

Statements of one call share one interpreter; two calls never do. Code never runs in this
process, and a call's result is the same whether its statements ran early or all at the end: the
first statement that fails ends the script, as `python script.py` would. With the spec's
`interrupt_on_error` (on for the bundled tool) a failed script fails the call (ScriptError, whose
text is the output so far and the traceback, so `retries=` shows it to the model); in partial
mode the failing statement raises at once, which stops the decoding of the rest of the script.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from sgl_conveyor.errors import (
    ArgumentRejectedError,
    CallCancelledError,
    ScriptError,
    ToolSpecError,
)
from sgl_conveyor.pyast import parse as parse_python
from sgl_conveyor.tools.base import CallContext, Tool, UnitResult
from sgl_conveyor.tools.builtin.bundled import cache_root, data_path
from sgl_conveyor.tools.builtin.sandbox import (
    Sandbox,
    SandboxLimits,
    SandboxPool,
    StatementResult,
)
from sgl_conveyor.tools.spec import ToolSpec
from sgl_conveyor.units.base import Unit

FILENAME = "<script>"
_TOOL_LIMITS = ("pool_size", "data_dir")


@dataclass(eq=False)  # hashed by identity: the tool keeps a set of them
class _CallState:
    """One call's sandbox and what its statements did so far. Owned by the call's context."""

    future: Future
    lock: threading.Lock = field(default_factory=threading.Lock)
    statements: list[StatementResult] = field(default_factory=list)
    end_line: int = 0  # last line of the script covered by a statement that ran
    stopped: StatementResult | None = None  # the statement that ended the script
    discarded: bool = False


def _limits(spec: ToolSpec) -> tuple[SandboxLimits, dict[str, Any]]:
    """The spec's sandbox limits (checked) and the tool's own ones (`pool_size`, `data_dir`)."""
    limits = dict(spec.limits)
    tool_limits = {k: limits.pop(k) for k in _TOOL_LIMITS if k in limits}
    try:
        size = tool_limits.get("pool_size", 1)
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= 64:
            raise ValueError(f"pool_size must be a whole number from 0 to 64, not {size!r}")
        return SandboxLimits.from_mapping(limits), tool_limits
    except (TypeError, ValueError) as e:
        raise ToolSpecError(str(e), source=spec.source, field="conveyor/limits") from e


class PythonTool(Tool):
    """Runs the statements of a `python` call in a sandbox from a warm pool.

    limits (tool_specs/python.json): `pool_size` (sandboxes kept spawned ahead), `data_dir`
    (the folder the REPL sees as DATA_DIR, relative to eval/data/), and every field of
    `SandboxLimits`.
    """

    def __init__(self, spec: ToolSpec | None = None):
        super().__init__(spec)
        self._pool: SandboxPool | None = None
        self._lock = threading.Lock()
        self._active: set[Sandbox] = set()
        self._calls: set[_CallState] = set()  # calls whose sandbox may still be arriving

    # --- configuration -----------------------------------------------------------------------

    @classmethod
    def check_spec(cls, spec: ToolSpec) -> None:
        _limits(spec)

    @property
    def pool(self) -> SandboxPool:
        with self._lock:
            if self._pool is None:
                sandbox_limits, tool_limits = _limits(self.spec)
                data_dir = data_path(tool_limits.get("data_dir", "codegen"))
                self._pool = SandboxPool(
                    sandbox_limits,
                    str(data_dir),
                    cache_root(),
                    size=int(tool_limits.get("pool_size", 1)),
                )
            return self._pool

    def warm(self) -> None:
        """Spawn the pool's interpreters now (in the background), before the first call."""
        self.pool.warm()

    # --- the call ----------------------------------------------------------------------------

    def start(self, ctx: CallContext) -> None:
        # The runtime runs start() on a worker: it may come after an abort, or race a unit.
        with self._lock:
            if "python" in ctx.state:
                return
            if ctx.cancelled.is_set():
                ctx.state["python"] = _discarded_state()
                return
        future = self.pool.acquire()
        with self._lock:
            if "python" in ctx.state:  # lost a race: give the extra sandbox back by killing it
                future.add_done_callback(_kill_when_ready)
                return
            st = _CallState(future)
            ctx.state["python"] = st
            self._calls.add(st)

    def check_unit(self, unit: Unit, ctx: CallContext) -> None:
        code, line = _statement(unit, ctx)
        try:
            compile("\n" * (line - 1) + code, FILENAME, "exec", dont_inherit=True)
        except SyntaxError as e:
            raise ArgumentRejectedError(
                f"SyntaxError at line {e.lineno}: {e.msg}", tool=self.spec.name, unit=unit.path
            ) from None

    def run_unit(self, unit: Unit, ctx: CallContext) -> dict[str, Any]:
        st = self._state(ctx)
        code, line = _statement(unit, ctx)
        with st.lock:
            result = self._run(st, ctx, code, line)
            if not result.ok and result.status != "skipped" and ctx.interrupts:
                # The rest of the script is worthless: fail the call now, so decoding stops.
                raise self._script_error(st)
        return result.to_dict()

    def undo_unit(self, unit: Unit, result: Any, ctx: CallContext) -> None:
        # A statement's effects live in its interpreter: discarding the session undoes them all.
        self._discard(ctx)

    def finish(self, arguments: Any, results: Sequence[UnitResult], ctx: CallContext) -> str:
        code = _code_of(arguments, self.spec.text_field)
        st = self._state(ctx)
        try:
            with st.lock:
                rest = _statements_after(code, st.end_line)
                for text, line in rest:
                    if st.stopped is not None:
                        break
                    self._run(st, ctx, text, line)
                ctx.note(
                    "script_ended",
                    status=st.stopped.status if st.stopped else "ok",
                    statements=len(st.statements),
                )
                if st.stopped is not None and _failed_script_fails_call(ctx):
                    raise self._script_error(st)
                return _script_output(st.statements)
        finally:
            self._discard(ctx)

    def abort(self, ctx: CallContext, error: BaseException | None) -> None:
        self._discard(ctx)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            active, self._active = list(self._active), set()
            calls, self._calls = list(self._calls), set()
        for st in calls:
            self._discard_state(st)
        if pool is not None:
            pool.close()  # waits for spawns in flight; their callbacks kill what calls held
        for sb in active:
            sb.kill()

    # --- helpers -----------------------------------------------------------------------------

    def _state(self, ctx: CallContext) -> _CallState:
        if "python" not in ctx.state:  # a runtime that skipped start(): start now
            self.start(ctx)
        return ctx.state["python"]

    def _sandbox(self, st: _CallState, ctx: CallContext) -> Sandbox:
        while True:
            if st.discarded:
                raise CallCancelledError("the call was aborted", tool=self.spec.name)
            ctx.check()
            try:
                sb = st.future.result(timeout=0.05)
            except FutureTimeout:
                continue
            with self._lock:
                if sb not in self._active:
                    self._active.add(sb)
                    sb.begin_call()
            return sb

    def _run(self, st: _CallState, ctx: CallContext, code: str, line: int) -> StatementResult:
        end_line = line + code.count("\n")
        if st.stopped is not None:
            res = StatementResult(line, "skipped")
        elif not _has_code(code, line):
            res = StatementResult(line, "ok")  # comments only: nothing to run
        else:
            sb = self._sandbox(st, ctx)
            res = sb.run(code, line, cancelled=ctx.cancelled)
            if res.status == "cancelled":
                raise CallCancelledError("the call was cancelled", tool=self.spec.name)
            if not res.ok:
                st.stopped = res
                self._release(sb)  # the script has ended: free the interpreter now
        st.statements.append(res)
        st.end_line = max(st.end_line, end_line)
        return res

    def _script_error(self, st: _CallState) -> ScriptError:
        stopped = st.stopped
        line = stopped.line if stopped is not None else None
        output = _script_output(st.statements)
        return ScriptError(
            f"the script stopped at line {line} ({stopped.status if stopped else 'error'}); "
            f"its output and the traceback:\n{output}",
            tool=self.spec.name,
            output=output,
            line=line,
        )

    def _release(self, sb: Sandbox) -> None:
        with self._lock:
            self._active.discard(sb)
        sb.kill()

    def _discard(self, ctx: CallContext) -> None:
        with self._lock:
            st: _CallState | None = ctx.state.get("python")
            if st is None:
                # Aborted before start() ran: make sure a late start() acquires nothing.
                ctx.state["python"] = _discarded_state()
                return
            self._calls.discard(st)
        self._discard_state(st)

    def _discard_state(self, st: _CallState) -> None:
        st.discarded = True

        def kill(f: Future) -> None:
            if not f.cancelled() and f.exception() is None:
                self._release(f.result())

        st.future.add_done_callback(kill)  # runs now if the sandbox is already there


def _failed_script_fails_call(ctx: CallContext) -> bool:
    """A script that stopped on an error is a failed call (ScriptError) rather than a result:
    where the spec or the caller asks for interruption, in every mode, so that `retries=`
    repairs it the same way whether or not decoding could stop early."""
    return bool(ctx.spec.interrupt_on_error or ctx.interrupt)


def _discarded_state() -> _CallState:
    future: Future = Future()
    future.cancel()
    return _CallState(future, discarded=True)


def _kill_when_ready(f: Future) -> None:
    if not f.cancelled() and f.exception() is None:
        f.result().kill()


def _statement(unit: Unit, ctx: CallContext) -> tuple[str, int]:
    """The statement's code and its first line in the script."""
    code = unit.value if isinstance(unit.value, str) else unit.text
    line = unit.meta.get("line") if isinstance(unit.meta, Mapping) else None
    if not isinstance(line, int) or line < 1:
        line = 1
    return code, line


def _code_of(arguments: Any, text_field: str | None) -> str:
    if isinstance(arguments, str):
        return arguments
    if isinstance(arguments, Mapping) and text_field and isinstance(arguments.get(text_field), str):
        return arguments[text_field]
    raise ArgumentRejectedError(f"the python tool needs a string argument {text_field!r}")


def _has_code(code: str, line: int) -> bool:
    try:
        return bool(parse_python("\n" * (line - 1) + code).body)
    except SyntaxError:
        return True  # let the interpreter report it, with its traceback


def _statements_after(code: str, end_line: int) -> list[tuple[str, int]]:
    """Top-level statements of `code` that start after line `end_line`, as (text, first line).

    Used for the statements no unit ran (sequential mode, or a tail the splitter never emitted),
    so that they still run one by one, each under its own time limit.
    """
    lines = code.splitlines(keepends=True)
    if end_line >= len(lines) or not "".join(lines[end_line:]).strip():
        return []
    try:
        tree = parse_python(code)
    except SyntaxError as e:
        raise ArgumentRejectedError(f"SyntaxError at line {e.lineno}: {e.msg}") from None
    out = []
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        if first <= end_line:
            continue
        last = node.end_lineno or first
        out.append(("".join(lines[first - 1 : last]).rstrip("\r\n"), first))
    return out


def _script_output(statements: list[StatementResult]) -> str:
    """What a terminal shows for the script: its output, then the error that ended it."""
    parts: list[str] = []
    dropped = 0
    for r in statements:
        parts.append(r.output)
        dropped += r.dropped_bytes
        if r.error:
            if parts and parts[-1] and not parts[-1].endswith("\n"):
                parts.append("\n")
            parts.append(r.error)
    text = "".join(parts)
    if dropped:
        if text and not text.endswith("\n"):
            text += "\n"
        text += f"[output truncated: {dropped} more bytes were not kept]\n"
    return text
