"""The eval runner: every bundled workload's tasks in every mode, interleaved, on one backend;
each run measured from its timelines into one record of results.jsonl.

Modes run interleaved per task, one after another (the starting mode rotates from task to task,
so neither machine drift nor a warm prefix cache favours one mode). On the replay backend,
several tasks run at once (`--concurrency`, default 16): replay decodes by the clock, so only the
tools share the machine, and a task's modes still run side by side. Live runs go one at a time.
A failing run is recorded with its error and the eval goes on; it never invents or adjusts a
number.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sgl_conveyor import resources

from .backends import live_backend
from .chat_runs import BACKEND_PREFIX, ChatBackend, run_chat_task
from .metrics import ALL_MODES, call_end, call_ideal, held_units, request_ideal, summarize
from .records import RunRecord
from .workload import Task, Workload, spec_facts

SWEEP_MODES = ("sequential", "partial")
DEFAULT_REPLAY_CONCURRENCY = 16


@dataclass
class EvalConfig:
    """Everything one `sgl-conveyor eval` invocation decides (recorded in summary.json)."""

    workloads: str = "all"
    modes: tuple[str, ...] = ALL_MODES  # each workload runs those it declares
    backend: str = "replay"  # local | replay | http://host:port | openai:http://host:port/v1
    model: str | None = None  # the model name an openai: backend asks for
    replay_file: str | None = None
    tasks: int | None = None
    repeats: int = 3
    tokens_per_second: float = 25.0
    ttft_s: float = 0.05
    out: str = "eval/out"
    record: str | None = None
    record_mode: str = "partial"
    sweep: tuple[float, ...] = ()
    sweep_repeats: int = 1
    warmup: bool = True
    flush_cache: bool = True
    run_timeout_s: float = 600.0
    time_scale: float = 1.0  # replay only: 0 streams as fast as possible (tests)
    concurrency: int | None = None  # tasks at once; None: DEFAULT_REPLAY_CONCURRENCY on replay
    progress: bool = True
    command: str = ""


@dataclass
class Planned:
    """One run to do."""

    workload: Workload
    task: Task
    mode: str
    repeat: int
    position: int  # where the mode came in this task's interleaved group
    tokens_per_second: float | None = None  # a sweep point (replay)
    sweep: bool = False


@dataclass
class EvalResult:
    """What one eval produced: its runs (in plan order), summary.json, where it wrote them, and
    the workloads it left out (with why)."""

    runs: list[RunRecord]
    summary: dict[str, Any]
    out: Path
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def records(self) -> list[dict[str, Any]]:
        """The rows of results.jsonl."""
        return [r.to_dict() for r in self.runs]


# --- backends -----------------------------------------------------------------------------------


class Backends:
    """Creates the backends of one eval, once each (the local model and a server are shared)."""

    def __init__(self, config: EvalConfig):
        self.config = config
        self._live: Any = None

    @property
    def is_replay(self) -> bool:
        return self.config.backend == "replay"

    def describe(self) -> str:
        c = self.config
        if self.is_replay:
            return f"replay at {c.tokens_per_second:g} tokens/s, TTFT {c.ttft_s:g} s"
        if c.backend.startswith(BACKEND_PREFIX):
            return ChatBackend.parse(c.backend, c.model).describe()
        return "local (embedded SmolLM2-135M)" if c.backend == "local" else f"server {c.backend}"

    def live(self) -> Any:
        """The model backend: the embedded one, or a running SGLang server."""
        if self._live is None:
            self._live = live_backend(self.config.backend, model=self.config.model)
        return self._live

    def replay(self, workload: Workload, tokens_per_second: float | None = None) -> Any:
        """A replay backend over the workload's rows of --replay-file or of its own trace."""
        from sgl_conveyor.backends.replay import ReplayBackend

        path = self.config.replay_file or workload.trace()
        if path is None:
            raise FileNotFoundError(f"workload {workload.name} has no trace; pass --replay-file")
        rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        if self.config.replay_file:  # one file may hold several workloads' traces
            rows = [r for r in rows if r.get("workload", workload.name) in ("", workload.name)]
        if not rows:
            raise ValueError(f"{path} holds no trace rows of workload {workload.name}")
        return ReplayBackend(
            rows,
            tokens_per_second=tokens_per_second or self.config.tokens_per_second,
            ttft_s=self.config.ttft_s,
            time_scale=self.config.time_scale,
        )

    def main(self, workload: Workload) -> Any:
        return self.replay(workload) if self.is_replay else self.live()


