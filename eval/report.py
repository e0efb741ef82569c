"""The eval report: report.md (the command that reproduced it, the headline table, the goal
checks, the definitions) and the PNG plots it embeds, from results.jsonl and summary.json.

Reads records and summaries only; it never runs anything and never computes a metric of its own
(every number shown comes from eval.metrics, so the report and summary.json always agree).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .metrics import INTERRUPT, MODES, OVERLAP_MIN_GAP, summarize_sweep, task_means
from .records import RunRecord, as_records

MODE_COLORS = {"sequential": "#8c8c8c", "call-eager": "#e69f00", "partial": "#0072b2"}
MODE_LABELS = {"sequential": "sequential", "call-eager": "call-eager", "partial": "partial"}
DECODE_COLOR = "#56b4e9"
GEN_COLOR = "#c8c8c8"
UNIT_COLOR = "#009e73"
WAIT_COLOR = "#d9f0e8"
WARM_COLOR = "#cc79a7"
FINISH_COLOR = "#d55e00"
ABORT_EDGE = "#d62728"
TABLE_START, TABLE_END = "<!-- eval:headline:start -->", "<!-- eval:headline:end -->"


# --- numbers as text ----------------------------------------------------------------------------


def _s(v: Any, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _x(v: Any) -> str:
    return "–" if v is None else f"{v:.2f}×"


def _pct(v: Any) -> str:
    return "–" if v is None else f"{v:.0%}"


def _mode(s: Mapping[str, Any], mode: str, key: str = "mean_latency_s") -> Any:
    return (s.get("modes", {}).get(mode) or {}).get(key)


def _lat(s: Mapping[str, Any], mode: str) -> str:
    m = s.get("modes", {}).get(mode)
    if not m or m.get("mean_latency_s") is None:
        return "–"
    return f"{m['mean_latency_s']:.2f} ± {m['std_latency_s']:.2f}"


def headline_table(summary: Mapping[str, Any]) -> str:
    """Per workload: tasks, mean latency per mode (± std over tasks × repeats), speed-up,
    overlap captured, units per call, errors per mode. Markdown, ready to embed."""
    rows = [
        "| workload | tasks | L_seq (s) | L_call-eager (s) | L_partial (s) | speed-up vs seq "
        "| vs call-eager | overlap captured | units/call | errors (seq/eager/partial) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for wl, s in summary.get("workloads", {}).items():
        errors = "/".join(str(s.get("errors", {}).get(m, "–")) for m in MODES)
        rows.append(
            f"| {wl} | {s.get('n_tasks', 0)} | {_lat(s, 'sequential')} | {_lat(s, 'call-eager')} "
            f"| {_lat(s, 'partial')} | {_x(s.get('speedup_vs_sequential'))} "
            f"| {_s(s.get('ratio_vs_call_eager'))} | {_overlap(s)} "
            f"| {_s(s.get('units_per_call'), 1)} | {errors} |"
        )
    return "\n".join(rows)


def interrupt_table(summary: Mapping[str, Any]) -> str:
    """Per workload that runs partial+interrupt: per mode (one retry each), the latency to the
    final answer, its speed-up vs sequential, the share of final scripts that ran without error
    and the tokens decoded; then what interruption saved. Empty when no workload runs it."""
    rows = []
    for wl, s in summary.get("workloads", {}).items():
        i = s.get("interrupt")
        if not i:
            continue
        if not rows:
            rows = [
                "| workload | mode (1 retry each) | latency to the answer (s) | speed-up vs seq "
                "| final script ran | decode tokens |",
                "|---|---|---:|---:|---:|---:|",
            ]
        for mode in (*MODES, INTERRUPT):
            if mode not in s.get("modes", {}):
                continue
            speedup = _x(_mode(s, mode, "speedup_vs_sequential"))
            rows.append(
                f"| {wl} | {mode} | {_lat(s, mode)} | {speedup} "
                f"| {_pct(_mode(s, mode, 'success_rate'))} "
                f"| {_s(_mode(s, mode, 'mean_decode_tokens'), 0)} |"
            )
        rows.append(
            f"| {wl} | interruption saved | vs partial {_x(i.get('speedup_vs_partial'))}; "
            f"vs seq on the {i.get('n_tasks_failed_first', 0)} tasks whose first script failed "
            f"{_x(i.get('speedup_vs_sequential_failed_first'))} | | "
            f"{_s(i.get('tokens_saved_vs_partial'), 0)} tokens per task vs partial "
            f"({_pct(i.get('tokens_saved_vs_partial_share'))}) | |"
        )
    return "\n".join(rows)


def _overlap(s: Mapping[str, Any]) -> str:
    if s.get("overlap_captured") is not None:
        return _pct(s["overlap_captured"])
    return "n/a¹" if s.get("overlap_captured_reason") else "–"


def goals_table(goals: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        "| goal | workload | measured | ideal schedule² | target | result |",
        "|---|---|---:|---:|---:|---|",
    ]
    for g in goals:
        result = {True: "pass", False: "**FAIL**", None: "not measured"}[g["passed"]]
        if g["passed"] is None and g.get("reason"):
            result += f" ({g['reason']})"
        ideal = g.get("ideal")
        if g["passed"] is False and ideal is not None:
            reachable = ideal >= g["threshold"] if g["op"] == ">=" else ideal <= g["threshold"]
            if not reachable:
                result += " (out of reach: the ideal schedule misses it too)"
        rows.append(
            f"| {g['goal']} | {g['workload']} | {_s(g['value'])} | {_s(ideal)} "
            f"| {g['op']} {g['threshold']:g} | {result} |"
        )
    rows.append(
        "\n² The same ratio for the ideal schedule of the same runs (zero overhead, every unit "
        "at the earliest moment): what no policy can beat."
    )
    return "\n".join(rows)


def detail_table(s: Mapping[str, Any]) -> str:
    rows = [
        "| mode | runs | mean (s) | p50 (s) | p90 (s) | std (s) | G (s) | T (s) | ideal (s) "
        "| units | follow-up prompt / cached tokens | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, m in s.get("modes", {}).items():
        tokens = "–"
        if m.get("followup_prompt_tokens") is not None:
            tokens = (
                f"{m['followup_prompt_tokens']:.0f} / {m['followup_cached_tokens']:.0f} "
                f"({_pct(m.get('followup_cached_fraction'))})"
            )
        rows.append(
            f"| {mode} | {m['n']} | {_s(m['mean_latency_s'])} | {_s(m['p50_latency_s'])} "
            f"| {_s(m['p90_latency_s'])} | {_s(m['std_latency_s'])} | {_s(m['mean_decode_s'])} "
            f"| {_s(m['mean_tool_s'])} | {_s(m['mean_ideal_s'])} | {_s(m['mean_n_units'], 1)} "
            f"| {tokens} | {m['errors']} |"
        )
    return "\n".join(rows)


# --- plots --------------------------------------------------------------------------------------


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)  # Agg, whatever backend pyplot may have chosen for this process
    fig.savefig(path, dpi=130)


def _main(records: Sequence[RunRecord]) -> list[RunRecord]:
    return [r for r in records if not r.sweep]


def plot_latency(records: Sequence[RunRecord], summary: Mapping[str, Any], path: Path):
    """(a) Latency per workload and mode: box over tasks × repeats, every run as a dot."""
    main = [r for r in _main(records) if r.ok]
    workloads = sorted({r.workload for r in main})
    if not workloads:
        return None
    cols = min(len(workloads), 4)
    rows = (len(workloads) + cols - 1) // cols
    fig = Figure(figsize=(max(7.0, 3.4 * cols + 0.6), 3.3 * rows + 1.1), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    rng = np.random.default_rng(0)
    for ax, wl in zip(axes, workloads, strict=False):
        modes = [m for m in MODES if any(r.workload == wl and r.mode == m for r in main)]
        data = [[r.latency_s for r in main if r.workload == wl and r.mode == m] for m in modes]
        box = ax.boxplot(data, widths=0.55, patch_artist=True, showfliers=False)
        for patch, m in zip(box["boxes"], modes, strict=True):
            patch.set_facecolor(MODE_COLORS[m])
            patch.set_alpha(0.35)
        for med in box["medians"]:
            med.set_color("black")
        for i, (m, vals) in enumerate(zip(modes, data, strict=True), 1):
            xs = i + rng.uniform(-0.16, 0.16, len(vals))
            ax.scatter(xs, vals, s=9, color=MODE_COLORS[m], alpha=0.8, zorder=3, linewidths=0)
        ax.set_xticks(range(1, len(modes) + 1), [MODE_LABELS[m] for m in modes], fontsize=8)
        ax.set_ylabel("latency per request (s)")
        ax.set_ylim(bottom=0)
        sp = summary.get("workloads", {}).get(wl, {}).get("speedup_vs_sequential")
        ax.set_title(f"{wl}" + (f": {sp:.2f}× vs sequential" if sp else ""), fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(workloads) :]:
        ax.set_visible(False)
    fig.suptitle(_latency_title(summary), fontsize=11)
    _save(fig, path)
    return path


def _latency_title(summary: Mapping[str, Any]) -> str:
    changes = {
        wl: 1 / s["speedup_vs_sequential"] - 1
        for wl, s in summary.get("workloads", {}).items()
        if s.get("speedup_vs_sequential")
    }
    note = "\nbox: tasks × repeats, dots: single runs; lower is better"
    if not changes:
        return "Latency per request by mode" + note
    lo, hi = min(changes.values()), max(changes.values())
    if hi < 0:  # faster everywhere: say by how much, smallest cut first
        cut = f"{-hi:.0%}" if hi - lo < 0.005 else f"{-hi:.0%} to {-lo:.0%}"
        return f"Partial execution cuts mean latency by {cut} vs sequential" + note
    span = _signed(lo) if hi - lo < 0.005 else f"{_signed(lo)} to {_signed(hi)}"
    return f"Partial execution changes mean latency by {span} vs sequential" + note


def _signed(v: float) -> str:
    return f"{v:+.0%}"


def _representative(records: Sequence[RunRecord], wl: str) -> str | None:
    """The task whose partial / sequential latency ratio is the median one of the workload:
    a typical request, not the best one."""
    recs = [r for r in _main(records) if r.workload == wl]
    seq, part = task_means(recs, "sequential"), task_means(recs, "partial")
    common = sorted(set(seq) & set(part), key=lambda t: part[t] / seq[t] if seq[t] else 1.0)
    if common:
        return common[len(common) // 2]
    ok = [r for r in recs if not r.error]
    return ok[0].task_id if ok else None


def _closest_run(records: Sequence[RunRecord], wl: str, task: str, mode: str):
    runs = [
        r
        for r in _main(records)
        if r.workload == wl
        and r.task_id == task
        and r.mode == mode
        and not r.error
        and r.calls is not None
    ]
    if not runs:
        return None
    mean = sum(r.latency_s for r in runs) / len(runs)
    return min(runs, key=lambda r: abs(r.latency_s - mean))


def _lanes(intervals: Sequence[tuple[float, float]], max_lanes: int = 12) -> list[int]:
    """Greedy lane assignment: each interval goes to the first lane free at its start."""
    ends: list[float] = []
    out = []
    for start, end in intervals:
        for i, e in enumerate(ends):
            if e <= start + 1e-9:
                ends[i] = end
                out.append(i)
                break
        else:
            if len(ends) < max_lanes:
                ends.append(end)
                out.append(len(ends) - 1)
            else:
                i = min(range(len(ends)), key=lambda j: ends[j])
                ends[i] = max(ends[i], end)
                out.append(i)
    return out


def plot_timeline(records: Sequence[RunRecord], wl: str, path: Path):
    """(b) One request of the workload in each mode, one above the other, on one time axis:
    the model's generations (the tool call's decoding highlighted) and each unit's run."""
    task = _representative(records, wl)
    if task is None:
        return None
    modes = [m for m in MODES if _closest_run(records, wl, task, m) is not None]
    if not modes:
        return None
    runs = {m: _closest_run(records, wl, task, m) for m in modes}
    lanes_per = {}
    for m, r in runs.items():
        lanes_per[m] = max(_unit_lanes(r)[1], default=-1) + 1
    heights = [2 + lanes_per[m] + 0.8 for m in modes]
    fig = Figure(figsize=(10, 0.42 * sum(heights) + 2.0), layout="constrained")
    axes = fig.subplots(len(modes), 1, sharex=True, height_ratios=heights, squeeze=False)[:, 0]
    xmax = max(r.latency_s for r in runs.values())
    for ax, m in zip(axes, modes, strict=True):
        _draw_request(ax, runs[m], m)
    axes[-1].set_xlabel("time since the request started (s)")
    axes[-1].set_xlim(0, xmax * 1.04)
    legend = [
        Patch(color=DECODE_COLOR, label="model decodes the tool call"),
        Patch(color=GEN_COLOR, label="model: other generations"),
        Patch(color=WARM_COLOR, label="tool warm-up"),
        Patch(color=WAIT_COLOR, label="unit generated, waiting"),
        Patch(color=UNIT_COLOR, label="unit runs"),
        Patch(color=FINISH_COLOR, label="tool finish"),
        Line2D([], [], ls="", marker="v", color="black", label="result injected"),
        Line2D([], [], color="black", lw=1.2, ls="--", label="request done"),
    ]
    fig.legend(handles=legend, loc="outside lower center", fontsize=7, ncol=4, frameon=False)
    title = f"{wl}, task {task}: one request per mode on one time axis"
    if "sequential" in runs and "partial" in runs:
        ls, lp = runs["sequential"].latency_s, runs["partial"].latency_s
        word = "sooner" if lp <= ls else "later"
        title = (
            f"{wl}, task {task}: units run while the call is decoded, "
            f"so partial ends {abs(ls - lp):.2f} s {word} ({lp:.2f} s vs {ls:.2f} s)"
        )
    fig.suptitle(title, fontsize=10)
    _save(fig, path)
    return path


