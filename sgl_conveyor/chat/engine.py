"""The chat stream into the runtime: each tool call of a streamed response, tracked by its
index, is a `ToolCall` scope fed its units while the response still streams.

A call's arguments end when the next index starts or the stream ends. A call whose units are
all pure or idempotent closes (runs what is left and its `finish`) at once, concurrently with
the others; any other call closes only after the server confirmed the response
(`finish_reason` "tool_calls", or "stop" for a named tool choice) and its arguments validated.
A call that cannot succeed (malformed, unknown tool, a schema violation, a rejected or failed
unit) closes the stream at once, which stops the server decoding. The turn owns every scope it
opens: when it ends, for whatever reason, nothing it started keeps running.
"""

from __future__ import annotations

import hashlib
import json
import queue
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from sgl_conveyor.chat.arguments import ArgumentStream
from sgl_conveyor.chat.events import (
    ArgumentsDelta,
    ArgumentsDone,
    CallDone,
    CallStarted,
    ContentDelta,
    TurnDone,
    UnitReady,
)
from sgl_conveyor.chat.toolset import Binding, ToolSet
from sgl_conveyor.chat.turn import ChatCall, ChatTurn, ensure_ids
from sgl_conveyor.errors import (
    ChatStreamError,
    MalformedCallError,
    ToolCallError,
    ToolExecutionError,
    UnconfirmedCallError,
    UnitError,
    UnknownToolCallError,
)
from sgl_conveyor.runtime.call import Mode, ToolCall
from sgl_conveyor.runtime.cost_model import CostModel
from sgl_conveyor.runtime.failures import call_error
from sgl_conveyor.runtime.ledger import UnitLedger

MAX_CLOSERS = 8  # calls of one response closing at once


@dataclass
class _Live:
    """What the engine keeps on one call while the turn runs."""

    call: ChatCall
    binding: Binding | None = None
    scope: ToolCall | None = None
    args: ArgumentStream | None = None
    pending: list[str] = field(default_factory=list)  # fragments that came before the name
    ended: bool = False  # arguments complete
    closing: Future | None = None
    late_error: ToolCallError | None = None
    aborted: bool = False


