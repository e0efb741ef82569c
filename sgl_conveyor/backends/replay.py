"""The replay backend: recorded model outputs, streamed back at any decoding speed.

Deterministic tests and evaluation sweeps need the model's behaviour without the model's cost
and noise. A trace holds, per task, the outputs of each generation in program order; this
backend streams them token by token (SmolLM2's tokenizer) at a chosen tokens/s after a chosen
time to first token, honouring stop strings and max tokens, and stops within one token when the
consumer closes the stream. It never invents text: an unknown task or an exhausted trace is an
error.
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
from sglang.lang.chat_template import get_chat_template
from sglang.lang.choices import ChoicesDecision

from sgl_conveyor.errors import BackendError

# Arguments a program may take that are not part of a task's input (how it runs, not what).
RUN_ARGUMENTS = frozenset({"mode", "task_id", "tools", "render"})


@dataclass(frozen=True)
class TraceTask:
    id: str
    workload: str
    input: Mapping[str, Any]
    outputs: tuple[str, ...]


def load_trace(source: str | Path | Sequence[Mapping[str, Any]]) -> list[TraceTask]:
    """Read a JSONL trace: one `{"id", "workload", "input", "outputs"}` object per line."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        rows = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise BackendError(f"{path}:{n}: not valid JSON: {e.msg}") from e
    else:
        rows = list(source)
    tasks = []
    for n, row in enumerate(rows, 1):
        missing = {"id", "input", "outputs"} - set(row)
        if missing:
            raise BackendError(f"trace row {n} lacks {sorted(missing)}")
        tasks.append(
            TraceTask(
                id=str(row["id"]),
                workload=str(row.get("workload", "")),
                input=dict(row["input"]),
                outputs=tuple(row["outputs"]),
            )
        )
    return tasks


