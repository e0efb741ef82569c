"""One vocabulary of sampling parameters, shared by the node, the backends, `serve` and the eval.

SGLang names the same knobs in two places: its frontend (`sgl.gen(..., max_tokens=...)`, the
`SglSamplingParams` a backend receives) and its server (`sampling_params` of `POST /generate`,
with `max_new_tokens`). The lists below are those names, once; `dtype_constraint` is how both
of SGLang's backends turn `gen(dtype=int)` into a regex and stops, so ours do it the same way
without calling a private method of `RuntimeEndpoint`. Never imports sglang internals beyond
its public regex constants.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from sglang.lang.ir import REGEX_BOOL, REGEX_FLOAT, REGEX_INT, REGEX_STR

# What `sgl.gen` (and so `sgl.partial_tool`) passes to a backend as sampling parameters.
GEN_PARAMETERS = (
    "max_tokens",
    "min_tokens",
    "stop",
    "stop_token_ids",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "frequency_penalty",
    "presence_penalty",
    "ignore_eos",
    "return_logprob",
    "logprob_start_len",
    "top_logprobs_num",
    "return_text_in_logprobs",
    "regex",
    "json_schema",
)

# Knobs both the SGLang server's `sampling_params` and `program.run(...)` take by these names.
_SHARED = (
    "max_new_tokens",
    "n",
    "stop",
    "stop_token_ids",
    "stop_regex",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "frequency_penalty",
    "presence_penalty",
    "ignore_eos",
)

# The SGLang server's `sampling_params` keys (sglang/srt/sampling/sampling_params.py).
SERVER_SAMPLING_KEYS = frozenset(
    {
        *_SHARED,
        "repetition_penalty",
        "min_new_tokens",
        "json_schema",
        "regex",
        "ebnf",
        "structural_tag",
        "skip_special_tokens",
        "spaces_between_special_tokens",
        "no_stop_trim",
        "stream_interval",
        "logit_bias",
        "sampling_seed",
        "custom_params",
        "beam_width",
        "watermark",
        "choice",
    }
)

# Fields of a `/generate` request beside `sampling_params` that shape the output.
SERVER_LOGPROB_FIELDS = (
    "return_logprob",
    "logprob_start_len",
    "top_logprobs_num",
    "return_text_in_logprobs",
)

# Arguments of `program.run(...)` that say how a program runs, not what it is given: a task's
# input may not use these names (the eval would pass them as run options).
RUN_PARAMETERS = frozenset({*_SHARED, *SERVER_LOGPROB_FIELDS, "stream", "backend", "use_thread"})

_DTYPES = {
    "int": (REGEX_INT, True),
    "float": (REGEX_FLOAT, True),
    "str": (REGEX_STR, False),
    "bool": (REGEX_BOOL, False),
}


def dtype_constraint(
    dtype: Any, regex: str | None, stop: str | Sequence[str] | None
) -> tuple[str | None, list[str]]:
    """`gen(dtype=...)` as SGLang's backends apply it: the dtype's regex (it wins over a regex
    also given, with a warning) and, for numbers, a space and a newline as extra stops.
    Returns (regex, stop strings)."""
    if stop is None:
        stop = []
    stop = [stop] if isinstance(stop, str) else [s for s in stop if s]
    if dtype is None:
        return regex, stop
    key = dtype.__name__ if isinstance(dtype, type) else dtype
    if key not in _DTYPES:
        raise ValueError(f"Invalid dtype: {dtype}")
    dtype_regex, number = _DTYPES[key]
    if number:
        stop.extend([" ", "\n"])
    if regex is not None:
        warnings.warn(
            f"Both dtype and regex are set. Only dtype will be used. dtype: {dtype}, "
            f"regex: {regex}",
            stacklevel=3,
        )
    return dtype_regex, stop
