"""The eval end to end on the replay backend with a tiny workload of its own: modes interleaved
per task, every run measured, failures recorded, files written, the CLI and its entry points."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_workload import TRACE, make_workload, write_jsonl

from sgl_conveyor.eval.cli import main
from sgl_conveyor.eval.runner import EvalConfig, load_records, load_runs, run_eval

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = (
    "workload",
    "task_id",
    "mode",
    "repeat",
    "latency_s",
    "decode_s",
    "tool_s",
    "ideal_s",
    "n_units",
    "prompt_tokens",
    "cached_tokens",
    "error",
)
MODES = ("sequential", "call-eager", "partial")


def fast(out: Path, **kw) -> EvalConfig:
    kw.setdefault("repeats", 2)
    return EvalConfig(
        tokens_per_second=kw.pop("tokens_per_second", 400.0),
        ttft_s=0.005,
        out=str(out),
        warmup=False,
        progress=False,
        command="sgl-conveyor eval --workload tiny",
        **kw,
    )


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    result = run_eval(fast(tmp / "out", sweep=(200.0, 800.0)), [make_workload(tmp / "wl")])
    return result


def test_every_run_is_one_record_with_the_required_fields(evaluated):
    records = load_records(evaluated.out / "results.jsonl")
    assert len(records) == 3 * 3 * 2 + 2 * 3 * 2  # tasks x modes x repeats + the sweep
    for r in records:
        assert set(REQUIRED) <= set(r)
        assert r["error"] is None, r["error"]
        assert r["latency_s"] > 0 and r["decode_s"] > 0 and r["n_units"] >= 1
        assert r["ideal_s"] <= r["latency_s"] + 1e-9
        assert r["prompt_tokens"] > 0 and r["cached_tokens"] is not None  # the follow-up gen
    by_key = {(r["task_id"], r["mode"], r["repeat"]): r for r in records if not r["sweep"]}
    assert by_key[("cities", "sequential", 0)]["n_units"] == 3
    bad = by_key[("bad", "partial", 0)]
    assert bad["n_calls"] == 2 and len(bad["call_errors"]) == 1  # rejected, then retried
    assert bad["invalid_first"] is True


def test_modes_run_interleaved_per_task_with_a_rotating_start(evaluated):
    main_runs = [r for r in evaluated.records if not r["sweep"]]
    groups = [main_runs[i : i + 3] for i in range(0, len(main_runs), 3)]
    firsts = []
    for g in groups:
        assert len({(r["task_id"], r["repeat"]) for r in g}) == 1
        assert sorted(r["mode"] for r in g) == sorted(MODES)
        assert [r["position"] for r in g] == [0, 1, 2]
        firsts.append(g[0]["mode"])
    assert len(set(firsts)) == 3  # no mode always goes first
    sweep = [r for r in evaluated.records if r["sweep"]]
    assert {r["tokens_per_second"] for r in sweep} == {200.0, 800.0}
    assert {r["mode"] for r in sweep} == {"sequential", "partial"}


def test_the_summary_has_every_number_the_report_needs(evaluated):
    summary = json.loads((evaluated.out / "summary.json").read_text())
    s = summary["workloads"]["tiny"]
    assert s["n_tasks"] == 3
    for mode in MODES:
        m = s["modes"][mode]
        assert m["n"] == 6 and m["errors"] == 0
        for key in ("mean_latency_s", "p50_latency_s", "p90_latency_s", "std_latency_s"):
            assert m[key] is not None
    for key in ("speedup_vs_sequential", "ratio_vs_call_eager", "overhead_us_per_token"):
        assert s[key] is not None and s[key] > 0
    assert "overlap_captured" in s and ("overlap_captured_reason" in s)
    assert s["mean_n_units"] > 0 and s["errors"] == {m: 0 for m in MODES}
    assert s["invalid_first"]["n_tasks"] == 1
    assert {g["workload"] for g in summary["goals"]} == {"tiny"}
    assert set(summary["sweep"]) == {"200", "800"}
    assert summary["config"]["repeats"] == 2 and summary["environment"]["cpus"]


def test_the_report_states_its_command_and_embeds_its_plots(evaluated):
    report = (evaluated.out / "report.md").read_text()
    assert "sgl-conveyor eval --workload tiny" in report
    assert "<!-- eval:headline:start -->" in report and "| tiny | 3 |" in report
    for png in ("latency.png", "timeline_tiny.png", "gain_vs_theory.png", "overhead.png"):
        assert (evaluated.out / png).stat().st_size > 10_000
        assert f"({png})" in report
    assert (evaluated.out / "table.md").read_text().startswith("| workload |")


def test_a_failing_run_is_recorded_and_the_eval_goes_on(tmp_path):
    wl = make_workload(tmp_path / "wl")
    write_jsonl([row for row in TRACE if row["id"] != "rivers"], Path(wl.trace_path))
    result = run_eval(fast(tmp_path / "out", repeats=1, tokens_per_second=1000.0), [wl])
    errors = [r for r in result.records if r["error"]]
    assert len(result.records) == 9 and len(errors) == 3
    assert all(r["task_id"] == "rivers" and "rivers" in r["error"] for r in errors)
    s = result.summary["workloads"]["tiny"]
    assert s["errors"] == {m: 1 for m in MODES} and s["modes"]["partial"]["n"] == 2


def test_a_workload_without_a_trace_is_skipped_with_the_reason(tmp_path):
    wl = make_workload(tmp_path / "wl", name="untraced")
    Path(wl.trace_path).unlink()
    result = run_eval(fast(tmp_path / "out", repeats=1), [wl])
    assert result.records == [] and "untraced" in result.skipped
    assert "Not run" in (tmp_path / "out" / "report.md").read_text()


def test_the_command_line_runs_a_workload_from_a_programs_folder(tmp_path, capsys):
    programs = tmp_path / "tiny_programs"
    programs.mkdir()
    (programs / "tiny.py").write_text(
        "from pathlib import Path\n"
        "from tiny_workload import make_workload\n"
        "WORKLOAD = make_workload(Path(__file__).parent / 'data')\n"
    )
    (programs / "broken.py").write_text("raise RuntimeError('not finished')\n")
    out = tmp_path / "out"
    argv = ["--programs", str(programs), "--workload", "tiny", "--repeats", "1", "--tasks", "1"]
    argv += ["--modes", "sequential,partial", "--tokens-per-second", "1000"]
    argv += ["--no-warmup", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert "| tiny | 1 |" in printed.out and "not finished" in printed.err
    assert [r["mode"] for r in load_records(out / "results.jsonl")] == ["sequential", "partial"]
    assert "sgl-conveyor eval --programs" in (out / "report.md").read_text()
    (out / "report.md").unlink()
    assert main(["--report-from", str(out)]) == 0  # summary and plots again, nothing run
    assert (out / "report.md").exists() and (out / "latency.png").exists()
    assert main(["--programs", str(programs), "--workload", "nope", "--quiet"]) == 2
    assert main(["--programs", str(programs), "--record", "x.jsonl", "--quiet"]) == 2


def test_python_dash_m_eval_cli_works():
    done = subprocess.run(
        [sys.executable, "-m", "sgl_conveyor.eval.cli", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "--sweep" in done.stdout


def test_concurrent_groups_keep_a_tasks_modes_together_and_spread_workloads(tmp_path):
    from sgl_conveyor.eval.runner import concurrency, interleave_groups, plan_runs

    a, b = make_workload(tmp_path / "a"), make_workload(tmp_path / "b")
    object.__setattr__(b, "name", "other")
    plan, skipped = plan_runs([a, b], fast(tmp_path / "out", repeats=2))
    assert not skipped
    groups = interleave_groups(plan)
    assert sum(len(g) for g in groups) == len(plan)
    for g in groups:  # one task at one repeat, its three modes in the plan's rotated order
        assert len({(p.workload.name, p.task.id, p.repeat) for p in g}) == 1
        assert [p.position for p in g] == [0, 1, 2]
    assert [g[0].workload.name for g in groups[:4]] == ["tiny", "other", "tiny", "other"]
    assert concurrency(fast(tmp_path), is_replay=True) == 16
    assert concurrency(fast(tmp_path), is_replay=False) == 1
    assert concurrency(fast(tmp_path, concurrency=3), is_replay=False) == 3


def test_one_at_a_time_gives_the_same_records_in_the_same_order(tmp_path):
    wl = make_workload(tmp_path / "wl")
    one = run_eval(fast(tmp_path / "one", repeats=1, concurrency=1), [wl]).records
    many = run_eval(fast(tmp_path / "many", repeats=1, concurrency=4), [wl]).records
    key = lambda r: (r["task_id"], r["mode"], r["repeat"], r["n_units"], r["error"])
    assert [key(r) for r in one] == [key(r) for r in many]
    assert {r["concurrency"] for r in many} == {4}


def test_every_row_of_results_jsonl_loads_as_a_record_and_writes_back_the_same(evaluated):
    lines = (evaluated.out / "results.jsonl").read_text().splitlines()
    runs = load_runs(evaluated.out / "results.jsonl")
    assert [json.dumps(r.to_dict(), default=str) for r in runs] == lines
    assert evaluated.records == [json.loads(x) for x in lines]
