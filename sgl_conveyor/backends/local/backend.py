"""`LocalBackend`: an sglang frontend backend that runs a real model in this process.

It answers with the SGLang server's meta info, so programs behave as they would against a server.
It only converts parameters and events: all model work happens on the `Engine`'s thread.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Any

from sglang.lang.backend.base_backend import BaseBackend
from sglang.lang.chat_template import get_chat_template
from sglang.lang.choices import ChoicesDecision, ChoicesSamplingMethod, token_length_normalized

from sgl_conveyor.backends.local.engine import (
    DEFAULT_CACHE_BUDGET,
    DEFAULT_MAX_PIN_S,
    Engine,
    RequestHandle,
)
from sgl_conveyor.backends.local.model_store import load_model
from sgl_conveyor.backends.local.sampling import SamplingParams, as_str_tuple
from sgl_conveyor.sampling import dtype_constraint

_RECENT = 1024  # final meta info kept for `request_meta`


class LocalBackend(BaseBackend):
    """SmolLM2-135M-Instruct (or any local causal LM) behind sglang's backend interface.

    Request ids: every event's meta info carries `id`, so a stream consumer learns it from the
    first event; a caller that needs it before any token passes `rid=` to `generate_stream` /
    `generate`. Cancel by closing the stream generator (`.close()`; it returns once the
    request is finished and its KV cached, within one decode step) or, from any thread, with
    `abort(rid)`. Final meta info of recent requests: `request_meta(rid)`.
    """

    pins_by_rid = True  # a `+pin<s>` request id keeps its prefix hot (see `pinning`)

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        dtype: str | Any = "auto",
        device: str | Any = None,
        cache_budget_bytes: int | None = DEFAULT_CACHE_BUDGET,
        max_batch: int = 16,
        prefill_chunk: int = 512,
        seed: int | None = None,
        chat_template: str | None = None,
        warmup: bool = True,
        max_pin_s: float = DEFAULT_MAX_PIN_S,
    ) -> None:
        """`model`: None (the packaged SmolLM2), a transformers folder or a `.gguf` file.
        `dtype`: "auto" (bf16 where the hardware has it natively, see
        `model_store.pick_dtype`), "float32" or "bfloat16". `seed`: default seed of sampled
        requests (each request gets its own generator, so results do not depend on batching).
        `cache_budget_bytes`: the most KV the prefix cache keeps. `max_pin_s`: the longest a
        tool call's prefix stays pinned while its tool runs (0: never; see `pinning`)."""
        super().__init__()
        loaded = load_model(model, dtype=dtype, device=device)
        self.engine = Engine(
            loaded,
            cache_budget_bytes=cache_budget_bytes,
            max_batch=max_batch,
            prefill_chunk=prefill_chunk,
            seed=seed,
            warmup=warmup,
            max_pin_s=max_pin_s,
        )
        self.model_name = loaded.name
        self.chat_template = get_chat_template(chat_template or loaded.chat_template)
        self.is_chat_model = False
        self._recent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._recent_lock = threading.Lock()

    # --- BaseBackend --------------------------------------------------------------------------

    def get_model_name(self) -> str:
        return self.model_name

    def get_chat_template(self):
        return self.chat_template

    def cache_prefix(self, prefix_str: str) -> None:
        """Prefill `prefix_str` into the prefix cache (sglang's run_batch pre-warming)."""
        if prefix_str:
            self.engine.submit(prefix_str, SamplingParams(max_new_tokens=0)).result()

    def commit_lazy_operations(self, s: Any) -> None:
        """Prefill the program's text so that forks reuse it (called before `fork`)."""
        self._reject_images(s)
        self.cache_prefix(s.text_)

    def fill_image(self, s: Any) -> None:
        self._reject_images(s)

    def end_program(self, s: Any) -> None:
        """Nothing to release: requests end on their own. (sglang calls this 3x per executor,
        sometimes from a garbage collector, so it must stay a cheap no-op.)"""

    def generate(
        self, s: Any, sampling_params: Any, *, rid: str | None = None
    ) -> tuple[str | list[str], dict[str, Any] | list[dict[str, Any]]]:
        """The whole completion of `s.text_`: (text, meta info); lists of both when n > 1."""
        self._reject_images(s)
        params, n = self.sampling_params(sampling_params)
        if n == 1:
            handle = self.engine.submit(s.text_, params, rid=rid)
            text, meta = handle.result()
            self._record(meta)
            return text, meta
        handles = [
            self.engine.submit(s.text_, _with_seed(params, i), rid=f"{rid}-{i}" if rid else None)
            for i in range(n)
        ]
        results = [h.result() for h in handles]
        for _, meta in results:
            self._record(meta)
        return [t for t, _ in results], [m for _, m in results]

    def generate_stream(
        self, s: Any, sampling_params: Any, *, rid: str | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(text delta, meta info) pairs, one per token that adds visible text, then a final
        pair whose meta has `finish_reason`. Deltas are exact across multi-byte characters and
        never include a stop string or any part of one. Logprob lists in each meta hold only
        that event's entries. Nothing runs until the first `next()`."""
        self._reject_images(s)
        params, n = self.sampling_params(sampling_params)
        if n != 1:
            raise ValueError("generate_stream supports n=1 only")
        handle = self.engine.submit(s.text_, params, rid=rid)
        try:
            yield from _events(handle, params.return_logprob)
        finally:
            if not handle.finished:
                handle.cancel()  # the consumer closed the stream early
                handle.wait(timeout=60)
            if handle.final_meta is not None:
                self._record(handle.final_meta)

    def select(
        self,
        s: Any,
        choices: list[str],
        temperature: float,
        choices_method: ChoicesSamplingMethod | None = None,
    ) -> ChoicesDecision:
        """Score each choice by the model's logprobs of its tokens after `s.text_`, then let
        `choices_method` decide (default: token-length-normalized). The prompt is prefilled
        once and each choice prefills only its own tokens on top of the cached prompt."""
        self._reject_images(s)
        method = choices_method or token_length_normalized
        prompt = self.engine.prompts.encode(s.text_).ids
        self.engine.submit(prompt, SamplingParams(max_new_tokens=0)).result()
        tok = self.engine.tokenizer
        choice_ids = [tok.encode(c, add_special_tokens=False).ids for c in choices]
        scored = self._score([prompt + ids for ids in choice_ids], len(prompt))
        input_lps = [m.get("input_token_logprobs", []) for m in scored]
        normalized = [_mean_logprob(lps) for lps in input_lps]
        unconditional = None
        if method.requires_unconditional_logprobs:
            alone = self._score([ids or [tok.token_to_id(" ") or 0] for ids in choice_ids], 0)
            unconditional = [m.get("input_token_logprobs", []) for m in alone]
        return method(
            choices=choices,
            normalized_prompt_logprobs=normalized,
            input_token_logprobs=input_lps,
            output_token_logprobs=[[] for _ in choices],
            unconditional_token_logprobs=unconditional,
        )

    def concatenate_and_append(self, src_rids: list[str], dst_rid: str) -> None:
        raise NotImplementedError("LocalBackend joins forks as text (support_concate_and_append)")

    def flush_cache(self) -> None:
        self.engine.flush_cache()

    def get_server_info(self) -> dict[str, Any]:
        loaded = self.engine.loaded
        return {
            "model_path": str(loaded.path),
            "model_name": self.model_name,
            "dtype": str(loaded.dtype).replace("torch.", ""),
            "device": str(loaded.device),
            "chat_template": self.chat_template.name,
            **self.engine.stats(),
        }

    def shutdown(self) -> None:
        self.engine.shutdown()

    # --- beyond BaseBackend -------------------------------------------------------------------

    def abort(self, rid: str) -> bool:
        """Cancel request `rid` from any thread; False if it is not running or queued."""
        return self.engine.abort(rid)

    def request_meta(self, rid: str) -> dict[str, Any] | None:
        """The final meta info of a recent request (finished, stopped or cancelled)."""
        with self._recent_lock:
            return self._recent.get(rid)

    def sampling_params(self, sp: Any) -> tuple[SamplingParams, int]:
        """sglang's `SglSamplingParams` -> the engine's, with `dtype` mapped to a regex (and
        stops) exactly as sglang's RuntimeEndpoint does. Returns (params, n)."""
        regex, stop = dtype_constraint(
            getattr(sp, "dtype", None),
            getattr(sp, "regex", None),
            as_str_tuple(getattr(sp, "stop", None)),
        )
        if as_str_tuple(getattr(sp, "stop_regex", None)):
            raise ValueError("stop_regex is not supported by LocalBackend; use stop strings")
        schema = getattr(sp, "json_schema", None)
        if schema is not None and not isinstance(schema, str):
            schema = json.dumps(schema)
        top_k = getattr(sp, "top_k", -1)
        start = getattr(sp, "logprob_start_len", None)
        params = SamplingParams(
            max_new_tokens=int(getattr(sp, "max_new_tokens", 128)),
            min_new_tokens=int(getattr(sp, "min_new_tokens", 0) or 0),
            temperature=float(getattr(sp, "temperature", 1.0)),
            top_p=float(getattr(sp, "top_p", 1.0)),
            top_k=-1 if top_k is None else int(top_k),
            min_p=float(getattr(sp, "min_p", 0.0) or 0.0),
            frequency_penalty=float(getattr(sp, "frequency_penalty", 0.0) or 0.0),
            presence_penalty=float(getattr(sp, "presence_penalty", 0.0) or 0.0),
            stop=tuple(stop),
            stop_token_ids=tuple(getattr(sp, "stop_token_ids", None) or ()),
            ignore_eos=bool(getattr(sp, "ignore_eos", False)),
            regex=regex,
            json_schema=schema,
            seed=getattr(sp, "sampling_seed", None),
            return_logprob=bool(getattr(sp, "return_logprob", None)),
            logprob_start_len=-1 if start is None else int(start),
            top_logprobs_num=int(getattr(sp, "top_logprobs_num", None) or 0),
            return_text_in_logprobs=bool(getattr(sp, "return_text_in_logprobs", None)),
        )
        return params, int(getattr(sp, "n", 1) or 1)

    # --- internals ----------------------------------------------------------------------------

    def _score(self, sequences: Sequence[list[int]], start: int) -> list[dict[str, Any]]:
        """Prompt logprobs of positions >= start for each token sequence (no generation)."""
        params = SamplingParams(
            max_new_tokens=0,
            temperature=0.0,
            return_logprob=True,
            logprob_start_len=start,
            return_text_in_logprobs=True,
        )
        handles = [self.engine.submit(ids, params) for ids in sequences]
        return [h.result()[1] for h in handles]

    def _record(self, meta: dict[str, Any]) -> None:
        rid = meta.get("id")
        if rid is None:
            return
        with self._recent_lock:
            self._recent[rid] = meta
            while len(self._recent) > _RECENT:
                self._recent.popitem(last=False)

    @staticmethod
    def _reject_images(s: Any) -> None:
        if getattr(s, "images_", None):
            raise ValueError("LocalBackend does not support images")


def _events(handle: RequestHandle, with_logprobs: bool) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield the events that carry text (or logprobs), and the final one."""
    for event in handle:
        if event.text or event.finished or with_logprobs:
            yield event.text, event.meta


def _with_seed(params: SamplingParams, i: int) -> SamplingParams:
    if params.seed is None:
        return params
    from dataclasses import replace

    return replace(params, seed=params.seed + i)


def _mean_logprob(entries: Sequence[Sequence[Any]]) -> float:
    values = [e[0] for e in entries if e[0] is not None]
    return sum(values) / len(values) if values else 0.0


_DEFAULTS: dict[tuple, LocalBackend] = {}
_DEFAULTS_LOCK = threading.Lock()


def default_backend(**options: Any) -> LocalBackend:
    """The process-wide `LocalBackend` for these options (created on first use: about 2 s
    with a converted model, ~25 s the very first time, when the GGUF is converted)."""
    key = tuple(sorted((k, repr(v)) for k, v in options.items()))
    with _DEFAULTS_LOCK:
        backend = _DEFAULTS.get(key)
        if backend is None:
            backend = _DEFAULTS[key] = LocalBackend(**options)
        return backend
