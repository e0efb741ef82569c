"""The demo: one search question, run with partial execution and sequentially, side by side.

It shows what the project is for in a terminal: the call's queries go to the search service
while the call is still being decoded, the result is reinjected, the model answers, and the
follow-up generation finds its prompt in the prefix cache. It measures; it asserts nothing.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class RunOutcome:
    mode: str
    latency_s: float
    state: Any
    origin: float


def _run(program: Any, backend: Any, question: str, mode: str, task_id: str | None) -> RunOutcome:
    if hasattr(backend, "flush_cache"):
        backend.flush_cache()  # same cache state for both modes: only the system prompt warm
    kwargs: dict[str, Any] = {"question": question, "mode": mode}
    if task_id is not None:
        kwargs["task_id"] = task_id
    t0 = time.perf_counter()
    state = program.run(**kwargs, backend=backend)
    state.sync()
    latency = time.perf_counter() - t0
    if state.error() is not None:
        raise SystemExit(f"the {mode} run failed: {state.error()!r}")
    return RunOutcome(mode, latency, state, t0)


def _followup_meta(state: Any) -> dict[str, Any]:
    return state.get_meta_info("answer") or {}


def make_backend(kind: str, *, model: str | None = None) -> tuple[Any, str | None]:
    """(backend, task id for the replay trace)."""
    if kind == "local":
        from sgl_conveyor.backends.local import default_backend

        return default_backend(model=model) if model else default_backend(), None
    if kind == "replay":
        from sgl_conveyor.backends.replay import ReplayBackend
        from sgl_conveyor.resources import demo_trace

        trace = demo_trace()
        if not trace.exists():
            raise SystemExit(f"no recorded demo trace at {trace}")
        return ReplayBackend(trace, tokens_per_second=25.0, ttft_s=0.1), "demo"
    if kind.startswith("http://") or kind.startswith("https://"):
        from sgl_conveyor.backends.sglang_server import ConveyorEndpoint

        return ConveyorEndpoint(kind), None
    raise SystemExit(f"unknown backend {kind!r}: use local, replay or an http:// URL")


def run_demo(
    backend_kind: str = "local",
    *,
    as_json: bool = False,
    question: str | None = None,
    model: str | None = None,
    repeats: int = 1,
    out: Callable[[str], None] = print,
) -> dict[str, Any]:
    from sgl_conveyor.programs.search import DEMO_QUESTION, research

    question = question or DEMO_QUESTION
    if not as_json:
        out(f"sgl-conveyor demo: backend {backend_kind}; loading...")
    backend, task_id = make_backend(backend_kind, model=model)
    from sgl_conveyor.tools.registry import default_registry

    search = default_registry().tool("search")
    search_latency = search.spec.limits.get("latency_ms")

    # Warm-up (not timed): model weights, the search service, the interpreter's first call.
    _run(research, backend, question, "partial", task_id)

    runs: dict[str, list[RunOutcome]] = {"sequential": [], "partial": []}
    for _ in range(repeats):  # interleaved, so machine drift hits both alike
        for mode in ("sequential", "partial"):
            runs[mode].append(_run(research, backend, question, mode, task_id))
    best = runs["partial"][-1]
    report = _report(best, backend_kind, runs)
    if as_json:
        out(json.dumps(report, indent=2))
    else:
        _print_human(report, best, question, search_latency, out)
    return report


def _report(best: RunOutcome, backend_kind: str, runs: dict[str, list[RunOutcome]]) -> dict:
    import sgl_conveyor

    call = sgl_conveyor.call_report(best.state, "call")
    timeline = best.state.get_meta_info("call")["conveyor"]["timelines"][-1]
    rel = timeline.to_dict(origin=best.origin)
    meta = _followup_meta(best.state)
    return {
        "backend": backend_kind,
        "mode": "partial",
        "latency_s": round(statistics.median(r.latency_s for r in runs["partial"]), 4),
        "sequential_latency_s": round(
            statistics.median(r.latency_s for r in runs["sequential"]), 4
        ),
        "stream_start_s": rel["stream_start_s"],
        "stream_end_s": rel["stream_end_s"],
        "result_injected_s": rel["result_injected_s"],
        "units": [
            {
                "path": u["path"],
                "generated_s": u["generated_s"],
                "dispatched_s": u["dispatched_s"],
                "finished_s": u["finished_s"],
            }
            for u in rel["units"]
        ],
        "prompt_tokens": meta.get("prompt_tokens"),
        "cached_tokens": meta.get("cached_tokens"),
        "call": best.state["call"],
        "answer": best.state["answer"],
        "error": call["error"],
    }


def _print_human(
    report: dict, best: RunOutcome, question: str, latency_ms: Any, out: Callable[[str], None]
) -> None:
    width = 56
    end = report["latency_s"]
    scale = width / end if end > 0 else 1.0

    def bar(a: float | None, b: float | None, ch: str = "█") -> str:
        if a is None or b is None:
            return " " * width
        lo, hi = int(a * scale), max(int(a * scale) + 1, int(b * scale))
        return " " * lo + ch * (hi - lo) + " " * max(0, width - hi)

    out("")
    out(f"Question: {question}")
    out(f"Call:     {report['call']}")
    out(f"Answer:   {report['answer'].strip()}")
    out("")
    out(f"Partial run, seconds from the program's start (search latency ~{latency_ms} ms/query):")
    out(f"  {'':22} 0{'':{width - 8}}{end:6.2f} s")
    out(f"  {'decode the call':22} {bar(report['stream_start_s'], report['stream_end_s'], '▒')}")
    for u in report["units"]:
        label = f"run {u['path']}"
        out(f"  {label:22} {bar(u['dispatched_s'], u['finished_s'])}")
    injected = report["result_injected_s"]
    out(f"  {'result in the state':22} {bar(injected, injected, '▲')}")
    out("")
    out(f"  {'unit':14} {'generated':>10} {'dispatched':>11} {'finished':>9}  (s)")
    for u in report["units"]:
        g, d, f = u["generated_s"], u["dispatched_s"], u["finished_s"]
        out(
            f"  {u['path']:14} {g:>10.3f} {d if d is not None else float('nan'):>11.3f} "
            f"{f if f is not None else float('nan'):>9.3f}"
        )
    out(f"  {'stream ended':14} {report['stream_end_s']:>10.3f}")
    out("")
    seq, par = report["sequential_latency_s"], report["latency_s"]
    gain = (seq - par) / seq * 100 if seq else 0.0
    out(f"Latency: sequential {seq:.2f} s, partial {par:.2f} s ({gain:+.1f}% faster)")
    p, c = report["prompt_tokens"], report["cached_tokens"]
    if p:
        out(f"Follow-up gen: {c} of {p} prompt tokens came from the prefix cache ({c / p:.1%}).")
