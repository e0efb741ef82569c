"""The local inference engine: one scheduler thread owns the model and serves every request.

Callers on any thread `submit` and get a `RequestHandle`; running requests decode together, one
forward per step. Nothing outside the scheduler thread may touch the model or the KV tensors.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from sgl_conveyor.backends.local.constraints import Constraint, GrammarCompiler
from sgl_conveyor.backends.local.kv import (
    KVSegment,
    SlotPool,
    cache_kv,
    check_supported,
    join_segments,
    prefill_cache,
)
from sgl_conveyor.backends.local.model_store import LoadedModel
from sgl_conveyor.backends.local.prompt_tokens import PromptTokenizer, Tokenized
from sgl_conveyor.backends.local.radix_cache import Node, RadixCache
from sgl_conveyor.backends.local.sampling import SamplingParams, sample
from sgl_conveyor.backends.local.text_stream import TextStream
from sgl_conveyor.backends.pinning import pin_seconds
from sgl_conveyor.errors import BackendError, RequestError

log = logging.getLogger(__name__)

DEFAULT_CACHE_BUDGET = 512 * 2**20  # bytes of KV the radix tree may keep
DEFAULT_MAX_PIN_S = 60.0  # the longest a request may keep its prefix pinned (see pinning.py)
_STOP = object()


@dataclass
class Event:
    """What one request produced since its previous event.

    `meta` uses the SGLang server's names (`id`, `prompt_tokens`, `completion_tokens`,
    `cached_tokens`, `finish_reason`, ...); logprob lists in it hold only this event's entries."""

    text: str
    token_ids: tuple[int, ...]
    meta: dict[str, Any]
    finished: bool = False
    error: str | None = None