MAX_NAMED_UNITS = 10


def _unit_lanes(run: RunRecord) -> tuple[list[dict[str, Any]], list[int]]:
    """The units that ran (each with a `label`), and a lane for each: one per unit when they
    are few (labelled by call and path), else packed so that bars in a lane never overlap."""
    calls = run.calls or ()
    units = []
    for i, c in enumerate(calls, 1):
        for u in c["units"]:
            if u.get("started_s") is not None:
                where = u["path"] or "(whole call)"
                units.append({**u, "label": f"call {i} {where}" if len(calls) > 1 else where})
    units.sort(key=lambda u: u["started_s"])
    if len(units) <= MAX_NAMED_UNITS:
        return units, list(range(len(units)))
    lanes = _lanes([(u["started_s"], u["finished_s"] or u["started_s"]) for u in units])
    for u, lane in zip(units, lanes, strict=True):
        u["label"] = f"units, lane {lane + 1}"
    return units, lanes


def _draw_request(ax: Any, run: RunRecord, mode: str) -> None:
    h = 0.7
    y_model = 0
    for g in run.generations:
        if g.get("end_s") is None:
            continue
        color = DECODE_COLOR if g["kind"] == "tool_call" else GEN_COLOR
        ax.broken_barh(
            [(g["start_s"], g["end_s"] - g["start_s"])], (y_model - h / 2, h), color=color
        )
    y_tool = 1
    labels = {y_model: "model", y_tool: "tool warm-up / finish"}
    lane_base = 2
    units = []
    calls = run.calls or ()
    for c in calls:
        if c.get("tool_start_s") is not None and c.get("tool_ready_s") is not None:
            ax.broken_barh(
                [(c["tool_start_s"], c["tool_ready_s"] - c["tool_start_s"])],
                (y_tool - h / 2, h),
                color=WARM_COLOR,
            )
        if c.get("finish_start_s") is not None and c.get("finish_end_s") is not None:
            ax.broken_barh(
                [(c["finish_start_s"], c["finish_end_s"] - c["finish_start_s"])],
                (y_tool - h / 2, h),
                color=FINISH_COLOR,
            )
    units, lanes = _unit_lanes(run)
    for u, lane in zip(units, lanes, strict=True):
        y = lane_base + lane
        labels[y] = (
            u["path"] or "(whole call)" if len(units) <= MAX_NAMED_UNITS else f"lane {lane + 1}"
        )
        gen, start, end = u["generated_s"], u["started_s"], u["finished_s"] or u["started_s"]
        if start > gen:
            ax.broken_barh([(gen, start - gen)], (y - h / 4, h / 2), color=WAIT_COLOR)
        ax.broken_barh([(start, max(end - start, 1e-4))], (y - h / 2, h), color=UNIT_COLOR)
    injected = {c["result_injected_s"] for c in calls if c.get("result_injected_s")}
    for t in injected:
        ax.plot([t], [y_model], marker="v", color="black", ms=6, zorder=4)
    ax.axvline(run.latency_s, color="black", lw=1.2, ls="--")
    ax.text(run.latency_s, y_model, f" {run.latency_s:.2f} s", va="center", ha="left", fontsize=8)
    ys = sorted(labels)
    ax.set_yticks(ys, [labels[y] for y in ys], fontsize=7)
    ax.set_ylim(max(ys) + 0.8, -0.8)
    ax.set_title(MODE_LABELS.get(mode, mode), loc="left", fontsize=9, fontweight="bold")
    ax.grid(axis="x", alpha=0.3)