class TurnEngine:
    """Consumes one response's chunks (the SDK's `ChatCompletionChunk`s) and yields events."""

    def __init__(
        self,
        toolset: ToolSet,
        mode: Mode,
        *,
        tool_choice: Any = "auto",
        lineage: object | None = None,
        key_base: str = "",
        ledger: UnitLedger | None = None,
        cost_model: CostModel | None = None,
    ):
        self.toolset = toolset
        self.mode = mode
        self.named_choice = isinstance(tool_choice, dict)
        self.lineage = lineage if lineage is not None else object()
        self.key_base = key_base
        self.ledger = ledger
        self.cost_model = cost_model
        self.turn = ChatTurn(mode=mode.value)
        self._calls: dict[int, _Live] = {}
        self._order: list[_Live] = []
        self._events: list[Any] = []
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._stop: str | None = None
        self._content: list[str] = []
        self._last_index = -1
        self._ending_calls = 0  # calls handed to close or abort
        self._ended_calls = 0  # ... whose CallDone was yielded

    # --- the turn ----------------------------------------------------------------------------

    def run(self, open_stream: Callable[[], Iterable[Any]]) -> Iterator[Any]:
        """Send the request (`open_stream()`), follow the stream, settle every call; yields the
        events as they happen, the last one TurnDone."""
        turn = self.turn
        turn.requested = time.perf_counter()
        with ExitStack() as scopes, ThreadPoolExecutor(MAX_CLOSERS, "conveyor-chat") as pool:
            self._scopes, self._pool = scopes, pool
            try:
                yield from self._follow(open_stream)
                turn.stream_end = time.perf_counter()
                self._settle()
                yield from self._drain()
                yield from self._await_closes()
            finally:
                # Abandoned (the caller stopped iterating) or failed: cancel what still runs,
                # wait for the closers, then the scopes end (ExitStack), leaving nothing behind.
                for live in self._order:
                    if live.closing is not None and not live.closing.done() and live.scope:
                        live.scope.cancel()
                for live in self._order:
                    if live.closing is not None:
                        try:
                            live.closing.result()
                        except BaseException:
                            pass
                    elif live.scope is not None and not live.aborted:
                        reason = live.call.error or UnconfirmedCallError(
                            "the turn ended before the call did", tool=live.call.name
                        )
                        live.call.error = reason
                        self._abort(live, reason)
        turn.content = "".join(self._content)
        ensure_ids(turn.calls)
        yield TurnDone(turn)

    def _follow(self, open_stream: Callable[[], Iterable[Any]]) -> Iterator[Any]:
        turn = self.turn
        stream: Any = None
        try:
            stream = open_stream()
            for chunk in stream:
                if turn.first_chunk is None:
                    turn.first_chunk = time.perf_counter()
                turn.chunks += 1
                self._chunk(chunk)
                self._poll()
                yield from self._drain()
                if self._stop is not None:
                    turn.stopped = self._stop
                    break
            else:
                if turn.finish_reason is None:
                    turn.error = ChatStreamError("the stream ended without a finish reason")
        except Exception as e:
            turn.error = _stream_error(e)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                try:
                    close()  # closing the connection is what makes the server stop decoding
                except Exception:
                    pass
        turn.content = "".join(self._content)

    def _drain(self) -> Iterator[Any]:
        events, self._events = self._events, []
        yield from events
        while True:
            try:
                event = self._done.get_nowait()
            except queue.Empty:
                return
            self._ended_calls += 1
            yield event

    def _await_closes(self) -> Iterator[Any]:
        """Every call ends with one CallDone (closed on a worker, or aborted here): yield them
        as they come until all have."""
        while self._ended_calls < self._ending_calls:
            event = self._done.get()
            self._ended_calls += 1
            yield event
        for live in self._order:  # a late fragment made a closed call malformed
            if live.late_error is not None:
                live.call.result, live.call.error = None, live.late_error

    # --- chunks ------------------------------------------------------------------------------

    def _chunk(self, chunk: Any) -> None:
        turn = self.turn
        if getattr(chunk, "usage", None) is not None:
            turn.usage = chunk.usage
        turn.id = turn.id or getattr(chunk, "id", None)
        turn.model = turn.model or getattr(chunk, "model", None)
        for choice in getattr(chunk, "choices", None) or ():
            if getattr(choice, "index", 0) != 0:
                continue  # n > 1 is not asked for; other choices are not this turn's
            delta = choice.delta
            if delta is not None:
                if delta.content:
                    self._content.append(delta.content)
                    self._events.append(ContentDelta(delta.content))
                for tc in delta.tool_calls or ():
                    if self._stop is not None:
                        # The stream is closed where a call failed: what follows in the same
                        # chunk is not read either, so the turn is the same however it was cut.
                        return
                    self._tool_delta(tc)
            if choice.finish_reason:
                turn.finish_reason = choice.finish_reason

    def _tool_delta(self, tc: Any) -> None:
        index = tc.index if tc.index is not None else max(self._last_index, 0)
        live = self._calls.get(index)
        if live is None:
            for other in self._order:
                if other.call.index < index:
                    self._end_arguments(other, at_end=False)  # the next index started
            if self._stop is not None:
                return  # an earlier call just failed: the stream ends before this one
            live = _Live(ChatCall(index=index, mode=self.mode.value))
            self._calls[index] = live
            self._order.append(live)
            self._order.sort(key=lambda x: x.call.index)
            self.turn.calls = [x.call for x in self._order]
            self._last_index = max(self._last_index, index)
        call = live.call
        if tc.id and not call.id:
            call.id = tc.id
        fn = tc.function
        name = getattr(fn, "name", None) if fn is not None else None
        if name:
            if call.name is None:
                call.name = name
                self._start(live)
            elif name != call.name:
                self._doom(
                    live,
                    MalformedCallError(
                        f"call {index} changed its function name from {call.name!r} to {name!r}",
                        tool=call.name,
                    ),
                )
        fragment = getattr(fn, "arguments", None) if fn is not None else None
        if fragment:
            if live.args is None:
                live.pending.append(fragment)
                call.arguments_text += fragment
            else:
                self._feed(live, fragment)

    def _start(self, live: _Live) -> None:
        call = live.call
        binding = self.toolset.get(call.name or "")
        if binding is None:
            offered = ", ".join(self.toolset.names()) or "none"
            self._doom(
                live,
                UnknownToolCallError(
                    f"the model called {call.name!r}, which the request did not offer "
                    f"(offered: {offered})",
                    tool=call.name,
                ),
            )
            return
        live.binding = binding
        call.result_max_chars = binding.spec.result_max_chars
        key = hashlib.sha256(f"{self.key_base}\0{call.name}\0{call.index}".encode()).hexdigest()
        scope = self._open_scope(live, binding, key[:20], attempt=0)
        # The first call's decoding began with the request (as a partial_tool call's does).
        first = not any(x.scope is not None for x in self._order if x is not live)
        scope.timeline.stream_start = self.turn.requested if first else time.perf_counter()
        scope.begin()
        live.args = ArgumentStream(binding.spec.name, binding.patterns, binding.spec.schema)
        self._events.append(CallStarted(call.index, call.id, binding.spec.name))
        pending, live.pending = live.pending, []
        call.arguments_text = ""
        for fragment in pending:
            self._feed(live, fragment)

    def _open_scope(self, live: _Live, binding: Binding, key: str, attempt: int) -> ToolCall:
        scope = ToolCall(
            binding.tool,
            binding.spec,
            self.mode,
            call_id=(live.call.id or uuid.uuid4().hex[:12]) + (f"-{attempt}" if attempt else ""),
            call_key=key,
            lineage=self.lineage,
            cost_model=self.cost_model,
            ledger=self.ledger,
            attempt=attempt,
        )
        self._scopes.enter_context(scope)
        live.scope = scope
        live.call.timelines.append(scope.timeline)
        return scope

    def _feed(self, live: _Live, fragment: str) -> None:
        call, scope, args = live.call, live.scope, live.args
        assert scope is not None and args is not None
        call.arguments_text += fragment
        self._events.append(ArgumentsDelta(call.index, fragment))
        if call.error is not None:
            return  # doomed: the stream is closing
        if live.ended:
            if fragment.strip():
                self._late_fragment(live, fragment)
            return
        tl = scope.timeline
        tl.chunks += 1
        if tl.first_token is None:
            tl.mark("first_token")
        t0 = time.perf_counter()
        try:
            units = args.feed(fragment)
            for unit in units:
                scope.add_unit(unit)
                self._events.append(UnitReady(call.index, unit.path, unit.value))
        except (UnitError, ToolCallError) as e:
            self._doom(live, call_error(e, call.name or "?", self._why_ended))
        finally:
            tl.overhead_s += time.perf_counter() - t0

    def _late_fragment(self, live: _Live, fragment: str) -> None:
        """Text for a call whose arguments had ended (the next call had begun): the final
        arguments no longer confirm what ran; the call fails, never guesses."""
        err = MalformedCallError(
            f"call {live.call.index} ({live.call.name}) got more arguments after the next call "
            f"began: {fragment[:60]!r}",
            tool=live.call.name,
        )
        if live.closing is not None:
            live.late_error = err
            if live.scope is not None:
                live.scope.cancel()
        else:
            self._doom(live, err)

    def _poll(self) -> None:
        """Limits and failures of units running while the stream goes on."""
        for live in self._order:
            scope = live.scope
            if scope is None or live.closing is not None or live.call.error is not None:
                continue
            if scope.poll() is not None:
                self._doom(live, scope.failure)  # type: ignore[arg-type]

    def _doom(self, live: _Live, error: ToolCallError) -> None:
        """The call cannot succeed: stop the stream (the server stops decoding)."""
        if live.call.error is None:
            live.call.error = error
        if self._stop is None:
            self._stop = f"call {live.call.index} ({live.call.name}) failed: {error}"

    def _why_ended(self) -> str:
        reason = self.turn.finish_reason
        if reason == "length":
            return "finish_reason 'length': max_tokens reached"
        if reason:
            return f"finish_reason {reason!r}"
        if self.turn.error is not None:
            return f"the stream failed: {self.turn.error}"
        if self._stop is not None:
            return "the stream was closed: " + self._stop
        return "the stream ended without a finish reason"

    # --- arguments and closing ---------------------------------------------------------------

    def _end_arguments(self, live: _Live, *, at_end: bool) -> None:
        """The call's arguments are complete: parse, confirm the early units, maybe close."""
        call, scope, args = live.call, live.scope, live.args
        if live.ended or call.error is not None or scope is None or args is None:
            return
        if not at_end and not args.complete:
            return  # fragments may still come (a server interleaving calls): the end decides
        try:
            for unit in args.finish():
                scope.add_unit(unit)
                self._events.append(UnitReady(call.index, unit.path, unit.value))
            value = args.value()
        except (UnitError, ToolCallError) as e:
            self._doom(live, call_error(e, call.name or "?", self._why_ended))
            return
        if args.repeat_ignored:
            scope.timeline.note("repeated_arguments_ignored")
            call.arguments_text = args.document  # what goes back to the server: the call once
        live.ended = True
        call.arguments = value
        scope.timeline.mark("stream_end")
        differ = args.mismatches(value)
        if differ:
            self._redo(live, value, differ)
        self._events.append(ArgumentsDone(call.index, value))
        if (
            live.binding is not None
            and live.binding.early_close
            and self.mode is not Mode.SEQUENTIAL
        ):
            self._close(live)

    def _redo(self, live: _Live, value: Any, differ: list[str]) -> None:
        """Early units that the final arguments do not confirm: undo the attempt and run the
        call again from the final arguments (pure units the ledger has seen are reused)."""
        assert live.scope is not None and live.binding is not None
        old = live.scope
        old.abort(
            MalformedCallError(
                f"units at {', '.join(differ[:5])} differ from the final arguments: redone",
                tool=live.call.name,
            )
        )
        old.end()
        key = old.call_key
        scope = self._open_scope(live, live.binding, key, attempt=len(live.call.timelines))
        scope.begin()
        fresh = ArgumentStream(
            live.binding.spec.name, live.binding.patterns, live.binding.spec.schema
        )
        for unit in fresh.feed(json.dumps(value)) + fresh.finish():
            scope.add_unit(unit)
        scope.timeline.mark("stream_end")
        live.args = fresh

    def _settle(self) -> None:
        """The stream is over: end every call's arguments, then close or abort each."""
        for live in self._order:
            if live.scope is not None:  # a call the stream ended in: its decoding ended here
                live.scope.timeline.mark("stream_end", self.turn.stream_end)
            if live.call.name is None and live.call.error is None:
                live.call.error = MalformedCallError(
                    f"tool call {live.call.index} never named its function", tool=None
                )
            self._end_arguments(live, at_end=True)
        reason = self.turn.finish_reason
        confirmed = (
            self.turn.error is None
            and self._stop is None
            and (reason == "tool_calls" or (reason == "stop" and self.named_choice))
        )
        for live in self._order:
            if live.closing is not None:
                continue
            if live.call.error is not None:
                if live.scope is not None:
                    self._abort(live, live.call.error)
                continue
            assert live.binding is not None
            if confirmed or live.binding.early_close:
                self._close(live)
            else:
                err = UnconfirmedCallError(
                    f"{live.call.name} call was complete but the response was not confirmed "
                    f"({self._why_ended()}): its irreversible work did not run",
                    tool=live.call.name,
                )
                live.call.error = err
                self._abort(live, err)

    def _close(self, live: _Live) -> None:
        self._ending_calls += 1
        live.closing = self._pool.submit(self._run_close, live)

    def _run_close(self, live: _Live) -> None:
        call, scope = live.call, live.scope
        assert scope is not None
        try:
            call.result = scope.close(call.arguments)
        except BaseException as e:
            err = (
                e
                if isinstance(e, ToolCallError)
                else ToolExecutionError(
                    f"{call.name} failed to close: {type(e).__name__}: {e}", tool=call.name
                )
            )
            failure = scope.failure
            if err.unit and failure is not None:
                err = failure  # a unit earlier in the call failed as well: its error
            call.error = err
            scope.abort(err)
        finally:
            self._done.put(CallDone(call.index, call.result, call.error))

    def _abort(self, live: _Live, error: ToolCallError) -> None:
        scope = live.scope
        if scope is None or live.aborted:
            return
        live.aborted = True
        scope.abort(error)
        failure = scope.failure
        if error.unit and failure is not None:
            live.call.error = failure  # a unit earlier in the call failed as well: its error
        self._ending_calls += 1
        self._done.put(CallDone(live.call.index, None, live.call.error))


def _stream_error(e: Exception) -> ChatStreamError:
    """A failing request or stream as the turn's error: the server's status and message."""
    status = getattr(e, "status_code", None)
    message = getattr(e, "message", None) or str(e)
    where = f" (HTTP {status})" if status else ""
    return ChatStreamError(
        f"the chat stream failed{where}: {type(e).__name__}: {message}", status=status
    )


def request_key(model: str, messages: Any) -> str:
    """What the calls of one request are keyed by in the ledger (with their name and index)."""
    text = json.dumps([model, messages], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()
