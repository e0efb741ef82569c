"""A backend wrapper that records what each program saw of every generation.

`RecordingBackend(inner)` delegates everything to `inner` (closing its stream closes the inner
one) and keeps, per program lineage (a program and its forks), each generation's text as
delivered, its meta info and its timing. That is a replay trace (`trace_row`) and what the eval
reads to place generations on a request's time axis. It never alters text, order or sampling.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sglang.lang.backend.base_backend import BaseBackend

from sgl_conveyor.backends.replay import RUN_ARGUMENTS
from sgl_conveyor.backends.streams import open_call_stream


@dataclass
class Generation:
    """One generation as the program saw it. Times are `time.perf_counter()` seconds.

    kind: "gen" (a whole generation), "stream" (a streamed one: a partial_tool attempt, or a
    gen of a streaming program) or "select" (a choice). `text` is what was delivered: a stream
    the program closed early holds only what it had received.
    """

    kind: str
    executor: str
    started: float
    first: float | None = None
    ended: float | None = None
    text: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    closed_early: bool = False
    error: str | None = None


@dataclass
class _Lineage:
    owner: object  # the program's arguments dict (shared by its forks): keeps its id unique
    generations: list[Generation] = field(default_factory=list)
    executors: dict[str, Any] = field(default_factory=dict)


class RecordingBackend(BaseBackend):
    """Wraps a backend; records each program's generations (see the module docstring)."""

    def __init__(self, inner: Any):
        # BaseBackend.__init__ would shadow the inner backend's chat template and flags.
        self.inner = inner
        self._lineages: dict[int, _Lineage] = {}
        self._lock = threading.Lock()

    # --- what is the inner backend's ------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        # `endpoint` would make sglang run the program on it directly, bypassing the recording.
        if name in ("inner", "endpoint") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def chat_template(self) -> Any:
        return self.inner.chat_template

    @chat_template.setter
    def chat_template(self, value: Any) -> None:
        self.inner.chat_template = value

    @property
    def support_concate_and_append(self) -> bool:
        return bool(getattr(self.inner, "support_concate_and_append", False))

    @support_concate_and_append.setter
    def support_concate_and_append(self, value: bool) -> None:
        self.inner.support_concate_and_append = value

    def get_model_name(self) -> str:
        return self.inner.get_model_name()

    def get_chat_template(self) -> Any:
        return self.inner.get_chat_template()

    def cache_prefix(self, prefix_str: str) -> Any:
        return self.inner.cache_prefix(prefix_str)

    def uncache_prefix(self, rid: str) -> Any:
        return self.inner.uncache_prefix(rid)

    def end_request(self, rid: Any) -> Any:
        return self.inner.end_request(rid)

    def begin_program(self, s: Any) -> Any:
        self._lineage(s)
        return self.inner.begin_program(s)

    def end_program(self, s: Any) -> Any:
        for exe in s if isinstance(s, (list, tuple)) else [s]:
            self._lineage(exe)
        return self.inner.end_program(s)

    def commit_lazy_operations(self, s: Any) -> Any:
        return self.inner.commit_lazy_operations(s)

    def fork_program(self, src: Any, dst: Any, position_ids_offset: Any = None) -> Any:
        return self.inner.fork_program(src, dst, position_ids_offset)

    def fill_image(self, s: Any) -> Any:
        return self.inner.fill_image(s)

    def concatenate_and_append(self, src_rids: Any, dst_rid: Any) -> Any:
        return self.inner.concatenate_and_append(src_rids, dst_rid)

    def shutdown(self) -> Any:
        return self.inner.shutdown()

    def flush_cache(self) -> Any:
        return self.inner.flush_cache()

    def get_server_info(self) -> Any:
        return self.inner.get_server_info()

    # --- generations, recorded ------------------------------------------------------------------

    def generate(self, s: Any, sampling_params: Any, **kwargs: Any) -> Any:
        g = self._begin(s, "gen")
        try:
            comp, meta = self.inner.generate(s, sampling_params=sampling_params, **kwargs)
        except BaseException as e:
            g.error = f"{type(e).__name__}: {e}"
            raise
        finally:
            g.ended = time.perf_counter()
        g.first = g.ended
        g.text = comp if isinstance(comp, str) else str(comp[0]) if comp else ""
        g.meta = dict(meta or {})
        return comp, meta

    def generate_stream(
        self, s: Any, sampling_params: Any, **kwargs: Any
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        g = self._begin(s, "stream")
        try:
            # Opened now, not at the first `next`: a backend that picks its output when called
            # (the replay backend) must see the calls in the program's order.
            if kwargs:
                inner = iter(
                    self.inner.generate_stream(s, sampling_params=sampling_params, **kwargs)
                )
            else:
                inner = open_call_stream(self.inner, s, sampling_params)
        except BaseException as e:
            g.error = f"{type(e).__name__}: {e}"
            g.ended = time.perf_counter()
            raise
        return self._relay(inner, g)

    def select(self, s: Any, choices: Any, temperature: Any, choices_method: Any = None) -> Any:
        g = self._begin(s, "select")
        try:
            decision = self.inner.select(s, choices, temperature, choices_method)
        except BaseException as e:
            g.error = f"{type(e).__name__}: {e}"
            raise
        finally:
            g.ended = time.perf_counter()
        g.first = g.ended
        g.text = str(decision.decision)
        g.meta = dict(getattr(decision, "meta_info", None) or {})
        return decision

    @staticmethod
    def _relay(
        inner: Iterator[tuple[str, dict[str, Any]]], g: Generation
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        try:
            for delta, meta in inner:
                if g.first is None:
                    g.first = time.perf_counter()
                g.text += delta  # delivered the moment it is yielded
                g.meta = dict(meta or {})
                yield delta, meta
        except GeneratorExit:
            g.closed_early = True
            raise
        except BaseException as e:
            g.error = f"{type(e).__name__}: {e}"
            raise
        finally:
            g.ended = time.perf_counter()
            close = getattr(inner, "close", None)
            if close is not None:
                close()

    # --- what was recorded ----------------------------------------------------------------------

    def _lineage(self, s: Any) -> _Lineage:
        args = s.arguments
        with self._lock:
            lin = self._lineages.get(id(args))
            if lin is None or lin.owner is not args:
                lin = self._lineages[id(args)] = _Lineage(args)
            lin.executors.setdefault(getattr(s, "sid", str(id(s))), s)
            return lin

    def _begin(self, s: Any, kind: str) -> Generation:
        lin = self._lineage(s)
        g = Generation(kind, getattr(s, "sid", str(id(s))), time.perf_counter())
        with self._lock:
            lin.generations.append(g)
        return g

    def _find(self, arguments: Mapping[str, Any]) -> _Lineage | None:
        with self._lock:
            lin = self._lineages.get(id(arguments))
        return lin if lin is not None and lin.owner is arguments else None

    def programs(self) -> list[Mapping[str, Any]]:
        """The arguments of every program recorded so far, in the order they first called."""
        with self._lock:
            return [lin.owner for lin in self._lineages.values()]  # type: ignore[misc]

    def generations(self, arguments: Mapping[str, Any]) -> list[Generation]:
        """The generations of the program run with `arguments` (its forks included), in the
        order they were requested."""
        lin = self._find(arguments)
        if lin is None:
            return []
        with self._lock:
            return list(lin.generations)

    def executors(self, arguments: Mapping[str, Any]) -> list[Any]:
        """Every StreamExecutor of that program (the main one and its forks) seen so far."""
        lin = self._find(arguments)
        if lin is None:
            return []
        with self._lock:
            return list(lin.executors.values())

    def outputs(self, arguments: Mapping[str, Any]) -> list[str]:
        """The texts the program saw, in program order (failed generations left out)."""
        return [g.text for g in self.generations(arguments) if g.error is None]

    def trace_row(
        self,
        arguments: Mapping[str, Any],
        *,
        task_id: str | None = None,
        workload: str = "",
        input: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One line of a replay trace for that program."""
        tid = task_id if task_id is not None else arguments.get("task_id")
        if tid is None:
            raise ValueError("a trace row needs a task id (run the program with task_id=...)")
        if input is None:
            input = {k: v for k, v in arguments.items() if k not in RUN_ARGUMENTS}
        return {
            "id": str(tid),
            "workload": workload,
            "input": dict(input),
            "outputs": self.outputs(arguments),
        }

    def forget(self, arguments: Mapping[str, Any]) -> None:
        """Drop what was recorded for that program (and the references to its executors)."""
        with self._lock:
            lin = self._lineages.get(id(arguments))
            if lin is not None and lin.owner is arguments:
                del self._lineages[id(arguments)]


def write_trace(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write trace rows as JSONL (the replay backend's format); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path
