"""The numbers of the evaluation: the ideal schedule of a tool call, latency statistics, and the
summary (speed-ups, overlap captured, goal checks) that every performance claim comes from.

Pure functions over run records (eval.records) and the timeline views they hold: nothing here
times, runs or imports a backend, so every number can be recomputed from results.jsonl alone.

The ideal of one call (the paper's bound, made exact)
------------------------------------------------------
Times are from the call's stream start. Units are generated at D_1..D_n, the stream ends at G,
the tool warms up for t_0 (from the stream start), unit k runs for t_k, the tool's finish for
t_f. With zero overhead the earliest unit k can end is

    serial     F_k = max(D_k, F_{k-1}) + t_k                      (F_0 = t_0)
    parallel   F_k = max(D_k, t_0) + t_k
    dag        F_k = max(D_k, t_0, max_{j in deps(k)} F_j) + t_k

and a unit whose effect is irreversible cannot start before G (it waits for the whole call to be
complete and valid). With the tool's declared concurrency c (workers), a unit also waits for
the first free worker (FIFO, in the order the units were generated); c = 1 for serial tools.

    ideal_call = max(G, t_0, max_k F_k) + t_f

Relation to the paper's Eq. 2, L = sum_{i=1..n} max(g_i, t_i) + g_{n+1}: there g_i is the decode
segment that runs while piece i executes and g_{n+1} the rest (with our D's: g_{n+1} = D_1,
g_i = D_{i+1} - D_i, D_{n+1} = G). When every unit's tool work ends before the next unit is
generated (the tool never falls behind) the serial recurrence gives exactly Eq. 2 (with
t_0 = t_f = 0). When the tool falls behind, Eq. 2 charges each lagging step as if decoding waited
for the tool (a barrier after every unit); the recurrence lets decoding run on and the tool queue
drain later, so it is the exact schedule and never above Eq. 2. Both lie in [max(G, T), G + T].

A call aborted early (a unit rejected by the schema or the tool's check) ideally ends when the
rejected unit was generated plus its check (the time from the check's start to the abort); a unit
that failed while running ends the call at its own F_k. A call whose units all ran and whose
finish then failed it (a script that stopped on an error, in a mode that does not interrupt) has
the ideal of a call that succeeded. Other aborts (malformed text, timeouts) make no claim: their
ideal is their measured span.

The ideal of a request: its measured latency minus, for each call, what the call's ideal would
have saved: latency - sum_calls (span - ideal), where a call's span runs from its stream start to
its result being ready (to its last event for an aborted call). Calls that overlap in time (forks)
are taken together: the group ends at max_c(start_c + ideal_c) instead of its measured end.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .goals import CALL_EAGER_MIN_UNITS, DEFAULT_GOALS, Goal
from .records import RunRecord, as_records

MODES = ("sequential", "call-eager", "partial")
# Partial mode with early interruption on runtime errors: only workloads that declare it
# (`Workload.modes`) run it, mapping it to their program's arguments.
INTERRUPT = "partial+interrupt"
ALL_MODES = (*MODES, INTERRUPT)
OVERLAP_MIN_GAP = 0.05  # overlap captured is noise where the ideal saves < 5% of L_seq

_SPLIT_SUFFIX = re.compile(r"#\d+$")
ABORT_NOTES = frozenset({"undo", "undo_failed", "abort_failed"})


# --- the ideal of one call ----------------------------------------------------------------------


def unit_effect(path: str, patterns: Sequence[tuple[str, str]], piece_of: str | None = None) -> str:
    """The effect of the unit at `path`, from a spec's unit patterns [(pattern path, effect)].

    A split piece (`/code#3`, `piece_of` "/code") belongs to its string's pattern (`/code`);
    `*` matches one segment. A unit no pattern matches is irreversible, as in the runtime.
    """
    tokens = _tokens(piece_of or _field_path(path))
    for pattern, effect in patterns:
        ptoks = _tokens(pattern)
        if len(ptoks) != len(tokens):
            continue
        if all(p in ("*", t) for p, t in zip(ptoks, tokens, strict=True)):
            return str(getattr(effect, "value", effect))
    return "irreversible"


def _field_path(path: str) -> str:
    """The path of the text field a unit at `path` is a piece of (`/code#3` -> `/code`), or
    `path` itself for a whole unit: for records written before units said so (`piece_of`)."""
    return _SPLIT_SUFFIX.sub("", path)


def _tokens(path: str) -> list[str]:
    return [] if path == "" else path.split("/")[1:]


def held_units(call: Mapping[str, Any], patterns: Sequence[tuple[str, str]] = ()) -> set[int]:
    """Indices of the units that cannot start before the call is complete: held by the runtime
    in this run, or irreversible by the spec (a sequential run holds everything, so its own
    decisions say nothing)."""
    held = set()
    for u in call.get("units", ()):
        if (
            u.get("decision") == "hold"
            or unit_effect(u["path"], patterns, u.get("piece_of")) == "irreversible"
        ):
            held.add(int(u["index"]))
    return held


def _rel(call: Mapping[str, Any], key: str) -> float | None:
    v = call.get(key)
    if v is None:
        return None
    return float(v) - float(call.get("stream_start_s") or 0.0)


def _span(call: Mapping[str, Any], a: str, b: str) -> float:
    x, y = call.get(a), call.get(b)
    return float(y) - float(x) if x is not None and y is not None else 0.0


def call_end(call: Mapping[str, Any]) -> float | None:
    """When the call was over, on the dict's own axis: its result ready, or for an aborted
    call its last recorded event."""
    if call.get("result_ready_s") is not None and call.get("aborted_s") is None:
        return float(call["result_ready_s"])
    times = [
        call.get(k)
        for k in (
            "stream_end_s",
            "aborted_s",
            "tool_ready_s",
            "finish_end_s",
            "result_ready_s",
        )
    ]
    times += [u.get("finished_s") for u in call.get("units", ())]
    # Only the notes of the abort itself: others (a prewarm of the cache after the program's
    # last attempt, say) are stamped on every attempt of the call.
    times += [n.get("t_s") for n in call.get("notes", ()) if n.get("event") in ABORT_NOTES]
    known = [float(t) for t in times if t is not None]
    return max(known) if known else None


def call_ideal(
    call: Mapping[str, Any],
    *,
    order: str = "parallel",
    held: Iterable[int] = (),
    concurrency: int | None = None,
) -> float | None:
    """The zero-overhead latency of one call (an attempt), from its stream start: see the
    module docstring. None if the call never streamed."""
    if call.get("stream_start_s") is None or call.get("stream_end_s") is None:
        return None
    G = _rel(call, "stream_end_s") or 0.0
    t0 = _span(call, "tool_start_s", "tool_ready_s")
    tf = _span(call, "finish_start_s", "finish_end_s")
    units = sorted(call.get("units", ()), key=lambda u: int(u["index"]))
    held = set(held)

    if call.get("aborted_s") is not None:
        rejected = next((u for u in units if u.get("error") and u.get("started_s") is None), None)
        if rejected is not None:
            d = _unit_rel(call, rejected, "generated")
            closed = _rel(call, "call_closed_s")
            checked_from = max(d, closed) if closed is not None else d
            check = max(0.0, (_rel(call, "aborted_s") or checked_from) - checked_from)
            return d + check
        failed = next((u for u in units if u.get("error") and u.get("started_s") is not None), None)
        finished = call.get("finish_start_s") is not None and call.get("finish_end_s") is not None
        if failed is None and not finished:
            end = call_end(call)
            return None if end is None else end - float(call["stream_start_s"])

    finish = _schedule(call, units, G, t0, order, held, concurrency)
    if call.get("aborted_s") is not None and failed is not None:
        return finish[int(failed["index"])]
    last = max(finish.values(), default=0.0)
    return max(G, t0, last) + tf


def _unit_rel(call: Mapping[str, Any], unit: Mapping[str, Any], event: str) -> float:
    return float(unit[f"{event}_s"]) - float(call.get("stream_start_s") or 0.0)


def _run_time(unit: Mapping[str, Any]) -> float:
    if unit.get("decision") in ("shared", "skip"):
        return 0.0  # the work was done by an identical unit, or never needed
    s, f = unit.get("started_s"), unit.get("finished_s")
    return float(f) - float(s) if s is not None and f is not None else 0.0


def _schedule(
    call: Mapping[str, Any],
    units: Sequence[Mapping[str, Any]],
    G: float,
    t0: float,
    order: str,
    held: set[int],
    concurrency: int | None,
) -> dict[int, float]:
    """F_k of every unit under the zero-overhead schedule (FIFO over `concurrency` workers)."""
    serial = order == "serial"
    workers = 1 if serial else (concurrency or max(1, len(units)))
    free = [t0] * workers
    heapq.heapify(free)
    finish: dict[int, float] = {}
    by_id: dict[Any, float] = {}
    previous: float | None = None
    # Identical units share one execution (the ledger): the work is the group's, whichever
    # member happened to run it, and the ideal starts it with the group's first member.
    work_s: dict[str, float] = defaultdict(float)
    for u in units:
        if u.get("work") is not None:
            work_s[u["work"]] = max(work_s[u["work"]], _run_time(u))
    work_end: dict[str, float] = {}
    for u in units:
        k = int(u["index"])
        ready = max(_unit_rel(call, u, "generated"), t0)
        if k in held:
            ready = max(ready, G)
        if serial and previous is not None:
            ready = max(ready, previous)
        if order == "dag":
            for dep in u.get("deps") or ():
                if _key(dep) in by_id:
                    ready = max(ready, by_id[_key(dep)])
        work = u.get("work")
        if work is not None and work in work_end:
            end = max(ready, work_end[work])  # a later copy: reuses the execution
        else:
            start = max(ready, heapq.heappop(free))
            end = start + (work_s[work] if work is not None else _run_time(u))
            heapq.heappush(free, end)
            if work is not None:
                work_end[work] = end
        finish[k] = previous = end
        for ident in (u.get("id"), u.get("path")):
            if ident is not None:
                by_id[_key(ident)] = end
    return finish


def _key(ident: Any) -> str:
    return str(ident)


def eq2_latency(g: Sequence[float], t: Sequence[float]) -> float:
    """The paper's Eq. 2: sum_{i=1..n} max(g_i, t_i) + g_{n+1} (g has n+1 segments, t has n)."""
    if len(g) != len(t) + 1:
        raise ValueError("Eq. 2 needs n + 1 decode segments for n units")
    return sum(max(gi, ti) for gi, ti in zip(g[:-1], t, strict=True)) + g[-1]


