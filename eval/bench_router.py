"""Scale-out through SGLang's router: 16 concurrent partial-tool programs, 1 vs 2 workers,
cache_aware vs round_robin, in one run.

Two `sgl-conveyor serve` workers (one torch thread each: a worker is one core here, as it would
be one GPU in production) and one router per configuration run side by side; the rounds visit
the configurations in rotating order (machine drift hits all alike), and both workers' caches
are flushed before each batch. A batch is 16 programs started at once: search, planning and
agent tasks, all in partial mode. Per configuration: programs per minute, p50/p90 program
latency, the follow-up (`answer`) gen's prompt tokens served from the cache, and how the
router spread the requests. Prints a table; `--out` writes JSON.

    python -m sgl_conveyor.eval.bench_router --rounds 2 --out eval/out/router.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections.abc import Sequence
from typing import Any

import requests

from sgl_conveyor.eval.router_cluster import Cluster, exit_on_sigterm, wait_idle

CONFIGS = {  # name: (workers used, policy, extra router args)
    "1 worker": (1, "cache_aware", ()),
    "2 workers, round_robin": (2, "round_robin", ()),
    "2 workers, cache_aware": (2, "cache_aware", ()),
    # the router's defaults only balance once loads differ by 64 requests; 16 programs never do
    "2 workers, cache_aware, balance at 2": (
        2,
        "cache_aware",
        ("--balance-abs-threshold", "2", "--balance-rel-threshold", "1.2"),
    ),
}
MIX = {"search": 6, "planning": 5, "agent": 5}


def _jobs() -> list[tuple[Any, dict[str, Any]]]:
    from sgl_conveyor.eval.workload import discover

    workloads = discover().workloads
    jobs = []
    for name, count in MIX.items():
        w = workloads[name]
        for task in w.tasks(count):
            jobs.append((w, w.args_for(task, "partial")))
    return jobs


def _one(endpoint: Any, workload: Any, args: dict[str, Any]) -> dict[str, Any]:
    t0 = time.perf_counter()
    state = workload.program.run(backend=endpoint, **args, **dict(workload.run_options))
    state.sync()
    latency = time.perf_counter() - t0
    try:
        meta = state.get_meta_info("answer") or {}
    except KeyError:
        meta = {}
    return {
        "workload": workload.name,
        "latency_s": latency,
        "prompt_tokens": meta.get("prompt_tokens", 0),
        "cached_tokens": meta.get("cached_tokens", 0),
        "error": state.error() if hasattr(state, "error") else None,
    }


def _batch(router: str, jobs: Sequence[tuple[Any, dict[str, Any]]]) -> tuple[list[dict], float]:
    from sgl_conveyor.backends.sglang_server import ConveyorEndpoint

    # not sgl.RuntimeEndpoint: its `select` (the agent's) sends a batch, which the router
    # refuses; ConveyorEndpoint sends one request per choice
    endpoint = ConveyorEndpoint(router)
    results: list[dict[str, Any] | None] = [None] * len(jobs)

    def run(i: int) -> None:
        workload, args = jobs[i]
        try:
            results[i] = _one(endpoint, workload, args)
        except Exception as e:  # reported, never hidden
            results[i] = {"workload": workload.name, "error": repr(e)}

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None], time.perf_counter() - t0


def _flush(urls: Sequence[str]) -> None:
    wait_idle(urls, timeout=120)
    for url in urls:
        requests.post(url + "/flush_cache", timeout=30)


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sgl_conveyor.eval.bench_router", description=__doc__
    )
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    exit_on_sigterm()

    jobs = _jobs()
    with Cluster() as cluster:
        workers = cluster.start_workers(2, serve_args=["--dtype", args.dtype], threads=1)
        routers: dict[str, Cluster] = {}
        try:
            for name, (n, policy, extra) in CONFIGS.items():
                c = Cluster(log_dir=cluster.log_dir)
                c.start_router(workers[:n], policy, router_args=extra)
                routers[name] = c
            _batch(routers["2 workers, cache_aware"].router, jobs[:2])  # warm-up (tools too)
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}
            names = list(CONFIGS)
            for r in range(args.rounds):
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    _flush(workers)
                    before = wait_idle(workers)
                    results, wall = _batch(routers[name].router, jobs)
                    after = wait_idle(workers, timeout=120)
                    spread = [
                        a["requests"] - b["requests"] for a, b in zip(after, before, strict=True)
                    ]
                    runs[name].append({"wall_s": wall, "programs": results, "spread": spread})
                    print(f"  round {r + 1}, {name}: {wall:.1f} s, requests per worker {spread}")
        finally:
            for c in routers.values():
                c.stop_router()

    report: dict[str, Any] = {"programs_per_batch": len(jobs), "mix": MIX, "configs": {}}
    for name, batches in runs.items():
        programs = [p for b in batches for p in b["programs"]]
        ok = [p for p in programs if not p.get("error") and "latency_s" in p]
        lat = [p["latency_s"] for p in ok]
        prompt = sum(p["prompt_tokens"] for p in ok)
        cached = sum(p["cached_tokens"] for p in ok)
        walls = [b["wall_s"] for b in batches]
        report["configs"][name] = {
            "programs_per_min": round(60 * len(jobs) / statistics.median(walls), 2),
            "batch_wall_s": [round(w, 2) for w in walls],
            "p50_latency_s": round(statistics.median(lat), 2) if lat else None,
            "p90_latency_s": round(_pct(lat, 0.9), 2) if lat else None,
            "followup_cache_hit": round(cached / prompt, 4) if prompt else None,
            "requests_per_worker": [b["spread"] for b in batches],
            "errors": [p["error"] for p in programs if p.get("error")],
        }
    base = report["configs"]["1 worker"]["programs_per_min"]
    print(f"\n{len(jobs)} concurrent programs ({MIX}), {args.rounds} rounds, medians")
    print(
        f"  {'configuration':40s} {'prog/min':>8s} {'vs 1w':>6s} {'p50 s':>6s} {'p90 s':>6s} "
        f"{'follow-up hit':>13s}  requests per worker"
    )
    for name, c in report["configs"].items():
        hit = c["followup_cache_hit"]
        print(
            f"  {name:40s} {c['programs_per_min']:8.1f} {c['programs_per_min'] / base:5.2f}x "
            f"{c['p50_latency_s']:6.2f} {c['p90_latency_s']:6.2f} "
            f"{'n/a' if hit is None else f'{hit:.1%}':>13s}  {c['requests_per_worker']}"
        )
        if c["errors"]:
            print(f"    errors: {c['errors'][:3]}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