def gain_points(summary: Mapping[str, Any], records: Sequence[RunRecord]):
    """The points of the gain plot: per sweep speed, workload and task (x, gain, ideal gain).
    Without a sweep, the main run's tasks at its one speed."""
    pts = []
    sweep = summary.get("sweep")
    if sweep:
        for tps, per_wl in sweep.items():
            for wl, entry in per_wl.items():
                for p in entry["points"]:
                    pts.append({**p, "workload": wl, "tokens_per_second": float(tps)})
        return pts
    main = [replace(r, tokens_per_second=r.tokens_per_second or 0.0) for r in _main(records)]
    for tps, per_wl in summarize_sweep(main).items():
        for wl, entry in per_wl.items():
            for p in entry["points"]:
                pts.append({**p, "workload": wl, "tokens_per_second": float(tps)})
    return pts


def plot_gain(summary: Mapping[str, Any], records: Sequence[RunRecord], path: Path):
    """(c) Measured gain (L_seq - L_partial) / L_seq against the share of the request the
    overlap can hide, min(G, T) / L_seq, with the bound y = x."""
    pts = [p for p in gain_points(summary, records) if p["x"] is not None and p["gain"] is not None]
    if not pts:
        return None
    fig = Figure(figsize=(9.0, 5.4), layout="constrained")
    ax = fig.subplots()
    speeds = sorted({p["tokens_per_second"] for p in pts})
    cmap = matplotlib.colormaps["viridis"]
    markers = dict(zip(sorted({p["workload"] for p in pts}), "osD^vP*Xh", strict=False))
    for p in pts:
        c = cmap(speeds.index(p["tokens_per_second"]) / max(1, len(speeds) - 1))
        edge = ABORT_EDGE if p.get("invalid_first") else c
        ax.scatter(
            p["x"],
            p["gain"],
            color=c,
            edgecolors=edge,
            linewidths=1.5,
            marker=markers[p["workload"]],
            s=34,
            zorder=3,
        )
        if p.get("ideal_gain") is not None:
            ax.scatter(
                p["x"],
                p["ideal_gain"],
                facecolors="none",
                edgecolors=c,
                marker=markers[p["workload"]],
                s=34,
                alpha=0.6,
            )
    top = max(0.55, max(max(p["x"], p["gain"], p.get("ideal_gain") or 0) for p in pts) + 0.04)
    xs = np.linspace(0, 0.5, 50)
    ax.plot(xs, xs, color="black", lw=1.2, label="bound: gain = min(G, T) / (G + T)")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlim(0, max(0.52, max(p["x"] for p in pts) * 1.08))
    ax.set_ylim(min(-0.05, min(p["gain"] for p in pts) - 0.04), top)
    ax.set_xlabel(
        "overlap opportunity min(G, T) / L_seq, T = wait for the tool after decoding\n"
        "(= min(G, T) / (G + T) for a request that is one call; summed over calls)"
    )
    ax.set_ylabel("measured gain (L_seq − L_partial) / L_seq")
    handles = [Line2D([], [], color="black", lw=1.2, label="bound y = x")]
    handles += [
        Line2D([], [], ls="", marker=mk, color="grey", label=wl) for wl, mk in markers.items()
    ]
    handles += [
        Line2D(
            [], [], ls="", marker="o", color=cmap(i / max(1, len(speeds) - 1)), label=f"{s:g} tok/s"
        )
        for i, s in enumerate(speeds)
        if s
    ]
    handles.append(
        Line2D([], [], ls="", marker="o", mfc="none", color="grey", label="ideal schedule")
    )
    if any(p.get("invalid_first") for p in pts):
        handles.append(
            Line2D(
                [],
                [],
                ls="",
                marker="o",
                color="grey",
                mec=ABORT_EDGE,
                mew=1.5,
                label="first call rejected: early abort, outside the bound",
            )
        )
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    ratio = [
        p["gain"] / p["x"] for p in pts if p["x"] >= OVERLAP_MIN_GAP and not p.get("invalid_first")
    ]
    if ratio:
        title = (
            f"Measured gain reaches a median {np.median(ratio):.0%} of the overlap bound\n"
            f"({len(ratio)} task × speed points with something to overlap)"
        )
    else:
        title = "Measured gain vs the overlap bound (no point with a real overlap opportunity)"
    ax.set_title(title, fontsize=10)
    _save(fig, path)
    return path