def request_ideal(latency_s: float, calls: Sequence[tuple[float, float, float]]) -> float:
    """The ideal latency of a request: `calls` are (start, end, ideal duration) on the request's
    time axis. Overlapping calls form one group, which ideally ends at max(start + ideal)."""
    saving = 0.0
    group: list[tuple[float, float, float]] = []
    group_end = -math.inf

    def close(group: list[tuple[float, float, float]], end: float) -> float:
        if not group:
            return 0.0
        ideal_end = max(s + i for s, _, i in group)
        return max(0.0, end - ideal_end)  # never claim the ideal is slower than what ran

    for start, end, ideal in sorted(calls):
        if group and start >= group_end:
            saving += close(group, group_end)
            group, group_end = [], -math.inf
        group.append((start, end, ideal))
        group_end = max(group_end, end)
    saving += close(group, group_end)
    return latency_s - saving


# --- statistics ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    return float(np.percentile(np.asarray(values, dtype=float), q))


def latency_stats(values: Sequence[float]) -> dict[str, Any]:
    """n, mean, p50, p90 and sample standard deviation of latencies (seconds)."""
    if not values:
        return {
            "n": 0,
            "mean_latency_s": None,
            "p50_latency_s": None,
            "p90_latency_s": None,
            "std_latency_s": None,
        }
    a = np.asarray(values, dtype=float)
    return {
        "n": len(values),
        "mean_latency_s": float(a.mean()),
        "p50_latency_s": percentile(values, 50),
        "p90_latency_s": percentile(values, 90),
        "std_latency_s": float(a.std(ddof=1)) if len(values) > 1 else 0.0,
    }


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def _ok(records: Iterable[RunRecord]) -> list[RunRecord]:
    return [r for r in records if r.ok]


