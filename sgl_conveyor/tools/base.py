"""The tool interface: what a tool implementation receives during one call.

A call's life: `start` (warm up: connect, spawn a sandbox), `check_unit` and `run_unit` for each
completed unit (as the runtime's effect and cost policy allows), then `finish` with the whole
validated arguments (returns the result), or `abort` (undo, kill, discard). Tools know nothing
about streams or backends; the runtime calls them from worker threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sgl_conveyor.errors import CallCancelledError, ToolCallError
from sgl_conveyor.tools.spec import ToolSpec
from sgl_conveyor.units.base import Unit


def unit_key(call_id: str, unit: Unit) -> str:
    """Stable identity of a unit: its call, its path and a hash of its content.

    Tools may pass it on as an idempotency key; the runtime uses it so no unit runs twice.
    """
    return f"{call_id}:{unit.path}:{unit.digest}"


class WorkBudget(Protocol):
    """What a tool sees of the call's limit: the seconds of tool work it has left."""

    def remaining(self) -> float: ...


@dataclass
class CallContext:
    """What a tool sees of the call it serves. One per call; shared by all its units.

    `state` is the tool's own scratch space for this call (a session, a connection). `results`
    maps a finished unit's id (`unit.meta["id"]`, else its path) to its result, so a DAG unit
    (a plan step) can read what its dependencies produced. `cancelled`
    is set when the call is aborted: long-running tool code should poll `check()` or use
    `sleep()`, which wakes up at once on cancellation. `remaining()` is what is left of the
    call's limit, which counts only the tool's own work (see `sgl_conveyor.runtime.clock`).
    """

    call_id: str
    tool: str
    mode: str
    spec: ToolSpec
    clock: WorkBudget | None = None
    state: dict[str, Any] = field(default_factory=dict)
    results: dict[Any, Any] = field(default_factory=dict)
    cancelled: threading.Event = field(default_factory=threading.Event)
    # Where note() goes: the call's timeline when the runtime runs the call.
    on_note: Callable[..., None] | None = field(default=None, repr=False)
    # The caller's choice on early interruption (partial_tool's `interrupt=`); None: the spec's.
    interrupt: bool | None = None

    @property
    def interrupts(self) -> bool:
        """A unit failing at run time must stop the call now (decoding included): the spec (or
        the caller) asks for it, and the call runs its units while it is decoded."""
        wanted = self.spec.interrupt_on_error if self.interrupt is None else self.interrupt
        return bool(wanted) and self.mode == "partial"

    @property
    def limits(self) -> Mapping[str, Any]:
        return self.spec.limits

    def check(self) -> None:
        """Raise CallCancelledError if the call was cancelled."""
        if self.cancelled.is_set():
            raise CallCancelledError("the call was cancelled", tool=self.tool)

    def sleep(self, seconds: float) -> None:
        """Sleep, but return early (raising CallCancelledError) when the call is cancelled."""
        if self.cancelled.wait(max(0.0, seconds)):
            raise CallCancelledError("the call was cancelled", tool=self.tool)

    def remaining(self) -> float | None:
        """Seconds of tool work left within the call's limit (None: no limit)."""
        return None if self.clock is None else self.clock.remaining()

    def note(self, event: str, **fields: Any) -> None:
        """Record a tool-specific event in the call's timeline (e.g. 'connected'); it shows in
        `sgl_conveyor.call_report` with the runtime's own notes."""
        if self.on_note is not None:
            self.on_note(event, **fields)

    def key(self, unit: Unit) -> str:
        return unit_key(self.call_id, unit)


@dataclass
class UnitResult:
    """The outcome of one unit: its value, or the error it raised, and when it ran."""

    unit: Unit
    value: Any = None
    error: ToolCallError | None = None
    dispatched_s: float | None = None
    started_s: float | None = None
    finished_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Tool:
    """Base class of tool implementations. Override what the tool needs.

    The default implementation does nothing early and calls `call(**arguments)` at the end, so
    a tool that only overrides `call` behaves exactly like a sequential tool.
    """

    spec: ToolSpec

    def __init__(self, spec: ToolSpec | None = None):
        if spec is not None:
            self.spec = spec

    @classmethod
    def check_spec(cls, spec: ToolSpec) -> None:
        """Raise ToolSpecError if this implementation cannot serve `spec` (its limits, say).
        The registry calls it when the spec is registered, so a bad spec fails at load."""

    def start(self, ctx: CallContext) -> None:
        """The call has begun: warm up (connect, spawn a process).

        Runs on a worker thread before any `run_unit` of the call, but may overlap the inline
        `check_unit`s, and may even run after `abort` if the call was doomed very early: make it
        idempotent and check `ctx.cancelled`."""

    def check_unit(self, unit: Unit, ctx: CallContext) -> None:
        """Cheap semantic check of a completed unit; raise ArgumentRejectedError to abort.

        Runs for every unit as soon as it is final, whatever its effect class.
        """

    def run_unit(self, unit: Unit, ctx: CallContext) -> Any:
        """Do the work of one completed unit and return its result (None: nothing to do)."""
        return None

    def undo_unit(self, unit: Unit, result: Any, ctx: CallContext) -> None:
        """Undo a reversible unit that ran, because its call was aborted."""

    def finish(self, arguments: Any, results: Sequence[UnitResult], ctx: CallContext) -> Any:
        """The call is complete and valid: return the tool's result."""
        if isinstance(arguments, Mapping):
            return self.call(**arguments)
        return self.call(arguments)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """Run the whole call at once (tools without partial execution implement just this)."""
        raise NotImplementedError(f"tool {self.spec.name!r} implements neither finish nor call")

    def abort(self, ctx: CallContext, error: BaseException | None) -> None:
        """The call is aborted: release what `start` and the units took (kill, discard)."""

    def close(self) -> None:
        """The tool is being unloaded: release process-wide resources."""


class FunctionTool(Tool):
    """A plain Python function as a tool: the whole call is one unit, run at the end."""

    def __init__(self, spec: ToolSpec, fn: Callable[..., Any]):
        super().__init__(spec)
        self.fn = fn

    def call(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)
