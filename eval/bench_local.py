"""Benchmarks of the embedded backend, each a ratio measured side by side in one run.

    python -m sgl_conveyor.eval.bench_local [--out FILE] [--dtype auto|float32|bfloat16]
        [--device cpu|cuda]

1. decode: streaming tokens/s of LocalBackend (a real sglang program, `stream=True`) vs
   `model.generate` on the same model object and prompt (goal: within 10%); plus aggregate
   tokens/s of 8 concurrent streams vs 1 through the engine.
2. ttft: time to first token of a second turn sharing a ~1,000-token prefix, cached vs not
   (goal: >= 3x faster).
3. memory: the prefix cache filled past a small budget: bytes held (counted from the tensors'
   storages) vs the budget.
Reports numbers, never asserts on them (timings are noisy on shared machines; the load average
is recorded next to them). Never downloads anything.
"""

from __future__ import annotations

import os

# Before torch is imported (sglang imports it): passive OpenMP waiting keeps decode from
# collapsing when other processes compete for the cores (see the report's `omp_wait_policy`).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import platform
import statistics
import sys
import time
from typing import Any

LLAMA_CPP_REFERENCE_TOK_S = 146  # llama.cpp, same GGUF, 2 cores (research/embedded-model.md)


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def bench_decode(backend: Any, *, tokens: int, repeats: int) -> dict[str, Any]:
    """Steady-state decode rate: (n - 1) tokens / time from the first to the last token."""
    import sglang as sgl
    import torch

    engine = backend.engine

    prompt = (
        "<|im_start|>user\nWrite a long story about a dragon who learns to read.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )

    @sgl.function
    def story(s):
        s += prompt + sgl.gen("story", max_tokens=tokens, ignore_eos=True, temperature=0)

    def backend_rate() -> float:
        state = story.run(backend=backend, stream=True)
        first = None
        for _ in state.text_iter("story"):
            if first is None:
                first = time.perf_counter()
        end = time.perf_counter()
        n = state.get_meta_info("story")["completion_tokens"]
        return (n - 1) / (end - first)

    prompt_ids = engine.prompts.encode(prompt).ids
    model = engine.model
    device = engine.device

    def generate_rate() -> float:
        x = torch.tensor([prompt_ids], device=device)
        with torch.inference_mode():
            t = time.perf_counter()
            model.generate(x, max_new_tokens=1, do_sample=False)
            one = time.perf_counter() - t
            t = time.perf_counter()
            model.generate(x, max_new_tokens=tokens, do_sample=False, eos_token_id=None)
            full = time.perf_counter() - t
        return (tokens - 1) / (full - one)

    ours, ref = [], []
    for _ in range(repeats):  # interleaved, so that drifts in machine load hit both
        ours.append(backend_rate())
        ref.append(generate_rate())
    return {
        "tokens": tokens,
        "prompt_tokens": len(prompt_ids),
        "backend_stream_tok_s": [round(x, 2) for x in ours],
        "generate_tok_s": [round(x, 2) for x in ref],
        "backend_vs_generate": round(_median(ours) / _median(ref), 3),
        "llama_cpp_reference_tok_s": LLAMA_CPP_REFERENCE_TOK_S,
        "backend_vs_llama_cpp": round(_median(ours) / LLAMA_CPP_REFERENCE_TOK_S, 3),
    }


def bench_concurrency(backend: Any, *, streams: int, tokens: int, repeats: int) -> dict[str, Any]:
    """Aggregate generated tokens/s with `streams` concurrent requests vs one alone."""
    from sgl_conveyor.backends.local import SamplingParams

    engine = backend.engine
    params = SamplingParams(max_new_tokens=tokens, temperature=0, ignore_eos=True)
    prompts = [
        f"<|im_start|>user\nTell story number {i} about a lighthouse.<|im_end|>\n"
        "<|im_start|>assistant\n"
        for i in range(streams)
    ]

    def run(batch: list[str]) -> float:
        t = time.perf_counter()
        handles = [engine.submit(p, params) for p in batch]
        for h in handles:
            h.result()
        return sum(len(h.output_ids) for h in handles) / (time.perf_counter() - t)

    one, many = [], []
    for _ in range(repeats):
        one.append(run(prompts[:1]))
        many.append(run(prompts))
    return {
        "streams": streams,
        "tokens_per_stream": tokens,
        "one_stream_tok_s": [round(x, 2) for x in one],
        "concurrent_tok_s": [round(x, 2) for x in many],
        "throughput_ratio": round(_median(many) / _median(one), 3),
    }


def bench_ttft(backend: Any, *, prefix_tokens: int, repeats: int) -> dict[str, Any]:
    """TTFT of a second turn whose first ~prefix_tokens tokens were seen before."""
    from sgl_conveyor.backends.local import SamplingParams

    engine = backend.engine
    tok = engine.tokenizer
    words = (
        "The tool registry lists search, weather, python, calendar and email; each takes a JSON "
        "object of arguments and returns a JSON result that the assistant summarizes. "
    )
    system = "<|im_start|>system\n"
    while len(tok.encode(system).ids) < prefix_tokens - 40:
        system += words
    turn1 = (
        system + "<|im_end|>\n<|im_start|>user\nWhich tool tells the weather?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    answer, _ = engine.submit(turn1, SamplingParams(max_new_tokens=24, temperature=0)).result()
    turn2 = (
        turn1 + answer + "<|im_end|>\n<|im_start|>user\nAnd which one runs code?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    first = SamplingParams(max_new_tokens=1, temperature=0)

    def ttft(cold: bool) -> tuple[float, dict[str, Any]]:
        engine.flush_cache()
        if not cold:  # turn 1 and its answer are cached, as after a real first turn
            engine.submit(turn1, SamplingParams(max_new_tokens=24, temperature=0)).result()
        t = time.perf_counter()
        h = engine.submit(turn2, first)
        next(iter(h))
        dt = time.perf_counter() - t
        return dt, h.wait()

    cold, warm, metas = [], [], {}
    for _ in range(repeats):
        dt, metas["cold"] = ttft(True)
        cold.append(dt)
        dt, metas["warm"] = ttft(False)
        warm.append(dt)
    return {
        "prompt_tokens": metas["warm"]["prompt_tokens"],
        "cached_tokens_warm": metas["warm"]["cached_tokens"],
        "cached_tokens_cold": metas["cold"]["cached_tokens"],
        "cached_ratio_warm": round(
            metas["warm"]["cached_tokens"] / metas["warm"]["prompt_tokens"], 4
        ),
        "ttft_cold_ms": [round(1000 * x, 1) for x in cold],
        "ttft_warm_ms": [round(1000 * x, 1) for x in warm],
        "speedup": round(_median(cold) / _median(warm), 2),
    }


def bench_memory(*, model_dtype: str, device: str | None, budget_mib: int) -> dict[str, Any]:
    """Fill a cache with a small budget well past it; report what it holds."""
    from sgl_conveyor.backends.local import LocalBackend, SamplingParams
    from sgl_conveyor.backends.local.kv import KVSegment

    budget = budget_mib * 2**20
    backend = LocalBackend(
        dtype=model_dtype, device=device, cache_budget_bytes=budget, warmup=False
    )
    engine = backend.engine
    per_token = engine.pool.bytes_per_token()
    text = " ".join(f"item {i} is a small fact about topic {i % 7}." for i in range(40))
    inserted = 0
    i = 0
    while inserted < 2 * budget:
        prompt = f"<|im_start|>user\nDocument {i}: {text}<|im_end|>\n<|im_start|>assistant\n"
        h = engine.submit(prompt, SamplingParams(max_new_tokens=4, temperature=0))
        _, meta = h.result()
        inserted += (meta["prompt_tokens"] + meta["completion_tokens"]) * per_token
        i += 1

    def storage_bytes() -> int:
        seen, total = set(), 0
        for node in engine.radix._walk():
            seg = node.segment
            if isinstance(seg, KVSegment):
                storage = seg.kv.untyped_storage()
                if storage.data_ptr() not in seen:
                    seen.add(storage.data_ptr())
                    total += storage.nbytes()
        return total

    held = engine.call(storage_bytes)
    out = {
        "budget_bytes": budget,
        "bytes_inserted": inserted,
        "requests": i,
        "cache_bytes_accounted": engine.radix.total_bytes,
        "cache_bytes_in_storages": held,
        "cache_tokens": engine.radix.total_tokens,
        "evicted_tokens": engine.radix.evicted_tokens,
        "held_vs_budget": round(held / budget, 3),
        "kv_bytes_per_token": per_token,
    }
    backend.shutdown()
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="write the JSON report here")
    parser.add_argument("--dtype", default="auto", help="auto, float32 or bfloat16")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("--tokens", type=int, default=128, help="decode length")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prefix", type=int, default=1000, help="shared prefix of the 2nd turn")
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--budget-mib", type=int, default=64)
    parser.add_argument(
        "--only", default="decode,concurrency,ttft,memory", help="comma-separated subset"
    )
    args = parser.parse_args(argv)
    only = set(args.only.split(","))

    import torch

    from sgl_conveyor.backends.local import LocalBackend

    t = time.perf_counter()
    backend = LocalBackend(dtype=args.dtype, device=args.device)
    info = backend.get_server_info()
    report: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "load_average_start": _load(),
        },
        "model": {k: info[k] for k in ("model_name", "model_path", "dtype", "device")},
        "load_seconds": round(time.perf_counter() - t, 2),
    }
    steps = [
        ("decode", lambda: bench_decode(backend, tokens=args.tokens, repeats=args.repeats)),
        (
            "concurrency",
            lambda: bench_concurrency(
                backend, streams=args.streams, tokens=args.tokens // 2, repeats=args.repeats
            ),
        ),
        ("ttft", lambda: bench_ttft(backend, prefix_tokens=args.prefix, repeats=args.repeats)),
    ]
    for name, fn in steps:
        if name in only:
            report[name] = fn()
            print(name, json.dumps(report[name]), flush=True)
    backend.shutdown()
    if "memory" in only:
        report["memory"] = bench_memory(
            model_dtype=args.dtype, device=args.device, budget_mib=args.budget_mib
        )
        print("memory", json.dumps(report["memory"]), flush=True)
    report["machine"]["load_average_end"] = _load()
    text = json.dumps(report, indent=2)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    else:
        print(text)
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