def task_means(
    records: Iterable[RunRecord | Mapping[str, Any]], mode: str, field: str = "latency_s"
) -> dict[str, float]:
    """Per task, the mean of `field` (a RunRecord field) over the successful runs (repeats) of
    `mode`."""
    acc: dict[str, list[float]] = defaultdict(list)
    for r in _ok(as_records(records)):
        value = getattr(r, field)
        if r.mode == mode and value is not None:
            acc[r.task_id].append(float(value))
    return {t: sum(v) / len(v) for t, v in acc.items()}


def paired_ratio(
    num: Mapping[str, float], den: Mapping[str, float], tasks: Iterable[str] | None = None
) -> tuple[float | None, int]:
    """mean over common tasks of num / mean over the same tasks of den, and how many tasks."""
    common = sorted(set(num) & set(den) & (set(tasks) if tasks is not None else set(num)))
    if not common:
        return None, 0
    n = sum(num[t] for t in common) / len(common)
    d = sum(den[t] for t in common) / len(common)
    return (n / d if d > 0 else None), len(common)


def overlap_captured(
    l_seq: Mapping[str, float], l_partial: Mapping[str, float], l_ideal: Mapping[str, float]
) -> dict[str, Any]:
    """Mean over tasks of (L_seq - L_partial) / (L_seq - L_ideal).

    Per task the latencies are means over repeats and L_ideal comes from the sequential runs'
    timelines. A task whose ideal saves less than 5% of its L_seq has no overlap to capture
    (the ratio would divide noise by noise): it is left out, and the result is null with the
    reason when every task is. `pooled` is the same ratio over the sums of the kept tasks.
    """
    kept, omitted = [], []
    for t in sorted(set(l_seq) & set(l_partial) & set(l_ideal)):
        gap = l_seq[t] - l_ideal[t]
        (kept if gap >= OVERLAP_MIN_GAP * l_seq[t] else omitted).append(t)
    out: dict[str, Any] = {"value": None, "pooled": None, "tasks": len(kept), "omitted": omitted}
    if not kept:
        n = len(omitted)
        out["reason"] = (
            f"no task has an ideal saving of at least {OVERLAP_MIN_GAP:.0%} of L_seq "
            f"({n} task{'s' if n != 1 else ''} measured): nothing to overlap"
            if n
            else "no task has both sequential and partial runs"
        )
        return out
    ratios = [(l_seq[t] - l_partial[t]) / (l_seq[t] - l_ideal[t]) for t in kept]
    out["value"] = sum(ratios) / len(ratios)
    out["pooled"] = sum(l_seq[t] - l_partial[t] for t in kept) / sum(
        l_seq[t] - l_ideal[t] for t in kept
    )
    out["reason"] = None
    return out


