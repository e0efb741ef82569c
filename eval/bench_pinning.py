"""Keeping a waiting program's prefix hot: the follow-up's cache hit with and without pinning,
under memory pressure.

One `sgl-conveyor serve` worker with a small prefix cache, and unrelated traffic (distinct
prompts of 100 made-up words, two streams with short pauses) that churns it. A search program
whose tool takes `--tool-s` seconds after its call closes runs again and again, alternately
asking the server to pin its prefix while the tool runs (the default `+pin` request id) and
not asking (`set_default_pin_seconds(0)`): same server, same traffic, interleaved. The
follow-up is the request that reinjects the result (sglang's `cache_prefix`, the first request
after the tool): the share of what it could reuse (the call's prompt and output) that it found
in the cache, its latency, and the program's latency, per mode.

    python -m sgl_conveyor.eval.bench_pinning --trials 6 --out eval/out/pinning.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import threading
import time
from collections.abc import Sequence
from typing import Any

import requests

from sgl_conveyor.eval.router_cluster import Cluster, exit_on_sigterm, wait_idle

# made-up words: unrelated prompts that share no prefix with the program or with each other
WORDS = [
    a + b for a in ("ka", "lo", "mi", "ve", "ru", "sa", "te") for b in ("ton", "mel", "dar", "pix")
]


def _program(registry: Any) -> Any:
    import sglang as sgl

    from sgl_conveyor.programs.search import SYSTEM

    @sgl.function
    def research(s, question):
        s += sgl.system(SYSTEM)
        s += sgl.user(question)
        s += sgl.assistant(
            sgl.partial_tool("search", name="call", registry=registry, max_tokens=64, temperature=0)
        )
        s += sgl.user("Answer the question in one sentence using the search results.")
        s += sgl.assistant(sgl.gen("answer", max_tokens=8, temperature=0))

    return research


def _slow_search_registry(tool_s: float) -> Any:
    """The bundled search tool, whose result takes `tool_s` more seconds once the call closes
    (a slow API): the time during which other traffic may evict the program's prefix."""
    from sgl_conveyor.tools.builtin.search import SearchTool
    from sgl_conveyor.tools.registry import ToolRegistry, default_registry

    class SlowSearch(SearchTool):
        def finish(self, arguments, results, ctx):
            time.sleep(tool_s)
            return super().finish(arguments, results, ctx)

    registry = ToolRegistry()
    registry.add(default_registry().spec("search"), SlowSearch)
    return registry


def _endpoint(url: str, followups: list[dict[str, Any]]) -> Any:
    """sglang's RuntimeEndpoint, recording what its `cache_prefix` (the reinjection) found in
    the cache: the same request it sends, with the meta info kept instead of dropped."""
    from sglang.lang.backend.runtime_endpoint import RuntimeEndpoint

    class Measured(RuntimeEndpoint):
        def cache_prefix(self, prefix_str: str) -> None:
            t0 = time.perf_counter()
            body = {"text": prefix_str, "sampling_params": {"max_new_tokens": 0}}
            r = requests.post(self.base_url + "/generate", json=body, timeout=120)
            r.raise_for_status()
            followups.append({**r.json()["meta_info"], "latency_s": time.perf_counter() - t0})

    return Measured(url)