@dataclass
class _Cursor:
    """Which output comes next for one program (shared by its forks)."""

    task: TraceTask
    owner: object  # the program's arguments dict: keeps its id from being reused
    next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class ReplayBackend(BaseBackend):
    """Replays a trace. Programs are matched to tasks by their arguments.

    A program run with `task_id=...` among its arguments replays that task; otherwise the task
    whose `input` equals the program's arguments (ignoring RUN_ARGUMENTS) is used. Forks share
    their parent's cursor, so a program's generations consume the task's outputs in order.

    tokens_per_second: decoding speed of the replay; ttft_s: time to first token;
    prefill_tokens_per_second: if set, uncached prompt tokens add prefill time to the first
    token (the prefix cache is simulated over token ids, so a reinjected result costs only its
    new tokens); time_scale: multiply every delay (0 = as fast as possible, for unit tests).
    """

    def __init__(
        self,
        trace: str | Path | Sequence[Mapping[str, Any]],
        *,
        tokens_per_second: float = 25.0,
        ttft_s: float = 0.05,
        prefill_tokens_per_second: float | None = None,
        time_scale: float = 1.0,
        chat_template: str = "chatml",
        tokenizer: Any = None,
    ):
        super().__init__()
        if tokens_per_second <= 0:
            raise ValueError("tokens_per_second must be > 0")
        self.tasks = load_trace(trace)
        self._by_id = {t.id: t for t in self.tasks}
        self.tokens_per_second = tokens_per_second
        self.ttft_s = ttft_s
        self.prefill_tokens_per_second = prefill_tokens_per_second
        self.time_scale = time_scale
        self.chat_template = get_chat_template(chat_template)
        self._tokenizer = tokenizer
        self._cursors: dict[int, _Cursor] = {}
        self._lock = threading.Lock()
        self._cache = None  # lazily: a radix tree over token ids, without payloads
        self.is_chat_model = False

    # --- BaseBackend --------------------------------------------------------------------------

    def get_model_name(self) -> str:
        return "replay"

    def generate(self, s, sampling_params):
        text, meta = "", {}
        for delta, event_meta in self.generate_stream(s, sampling_params):
            text, meta = text + delta, event_meta
        return text, meta

    def generate_stream(self, s, sampling_params) -> Iterator[tuple[str, dict[str, Any]]]:
        output = self._next_output(s)
        return self._stream(s.text_, output, sampling_params)

    def select(self, s, choices, temperature, choices_method=None):
        output = self._next_output(s)
        if output not in choices:
            raise BackendError(f"recorded choice {output!r} is not among {choices!r}")
        return ChoicesDecision(decision=output, meta_info={"replayed": True})

    def cache_prefix(self, prefix_str: str) -> None:
        """Prefill `prefix_str` into the simulated prefix cache (taking the prefill time of its
        uncached tokens when a prefill speed is set)."""
        ids = self.tokenizer().encode(prefix_str, add_special_tokens=False).ids
        cached = self._radix().match_prefix_length(ids)
        if self.prefill_tokens_per_second:
            time.sleep((len(ids) - cached) / self.prefill_tokens_per_second * self.time_scale)
        self._radix().insert(ids)

    def commit_lazy_operations(self, s) -> None:
        self.cache_prefix(s.text_)

    def flush_cache(self) -> None:
        self._cache = None

    def end_program(self, s) -> None:
        pass  # cursors live as long as their program's arguments object

    # --- replay ---------------------------------------------------------------------------------

    def tokenizer(self):
        if self._tokenizer is None:
            from sgl_conveyor.backends.local.model_store import load_tokenizer

            self._tokenizer = load_tokenizer()
        return self._tokenizer

    def _task_for(self, arguments: Mapping[str, Any]) -> TraceTask:
        if "task_id" in arguments:
            task = self._by_id.get(str(arguments["task_id"]))
            if task is None:
                raise BackendError(f"no task {arguments['task_id']!r} in the replay trace")
            return task
        wanted = {k: v for k, v in arguments.items() if k not in RUN_ARGUMENTS}
        matches = [t for t in self.tasks if dict(t.input) == wanted]
        if len(matches) != 1:
            what = "no task" if not matches else f"{len(matches)} tasks"
            raise BackendError(
                f"{what} in the replay trace match the program's arguments {sorted(wanted)}; "
                "pass task_id=... to choose one"
            )
        return matches[0]

    def _next_output(self, s) -> str:
        args = s.arguments
        with self._lock:
            cur = self._cursors.get(id(args))
            if cur is None or cur.owner is not args:
                cur = self._cursors[id(args)] = _Cursor(self._task_for(args), args)
                if len(self._cursors) > 4096:  # forget the oldest programs
                    for key in list(self._cursors)[:1024]:
                        del self._cursors[key]
        with cur.lock:
            if cur.next >= len(cur.task.outputs):
                raise BackendError(
                    f"task {cur.task.id!r} has {len(cur.task.outputs)} recorded outputs; the "
                    "program asked for one more"
                )
            out = cur.task.outputs[cur.next]
            cur.next += 1
            return out

    def _radix(self):
        if self._cache is None:
            from sgl_conveyor.backends.local.radix_cache import RadixCache

            self._cache = RadixCache(budget_bytes=None)
        return self._cache

    def _stream(self, prompt: str, output: str, sp: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        tok = self.tokenizer()
        started = time.perf_counter()
        stops = [st for st in _as_list(getattr(sp, "stop", None)) if st]
        cut, matched = len(output), None
        for st in stops:
            i = output.find(st)
            if i != -1 and i < cut:
                cut, matched = i, st
        ids = tok.encode(output[:cut], add_special_tokens=False).ids
        limit = getattr(sp, "max_new_tokens", None)
        finish: dict[str, Any] = {"type": "stop", "matched": matched} if matched else None
        if limit is not None and len(ids) > limit:
            ids = ids[:limit]
            finish = {"type": "length", "length": limit}
        if finish is None:
            finish = {"type": "stop", "matched": tok.token_to_id("<|im_end|>") or "eos"}
        prompt_ids = tok.encode(prompt, add_special_tokens=False).ids
        cached = self._radix().match_prefix_length(prompt_ids)
        meta = {
            "id": f"replay-{id(prompt):x}-{time.perf_counter_ns():x}",
            "prompt_tokens": len(prompt_ids),
            "cached_tokens": cached,
            "completion_tokens": 0,
            "finish_reason": None,
        }
        first = self.ttft_s
        if self.prefill_tokens_per_second:
            first += (len(prompt_ids) - cached) / self.prefill_tokens_per_second
        step = 1.0 / self.tokens_per_second
        decoder = _Detokenizer(tok)
        emitted_ids: list[int] = []
        try:
            for n, tid in enumerate(ids):
                due = started + (first + n * step) * self.time_scale
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                emitted_ids.append(tid)
                piece = decoder.step(tid)
                meta = {**meta, "completion_tokens": n + 1}
                if n == len(ids) - 1:
                    meta["finish_reason"] = finish
                    piece += decoder.flush()
                yield piece, dict(meta)
            if not ids:
                meta["finish_reason"] = finish
                yield "", dict(meta)
        except GeneratorExit:
            meta["finish_reason"] = {"type": "abort", "message": "closed by the consumer"}
            raise
        finally:
            self._radix().insert(prompt_ids + emitted_ids)


class _Detokenizer:
    """Exact incremental text of a token stream (holds back incomplete UTF-8 characters)."""

    def __init__(self, tok: Any):
        from tokenizers.decoders import DecodeStream

        self._tok = tok
        self._stream = DecodeStream(skip_special_tokens=False)

    def step(self, tid: int) -> str:
        return self._stream.step(self._tok, tid) or ""

    def flush(self) -> str:
        return ""


def _as_list(stop: Any) -> list[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    return list(stop)