class RequestHandle:
    """A submitted request: iterate it for events, `cancel()` it from any thread.

    The request id is `handle.id`, also the `id` of every event's meta. Iterating raises
    `RequestError` if the engine failed the request."""

    def __init__(self, rid: str, engine: Engine) -> None:
        self.id = rid
        self._engine = engine
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._done = threading.Event()
        self._cancelled = False
        self.final_meta: dict[str, Any] | None = None
        self.output_ids: list[int] = []  # every generated token, once finished

    def __iter__(self) -> Iterator[Event]:
        while True:
            event = self._events.get()
            if event.error is not None:
                raise RequestError(event.error)
            yield event
            if event.finished:
                return

    def cancel(self) -> None:
        """Stop the request: it ends with finish_reason `abort` within one decode step, and
        its tokens and KV are still added to the prefix cache. Safe from any thread."""
        if not self._cancelled:
            self._cancelled = True
            self._engine._wake()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Block until the engine has finished the request (and cached its KV); returns the
        final meta info, or None on timeout. Does not consume events."""
        self._done.wait(timeout)
        return self.final_meta

    def result(self) -> tuple[str, dict[str, Any]]:
        """Consume every event: the full text and the final meta (with full logprob lists)."""
        parts: list[str] = []
        merged: dict[str, Any] = {}
        for event in self:
            parts.append(event.text)
            for key, value in event.meta.items():
                if isinstance(value, list) and key.endswith("logprobs"):
                    merged.setdefault(key, []).extend(value)
                else:
                    merged[key] = value
        return "".join(parts), merged

    def _push(self, event: Event) -> None:
        self._events.put(event)


@dataclass(eq=False)
class _Request:
    """Scheduler-side state of one request (only the scheduler thread touches it)."""

    rid: str
    prompt: Tokenized
    params: SamplingParams
    handle: RequestHandle
    constraint: Constraint | None
    generator: torch.Generator | None
    submitted: float
    ids: list[int] = field(default_factory=list)  # prompt ids
    out: list[int] = field(default_factory=list)  # generated ids
    node: Node | None = None  # locked radix node covering the reused/inserted prefix
    cached: int = 0
    cache: Any = None  # prefill DynamicCache while prefilling
    filled: int = 0  # prompt tokens whose KV exists (prefill progress)
    row: int = -1
    kv_len: int = 0  # tokens with KV in the decode row
    pin_s: float | None = None  # keep the final sequence pinned this long (a tool call's)
    stream: TextStream | None = None
    counts: torch.Tensor | None = None
    input_logprobs: list[Any] = field(default_factory=list)
    input_top: list[Any] = field(default_factory=list)
    pending_lp: list[Any] = field(default_factory=list)
    pending_top: list[Any] = field(default_factory=list)
    pending_text: str = ""  # visible text not sent yet
    sent_tokens: int = 0
    sent_input_lp: bool = False
    final_event: Event | None = None
    first_token_at: float | None = None

    @property
    def cancelled(self) -> bool:
        return self.handle.cancelled


def _check_finite(logits: torch.Tensor, batch: Sequence[_Request]) -> None:
    """Refuse NaN or Inf logits: argmax over NaN picks token 0 and a grammar mask cannot hide
    it, so decoding on would emit garbage that looks like a normal early stop."""
    ok = torch.isfinite(logits).all(-1).reshape(-1).tolist()
    bad = [r.rid for r, fine in zip(batch, ok, strict=True) if not fine]
    if bad:
        raise RuntimeError(
            f"the model produced non-finite logits for request(s) {', '.join(bad)} "
            "(NaN or Inf: numerical overflow or corrupt KV)"
        )


class _DeadEnd(Exception):
    """One request cannot go on (its grammar allows no next token): it ends, the batch does
    not. A hostile regex such as `a[^\x00-\U0010ffff]` compiles and dead-ends after `a`."""


class Engine:
    """Serves generation requests for one loaded model from a single scheduler thread.

    The scheduler prefills one request at a time in chunks (a long prompt never stalls the
    others for more than one chunk) and decodes all running requests in one batched forward per
    step, so concurrent streams interleave token by token and share each step's weight reads.
    The radix tree gives each request its longest cached prefix; every request, however it
    ends (finished, stopped, cancelled), leaves its tokens and KV in the tree."""

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        cache_budget_bytes: int | None = DEFAULT_CACHE_BUDGET,
        max_batch: int = 16,
        prefill_chunk: int = 512,
        seed: int | None = None,
        warmup: bool = True,
        max_pin_s: float = DEFAULT_MAX_PIN_S,
    ) -> None:
        """`max_pin_s`: the longest a request's prefix stays pinned while its program's tool
        runs (0: never pin); pins together hold at most half the cache budget."""
        check_supported(loaded.model.config)
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.device = loaded.device
        self.dtype = loaded.dtype
        self.max_batch = max(1, max_batch)
        self.prefill_chunk = max(16, prefill_chunk)
        self.seed = seed
        self.eos_ids = frozenset(loaded.eos_token_ids)
        self.special_ids = frozenset(loaded.special_token_ids)
        self.radix = RadixCache(cache_budget_bytes)
        self.max_pin_s = max(0.0, float(max_pin_s))
        self._load = {"num_reqs": 0, "num_waiting_reqs": 0, "num_tokens": 0}
        self.prompts = PromptTokenizer(self.tokenizer)
        self.grammars = GrammarCompiler(
            self.tokenizer,
            vocab_size=loaded.vocab_size,
            stop_token_ids=self.eos_ids,
            special_token_ids=self.special_ids,
        )
        self.pool = SlotPool(self.model.config, self.dtype, self.device)
        self.context_len = int(getattr(self.model.config, "max_position_embeddings", 0) or 2**31)
        self._additive_mask = self.model.config._attn_implementation != "sdpa"
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._waiting: deque[_Request] = deque()
        self._prefilling: deque[_Request] = deque()
        self._decoding: list[_Request] = []
        self._active: dict[str, RequestHandle] = {}
        # Requests inside _finish: still "running" to stats() until their counters and pins
        # are all written (a reader on another thread must not see one without the other).
        self._finishing = 0
        self._active_lock = threading.Lock()
        self.counters = {
            "requests": 0,
            "prompt_tokens": 0,
            "cached_tokens": 0,
            "generated_tokens": 0,
            "decode_steps": 0,
            "decode_rows": 0,
            "prefill_forwards": 0,
            "aborted_requests": 0,
            "aborted_completion_tokens": 0,
        }
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="sgl-conveyor-engine", daemon=True)
        self._thread.start()
        if warmup:
            self._warmup()

    # --- public API (any thread) --------------------------------------------------------------

    def submit(
        self,
        prompt: str | Sequence[int],
        params: SamplingParams | None = None,
        *,
        rid: str | None = None,
        max_prompt_tokens: int | None = None,
    ) -> RequestHandle:
        """Queue a request. `prompt` is text (tokenized so that it keeps the tokens of a
        remembered earlier sequence it extends) or token ids. Invalid constraints, and a
        prompt longer than the context (or than `max_prompt_tokens`), raise ValueError here,
        in the caller's thread."""
        if self._closed:
            raise BackendError("the engine is shut down")
        params = params or SamplingParams()
        if isinstance(prompt, str):
            tokenized = self.prompts.encode(prompt)
        else:
            tokenized = self.prompts.describe(list(prompt))
        if not tokenized.ids:
            raise ValueError("the prompt is empty: nothing to condition on")
        if len(tokenized.ids) >= self.context_len:
            raise ValueError(
                f"the prompt has {len(tokenized.ids)} tokens; the model's context is "
                f"{self.context_len}"
            )
        if max_prompt_tokens is not None and len(tokenized.ids) > max_prompt_tokens:
            raise ValueError(
                f"the prompt has {len(tokenized.ids)} tokens; this server accepts at most "
                f"{max_prompt_tokens}"
            )
        constraint = self.grammars.for_params(params)
        seed = params.seed if params.seed is not None else self.seed
        generator = None
        if not params.greedy:
            generator = torch.Generator(device="cpu")
            if seed is not None:
                generator.manual_seed(int(seed))
            else:
                generator.seed()
        rid = rid or uuid.uuid4().hex
        handle = RequestHandle(rid, self)
        with self._active_lock:
            if rid in self._active:
                raise ValueError(f"request id {rid!r} is already running")
            self._active[rid] = handle
        req = _Request(
            rid=rid,
            prompt=tokenized,
            params=params,
            handle=handle,
            constraint=constraint,
            generator=generator,
            submitted=time.perf_counter(),
            ids=list(tokenized.ids),
            pin_s=pin_seconds(rid),
        )
        self._inbox.put(req)
        return handle

    def abort(self, rid: str) -> bool:
        """Cancel the running or queued request `rid`; False if there is none."""
        with self._active_lock:
            handle = self._active.get(rid)
        if handle is None:
            return False
        handle.cancel()
        return True

    def running_ids(self) -> list[str]:
        """Ids of the requests queued or running now."""
        with self._active_lock:
            return list(self._active)

    def abort_all(self) -> int:
        """Cancel every queued or running request; returns how many."""
        ids = self.running_ids()
        return sum(self.abort(rid) for rid in ids)

    def call(self, fn: Callable[[], Any], timeout: float | None = None) -> Any:
        """Run `fn` on the scheduler thread between steps and return its result."""
        done: dict[str, Any] = {}
        ready = threading.Event()

        def job() -> None:
            try:
                done["value"] = fn()
            except BaseException as err:
                done["error"] = err
            finally:
                ready.set()

        self._inbox.put(job)
        if not ready.wait(timeout):
            raise TimeoutError("the engine did not run the call in time")
        if "error" in done:
            raise done["error"]
        return done.get("value")

    def flush_cache(self) -> int:
        """Forget every cached prefix not in use (and the remembered tokenizations)."""
        self.prompts.clear()
        return int(self.call(self.radix.clear))

    def load(self) -> dict[str, int]:
        """Requests running and waiting, and the tokens they hold, as of the last step (what
        a router's load-aware policy reads)."""
        return dict(self._load)

    def stats(self) -> dict[str, Any]:
        """Counters and sizes, read without stopping the scheduler. The stages are read first, in
        the order a request moves through them (waiting, prefilling, decoding, finishing), and
        each move adds to the next stage before it leaves the last: a reader who sees nothing
        running never missed a request in flight, and sees every finished one in the counters."""
        waiting = len(self._waiting)
        running = len(self._prefilling) + len(self._decoding) + self._finishing  # left to right
        pins = self.radix.pin_counts
        return {
            **self.counters,
            "pins": pins["pinned"],
            "pins_reused": pins["reused"],
            "pins_expired": pins["expired"],
            "pins_displaced": pins["displaced"],
            "pinned_now": len(self.radix.pins()),
            "cache_bytes": self.radix.total_bytes,
            "cache_tokens": self.radix.total_tokens,
            "cache_budget_bytes": self.radix.budget_bytes,
            "cache_evicted_tokens": self.radix.evicted_tokens,
            "pool_bytes": self.pool.nbytes,
            "running": running,
            "waiting": waiting,
        }

    def shutdown(self, timeout: float = 10.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._inbox.put(_STOP)
        self._thread.join(timeout)

    # --- scheduler thread ---------------------------------------------------------------------

    def _wake(self) -> None:
        self._inbox.put(None)

    def _warmup(self) -> None:
        """Run a few tiny requests so that kernel selection and first-touch costs are paid at
        load time, not by the first user request. Leaves nothing in the cache."""
        ids = self.tokenizer.encode("Hello, world! This warms the kernels up.").ids
        params = SamplingParams(max_new_tokens=3, temperature=0, ignore_eos=True)
        handles = [self.submit(ids[: len(ids) - i], params) for i in range(2)]
        for h in handles:
            h.result()
        self.flush_cache()
        for key in self.counters:
            self.counters[key] = 0

    def _run(self) -> None:
        torch.set_grad_enabled(False)
        with torch.inference_mode():
            while True:
                busy = bool(self._prefilling or self._decoding or self._waiting)
                if not self._intake(block=not busy):
                    break
                try:
                    self._step()
                except Exception as err:  # keep serving: fail what was in flight
                    log.exception("local engine step failed")
                    self._fail_all(f"{type(err).__name__}: {err}")

    def _intake(self, *, block: bool) -> bool:
        """Move queued submissions into the waiting list; run control calls. False on stop."""
        try:
            item = self._inbox.get() if block else self._inbox.get_nowait()
        except queue.Empty:
            return True
        while True:
            if item is _STOP:
                self._fail_all("the engine was shut down")
                return False
            if isinstance(item, _Request):
                self._waiting.append(item)
            elif callable(item):
                item()
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return True

    def _step(self) -> None:
        for req in [r for r in itertools.chain(self._waiting, self._prefilling) if r.cancelled]:
            self._finish(req, {"type": "abort", "message": "cancelled"})
        for req in [r for r in self._decoding if r.cancelled]:
            self._finish(req, {"type": "abort", "message": "cancelled"})
        while self._waiting and len(self._prefilling) + len(self._decoding) < self.max_batch:
            self._prefilling.append(self._waiting[0])  # then off the list: never in neither
            self._waiting.popleft()
        if self._prefilling:
            self._prefill_chunk(self._prefilling[0])
        if self._decoding:
            self._decode_step()
        self._note_load()

    def _note_load(self) -> None:
        running = [*self._prefilling, *self._decoding]
        self._load = {
            "num_reqs": len(running) + len(self._waiting),
            "num_waiting_reqs": len(self._waiting),
            "num_tokens": sum(len(r.ids) + len(r.out) for r in running)
            + sum(len(r.ids) for r in self._waiting),
        }

    # --- prefill ------------------------------------------------------------------------------

    def _start_prefill(self, req: _Request) -> None:
        """Match the longest cached prefix now (not at submission), so that a request queued
        behind another with the same prompt reuses what that one just prefilled."""
        n = len(req.ids)
        limit = n - 1  # at least one token is computed: its logits give the next token
        start = req.params.logprob_start_len
        if req.params.return_logprob and start >= 0:
            limit = min(limit, max(start - 1, 0))
        match = self.radix.match_prefix(req.ids, limit=limit)
        self.radix.lock(match.node)
        self.radix.release_reused(match.node)  # a follow-up: its own lock now keeps the prefix
        req.node, req.cached, req.filled = match.node, match.length, match.length
        prefix = join_segments([s for s in match.segments if isinstance(s, KVSegment)])
        req.cache = prefill_cache(self.model.config, prefix)
        self.counters["requests"] += 1
        self.counters["prompt_tokens"] += n
        self.counters["cached_tokens"] += match.length

    def _prefill_chunk(self, req: _Request) -> None:
        if req.cache is None:
            self._start_prefill(req)
        n = len(req.ids)
        a = req.filled
        b = min(n, a + self.prefill_chunk)
        p = req.params
        want_lp = p.return_logprob and p.logprob_start_len >= 0
        first_lp_pos = max(p.logprob_start_len - 1, 0)  # logits at i-1 score token i
        keep = 1
        if want_lp and first_lp_pos < b:
            keep = b - max(a, first_lp_pos)
        out = self.model(
            input_ids=torch.tensor([req.ids[a:b]], device=self.device),
            cache=req.cache,
            use_cache=True,
            logits_to_keep=keep,
        )
        self.counters["prefill_forwards"] += 1
        logits = out.logits[0]  # [keep, vocab]
        req.filled = b
        if want_lp:
            self._prompt_logprobs(req, logits, b - keep, b)
        if b < n:
            return
        if req.filled > req.cached:  # later requests with this prompt start from here
            self._insert(req, n, lambda s, e: KVSegment(cache_kv(req.cache, s, e)))
        if p.max_new_tokens == 0:
            self._prefilling.popleft()
            req.kv_len = n
            self._finish(req, {"type": "length", "length": 0})
            return
        if req.cancelled:
            self._prefilling.popleft()
            self._finish(req, {"type": "abort", "message": "cancelled"})
            return
        req.stream = TextStream(
            self.tokenizer, special_ids=self.special_ids, stop=p.stop, context_ids=req.ids
        )
        row = len(self._decoding)
        self.pool.reserve(
            row + 1,
            n + 64,
            used_rows=row,
            used_len=max((r.kv_len for r in self._decoding), default=0),
        )
        self.pool.load(row, req.cache, n)
        req.cache = None
        req.row, req.kv_len = row, n
        self._decoding.append(req)
        self._prefilling.popleft()  # after the append: stats() always sees it somewhere
        try:
            if self._emit_token(req, logits[-1]):
                self._finish_decoding([req])
        except _DeadEnd as e:
            self._finish_decoding([req], {id(req): {"type": "abort", "message": str(e)}})

    def _prompt_logprobs(self, req: _Request, logits: torch.Tensor, lo: int, hi: int) -> None:
        """Score prompt tokens from the logits of positions [lo, hi) (row j = position lo+j)."""
        p = req.params
        start = p.logprob_start_len
        if start == 0 and lo == 0 and not req.input_logprobs:
            req.input_logprobs.append(self._lp_entry(None, req.ids[0], p))
            if p.top_logprobs_num:
                req.input_top.append(None)
        logp = torch.log_softmax(logits.float().cpu(), -1)
        n = len(req.ids)
        for j in range(logits.shape[0]):
            target = lo + j + 1
            if target >= n or target < start:
                continue
            tid = req.ids[target]
            req.input_logprobs.append(self._lp_entry(float(logp[j, tid]), tid, p))
            if p.top_logprobs_num:
                req.input_top.append(self._top_entries(logp[j], p))

    # --- decode -------------------------------------------------------------------------------

    def _decode_step(self) -> None:
        batch = self._decoding
        lens = [r.kv_len for r in batch]
        self.pool.reserve(len(batch), max(lens) + 1, used_rows=len(batch), used_len=max(lens))
        ids = torch.tensor([[r.out[-1]] for r in batch], device=self.device)
        pos = torch.tensor([[n] for n in lens], device=self.device)
        mask = None
        if len(batch) > 1:
            mask = self.pool.step_mask(lens, additive=self._additive_mask, dtype=self.dtype)
        out = self.model(
            input_ids=ids,
            position_ids=pos,
            attention_mask=mask,
            cache=self.pool.step_cache(lens),
            use_cache=True,
            logits_to_keep=1,
        )
        self.counters["decode_steps"] += 1
        self.counters["decode_rows"] += len(batch)
        logits = out.logits[:, -1]
        for r in batch:
            r.kv_len += 1
        done = []
        fast = None
        if all(self._plain(r) for r in batch):
            _check_finite(logits, batch)
            fast = logits.argmax(-1).tolist()
        for i, r in enumerate(batch):
            if r.cancelled:  # stop here: the token of this step is not emitted (the K/V this
                # step wrote is that of the last emitted token, so all emitted tokens cache)
                done.append((r, {"type": "abort", "message": "cancelled"}))
                continue
            try:
                if self._emit_token(r, logits[i], None if fast is None else fast[i]):
                    done.append((r, None))
            except _DeadEnd as e:  # this request ends; the others decode on
                done.append((r, {"type": "abort", "message": str(e)}))
        self._finish_decoding([r for r, _ in done], {id(r): f for r, f in done if f})

    def _plain(self, r: _Request) -> bool:
        p = r.params
        return (
            p.greedy
            and r.constraint is None
            and not p.penalized
            and not p.return_logprob
            and len(r.out) >= p.min_new_tokens
        )

    def _emit_token(self, r: _Request, logits: torch.Tensor, chosen: int | None = None) -> bool:
        """Pick the next token of `r` from its row of logits (or take `chosen`), emit it.
        True if `r` is done: its final event is then ready in `r.final_event`."""
        p = r.params
        lp_entry = top_entry = None
        if chosen is None:
            # sampling, grammar masks and penalties run on a CPU float32 copy of the row: the
            # same code (and the same seeded draws) on CPU and CUDA, and xgrammar's CPU kernel
            row = logits.float().cpu()
            if row.data_ptr() == logits.data_ptr():
                row = row.clone()  # never write into the model's output
            _check_finite(row, [r])
            if p.return_logprob:
                logp = torch.log_softmax(row, -1)
            if p.penalized and r.counts is not None:
                row -= r.counts * p.frequency_penalty + (r.counts > 0) * p.presence_penalty
            if len(r.out) < p.min_new_tokens:
                for tid in itertools.chain(self.eos_ids, p.stop_token_ids):
                    row[tid] = float("-inf")
            if r.constraint is not None:
                r.constraint.mask(row)
                if not torch.isfinite(row).any():
                    raise _DeadEnd("the regex or JSON schema allows no further token")
            chosen = sample(row, p, r.generator)
            if p.return_logprob:
                lp_entry = self._lp_entry(float(logp[chosen]), chosen, p)
                if p.top_logprobs_num:
                    top_entry = self._top_entries(logp, p)
        if r.constraint is not None and not r.constraint.accept(chosen):
            raise _DeadEnd(f"the regex or JSON schema rejected token {chosen}, the only way on")
        if p.penalized:
            if r.counts is None:
                r.counts = torch.zeros(logits.shape[-1])
            r.counts[chosen] += 1
        r.out.append(chosen)
        if r.first_token_at is None:
            r.first_token_at = time.perf_counter()
        if lp_entry is not None:
            r.pending_lp.append(lp_entry)
            if top_entry is not None:
                r.pending_top.append(top_entry)
        finish = self._finish_reason(r, chosen)
        self._send(r, finish)
        return finish is not None

    def _finish_reason(self, r: _Request, tid: int) -> dict[str, Any] | None:
        """Same precedence as the SGLang server: stop string, stop token, length, grammar."""
        p = r.params
        assert r.stream is not None
        stoppable = len(r.out) >= p.min_new_tokens
        token_stop = (
            stoppable and not p.ignore_eos and (tid in self.eos_ids or tid in p.stop_token_ids)
        )
        delta, matched = r.stream.push(tid, check_stops=stoppable)
        if not token_stop:  # a stop token's own text is not output, like the server
            r.pending_text += delta
        if matched is not None:
            return {"type": "stop", "matched": matched}
        if token_stop:
            return {"type": "stop", "matched": tid}
        if len(r.out) >= p.max_new_tokens:
            return {"type": "length", "length": p.max_new_tokens}
        if len(r.ids) + len(r.out) >= self.context_len:  # the model's context is full
            return {"type": "length", "length": len(r.out)}
        if r.constraint is not None:
            if r.constraint.terminated:
                return {"type": "stop", "matched": tid}
            if r.constraint.only_stop_allowed():
                # the grammar forces a stop token next: take it without running the model
                eos = min(self.grammars.stop_token_ids)
                r.out.append(eos)
                r.stream.push(eos, check_stops=False)
                return {"type": "stop", "matched": eos}
        return None

    def _send(self, r: _Request, finish: dict[str, Any] | None) -> None:
        """Emit the text and tokens accumulated since the last event (finish: final event)."""
        text, r.pending_text = r.pending_text, ""
        if finish is not None and r.stream is not None:
            text += r.stream.flush()  # held back for a stop string that never came
        sent = r.sent_tokens
        meta = self._meta(r, finish)
        if r.params.return_logprob:
            # As SGLang's server streams them: this event's entries only, and the total so far.
            meta["output_token_logprobs"], r.pending_lp = r.pending_lp, []
            meta["output_token_logprobs_length"] = len(r.out)
            if r.params.top_logprobs_num:
                meta["output_top_logprobs"], r.pending_top = r.pending_top, []
            if not r.sent_input_lp:
                r.sent_input_lp = True
                meta["input_token_logprobs"] = r.input_logprobs
                if r.params.top_logprobs_num:
                    meta["input_top_logprobs"] = r.input_top
        r.sent_tokens = len(r.out)
        if finish is None:
            r.handle._push(Event(text, tuple(r.out[sent:]), meta))
        else:
            r.final_event = Event(text, tuple(r.out[sent:]), meta, finished=True)

    def _meta(self, r: _Request, finish: dict[str, Any] | None) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "id": r.rid,
            "prompt_tokens": len(r.ids),
            "completion_tokens": len(r.out),
            "cached_tokens": r.cached,
            "finish_reason": finish,
        }
        if finish is not None:
            now = time.perf_counter()
            meta["e2e_latency"] = now - r.submitted
            if r.first_token_at is not None:
                meta["ttft"] = r.first_token_at - r.submitted
        return meta

    def _lp_entry(self, lp: float | None, tid: int, p: SamplingParams) -> tuple:
        if not p.return_text_in_logprobs:
            return (lp, tid, None)
        return (lp, tid, self.tokenizer.decode([tid], skip_special_tokens=False))

    def _top_entries(self, logp: torch.Tensor, p: SamplingParams) -> list[tuple]:
        vals, idx = torch.topk(logp, min(p.top_logprobs_num, logp.shape[-1]))
        return [self._lp_entry(float(v), int(i), p) for v, i in zip(vals, idx, strict=True)]

    # --- finishing ----------------------------------------------------------------------------

    def _finish_decoding(
        self, reqs: list[_Request], reasons: dict[int, dict[str, Any]] | None = None
    ) -> None:
        """Finish decoding requests, highest row first so that compaction never moves a row
        that is about to be finished too."""
        for r in sorted(reqs, key=lambda r: -r.row):
            reason = (reasons or {}).get(id(r))
            if reason is not None:
                self._send(r, reason)
            self._finish(r, None)

    def _finish(self, req: _Request, reason: dict[str, Any] | None) -> None:
        """End a request wherever it is: cache its KV, free its row, send the final event."""
        self._finishing += 1
        try:
            self._end(req, reason)
        finally:
            self._finishing -= 1

    def _end(self, req: _Request, reason: dict[str, Any] | None) -> None:
        if reason is not None:
            self._send(req, reason)
        with contextlib.suppress(ValueError):
            self._waiting.remove(req)
        if req in self._prefilling:
            self._prefilling.remove(req)
            if req.cache is not None and req.filled > req.cached:
                cache = req.cache
                self._insert(
                    req, req.filled, lambda s, e: KVSegment(cache_kv(cache, s, e)), None, False
                )
            req.cache = None
        if req.row >= 0:
            row = req.row
            seq = req.ids + req.out
            self._insert(req, req.kv_len, lambda s, e: self.pool.segment(row, s, e), seq, False)
            last = self._decoding.pop()
            if last is not req:
                self.pool.move(last.row, row, last.kv_len)
                last.row = row
                self._decoding[row] = last
            req.row = -1
            if not self._decoding and self.pool.nbytes > 256 * 2**20:
                self.pool.release()  # a burst is over: give a large pool back
        if req.node is not None:
            self.radix.unlock(req.node)
            req.node = None
        if req.pin_s is not None and self.max_pin_s > 0:
            self._pin(req)
        self._remember(req)
        self.counters["generated_tokens"] += len(req.out)
        final = req.final_event
        ended = (final.meta if final is not None else {}).get("finish_reason") or reason
        if isinstance(ended, dict) and ended.get("type") == "abort":
            self.counters["aborted_requests"] += 1
            self.counters["aborted_completion_tokens"] += len(req.out)
        handle = req.handle
        handle.output_ids = list(req.out)
        handle.final_meta = final.meta if final is not None else self._meta(req, reason)
        with self._active_lock:
            self._active.pop(req.rid, None)
        handle._done.set()
        handle._push(final or Event("", (), handle.final_meta, finished=True))

    def _insert(
        self,
        req: _Request,
        length: int,
        segment_for: Callable[[int, int], KVSegment],
        seq: Sequence[int] | None = None,
        relock: bool = True,
    ) -> None:
        """Cache the first `length` tokens of the request's sequence; with `relock`, move its
        lock to the deepest node so that what it uses stays pinned while it runs."""
        tokens = list((seq if seq is not None else req.ids)[:length])
        if not tokens:
            return
        self.radix.insert(tokens, segment_for)
        if relock and req.node is not None:
            node = self.radix.match_prefix(tokens).node
            self.radix.lock(node)
            self.radix.unlock(req.node)
            req.node = node

    def _pin(self, req: _Request) -> None:
        """Keep what the request leaves in the cache (its prompt and output) from eviction
        until its program's follow-up reuses it, or for `pin_s` (at most `max_pin_s`)."""
        budget = self.radix.budget_bytes
        self.radix.pin(
            req.rid,
            req.ids + req.out,
            min(req.pin_s or 0.0, self.max_pin_s),
            max_bytes=None if budget is None else budget // 2,
        )

    def _remember(self, req: _Request) -> None:
        """Remember prompt + generated tokens by their text, for the next prompt's tokenizer."""
        if not req.prompt.exact:
            return
        text, ids, ends = req.prompt.text, req.ids, list(req.prompt.ends)
        if req.stream is not None:
            base = len(text)
            ends += [e + base if e >= 0 else -1 for e in req.stream.ends]
            text, ids = text + req.stream.raw_text, ids + req.out
        if len(ends) == len(ids):
            self.prompts.remember(text, ids, ends)

    def _fail_all(self, message: str) -> None:
        for req in [*self._waiting, *self._prefilling, *self._decoding]:
            req.handle._push(Event("", (), {"id": req.rid}, finished=True, error=message))
            reason = {"type": "abort", "message": message}
            req.handle.final_meta = {"id": req.rid, "finish_reason": reason}
            with self._active_lock:
                self._active.pop(req.rid, None)
            if req.node is not None:
                with contextlib.suppress(RuntimeError):
                    self.radix.unlock(req.node)
            req.handle._done.set()
        self._waiting.clear()
        self._prefilling.clear()
        self._decoding.clear()
        self.pool.release()