def _traffic(url: str, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    while not stop.wait(0.3):  # a pause: pressure on the cache, not a saturated CPU
        text = " ".join(rng.choice(WORDS) for _ in range(100))
        body = {"text": text, "sampling_params": {"max_new_tokens": 1, "temperature": 0}}
        try:
            requests.post(url + "/generate", json=body, timeout=120)
        except requests.RequestException:
            time.sleep(0.1)


def _trial(url: str, program: Any, question: str, pin: bool) -> dict[str, Any]:
    from sgl_conveyor.backends.pinning import set_default_pin_seconds

    set_default_pin_seconds(30.0 if pin else 0.0)
    followups: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    state = program.run(question=question, backend=_endpoint(url, followups))
    state.sync()
    latency = time.perf_counter() - t0
    if not followups:
        return {"pin": pin, "error": repr(state.error() or "no follow-up request")}
    import sgl_conveyor

    call = sgl_conveyor.call_report(state, "call")["calls"][-1]
    f = followups[0]
    return {
        "pin": pin,
        "program_s": latency,
        "followup_s": f["latency_s"],
        "followup_prompt_tokens": f["prompt_tokens"],
        "followup_cached_tokens": f["cached_tokens"],
        # what the follow-up could reuse: the call's prompt and output (the tool's result
        # after them is new text, prefilled in any case)
        "reusable_tokens": call["prompt_tokens"] + call["completion_tokens"],
    }


def _median(rows: Sequence[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sgl_conveyor.eval.bench_pinning", description=__doc__
    )
    p.add_argument("--trials", type=int, default=6, help="runs per mode (interleaved)")
    p.add_argument("--tool-s", type=float, default=3.0, help="tool time after the call closes")
    p.add_argument("--cache-mb", type=int, default=32, help="the worker's prefix cache budget")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    exit_on_sigterm()

    registry = _slow_search_registry(args.tool_s)
    program = _program(registry)
    questions = [
        "What are the atomic masses of carbon and neon?",
        "How tall are Mont Blanc and the Matterhorn?",
        "How many people live in Madrid and Rome?",
    ]
    rows: list[dict[str, Any]] = []
    with Cluster() as cluster:
        (url,) = cluster.start_workers(
            1, serve_args=["--dtype", "float32", "--cache-mb", str(args.cache_mb)]
        )
        _trial(url, program, questions[0], True)  # warm-up (the tool service, the kernels)
        stop = threading.Event()
        churn = [threading.Thread(target=_traffic, args=(url, stop, i)) for i in range(2)]
        for t in churn:
            t.start()
        try:
            for i in range(args.trials):
                for pin in (i % 2 == 0, i % 2 == 1):  # alternate which mode goes first
                    row = _trial(url, program, questions[i % len(questions)], pin)
                    rows.append(row)
                    print(f"  trial {i + 1}, pin {'on ' if pin else 'off'}: {row}")
        finally:
            stop.set()
            for t in churn:
                t.join(120)
        stats = wait_idle([url], timeout=120)[0]
    report: dict[str, Any] = {"tool_s": args.tool_s, "cache_mb": args.cache_mb, "modes": {}}
    for pin in (True, False):
        ok = [r for r in rows if r["pin"] is pin and "error" not in r]
        cached = sum(r["followup_cached_tokens"] for r in ok)
        hit = cached / max(1, sum(r["reusable_tokens"] for r in ok))
        of_prompt = cached / max(1, sum(r["followup_prompt_tokens"] for r in ok))
        report["modes"]["pinned" if pin else "not pinned"] = {
            "trials": len(ok),
            "followup_cache_hit": round(hit, 4),  # of the reusable prefix
            "followup_cached_of_prompt": round(of_prompt, 4),
            "followup_s_median": round(_median(ok, "followup_s"), 3) if ok else None,
            "program_s_median": round(_median(ok, "program_s"), 3) if ok else None,
            "errors": [r["error"] for r in rows if r["pin"] is pin and "error" in r],
        }
    report["server_pins"] = {k: stats[k] for k in stats if k.startswith("pin")}
    report["cache_evicted_tokens"] = stats["cache_evicted_tokens"]
    print(
        f"\nfollow-up under memory pressure ({args.cache_mb} MiB cache, 2 unrelated streams, "
        f"tool {args.tool_s:g} s after the call), {args.trials} trials per mode, medians"
    )
    for name, m in report["modes"].items():
        print(
            f"  {name:11s} reusable prefix from the cache {m['followup_cache_hit']:6.1%} "
            f"(of its prompt {m['followup_cached_of_prompt']:5.1%})   follow-up "
            f"{m['followup_s_median']} s   program {m['program_s_median']} s"
        )
    print(f"  server: {report['server_pins']}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
