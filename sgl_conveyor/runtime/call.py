"""One tool call as a scope that owns all the work it starts.

The node feeds it the call's units as the stream produces them; the scope asks the policy
(`runtime.policy`) when each runs, runs them on its executor (`runtime.executor`), and at the
end either returns the tool's result or fails with a typed error. `with ToolCall(...) as call:`
leaves nothing running, whatever happens: the call ends, fails, is aborted or times out. It never
touches a stream.
"""

from __future__ import annotations

import enum
import threading
import time
import uuid
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from sgl_conveyor.errors import (
    CallCancelledError,
    ResultNotSerializableError,
    SchemaViolationError,
    ToolCallError,
    ToolExecutionError,
    ToolTimeoutError,
)
from sgl_conveyor.runtime.clock import WorkClock
from sgl_conveyor.runtime.cost_model import CostModel, default_cost_model, unit_kind
from sgl_conveyor.runtime.dag import Dependencies, deps_of, unit_id
from sgl_conveyor.runtime.executor import Executor
from sgl_conveyor.runtime.failures import comes_first, raised
from sgl_conveyor.runtime.ledger import UnitLedger, default_ledger, ledger_key
from sgl_conveyor.runtime.limits import CallLimits
from sgl_conveyor.runtime.policy import Batch, Decision, cost_hint, decide, effect_of
from sgl_conveyor.runtime.pool import UnitPool
from sgl_conveyor.runtime.renderable import unrenderable
from sgl_conveyor.runtime.timeline import Timeline, UnitTimes
from sgl_conveyor.runtime.wakeup import Wakeup
from sgl_conveyor.tools.base import CallContext, Tool, UnitResult
from sgl_conveyor.tools.spec import Effect, Order, ToolSpec
from sgl_conveyor.units.base import Unit


class Mode(str, enum.Enum):
    """When the tool runs.

    sequential: after the call has been decoded entirely (the usual way, and our baseline).
    call-eager: each whole call as soon as it closes, units not split (the peer policy of
        LLMCompiler's streaming planner, Claude Code's streaming executor, eager-tools).
    partial: each unit as soon as it can no longer change (Conveyor), within the limits of its
        effect class and of the cost model.
    """

    SEQUENTIAL = "sequential"
    CALL_EAGER = "call-eager"
    PARTIAL = "partial"


GRACE_S = 2.0  # how long a cancelled unit may take to notice before its thread counts as leaked