# --- the summary --------------------------------------------------------------------------------


def summarize_workload(records: Sequence[RunRecord]) -> dict[str, Any]:
    """Everything summary.json says about one workload, from its (non-sweep) run records."""
    modes = [m for m in MODES if any(r.mode == m for r in records)]
    modes += sorted({r.mode for r in records} - set(modes))
    out: dict[str, Any] = {"n_tasks": len({r.task_id for r in records}), "modes": {}}
    for mode in modes:
        runs = [r for r in records if r.mode == mode]
        ok = _ok(runs)
        stats = latency_stats([float(r.latency_s) for r in ok])  # type: ignore[arg-type]
        prompt = [r.prompt_tokens for r in ok if r.prompt_tokens is not None]
        cached = [r.cached_tokens for r in ok if r.prompt_tokens is not None]
        units = sum(int(r.n_units or 0) for r in ok)
        calls = sum(int(r.n_calls or 0) for r in ok)
        stats.update(
            errors=len(runs) - len(ok),
            mean_decode_s=_mean(r.decode_s for r in ok),
            mean_tool_s=_mean(r.tool_s for r in ok),
            mean_ideal_s=_mean(r.ideal_s for r in ok),
            mean_n_units=_mean(r.n_units for r in ok),
            units_per_call=units / calls if calls else None,
            followup_prompt_tokens=_mean(prompt),
            followup_cached_tokens=_mean(c or 0 for c in cached),
            followup_cached_fraction=(
                sum(c or 0 for c in cached) / sum(prompt) if sum(prompt) else None
            ),
        )
        out["modes"][mode] = stats

    lat = {m: task_means(records, m) for m in modes}
    seq, part, eager = lat.get("sequential", {}), lat.get("partial", {}), lat.get("call-eager", {})
    ratio, _ = paired_ratio(seq, part)
    out["speedup_vs_sequential"] = ratio
    out["partial_vs_sequential"] = paired_ratio(part, seq)[0]
    out["ratio_vs_call_eager"] = paired_ratio(part, eager)[0]
    big = {r.task_id for r in records if int(r.max_units_per_call or 0) >= CALL_EAGER_MIN_UNITS}
    r3, n3 = paired_ratio(part, eager, big)
    out["ratio_vs_call_eager_3plus"] = r3
    out["n_tasks_3plus"] = n3

    ideal = task_means(records, "sequential", "ideal_s")
    # What the ideal schedule itself would reach: a goal below this is out of any policy's reach.
    out["ideal_vs_call_eager_3plus"] = paired_ratio(ideal, eager, big)[0]
    out["ideal_vs_sequential"] = paired_ratio(ideal, seq)[0]
    ov = overlap_captured(seq, part, ideal)
    out["overlap_captured"] = ov["value"]
    out["overlap_captured_pooled"] = ov["pooled"]
    out["overlap_captured_reason"] = ov["reason"]
    out["overlap_tasks"] = ov["tasks"]
    out["overlap_tasks_omitted"] = ov["omitted"]
    out["ideal_saving_vs_sequential"] = (
        1.0 - paired_ratio(ideal, seq)[0] if paired_ratio(ideal, seq)[0] is not None else None
    )

    part_ok = [r for r in _ok(records) if r.mode == "partial"]
    chunks = sum(int(r.chunks or 0) for r in part_ok)
    overhead = sum(float(r.overhead_s or 0.0) for r in part_ok)
    out["overhead_us_per_token"] = overhead / chunks * 1e6 if chunks else None
    out["errors"] = {m: out["modes"][m]["errors"] for m in modes}
    base = _ok(r for r in records if r.mode == "sequential") or _ok(records)
    out["mean_n_units"] = _mean(r.n_units for r in base)
    calls = sum(int(r.n_calls or 0) for r in base)
    out["units_per_call"] = sum(int(r.n_units or 0) for r in base) / calls if calls else None

    for mode in modes:
        m = out["modes"][mode]
        m["speedup_vs_sequential"] = paired_ratio(seq, lat[mode])[0]
        judged = [r for r in _ok(records) if r.mode == mode and r.final_ok is not None]
        m["success_rate"] = sum(bool(r.final_ok) for r in judged) / len(judged) if judged else None
        m["mean_decode_tokens"] = _mean(r.decode_tokens for r in _ok(records) if r.mode == mode)
    if INTERRUPT in modes:
        out["interrupt"] = interrupt_summary(records, out["modes"])

    invalid = {r.task_id for r in records if r.invalid_first}
    if invalid:
        ri, ni = paired_ratio(part, seq, invalid)
        out["invalid_first"] = {
            "n_tasks": ni,
            "partial_vs_sequential": ri,
            "ideal_vs_sequential": paired_ratio(ideal, seq, invalid)[0],
        }
    return out