def plot_overhead(records: Sequence[RunRecord], path: Path):
    """(d) Unit-detection overhead of each partial call against its length in stream chunks:
    microseconds per token, linear in the call."""
    xs, ys = [], []
    for r in _main(records):
        if r.mode != "partial" or r.error:
            continue
        for c in r.calls or ():
            if c.get("chunks"):
                xs.append(c["chunks"])
                ys.append(c["overhead_s"] * 1e3)
    if len(xs) < 2:
        return None
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
    ax.scatter(xs, ys, s=14, color=MODE_COLORS["partial"], alpha=0.7)
    slope = float(np.dot(xs, ys) / np.dot(xs, xs))  # through the origin: cost per chunk
    line = np.linspace(0, max(xs), 20)
    ax.plot(line, slope * line, color="black", lw=1, label=f"{slope * 1e3:.1f} µs per chunk")
    ax.set_xlabel("stream chunks (tokens) in the call")
    ax.set_ylabel("unit detection + dispatch on the decoding thread (ms)")
    fit = slope * np.asarray(xs, dtype=float)
    resid = float(np.sum((np.asarray(ys) - fit) ** 2))
    total = float(np.sum((np.asarray(ys) - np.mean(ys)) ** 2)) or 1.0
    ax.set_title(
        f"Unit detection costs {slope * 1e3:.1f} µs per token on the decoding thread "
        f"(fit through 0, R² = {1 - resid / total:.2f})",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)
    return path


