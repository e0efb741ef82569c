"""`sgl-conveyor eval`: one command that runs the evaluation (or records a trace) and writes
results.jsonl, summary.json, report.md and the plots. Also `python -m sgl_conveyor.eval.cli ...`.

It parses arguments and prints; the work is eval.runner's. It never hides a failed goal or a
failed run: both are printed, and the exit status says whether the eval itself could run.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from .chat_runs import BACKEND_PREFIX, ChatBackend, chat_workloads
from .metrics import ALL_MODES
from .runner import EvalConfig, iter_modes, record_traces, run_eval
from .workload import WorkloadError, discover, select


def _speeds(text: str) -> tuple[float, ...]:
    try:
        speeds = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma list of numbers: {text!r}") from None
    if any(s <= 0 for s in speeds):
        raise argparse.ArgumentTypeError("decoding speeds must be > 0")
    return speeds


def _modes(text: str) -> tuple[str, ...]:
    try:
        return iter_modes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sgl-conveyor eval",
        description="Run the bundled workloads in each mode, interleaved, and write "
        "results.jsonl, summary.json, report.md and plots; or record a replay trace.",
    )
    p.add_argument("--workload", default="all", help="a name, a comma list, or all (default)")
    p.add_argument(
        "--modes",
        type=_modes,
        default=ALL_MODES,
        help="comma list of modes, run interleaved per task; each workload runs those it "
        f"declares (default {','.join(ALL_MODES)})",
    )
    p.add_argument(
        "--backend",
        default="replay",
        help="local (the embedded model), replay (recorded traces; default), the URL of a "
        "running SGLang server (http://host:port), or openai:URL, any OpenAI-compatible chat "
        "API (openai:http://host:port/v1, with --model): the workloads run through "
        "sgl_conveyor.chat",
    )
    p.add_argument(
        "--model",
        help="openai:URL: the model name the server is asked for; local: a model folder or .gguf",
    )
    p.add_argument("--replay-file", help="trace to replay (default: each workload's own)")
    p.add_argument("--tasks", type=int, help="the first N tasks of each workload (default all)")
    p.add_argument("--repeats", type=int, default=3, help="runs per task and mode (default 3)")
    p.add_argument(
        "--tokens-per-second",
        type=float,
        default=25.0,
        help="replay decoding speed (default 25, the embedded model on 2 CPU cores)",
    )
    p.add_argument("--ttft-s", type=float, default=0.05, help="replay time to first token")
    p.add_argument("--out", default="eval/out", help="output folder (default eval/out)")
    p.add_argument(
        "--record",
        metavar="F",
        help="instead of evaluating, run the live model over the tasks once and write a replay "
        "trace to F ({workload} in F: one file per workload)",
    )
    p.add_argument(
        "--record-mode",
        default="partial",
        choices=ALL_MODES,
        help="mode to record in (partial; codegen: sequential, so that every script is whole)",
    )
    p.add_argument(
        "--sweep",
        type=_speeds,
        default=(),
        help="also replay sequential and partial at these tokens/s (e.g. 10,25,50,100) for "
        "the gain-vs-theory plot",
    )
    p.add_argument("--sweep-repeats", type=int, default=1, help="repeats per sweep speed (1)")
    p.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="skip the untimed first run of each workload in each mode",
    )
    p.add_argument(
        "--keep-cache",
        dest="flush_cache",
        action="store_false",
        help="do not empty the backend's prefix cache before each run",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        help="tasks run at once (default 16 on replay, where decoding follows the clock; 1 on a "
        "live model, whose speed depends on its load); a task's modes always run in turn",
    )
    p.add_argument("--run-timeout-s", type=float, default=600.0, help="limit of one run (600)")
    p.add_argument("--time-scale", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("--programs", help=argparse.SUPPRESS)  # another programs/ folder (tests)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--report-from",
        metavar="DIR",
        help="run nothing: summarize DIR/results.jsonl again and rewrite its report and plots",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `sgl-conveyor eval`; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.repeats < 1 or (args.tasks is not None and args.tasks < 1):
        print("error: --repeats and --tasks must be >= 1", file=sys.stderr)
        return 2
    config = EvalConfig(
        workloads=args.workload,
        modes=args.modes,
        backend=args.backend,
        model=args.model,
        replay_file=args.replay_file,
        tasks=args.tasks,
        repeats=args.repeats,
        tokens_per_second=args.tokens_per_second,
        ttft_s=args.ttft_s,
        out=args.out,
        record=args.record,
        record_mode=args.record_mode,
        sweep=args.sweep,
        sweep_repeats=args.sweep_repeats,
        warmup=args.warmup,
        flush_cache=args.flush_cache,
        run_timeout_s=args.run_timeout_s,
        time_scale=args.time_scale,
        concurrency=args.concurrency,
        progress=not args.quiet,
        command=shlex.join(["sgl-conveyor", "eval", *argv]),
    )
    if args.report_from:
        return rereport(Path(args.report_from))
    found = discover(args.programs)
    for module, why in found.errors.items():
        print(f"warning: {module} not loaded: {why}", file=sys.stderr)
    try:
        workloads = select(found.workloads, config.workloads)
    except WorkloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not workloads:
        print("error: no workload found in programs/", file=sys.stderr)
        return 2
    if config.backend.startswith(BACKEND_PREFIX):
        try:
            ChatBackend.parse(config.backend, config.model)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        workloads, without = chat_workloads(workloads)
        if without and config.workloads != "all":
            print(f"error: no chat form for {', '.join(without)}", file=sys.stderr)
            return 2
        if without:
            print(f"note: no chat form, not run: {', '.join(without)}", file=sys.stderr)
        if not workloads:
            print("error: none of these workloads has a chat form", file=sys.stderr)
            return 2
        if config.record:
            print(
                "error: --record records a program's generations: not on openai:", file=sys.stderr
            )
            return 2

    if config.record:
        if config.backend == "replay":
            print("error: --record needs a live model: --backend local or a URL", file=sys.stderr)
            return 2
        written = record_traces(config, workloads)
        return 0 if written else 1

    result = run_eval(config, workloads)
    print_summary(result.summary, Path(config.out))
    return 0 if result.records and not result.skipped else 1


def rereport(out: Path) -> int:
    """Summary, report and plots again from an earlier run's results.jsonl (same command and
    environment: the records are the ones that run measured)."""
    import json

    from .metrics import summarize
    from .report import write_report
    from .runner import load_runs

    try:
        records = load_runs(out / "results.jsonl")
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    old = out / "summary.json"
    summary = json.loads(old.read_text()) if old.exists() else {}
    summary.update(summarize(records))
    old.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    write_report(out, records, summary)
    print_summary(summary, out)
    return 0


def print_summary(summary: dict, out: Path) -> None:
    """The headline and the goal checks, on the terminal."""
    from .report import headline_table

    print(headline_table(summary))
    goals = summary.get("goals") or []
    if goals:
        print("\ngoals:")
    for g in goals:
        status = {True: "PASS", False: "FAIL", None: "n/a "}[g["passed"]]
        value = "–" if g["value"] is None else f"{g['value']:.3f}"
        why = f"  ({g['reason']})" if g["passed"] is None and g.get("reason") else ""
        if g.get("ideal") is not None:
            why += f"  (ideal schedule: {g['ideal']:.3f})"
        print(
            f"  {status}  {g['workload']:<12} {g['goal']}: {value} {g['op']} {g['threshold']}{why}"
        )
    for wl, why in (summary.get("skipped") or {}).items():
        print(f"  not run: {wl}: {why}")
    print(f"\nwrote {out / 'results.jsonl'}, {out / 'summary.json'}, {out / 'report.md'}")


if __name__ == "__main__":
    raise SystemExit(main())