class ToolCall:
    """The scope of one call. Used by one thread (the node's); units run on the executor.

    Use it as a context manager: leaving the block ends the call (and aborts it first if the
    block raised), so nothing it started outlives it.
    """

    def __init__(
        self,
        tool: Tool,
        spec: ToolSpec,
        mode: Mode | str = Mode.PARTIAL,
        *,
        call_id: str | None = None,
        call_key: str = "",
        lineage: object | None = None,
        cost_model: CostModel | None = None,
        ledger: UnitLedger | None = None,
        attempt: int = 0,
    ):
        self.tool = tool
        self.spec = spec
        self.mode = Mode(mode)
        self.call_id = call_id or uuid.uuid4().hex[:12]
        self.call_key = call_key
        self._lineage_owner = lineage if lineage is not None else self
        self._lineage = id(self._lineage_owner)
        self.cost_model = cost_model or default_cost_model()
        self.ledger = ledger or default_ledger()
        self.timeline = Timeline(self.call_id, spec.name, self.mode.value, attempt=attempt)
        # The call's limit counts the tool's own work only: warm-up, and what it does after
        # the stream ended. Decoding, however slow, never uses it up.
        self._clock = WorkClock(spec.timeout_s)
        self._limits = CallLimits(spec, self._clock)
        self.ctx = CallContext(
            call_id=self.call_id,
            tool=spec.name,
            mode=self.mode.value,
            spec=spec,
            clock=self._clock,
            on_note=self.timeline.note,
        )
        self._wakeup = Wakeup()
        workers = 1 if spec.order is Order.SERIAL else spec.max_concurrency
        self._executor = Executor(workers, f"conveyor-{spec.name}", self._wakeup, self.ledger)
        self._lock = threading.RLock()
        self._units: list[Unit] = []
        self._times: dict[int, UnitTimes] = {}
        self._held: list[Unit] = []  # irreversible units, run after validation
        self._deferred: list[Unit] = []  # cost model: run inline at close
        self._batch = Batch()  # cheap units waiting to share one hand-off
        self._dag = Dependencies()
        self._ran: list[UnitResult] = []  # finished OK, in completion order (for undo)
        self._start_future: Future | None = None
        self._failure: ToolCallError | None = None
        self._begun = False
        self._closed = False
        self._aborted = False
        self._ended = False
        self._grace_deadline: float | None = None

    # --- the scope ---------------------------------------------------------------------------

    def __enter__(self) -> ToolCall:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            if exc is not None and not self._aborted:
                self.abort(exc)
        finally:
            self.end()

    @property
    def _pool(self) -> UnitPool:
        return self._executor.pool

    # --- state -------------------------------------------------------------------------------

    @property
    def failure(self) -> ToolCallError | None:
        """The error that dooms the call (a unit raised, a check failed, a timeout); of the
        unit earliest in the call when several units failed."""
        return self._failure

    def _fail(self, error: ToolCallError) -> ToolCallError:
        """Doom the call. When several units fail, the call's error is the one of the unit that
        comes first in the call (not the one whose thread lost the race), so a call fails the
        same way in every mode and on every run."""
        with self._lock:
            positions = {ut.path: i for i, ut in self._times.items()}
            if self._failure is None or comes_first(error, self._failure, positions):
                self._failure = error
            failure = self._failure
        self._wakeup.notify()  # no wait outlives a doomed call
        return failure

    def cancel(self, error: CallCancelledError | None = None) -> None:
        """Cancel the call from any thread, in whatever phase it is: decoding stops at the next
        token, running units and the tool's `finish` are told (`ctx.cancelled`), and the call
        ends with the error (CallCancelledError), never with a result."""
        self._fail(error or CallCancelledError("the call was cancelled", tool=self.spec.name))
        self.ctx.cancelled.set()

    # --- time limits -------------------------------------------------------------------------

    def poll(self) -> ToolCallError | None:
        """Check running units against their time limits; cheap enough to call per token."""
        if self._failure is None and self._begun:
            error = self._limits.exceeded(self._running(), time.perf_counter())
            if error is not None:
                self._fail(error)
        return self._failure

    def _running(self) -> list[tuple[UnitTimes, float]]:
        """The units running now, each with its limit."""
        with self._lock:
            running = [ut for ut in self._times.values() if ut.started and not ut.finished]
        return [(ut, self._unit_timeout(ut.index)) for ut in running]

    def _unit_timeout(self, index: int) -> float:
        return self._limits.of_unit(self._units[index] if index < len(self._units) else None)

    # --- phases ------------------------------------------------------------------------------

    def begin(self) -> None:
        """The stream of the call has started. In partial mode the tool warms up now."""
        if self._begun:
            return
        self._begun = True
        self.timeline.mark("stream_start")
        if self.mode is Mode.PARTIAL:
            self._start_tool()

    def add_unit(self, unit: Unit) -> None:
        """A unit became final. Raises ToolCallError if it dooms the call (the node then stops
        decoding at once); otherwise schedules it as the policy decides."""
        if not self._begun:
            self.begin()
        if self._failure is not None:
            raise self._failure
        ut = self.timeline.unit(
            unit.path,
            unit.index,
            id=unit.meta.get("id") if unit.meta else None,
            deps=deps_of(unit),
            piece_of=unit.piece_of,
        )
        with self._lock:
            if unit.index != len(self._units):
                # Detectors emit indices 0, 1, 2...; anything else is a bug upstream.
                raise ToolCallError(
                    f"unit {unit.path} arrived out of order (index {unit.index})",
                    tool=self.spec.name,
                )
            self._units.append(unit)
            self._times[unit.index] = ut
            self._executor.add(unit.index, self._ledger_key(unit))
        if self.mode is Mode.PARTIAL:
            self._check(unit)
        cost, expected = None, None
        # A unit whose failure would stop decoding is worth running at once, however cheap.
        if self.mode is Mode.PARTIAL and self.spec.cost_model and not self.ctx.interrupts:
            cost, expected = self.cost_model.decide(
                self.spec.name, unit.pattern, cost_hint(self.spec, unit), unit_kind(unit.meta)
            )
        decision = decide(
            self.mode.value, effect_of(self.spec, unit), self.spec.order, bool(self._held), cost
        )
        ut.decision = decision.value
        if decision is Decision.HOLD:
            self._held.append(unit)
        elif decision is Decision.DEFER:
            self._deferred.append(unit)
        elif decision is Decision.BATCH:
            self._batch.add(unit, expected or 0.0)
            if self._batch.expected_s >= self.cost_model.batch_target_s():
                self._flush_batch()
        elif decision is Decision.RUN:
            if self.spec.order is Order.SERIAL:
                self._flush_batch()
            self._schedule(unit)

    def close(self, arguments: Any) -> Any:
        """The call's arguments are complete: validate them, run what is left, return the
        result. Raises ToolCallError (the call then must be aborted by the caller)."""
        if not self._begun:
            self.begin()
        if self._failure is not None:
            raise self._failure
        self._closed = True
        self.timeline.mark("call_closed")
        self._clock.hold()  # from here on, all the tool does is on the critical path
        try:
            return self._close(arguments)
        finally:
            self._clock.release()

    def _close(self, arguments: Any) -> Any:
        problems = self.spec.validate_arguments(arguments)
        if problems:
            raise self._fail(
                SchemaViolationError(
                    f"arguments of {self.spec.name} violate its schema: " + "; ".join(problems[:5]),
                    tool=self.spec.name,
                )
            )
        if self.mode is not Mode.PARTIAL:
            self._start_tool()
            for unit in self._units:
                self._check(unit)
            for unit in self._units:
                self._schedule(unit)
        else:
            # A batch still waiting to be worth a hand-off joins the deferred units: cheap by
            # the cost model's estimate, they now run here, inline, with nothing to overlap.
            if self.spec.order is Order.SERIAL:
                self._flush_batch()  # onto the one worker, ahead of the held units: in order
            leftover = self._batch.take()
            for unit in self._held:
                self._schedule(unit)
            for unit in sorted(leftover + self._deferred, key=lambda u: u.index):
                if self.spec.order is Order.DAG:
                    self._schedule(unit)
                else:
                    self._run_inline(unit)
        results = self._await_all()
        return self._finish(arguments, results)

    def abort(self, error: BaseException | None = None) -> None:
        """Cancel everything the call started; undo reversible units that ran."""
        self._aborted = True
        reason = error if isinstance(error, ToolCallError) else None
        if reason is not None:
            self._fail(reason)
        self.timeline.mark("aborted")
        self.timeline.abort_reason = str(error) if error is not None else "aborted"
        self.ctx.cancelled.set()
        waiting = self._dag.drop()
        futures = self._executor.cancel()
        for unit in waiting:
            self._times[unit.index].decision = "skip"
        deadline = self._grace_deadline = time.monotonic() + GRACE_S
        for f in futures:
            try:
                f.result(timeout=max(0.0, deadline - time.monotonic()))
            except BaseException:
                pass
        self._undo()
        try:
            self.tool.abort(self.ctx, error)
        except BaseException as e:  # SystemExit too: a program must end
            self.timeline.note("abort_failed", error=repr(e))

    def _undo(self) -> None:
        """Undo the reversible units that ran, the last one first."""
        with self._lock:
            ran = list(reversed(self._ran))
        for res in ran:
            if effect_of(self.spec, res.unit) is Effect.REVERSIBLE:
                try:
                    self.tool.undo_unit(res.unit, res.value, self.ctx)
                    self.timeline.note("undo", unit=res.unit.path)
                except BaseException as e:  # SystemExit too: a program must end
                    self.timeline.note("undo_failed", unit=res.unit.path, error=repr(e))

    def end(self) -> None:
        """Leave nothing running: stop the workers and join them. Leaving `with` calls it."""
        if self._ended:
            return
        self._ended = True
        if self._failure is not None or not self._closed:
            self.ctx.cancelled.set()
        # One grace period in all: what abort already waited counts.
        grace = GRACE_S
        if self._grace_deadline is not None:
            grace = max(0.1, self._grace_deadline - time.monotonic())
        leaked = self._executor.shutdown(grace)
        self.timeline.leaked_threads = leaked
        if leaked:
            self.timeline.note("leaked_threads", count=leaked)

    # --- scheduling --------------------------------------------------------------------------

    def _check(self, unit: Unit) -> None:
        """Schema of the unit's value, then the tool's own semantic check. Inline: both are
        cheap, and a failure must stop decoding before the next token."""
        problems = self.spec.validate_unit(unit.path, unit.value) if unit.piece_of is None else []
        if problems:
            self._times[unit.index].error = problems[0]
            raise self._fail(
                SchemaViolationError(
                    f"{self.spec.name} argument {unit.path} violates the schema: {problems[0]}",
                    tool=self.spec.name,
                    unit=unit.path,
                    path=unit.path,
                )
            )
        try:
            self.tool.check_unit(unit, self.ctx)
        except ToolCallError as e:
            e.tool = e.tool or self.spec.name
            e.unit = e.unit or unit.path
            self._times[unit.index].error = str(e)
            raise self._fail(e) from None
        except BaseException as e:  # SystemExit too: a program must end
            raise self._fail(self._wrap(e, unit)) from None

    def _schedule(self, unit: Unit) -> None:
        """Dispatch now, or (DAG) once the unit's dependencies have finished."""
        if self.spec.order is Order.DAG and self._dag.hold_back(unit):
            return
        self._dispatch(unit)

    def _dispatch(self, unit: Unit) -> None:
        self._times[unit.index].dispatched = time.perf_counter()
        self._executor.submit_unit(unit.index, self._run_unit, unit)

    def _flush_batch(self) -> None:
        batch = self._batch.take()
        if not batch:
            return
        if self.spec.order is Order.DAG:
            for unit in batch:
                self._schedule(unit)
            return
        now = time.perf_counter()
        for unit in batch:
            self._times[unit.index].dispatched = now
        self._executor.submit_batch(
            [u.index for u in batch], lambda: {u.index: self._run_unit(u) for u in batch}
        )

    def _run_inline(self, unit: Unit) -> None:
        if self.spec.order is not Order.PARALLEL:
            for f in self._executor.futures_before(unit.index):
                self._wait_future(f)
        self._times[unit.index].dispatched = time.perf_counter()
        self._executor.run_inline(unit.index, self._run_unit, unit)

    def _start_tool(self) -> None:
        # A tool without a warm-up costs no thread hand-off.
        if type(self.tool).start is not Tool.start:
            self._start_future = self._executor.submit(self._run_start)

    def _run_start(self) -> None:
        self.timeline.mark("tool_start")
        self._clock.hold()
        try:
            self.tool.start(self.ctx)
        except ToolCallError as e:
            raise self._fail(e) from None
        except BaseException as e:  # SystemExit too: a program must end
            raise self._fail(
                ToolExecutionError(
                    f"{self.spec.name} failed to start: {type(e).__name__}: {e}",
                    tool=self.spec.name,
                )
            ) from None
        finally:
            self._clock.release()
            self.timeline.mark("tool_ready")

    def _ledger_key(self, unit: Unit) -> tuple[Any, ...]:
        return ledger_key(
            lineage=self._lineage,
            tool=self.spec.name,
            call_key=self.call_key,
            unit=unit,
            effect=effect_of(self.spec, unit),
        )

    def _run_unit(self, unit: Unit) -> UnitResult:
        """Runs on a worker (or inline for deferred units). Never raises: the outcome is in
        the UnitResult, and a failure dooms the call through `_fail`."""
        key = self._executor.key(unit.index) or self._ledger_key(unit)
        with self._executor.turn(unit.index, key, self._unit_timeout(unit.index)):
            return self._run_claimed(unit, key)

    def _run_claimed(self, unit: Unit, key: tuple[Any, ...]) -> UnitResult:
        ut = self._times[unit.index]
        result = UnitResult(unit=unit, dispatched_s=ut.dispatched)
        result.error = self._cannot_run(unit)
        if result.error is not None:
            return result
        self._started(ut)
        owner = self._execute(unit, key, ut, result)
        if result.error is not None:
            ut.ok = False
            ut.error = str(result.error)
            if not isinstance(result.error, CallCancelledError) or not self.ctx.cancelled.is_set():
                self._fail(result.error)
            return result
        self._succeeded(unit, ut, result, owner)
        return result

    def _cannot_run(self, unit: Unit) -> BaseException | None:
        """Why the unit must not run now (the call was cancelled, the warm-up failed), or None;
        waits for the tool's warm-up first."""
        if self.ctx.cancelled.is_set():
            self._times[unit.index].decision = "skip"
            return CallCancelledError("the call was cancelled", tool=self.spec.name)
        if self._start_future is not None:
            try:
                self._start_future.result()
            except BaseException as e:
                return e if isinstance(e, ToolCallError) else self._wrap(e, unit)
        return None

    def _started(self, ut: UnitTimes) -> None:
        ut.started = time.perf_counter()
        self._wakeup.notify()  # a new deadline for the waits after the stream
        if ut.dispatched is not None:
            # The hand-off cost only: time spent waiting for the tool's warm-up is not overhead.
            ready = max(ut.dispatched, self.timeline.tool_ready or 0.0)
            self.cost_model.observe_overhead(max(0.0, ut.started - ready))

    def _execute(self, unit: Unit, key: tuple[Any, ...], ut: UnitTimes, result: UnitResult) -> bool:
        """Run the unit once per identical unit of the program; the value or the typed error
        into `result`. Returns whether this unit ran it (it was not shared)."""
        ut.work = f"{hash(key[1:]) & 0xFFFFFFFFFFFF:012x}"
        owner = False

        def shared() -> None:
            ut.decision = "shared"

        try:
            owner, result.value = self._executor.run_once(
                unit.index,
                key,
                self._lineage_owner,
                lambda: self.tool.run_unit(unit, self.ctx),
                on_shared=shared,
                timeout=self._unit_timeout(unit.index),
            )
            ut.ok = True
        except ToolCallError as e:
            e.tool = e.tool or self.spec.name
            e.unit = e.unit or unit.path
            result.error = e
        except FutureTimeout:
            result.error = ToolTimeoutError(
                f"unit {unit.path} waited too long for an identical unit", tool=self.spec.name
            )
        except BaseException as e:
            result.error = self._wrap(e, unit)
        finally:
            ut.finished = time.perf_counter()
            result.started_s = ut.started
            result.finished_s = ut.finished
        return owner

    def _succeeded(self, unit: Unit, ut: UnitTimes, result: UnitResult, owner: bool) -> None:
        """Learn the unit's cost, keep its result (for finish, and undo), free its dependents."""
        if owner:
            self.cost_model.observe_run(
                self.spec.name, unit.pattern, ut.finished - ut.started, unit_kind(unit.meta)
            )
        uid = unit_id(unit)
        with self._lock:
            self.ctx.results[uid] = result.value
            self._ran.append(result)
        for u in self._dag.finished(uid):
            self._dispatch(u)
            self._dag.dispatched(u)

    def _wrap(self, e: BaseException, unit: Unit | None) -> ToolCallError:
        return raised(self.spec.name, e, unit.path if unit is not None else None)

    # --- completion --------------------------------------------------------------------------

    def _wait_doomed(self, ready: Any) -> None:
        """Sleep until `ready()`, the call is doomed, or a limit may have passed; then check
        the limits (unit limits, and the call's on what runs after the stream)."""
        doomed_or_ready = lambda: self._failure is not None or ready()
        next_deadline = lambda: self._limits.next_deadline(self._running())
        while self.poll() is None and not ready():
            self._wakeup.wait_until(doomed_or_ready, next_deadline)

    def _wait_future(self, fut: Future) -> UnitResult:
        self._wait_doomed(fut.done)
        if self._failure is not None and not fut.done():
            raise self._failure
        return fut.result()

    def _await_all(self) -> list[UnitResult]:
        results: list[UnitResult] = []
        for unit in self._units:
            # A DAG unit may still wait for its dependencies: sleep until it is dispatched.
            self._wait_doomed(lambda u=unit: self._scheduled(u))
            fut = self._executor.future(unit.index)
            if fut is None:
                if self._failure is not None:
                    raise self._failure
                raise self._fail(
                    ToolCallError(f"unit {unit.path} was never scheduled", tool=self.spec.name)
                )
            res = self._wait_future(fut)
            if res.error is not None:
                raise self._fail(res.error)
            results.append(res)
        if self._start_future is not None:
            self._wait_or_doom(self._start_future)
            if self._failure is not None:
                raise self._failure
            try:
                self._start_future.result(timeout=0)
            except ToolCallError as e:
                raise self._fail(e) from None
            except FutureTimeout:
                raise self._fail(
                    ToolTimeoutError(f"{self.spec.name} did not start in time", tool=self.spec.name)
                ) from None
        return results

    def _scheduled(self, unit: Unit) -> bool:
        """Dispatched (it has a future), or never will be (it is not waiting either)."""
        if self._executor.future(unit.index) is not None:
            return True
        return not self._dag.pending(unit)

    def _wait_or_doom(self, fut: Future) -> None:
        """Wait for `fut` within the call's limit, but return at once if the call is doomed
        meanwhile (cancel(), a failing unit): no phase outlives a cancellation."""
        fut.add_done_callback(lambda _: self._wakeup.notify())
        until = time.monotonic() + max(0.0, self._clock.remaining())
        self._wakeup.wait_until(lambda: self._failure is not None or fut.done(), lambda: until)

    def _finish(self, arguments: Any, results: list[UnitResult]) -> Any:
        self.timeline.mark("finish_start")
        fut = self._executor.submit(self.tool.finish, arguments, results, self.ctx)
        self._wait_or_doom(fut)
        try:
            if self._failure is not None:
                raise self._failure  # cancelled while finish ran: its result is discarded
            value = fut.result(timeout=0)
        except FutureTimeout:
            raise self._fail(
                ToolTimeoutError(
                    f"{self.spec.name} did not finish within the call's limit of "
                    f"{self.spec.timeout_s:g} s",
                    tool=self.spec.name,
                )
            ) from None
        except ToolCallError as e:
            e.tool = e.tool or self.spec.name
            raise self._fail(e) from None
        except BaseException as e:  # SystemExit too: a program must end
            raise self._fail(self._wrap(e, None)) from None
        finally:
            self.timeline.mark("finish_end")
        why = unrenderable(value)
        if why is not None:
            raise self._fail(
                ResultNotSerializableError(
                    f"{self.spec.name} returned a result that cannot be rendered: {why}",
                    tool=self.spec.name,
                )
            )
        self.timeline.mark("result_ready")
        return value