# --- report.md ----------------------------------------------------------------------------------


DEFINITIONS = f"""\
- **L** (latency): wall time of one whole program run (prompt to last generation).
  L_seq, L_call-eager, L_partial: the mean over tasks × repeats of the runs in that mode
  (± the sample standard deviation). A task's modes run one after another, the first mode
  rotating from task to task; on the replay backend several tasks run at once (the
  `concurrency` of each record: replay decodes by the clock, so only the tools share the
  machine), on a live model one at a time, the prefix cache emptied before each run where the
  backend allows it. Failed runs are counted in *errors* and left out of every mean.
- **G, T**: from the timelines of the request's tool calls: G the decoding of each call (its
  stream start to its end), T the tool's busy time (warm-up + every unit + finish); summed over
  the calls (and attempts) of the request.
- **speed-up vs seq** = mean L_seq / mean L_partial; **vs call-eager** = mean L_partial /
  mean L_call-eager (per-task means, over the tasks measured in both modes).
- **ideal**: per call, the zero-overhead schedule of that run's own measured segments: unit k,
  generated at D_k, runs t_k from max(D_k, warm-up) (serial tools: also after unit k-1; plan
  DAGs: after its dependencies; irreversible units: after the stream ends G; at most the tool's
  declared concurrency at once); the call ends at max(G, last unit) + finish. This is the
  paper's Eq. 2, Σ max(g_i, t_i) + g_(n+1), made exact when the tool falls behind the decoder.
  A call rejected early ideally ends when the rejected unit was generated, plus its check. The
  request's ideal is its latency minus, per call, (measured span − ideal).
- **overlap captured** = mean over tasks of (L_seq − L_partial) / (L_seq − L_ideal), per-task
  means over repeats, L_ideal from the *sequential* runs' timelines (the tool's times measured
  without decoding running beside it). ¹ A task whose ideal saves less than
  {OVERLAP_MIN_GAP:.0%} of its L_seq has no overlap to capture and is left out; n/a when no task
  has any.
- **units/call**: units detected per tool call, from the sequential runs.
- **follow-up tokens**: prompt and cached tokens of the first `gen` after a tool result was
  reinjected (the cache proof: only the result's new tokens should be prefilled).
- **overhead**: time the decoding thread spends detecting and dispatching units, per stream
  chunk (token), in partial runs.
"""