# --- one run ------------------------------------------------------------------------------------


def run_one(
    workload: Workload,
    task: Task,
    mode: str,
    backend: Any,
    *,
    repeat: int = 0,
    timeout_s: float = 600.0,
    flush_cache: bool = False,
) -> RunRecord:
    """Run the program once on `task` in `mode` and measure it. Never raises: a failure is the
    record's `error`."""
    from sgl_conveyor.backends.recording import RecordingBackend

    record = RunRecord(
        workload=workload.name,
        task_id=task.id,
        mode=mode,
        repeat=repeat,
        invalid_first=task.invalid_first,
    )
    if isinstance(backend, ChatBackend):
        if flush_cache:
            backend.flush_cache()
        return _run_one_chat(workload, task, mode, backend, record)
    try:
        args = workload.args_for(task, mode)
    except Exception as e:
        return replace(record, error=f"{type(e).__name__}: {e}")
    if flush_cache:
        _flush(backend)
    recorder = RecordingBackend(backend)
    box: dict[str, Any] = {}

    def target() -> None:
        box["t0"] = time.perf_counter()
        try:
            state = workload.program.run(backend=recorder, **workload.run_options, **args)
            state.stream_executor.sync()
            box["state"] = state
        except BaseException as e:
            box["exc"] = e
        finally:
            box["t1"] = time.perf_counter()

    thread = threading.Thread(target=target, name=f"eval-{workload.name}-{task.id}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        return replace(record, error=f"TimeoutError: the run took longer than {timeout_s:g} s")
    error = box.get("exc") or box["state"].stream_executor.error_
    record = replace(
        record,
        latency_s=box["t1"] - box["t0"],
        error=None if error is None else f"{type(error).__name__}: {error}",
    )
    # The program's own arguments dict (run() copies ours): the key of its recorded lineage.
    programs = recorder.programs()
    lineage = programs[0] if programs else args
    try:
        measured = replace(
            record, **measure(workload, recorder, lineage, box["t0"], record.latency_s)
        )
        # A first attempt the tool rejected (and aborted) makes this an invalid-first run, whether
        # the task file says so or the model simply wrote a bad call.
        if measured.calls and measured.calls[0].get("aborted_s") is not None:
            measured = replace(measured, invalid_first=True)
        record = measured
    except Exception as e:  # a measurement bug must not end the eval either
        record = replace(
            record, error=record.error or f"measurement failed: {type(e).__name__}: {e}"
        )
    finally:
        recorder.forget(lineage)
    return record


def _run_one_chat(
    workload: Workload, task: Task, mode: str, backend: ChatBackend, record: RunRecord
) -> RunRecord:
    """The task as a chat conversation through `sgl_conveyor.chat`, measured like a program
    run (the same timelines, the same generation facts, the same fields)."""
    if workload.chat is None:
        return replace(record, error=f"workload {workload.name} has no chat form")
    outcome = run_chat_task(workload.chat, backend, task.input, mode)
    latency = outcome.t1 - outcome.t0
    record = replace(record, latency_s=latency, error=outcome.error)
    try:
        fields = measured(workload, outcome.timelines(), outcome.generations(), outcome.t0, latency)
        record = replace(record, **fields)
        if record.calls and record.calls[0].get("aborted_s") is not None:
            record = replace(record, invalid_first=True)
    except Exception as e:
        record = replace(
            record, error=record.error or f"measurement failed: {type(e).__name__}: {e}"
        )
    return record


def _flush(backend: Any) -> None:
    """Empty the backend's prefix cache so each run starts from the same state."""
    from sglang.lang.backend.base_backend import BaseBackend

    flush = getattr(type(backend), "flush_cache", None)
    if flush is None or flush is BaseBackend.flush_cache:
        return
    try:
        backend.flush_cache()
    except Exception:
        pass  # a server that refuses: rotation of the mode order still keeps runs fair


def collect_timelines(recorder: Any, args: Mapping[str, Any]) -> list[Any]:
    """The live Timelines of every partial_tool attempt of one program, forks included, in the
    order their streams started."""
    seen: dict[int, Any] = {}
    for exe in recorder.executors(args):
        for meta in list(getattr(exe, "meta_info", {}).values()):
            conv = meta.get("conveyor") if isinstance(meta, Mapping) else None
            if not conv:
                continue
            for tl in conv.get("timelines", ()):
                seen.setdefault(id(tl), tl)
    return sorted(seen.values(), key=lambda tl: tl.stream_start or tl.created)


def measure(
    workload: Workload, recorder: Any, args: Mapping[str, Any], t0: float, latency_s: float
) -> dict[str, Any]:
    """G, T, the ideal, units and the cache proof of one finished run, from its timelines and
    the generations the recorder saw. Times in the record are seconds from the run's start."""
    timelines = collect_timelines(recorder, args)
    generations = []
    for g in recorder.generations(args):
        tool_call = any(
            tl.stream_start is not None
            and tl.stream_start <= g.started <= (tl.stream_end or float("inf"))
            for tl in timelines
        )
        generations.append(
            {
                "kind": "tool_call" if tool_call and g.kind == "stream" else g.kind,
                "start_s": g.started - t0,
                "first_s": None if g.first is None else g.first - t0,
                "end_s": None if g.ended is None else g.ended - t0,
                "chars": len(g.text),
                "prompt_tokens": g.meta.get("prompt_tokens"),
                "cached_tokens": g.meta.get("cached_tokens"),
                "completion_tokens": g.meta.get("completion_tokens"),
                "closed_early": g.closed_early,
            }
        )
    return measured(workload, timelines, generations, t0, latency_s)


def measured(
    workload: Workload,
    timelines: Sequence[Any],
    generations: list[dict[str, Any]],
    t0: float,
    latency_s: float,
) -> dict[str, Any]:
    """The record's measured fields from a run's timelines and its generations (a program's,
    or a chat conversation's requests)."""
    calls, spans = [], []
    decode = tool = hideable = overhead = 0.0
    chunks = n_units = max_units = 0
    errors = []
    for tl in timelines:
        d = tl.to_dict(origin=t0)
        order, patterns, concurrency = spec_facts(workload, tl.tool)
        ideal = call_ideal(d, order=order, held=held_units(d, patterns), concurrency=concurrency)
        end = call_end(d)
        d["ideal_s"] = ideal
        d["order"] = order
        calls.append(d)
        if ideal is not None and end is not None and d["stream_start_s"] is not None:
            spans.append((float(d["stream_start_s"]), end, ideal))
        g, t = d["decode_s"] or 0.0, d["tool_s"] or 0.0
        # What overlap could hide: the decoding, or the wait for the tool after it (its wall
        # time, not its busy sum: parallel units already overlap each other).
        wait = max(0.0, end - d["stream_end_s"]) if end is not None and g else 0.0
        decode, tool, hideable = decode + g, tool + t, hideable + min(g, wait)
        overhead += tl.overhead_s
        chunks += tl.chunks
        n_units += len(d["units"])
        max_units = max(max_units, len(d["units"]))
        if d["aborted_s"] is not None:
            errors.append(d["abort_reason"])

    followup = _followup(generations, timelines, t0)
    tokens = [g["completion_tokens"] for g in generations if g["completion_tokens"] is not None]
    return {
        # The last attempt of the last call decides what the run's answer rests on.
        "final_ok": _last(calls)["aborted_s"] is None if calls else None,
        "decode_tokens": sum(tokens) if tokens else None,
        "decode_s": decode if timelines else None,
        "tool_s": tool if timelines else None,
        "ideal_s": request_ideal(latency_s, spans),
        "hideable_s": hideable,
        "n_units": n_units,
        "n_calls": len(timelines),
        "max_units_per_call": max_units,
        "overhead_s": overhead,
        "chunks": chunks,
        "call_errors": errors,
        "prompt_tokens": followup.get("prompt_tokens"),
        "cached_tokens": followup.get("cached_tokens"),
        "calls": calls,
        "generations": generations,
    }


def _last(calls: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The call (attempt) that started last."""
    return max(calls, key=lambda c: float(c.get("stream_start_s") or 0.0))


def _followup(generations: Sequence[Mapping[str, Any]], timelines: Sequence[Any], t0: float):
    """The first generation (not a tool call, not a choice) after a result was reinjected."""
    injected = [tl.result_injected for tl in timelines if tl.result_injected is not None]
    if not injected:
        return {}
    after = min(injected) - t0
    for g in generations:
        if g["kind"] in ("gen", "stream") and g["start_s"] >= after:
            return g
    return {}


# --- the plan and the loop ----------------------------------------------------------------------


def plan_runs(
    workloads: Sequence[Workload], config: EvalConfig
) -> tuple[list[Planned], dict[str, str]]:
    """Every run of the eval, in the order it will happen; and the workloads left out, why."""
    runs: list[Planned] = []
    skipped: dict[str, str] = {}
    for wl in workloads:
        modes = [m for m in config.modes if m in wl.modes]
        if not modes:
            skipped[wl.name] = f"runs none of the modes {', '.join(config.modes)}"
            continue
        try:
            tasks = wl.tasks(config.tasks)
        except Exception as e:
            skipped[wl.name] = f"{type(e).__name__}: {e}"
            continue
        if not tasks:
            skipped[wl.name] = "no tasks"
            continue
        for repeat in range(config.repeats):
            for i, task in enumerate(tasks):
                rot = (i + repeat) % len(modes)
                for pos, mode in enumerate(modes[rot:] + modes[:rot]):
                    runs.append(Planned(wl, task, mode, repeat, pos))
        sweep_modes = [m for m in SWEEP_MODES if m in modes] or list(SWEEP_MODES)
        for tps in config.sweep:
            for repeat in range(config.sweep_repeats):
                for i, task in enumerate(tasks):
                    rot = (i + repeat) % len(sweep_modes)
                    order = sweep_modes[rot:] + sweep_modes[:rot]
                    for pos, mode in enumerate(order):
                        runs.append(Planned(wl, task, mode, repeat, pos, tps, sweep=True))
    return runs, skipped


def concurrency(config: EvalConfig, is_replay: bool) -> int:
    """How many tasks run at once. Replay decodes by the clock, so several tasks can share the
    machine (only their tools compete for it); a live model's speed depends on its load, so
    live runs go one at a time unless asked otherwise."""
    if config.concurrency is not None:
        return max(1, config.concurrency)
    return DEFAULT_REPLAY_CONCURRENCY if is_replay else 1


def interleave_groups(plan: Sequence[Planned]) -> list[list[Planned]]:
    """The plan cut into groups (one task's modes at one repeat and speed, in their rotated
    order), dealt round-robin across workloads so concurrent groups rarely share a tool."""
    by_workload: dict[str, list[list[Planned]]] = {}
    index: dict[tuple[Any, ...], list[Planned]] = {}
    for p in plan:
        key = (p.workload.name, p.task.id, p.repeat, p.tokens_per_second, p.sweep)
        if key not in index:
            index[key] = []
            by_workload.setdefault(p.workload.name, []).append(index[key])
        index[key].append(p)
    queues = list(by_workload.values())
    out: list[list[Planned]] = []
    for i in range(max((len(q) for q in queues), default=0)):
        out.extend(q[i] for q in queues if i < len(q))
    return out


def _map(fn: Callable[[Any], None], items: Sequence[Any], workers: int) -> None:
    """fn over items with `workers` threads (in order, on this thread, when 1)."""
    if workers <= 1:
        for item in items:
            fn(item)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers, thread_name_prefix="eval") as pool:
        for future in [pool.submit(fn, item) for item in items]:
            future.result()


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, unit="run", dynamic_ncols=True, leave=True)


def run_eval(
    config: EvalConfig,
    workloads: Sequence[Workload],
    *,
    log: Callable[[str], None] | None = None,
) -> EvalResult:
    """Run the eval and write results.jsonl, summary.json, report.md and the plots to `out`."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    backends = Backends(config)
    plan, skipped = plan_runs(workloads, config)
    records: list[RunRecord] = []
    results_path = out / "results.jsonl"
    cache: dict[tuple[str, float | None], Any] = {}

    def backend_for(p: Planned) -> Any:
        key = (p.workload.name, p.tokens_per_second)
        if key not in cache:
            if p.tokens_per_second is not None:
                cache[key] = backends.replay(p.workload, p.tokens_per_second)
            else:
                cache[key] = backends.main(p.workload)
        return cache[key]

    lock = threading.Lock()  # the backend cache, the records, the file and the bar

    def backend_or_skip(p: Planned, bar: Any) -> Any | None:
        name = p.workload.name
        with lock:
            if name in skipped:
                return None
            try:
                return backend_for(p)
            except Exception as e:
                skipped[name] = f"backend: {type(e).__name__}: {e}"
                bar.write(f"skipping workload {name}: {skipped[name]}")
                return None

    def warm_up(p: Planned, bar: Any) -> None:
        """One untimed run per mode: loads, compiles and caches what a first run would."""
        backend = backend_or_skip(p, bar)
        if backend is not None:
            for mode in config.modes:
                run_one(p.workload, p.task, mode, backend, timeout_s=config.run_timeout_s)

    def run_group(group: list[Planned], bar: Any, f: Any) -> None:
        """One task's modes, one after another: side by side in time whatever else runs."""
        for p in group:
            backend = backend_or_skip(p, bar)
            if backend is None:
                with lock:
                    bar.update(1)
                continue
            rec = run_one(
                p.workload,
                p.task,
                p.mode,
                backend,
                repeat=p.repeat,
                timeout_s=config.run_timeout_s,
                # Never empty a cache another task's run is using.
                flush_cache=config.flush_cache and workers == 1,
            )
            rec = replace(
                rec,
                position=p.position,
                sweep=p.sweep,
                tokens_per_second=(
                    p.tokens_per_second
                    if p.sweep
                    else (config.tokens_per_second if backends.is_replay else None)
                ),
                backend="replay" if p.sweep else config.backend,
                concurrency=workers,
            )
            with lock:
                order[id(rec)] = position[id(p)]
                records.append(rec)
                f.write(_row(rec))
                f.flush()
                if rec.error:
                    bar.write(f"  {p.workload.name} {p.task.id} {p.mode}: {rec.error}")
                bar.set_postfix_str(f"{p.workload.name} {p.task.id} {p.mode}")
                bar.update(1)

    workers = concurrency(config, backends.is_replay)
    position = {id(p): i for i, p in enumerate(plan)}
    order: dict[int, int] = {}
    groups = interleave_groups(plan)
    firsts = list({g[0].workload.name: g[0] for g in reversed(groups)}.values())
    with results_path.open("w") as f, _progress(len(plan), config.progress) as bar:
        if config.warmup:
            bar.set_postfix_str("warm-up")
            _map(lambda p: warm_up(p, bar), firsts, workers)
        _map(lambda g: run_group(g, bar, f), groups, workers)
    if workers > 1:  # written as they finished (nothing lost to a crash); now in plan order
        records.sort(key=lambda r: order[id(r)])
        results_path.write_text("".join(_row(r) for r in records))

    summary = summarize(records, {wl.name: wl.goals for wl in workloads})
    summary["skipped"] = skipped
    summary["config"] = {**asdict(config), "concurrency": workers}  # the effective value
    summary["environment"] = environment(backends.describe())
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    from .report import write_report

    write_report(out, records, summary)
    return EvalResult(records, summary, out, skipped)


def _row(record: RunRecord) -> str:
    """The line of results.jsonl of one run."""
    return json.dumps(record.to_dict(), default=str) + "\n"


# --- recording a trace --------------------------------------------------------------------------


def record_traces(
    config: EvalConfig,
    workloads: Sequence[Workload],
    *,
    log: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Run the live model over each workload's tasks once (in `config.record_mode`) and write
    the replay traces. `{workload}` in the path writes one file per workload."""
    from sgl_conveyor.backends.recording import RecordingBackend, write_trace

    log = log or (lambda msg: print(msg, file=sys.stderr))
    if config.record is None:
        raise ValueError("no trace path to record to")
    backends = Backends(config)
    if backends.is_replay:
        log("recording from the replay backend copies the trace it replays")
    rows_by_file: dict[Path, list[dict[str, Any]]] = {}
    total = sum(len(wl.tasks(config.tasks)) for wl in workloads)
    with _progress(total, config.progress) as bar:
        for wl in workloads:
            path = Path(config.record.replace("{workload}", wl.name))
            rows = rows_by_file.setdefault(path, [])
            backend = backends.main(wl)
            for task in wl.tasks(config.tasks):
                bar.set_postfix_str(f"{wl.name} {task.id}")
                recorder = RecordingBackend(backend)
                args = wl.args_for(task, config.record_mode)
                error: BaseException | None = None
                try:
                    state = wl.program.run(backend=recorder, **wl.run_options, **args)
                    state.stream_executor.sync()
                    error = state.stream_executor.error_
                except Exception as e:
                    error = e
                programs = recorder.programs()
                if error is not None or len(programs) != 1:
                    why = f"{type(error).__name__}: {error}" if error else "no generation"
                    bar.write(f"  {wl.name} {task.id}: not recorded: {why}")
                else:
                    row = recorder.trace_row(programs[0], task_id=task.id, workload=wl.name)
                    row["input"] = dict(task.input)
                    row.update({k: v for k, v in task.extra.items() if k not in row})
                    rows.append(row)
                bar.update(1)
    written = {}
    for path, rows in rows_by_file.items():
        written[str(path)] = write_trace(rows, path)
        log(f"wrote {len(rows)} task(s) to {path}")
    return written


# --- the environment of a run -------------------------------------------------------------------


def environment(backend: str) -> dict[str, Any]:
    """What a reader needs to judge the numbers: machine, versions, commit, date."""
    import sglang

    import sgl_conveyor

    # The commit only where the eval runs from a checkout (an editable install): the eval folder
    # is then `eval/` at the top of a git work tree. An installed copy has no commit, even when
    # its environment lies inside some repository.
    here = resources.eval_dir()

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=here, capture_output=True, text=True, timeout=10, check=True
            )
            return out.stdout.strip()
        except Exception:
            return None

    top = git("rev-parse", "--show-toplevel")
    checkout = top is not None and Path(top).resolve() == here.resolve().parent
    commit = git("rev-parse", "--short", "HEAD") if checkout else None
    status = git("status", "--porcelain", "--untracked-files=no") if checkout else None
    return {
        "backend": backend,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sglang": getattr(sglang, "__version__", "?"),
        "sgl_conveyor": sgl_conveyor.__version__,
        "commit": commit,
        "dirty": bool(status) if status is not None else None,
    }


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Read results.jsonl back, as its rows."""
    return [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]


def load_runs(path: str | Path) -> list[RunRecord]:
    """Read results.jsonl back (to re-summarize or re-plot without re-running)."""
    return [RunRecord.from_dict(row) for row in load_records(path)]


def iter_modes(modes: str | Iterable[str]) -> tuple[str, ...]:
    """Parse and check a comma list of modes."""
    if isinstance(modes, str):
        modes = [m.strip() for m in modes.split(",") if m.strip()]
    modes = tuple(dict.fromkeys(modes))
    bad = [m for m in modes if m not in ALL_MODES]
    if bad or not modes:
        known = ", ".join(ALL_MODES)
        raise ValueError(f"unknown mode(s) {', '.join(bad) or '(none)'}; modes: {known}")
    return modes