def interrupt_summary(
    records: Sequence[RunRecord], modes: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """What early interruption (with one retry in every mode) changes: latency to the final
    answer against sequential and plain partial, the share of final scripts that ran without
    error, and the decode tokens it saved (per task, paired, means over repeats)."""
    lat = {m: task_means(records, m) for m in (*MODES, INTERRUPT)}
    tokens = {m: task_means(records, m, "decode_tokens") for m in ("sequential", "partial")}
    tokens[INTERRUPT] = task_means(records, INTERRUPT, "decode_tokens")

    def saved(base: str) -> tuple[float | None, float | None]:
        common = sorted(set(tokens[base]) & set(tokens[INTERRUPT]))
        if not common:
            return None, None
        diff = sum(tokens[base][t] - tokens[INTERRUPT][t] for t in common) / len(common)
        total = sum(tokens[base][t] for t in common) / len(common)
        return diff, (diff / total if total else None)

    def success(mode: str) -> float | None:
        return (modes.get(mode) or {}).get("success_rate")

    seq_ok, int_ok = success("sequential"), success(INTERRUPT)
    per_task, n = saved("partial")
    # Tasks whose first script failed (the sequential runs needed their retry).
    repaired = {r.task_id for r in _ok(records) if r.mode == "sequential" and (r.n_calls or 0) > 1}
    return {
        "speedup_vs_sequential": paired_ratio(lat["sequential"], lat[INTERRUPT])[0],
        "speedup_vs_partial": paired_ratio(lat["partial"], lat[INTERRUPT])[0],
        "speedup_vs_sequential_failed_first": paired_ratio(
            lat["sequential"], lat[INTERRUPT], repaired
        )[0],
        "n_tasks_failed_first": len(repaired),
        "success_rate": {m: success(m) for m in (*MODES, INTERRUPT) if m in modes},
        "success_vs_sequential": None if seq_ok is None or int_ok is None else int_ok - seq_ok,
        "tokens_saved_vs_partial": per_task,
        "tokens_saved_vs_partial_share": n,
        "tokens_saved_vs_sequential": saved("sequential")[0],
        "tokens_saved_vs_sequential_share": saved("sequential")[1],
    }


def goal_checks(
    workloads: Mapping[str, Mapping[str, Any]],
    goals: Mapping[str, Sequence[Goal]] | None = None,
) -> list[dict[str, Any]]:
    """Each workload's goals (`Workload.goals`, by workload name) checked on its summary; a
    workload not in `goals` is held to DEFAULT_GOALS. None: the bundled workloads' goals.

    Each check: goal, workload, value, threshold, passed (None: not measurable here) and why.
    """
    if goals is None:
        from .workload import bundled_goals

        goals = bundled_goals()
    checks = []
    for wl, s in workloads.items():
        for goal in goals.get(wl, DEFAULT_GOALS):
            check = goal.check(wl, s)
            if check is not None:
                checks.append(check)
    return checks


def summarize_sweep(records: Sequence[RunRecord | Mapping[str, Any]]) -> dict[str, Any]:
    """Per decoding speed and workload: mean latencies, gain, and the per-task points of the
    gain-vs-theory plot: x = what overlap could hide, sum over calls of min(G, wait for the
    tool after G), as a share of L_seq (= min(G, T) / (G + T) for a request that is one call);
    y = measured gain (L_seq - L_partial) / L_seq; and the ideal schedule's gain."""
    out: dict[str, Any] = {}
    by_speed: dict[float, list[RunRecord]] = defaultdict(list)
    for r in as_records(records):
        by_speed[float(r.tokens_per_second)].append(r)  # type: ignore[arg-type]
    for tps in sorted(by_speed):
        rows = by_speed[tps]
        entry: dict[str, Any] = {}
        for wl in sorted({r.workload for r in rows}):
            recs = [r for r in rows if r.workload == wl]
            seq, part = task_means(recs, "sequential"), task_means(recs, "partial")
            ideal = task_means(recs, "sequential", "ideal_s")
            hide = task_means(recs, "sequential", "hideable_s")
            invalid = {r.task_id for r in recs if r.invalid_first}
            points = []
            for t in sorted(set(seq) & set(part)):
                points.append(
                    {
                        "task_id": t,
                        "l_seq_s": seq[t],
                        "l_partial_s": part[t],
                        "x": hide.get(t, 0.0) / seq[t] if seq[t] > 0 else None,
                        "gain": (seq[t] - part[t]) / seq[t] if seq[t] > 0 else None,
                        "ideal_gain": (seq[t] - ideal[t]) / seq[t]
                        if t in ideal and seq[t] > 0
                        else None,
                        "invalid_first": t in invalid,
                    }
                )
            ratio, _ = paired_ratio(part, seq)
            entry[wl] = {
                "mean_l_seq_s": _mean(seq.values()),
                "mean_l_partial_s": _mean(part.values()),
                "gain": None if ratio is None else 1.0 - ratio,
                "points": points,
            }
        out[f"{tps:g}"] = entry
    return out


def summarize(
    records: Sequence[RunRecord | Mapping[str, Any]],
    goals: Mapping[str, Sequence[Goal]] | None = None,
) -> dict[str, Any]:
    """summary.json: per workload and mode, the goal checks (`goals` as goal_checks takes
    them), and the sweep (if any)."""
    runs = as_records(records)
    main = [r for r in runs if not r.sweep]
    sweep = [r for r in runs if r.sweep]
    workloads = {}
    for wl in sorted({r.workload for r in main}):
        workloads[wl] = summarize_workload([r for r in main if r.workload == wl])
    out: dict[str, Any] = {"workloads": workloads, "goals": goal_checks(workloads, goals)}
    if sweep:
        out["sweep"] = summarize_sweep(sweep)
    return out