def write_report(
    out: str | Path,
    records: Sequence[RunRecord | Mapping[str, Any]],
    summary: Mapping[str, Any],
) -> Path:
    """Write report.md, table.md (the headline table alone, for the README) and the plots,
    from the runs (records or rows of results.jsonl) and their summary."""
    out = Path(out)
    records = as_records(records)
    out.mkdir(parents=True, exist_ok=True)
    plots: dict[str, Path | None] = {}
    plots["latency"] = plot_latency(records, summary, out / "latency.png")
    for wl in summary.get("workloads", {}):
        plots[f"timeline_{wl}"] = plot_timeline(records, wl, out / f"timeline_{wl}.png")
    plots["gain"] = plot_gain(summary, records, out / "gain_vs_theory.png")
    plots["overhead"] = plot_overhead(records, out / "overhead.png")

    config = summary.get("config", {})
    env = summary.get("environment", {})
    command = config.get("command") or "sgl-conveyor eval"
    table = headline_table(summary)
    (out / "table.md").write_text(table + "\n")

    lines = [
        "# sgl-conveyor evaluation",
        "",
        "Reproduce every number and plot below with:",
        "",
        "```",
        command,
        "```",
        "",
        _environment_line(env, config),
        "",
        "## Headline",
        "",
        TABLE_START,
        table,
        TABLE_END,
        "",
        "Latencies in seconds: mean ± std over tasks × repeats. "
        "Definitions at the end of this page.",
        "",
    ]
    if plots["latency"]:
        lines += ["![Latency per request by mode](latency.png)", ""]
    interrupt = interrupt_table(summary)
    if interrupt:
        (out / "interrupt.md").write_text(interrupt + "\n")
        lines += [
            "## Early interruption and repair",
            "",
            "Every mode retries a failed script once (the model is shown the traceback); "
            "`partial+interrupt` also stops decoding at the statement that failed. Latency to "
            "the final answer, mean ± std over tasks × repeats; `final script ran`: share of "
            "runs whose last script ran without error.",
            "",
            interrupt,
            "",
        ]
    goals = summary.get("goals") or []
    if goals:
        passed = sum(1 for g in goals if g["passed"])
        failed = sum(1 for g in goals if g["passed"] is False)
        lines += [
            "## Goals (the bar)",
            "",
            f"{passed} pass, {failed} fail, {len(goals) - passed - failed} not measured.",
            "",
            goals_table(goals),
            "",
        ]
    timelines = [k for k, v in plots.items() if k.startswith("timeline_") and v]
    if timelines:
        lines += [
            "## One request per workload",
            "",
            "The task whose partial/sequential ratio is the median of its workload (a typical "
            "request), the run closest to that task's mean latency in each mode.",
            "",
        ]
        lines += [f"![{k[9:]}]({k}.png)" for k in timelines]
        lines.append("")
    if plots["gain"]:
        what = (
            "Each point is a task at one decoding speed of the replay sweep "
            f"({', '.join(summary['sweep'])} tokens/s)"
            if summary.get("sweep")
            else "Each point is a task (run `--sweep` to vary the decoding speed)"
        )
        lines += [
            "## Gain against the theory",
            "",
            f"{what}. The line is the bound: overlap can hide at most min(G, T) of each call. "
            "Hollow markers: the ideal schedule of the same sequential run.",
            "",
            "![Measured gain vs the overlap bound](gain_vs_theory.png)",
            "",
        ]
    lines += ["## Per workload", ""]
    for wl, s in summary.get("workloads", {}).items():
        lines += [f"### {wl}", "", detail_table(s), ""]
        notes = []
        if s.get("overhead_us_per_token") is not None:
            notes.append(f"unit-detection overhead {s['overhead_us_per_token']:.1f} µs per token")
        if s.get("overlap_captured_reason"):
            notes.append(f"overlap captured: {s['overlap_captured_reason']}")
        elif s.get("overlap_captured") is not None:
            notes.append(
                f"overlap captured {_pct(s['overlap_captured'])} over {s['overlap_tasks']} "
                f"task(s) (pooled {_pct(s['overlap_captured_pooled'])}); "
                f"{len(s['overlap_tasks_omitted'])} left out (ideal saves < "
                f"{OVERLAP_MIN_GAP:.0%})"
            )
        if s.get("invalid_first"):
            inv = s["invalid_first"]
            notes.append(
                f"tasks with an invalid first call: L_partial / L_seq = "
                f"{_s(inv['partial_vs_sequential'])} over {inv['n_tasks']} task(s)"
            )
        lines += [f"- {n}" for n in notes] + [""]
    if plots["overhead"]:
        lines += ["![Overhead per call](overhead.png)", ""]
    if summary.get("skipped"):
        lines += ["## Not run", ""]
        lines += [f"- {wl}: {why}" for wl, why in summary["skipped"].items()]
        lines.append("")
    lines += ["## Definitions", "", DEFINITIONS]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def _environment_line(env: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    parts = [f"Backend: {env.get('backend', config.get('backend', '?'))}"]
    if config:
        parts.append(f"{config.get('repeats')} repeat(s)")
        if config.get("concurrency"):
            parts.append(f"{config['concurrency']} task(s) at once")
    if env:
        commit = env.get("commit") or "?"
        if env.get("dirty"):
            commit += " (uncommitted changes)"
        parts += [
            f"{env.get('cpus')} CPU(s), {env.get('machine')}",
            f"Python {env.get('python')}, sglang {env.get('sglang')}",
            f"commit {commit}",
            str(env.get("date")),
        ]
    return " · ".join(parts)
