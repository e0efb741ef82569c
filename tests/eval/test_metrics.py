"""The evaluation's numbers on hand-made timelines whose answers are known by hand."""

from __future__ import annotations

import math

import pytest

from sgl_conveyor.eval.metrics import (
    call_end,
    call_ideal,
    eq2_latency,
    goal_checks,
    held_units,
    latency_stats,
    overlap_captured,
    percentile,
    request_ideal,
    summarize,
    unit_effect,
)


def unit(index, generated, run=None, *, started=None, path=None, **extra):
    """A unit record as Timeline.to_dict writes it; `run` = its run time, started at
    `started` (default: when generated)."""
    start = (generated if started is None else started) if run is not None else None
    return {
        "path": path or f"/q/{index}",
        "index": index,
        "id": extra.pop("id", None),
        "deps": extra.pop("deps", []),
        "decision": extra.pop("decision", "run"),
        "generated_s": generated,
        "dispatched_s": start,
        "started_s": start,
        "finished_s": None if run is None else start + run,
        "ok": None if run is None else True,
        "error": extra.pop("error", None),
        "work": extra.pop("work", None),
    }


def call(G, units, *, t0=None, tf=None, origin=0.0, **fields):
    """A call's timeline dict; every time is shifted by `origin` (a request's time axis)."""
    d = {
        "stream_start_s": 0.0,
        "stream_end_s": G,
        "call_closed_s": G,
        "tool_start_s": 0.0 if t0 is not None else None,
        "tool_ready_s": t0,
        "finish_start_s": None,
        "finish_end_s": None,
        "result_ready_s": None,
        "aborted_s": None,
        "units": units,
        "notes": [],
    }
    d.update(fields)
    if tf is not None:
        last = max([G] + [u["finished_s"] or 0 for u in units])
        d["finish_start_s"], d["finish_end_s"] = last, last + tf
    if d["result_ready_s"] is None and d["aborted_s"] is None:
        d["result_ready_s"] = d["finish_end_s"] or G
    for k, v in list(d.items()):
        if k.endswith("_s") and v is not None:
            d[k] = v + origin
    for u in d["units"]:
        for k, v in list(u.items()):
            if k.endswith("_s") and v is not None:
                u[k] = v + origin
    return d


# --- the ideal of one call --------------------------------------------------------------------


def test_serial_ideal_equals_eq2_when_the_tool_keeps_up():
    c = call(4.0, [unit(0, 1.0, 0.5), unit(1, 2.0, 0.5), unit(2, 3.0, 0.5)])
    assert call_ideal(c, order="serial") == pytest.approx(4.0)
    # Eq. 2: segments decoded while each unit runs (1, 1, 1) plus the one before the first (1).
    assert eq2_latency([1.0, 1.0, 1.0, 1.0], [0.5, 0.5, 0.5]) == pytest.approx(4.0)


def test_serial_ideal_lets_a_lagging_tool_catch_up_where_eq2_cannot():
    c = call(4.5, [unit(0, 1.0, 3.0), unit(1, 2.0, 0.1), unit(2, 3.0, 0.1)])
    exact = call_ideal(c, order="serial")
    assert exact == pytest.approx(4.5)  # F = 4.0, 4.1, 4.2: done before the stream ends
    eq2 = eq2_latency([1.0, 1.0, 1.5, 1.0], [3.0, 0.1, 0.1])
    assert eq2 == pytest.approx(6.5)
    G, T = 4.5, 3.2
    assert max(G, T) <= exact <= eq2 <= G + T


def test_parallel_ideal_with_warm_up_and_finish():
    units = [unit(0, 1.0, 3.0, started=2.0), unit(1, 2.0, 0.1), unit(2, 3.0, 0.1)]
    c = call(4.5, units, t0=2.0, tf=0.5)
    # F = max(1, 2) + 3 = 5, 2.1, 3.1; the call ends at max(4.5, 5) + 0.5.
    assert call_ideal(c, order="parallel") == pytest.approx(5.5)
    # one worker: FIFO, the second unit waits for the first
    assert call_ideal(c, order="parallel", concurrency=1) == pytest.approx(5.7)


def test_dag_ideal_waits_for_dependencies():
    units = [
        unit(0, 1.0, 2.0, id=1),
        unit(1, 2.0, 0.5, id=2),
        unit(2, 3.0, 1.0, id=3, deps=[1, 2], started=3.0),
    ]
    c = call(3.5, units)
    assert call_ideal(c, order="dag") == pytest.approx(4.0)  # F3 = max(3, F1=3, F2=2.5) + 1
    assert call_ideal(c, order="parallel") == pytest.approx(4.0)  # 3 + 1 either way here
    units[2]["generated_s"] = 1.5
    assert call_ideal(call(3.5, [dict(u) for u in units]), order="parallel") == pytest.approx(3.5)
    assert call_ideal(call(3.5, [dict(u) for u in units]), order="dag") == pytest.approx(4.0)


def test_irreversible_units_wait_for_the_end_of_the_call():
    patterns = [("/send", "irreversible"), ("/fetch/*", "pure")]
    units = [unit(0, 1.0, 1.0, path="/send"), unit(1, 2.0, 1.0, path="/fetch/0")]
    c = call(3.0, units)
    held = held_units(c, patterns)
    assert held == {0}
    assert call_ideal(c, order="parallel", held=held) == pytest.approx(4.0)  # 3 + 1
    assert call_ideal(c, order="parallel") == pytest.approx(3.0)


def test_held_units_come_from_the_run_or_the_spec():
    c = call(1.0, [unit(0, 0.5, 0.1, decision="hold"), unit(1, 0.6, 0.1, path="/code#1")])
    assert held_units(c, [("/code", "pure")]) == {0}
    assert held_units(c, []) == {0, 1}  # no pattern matches: irreversible


def test_unit_effect_matches_pointers_wildcards_and_split_pieces():
    patterns = [("/queries/*", "pure"), ("/code", "idempotent"), ("", "irreversible")]
    assert unit_effect("/queries/3", patterns) == "pure"
    assert unit_effect("/code#12", patterns) == "idempotent"
    assert unit_effect("", patterns) == "irreversible"
    assert unit_effect("/other", patterns) == "irreversible"


def test_a_rejected_unit_ends_the_ideal_at_its_generation_plus_its_check():
    rejected = unit(1, 2.0, error="not a city")
    c = call(2.05, [unit(0, 1.0, 0.3), rejected], aborted_s=2.01, call_closed_s=None)
    assert call_ideal(c, order="parallel") == pytest.approx(2.01)
    # sequential: the check ran when the call closed (at 4.0); the ideal still ends at 2 + check
    seq_units = [unit(0, 1.0, None), unit(1, 2.0, error="not a city")]
    s = call(4.0, seq_units, aborted_s=4.02, call_closed_s=4.0)
    assert call_ideal(s, order="parallel") == pytest.approx(2.02)


def test_a_unit_that_fails_while_running_ends_the_ideal_at_its_own_finish():
    bad = unit(1, 2.0, 0.5)
    bad["error"], bad["ok"] = "backend down", False
    c = call(3.0, [unit(0, 1.0, 0.2), bad], aborted_s=2.6)
    assert call_ideal(c, order="parallel") == pytest.approx(2.5)


def test_other_aborts_claim_nothing():
    c = call(3.0, [unit(0, 1.0, 0.2)], aborted_s=3.1)
    assert call_end(c) == pytest.approx(3.1)
    assert call_ideal(c) == pytest.approx(3.1)


def test_an_aborted_attempt_ends_with_its_abort_not_with_later_notes():
    c = call(3.0, [unit(0, 1.0, 0.2)], aborted_s=3.1)
    c["notes"] = [{"t_s": 3.3, "event": "undo"}, {"t_s": 9.0, "event": "prewarmed"}]
    assert call_end(c) == pytest.approx(3.3)


def test_the_ideal_does_not_depend_on_the_time_axis():
    def units():
        return [unit(0, 1.0, 3.0), unit(1, 2.0, 0.1), unit(2, 3.0, 0.1)]

    a = call_ideal(call(4.5, units(), t0=0.5, tf=0.2), order="serial")
    b = call_ideal(call(4.5, units(), t0=0.5, tf=0.2, origin=17.25), order="serial")
    assert a == pytest.approx(b)


def test_shared_and_skipped_units_cost_nothing():
    c = call(2.0, [unit(0, 1.0, 5.0, decision="shared"), unit(1, 1.5, 5.0, decision="skip")])
    assert call_ideal(c, order="serial") == pytest.approx(2.0)


# --- the ideal of a request ---------------------------------------------------------------------


def test_request_ideal_subtracts_each_calls_saving():
    assert request_ideal(10.0, [(1.0, 6.0, 3.0)]) == pytest.approx(8.0)
    # two calls one after the other: both savings count
    assert request_ideal(10.0, [(1.0, 3.0, 1.0), (4.0, 8.0, 2.0)]) == pytest.approx(7.0)
    # two calls at once (forks): the group ends at max(start + ideal)
    assert request_ideal(10.0, [(1.0, 6.0, 3.0), (2.0, 5.0, 2.0)]) == pytest.approx(8.0)
    # an ideal longer than what ran (noise) saves nothing rather than adding time
    assert request_ideal(10.0, [(1.0, 2.0, 1.5)]) == pytest.approx(10.0)


# --- statistics -----------------------------------------------------------------------------------


def test_percentiles_and_latency_stats():
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 90) == pytest.approx(4.6)
    st = latency_stats(values)
    assert st["n"] == 5 and st["mean_latency_s"] == 3.0
    assert st["p50_latency_s"] == 3.0 and st["p90_latency_s"] == pytest.approx(4.6)
    assert st["std_latency_s"] == pytest.approx(math.sqrt(2.5))
    assert latency_stats([2.0])["std_latency_s"] == 0.0
    assert latency_stats([])["mean_latency_s"] is None


def test_overlap_captured_leaves_out_tasks_without_overlap_to_capture():
    seq = {"a": 10.0, "b": 10.0}
    part = {"a": 7.0, "b": 9.9}
    ideal = {"a": 6.0, "b": 9.7}  # b: the ideal saves 3% of L_seq
    ov = overlap_captured(seq, part, ideal)
    assert ov["value"] == pytest.approx(0.75)
    assert ov["omitted"] == ["b"] and ov["tasks"] == 1 and ov["reason"] is None
    none = overlap_captured({"b": 10.0}, {"b": 9.9}, {"b": 9.7})
    assert none["value"] is None and "5%" in none["reason"]


def _record(wl, task, mode, latency, repeat=0, **kw):
    r = {
        "workload": wl,
        "task_id": task,
        "mode": mode,
        "repeat": repeat,
        "latency_s": latency,
        "decode_s": 1.0,
        "tool_s": 1.0,
        "ideal_s": kw.pop("ideal_s", None),
        "n_units": 3,
        "n_calls": 1,
        "prompt_tokens": 100,
        "cached_tokens": 90,
        "error": None,
        "max_units_per_call": 3,
    }
    r.update(kw)
    return r


def test_summary_speedups_overlap_and_goals():
    recs = []
    for t, (ls, le, lp, li) in {"t1": (10.0, 9.0, 7.0, 6.0), "t2": (8.0, 8.0, 6.0, 6.0)}.items():
        for rep, jitter in enumerate((-0.1, 0.1)):
            recs.append(_record("search", t, "sequential", ls + jitter, rep, ideal_s=li))
            recs.append(_record("search", t, "call-eager", le + jitter, rep))
            recs.append(
                _record("search", t, "partial", lp + jitter, rep, chunks=10, overhead_s=1e-4)
            )
    recs.append(_record("search", "t1", "partial", None, 2, error="boom"))
    for t in ("c1", "c2"):
        recs.append(_record("calculator", t, "sequential", 1.0, ideal_s=0.99, max_units_per_call=1))
        recs.append(_record("calculator", t, "partial", 1.01, max_units_per_call=1))
    recs.append(_record("validation", "v1", "sequential", 4.0, invalid_first=True, ideal_s=1.0))
    recs.append(_record("validation", "v1", "partial", 1.5, invalid_first=True))
    recs.append(_record("search", "t1", "partial", 0.1, sweep=True, tokens_per_second=50))

    summary = summarize(recs)
    s = summary["workloads"]["search"]
    assert s["n_tasks"] == 2
    assert s["modes"]["partial"]["n"] == 4 and s["errors"]["partial"] == 1
    assert s["modes"]["sequential"]["mean_latency_s"] == pytest.approx(9.0)
    assert s["speedup_vs_sequential"] == pytest.approx(9.0 / 6.5)
    assert s["ratio_vs_call_eager"] == pytest.approx(6.5 / 8.5)
    assert s["ratio_vs_call_eager_3plus"] == pytest.approx(6.5 / 8.5)
    assert s["overlap_captured"] == pytest.approx((0.75 + 1.0) / 2)
    assert s["overhead_us_per_token"] == pytest.approx(10.0)
    assert s["modes"]["partial"]["followup_cached_fraction"] == pytest.approx(0.9)
    assert summary["workloads"]["validation"]["invalid_first"]["partial_vs_sequential"] == 0.375
    assert "sweep" in summary and "search" in summary["sweep"]["50"]

    checks = {(c["goal"].split(" (")[0], c["workload"]): c for c in summary["goals"]}
    assert checks[("overlap captured", "search")]["passed"] is False  # 0.875 < 0.90
    assert checks[("L_partial / L_call-eager", "search")]["passed"] is True
    assert checks[("L_partial / L_seq", "calculator")]["passed"] is True
    assert checks[("L_partial / L_seq", "validation")]["passed"] is True


def test_goals_not_measurable_say_why():
    checks = goal_checks({"codegen": {"overlap_captured": None, "overlap_captured_reason": "x"}})
    overlap = next(c for c in checks if c["goal"] == "overlap captured")
    assert overlap["passed"] is None and overlap["reason"] == "x"


def test_identical_units_share_one_execution_in_the_ideal_from_the_first_copy():
    # Sequentially the last copy (generated at 1.9) happened to run the 0.8 s search that the
    # copy generated at 0.2 shared; the ideal runs it from the first copy: done at 1.0 < G.
    units = [
        unit(0, 0.2, 0.0, started=2.0, decision="shared", work="w"),
        unit(1, 1.9, 0.8, started=2.0, work="w"),
    ]
    assert call_ideal(call(2.0, units)) == pytest.approx(2.0)
    for u in units:
        u["work"] = None  # without the shared execution known: two runs, the last ends at 2.7
    assert call_ideal(call(2.0, units)) == pytest.approx(2.7)


def test_interruption_summary_pairs_tasks_and_counts_final_scripts_and_tokens():
    from sgl_conveyor.eval.goals import INTERRUPT_SPEEDUP, INTERRUPT_SUCCESS
    from sgl_conveyor.eval.records import RunRecord

    def run(task, mode, latency, ok, tokens, calls=1):
        return RunRecord(
            "codegen", task, mode, latency_s=latency, final_ok=ok, decode_tokens=tokens,
            n_calls=calls, calls=[],
        )  # fmt: skip

    recs = [
        run("a", "sequential", 10.0, True, 300, calls=2),  # failed first, repaired
        run("a", "partial", 9.0, True, 300, calls=2),
        run("a", "partial+interrupt", 6.0, True, 180, calls=2),
        run("b", "sequential", 4.0, False, 100),
        run("b", "partial", 4.0, False, 100),
        run("b", "partial+interrupt", 4.0, True, 60),
    ]
    s = summarize(recs, {"codegen": (INTERRUPT_SPEEDUP, INTERRUPT_SUCCESS)})
    i = s["workloads"]["codegen"]["interrupt"]
    assert i["speedup_vs_sequential"] == pytest.approx(14.0 / 10.0)
    assert i["speedup_vs_sequential_failed_first"] == pytest.approx(10.0 / 6.0)
    assert i["n_tasks_failed_first"] == 1
    assert i["success_rate"] == {"sequential": 0.5, "partial": 0.5, "partial+interrupt": 1.0}
    assert i["success_vs_sequential"] == pytest.approx(0.5)
    assert i["tokens_saved_vs_partial"] == pytest.approx(80.0)  # (120 + 40) / 2
    assert i["tokens_saved_vs_partial_share"] == pytest.approx(80.0 / 200.0)
    assert [g["passed"] for g in s["goals"]] == [True, True]
    row = recs[0].to_dict()
    assert row["final_ok"] is True and RunRecord.from_dict(row).to_dict() == row


def test_a_call_failed_by_its_finish_has_the_ideal_of_a_finished_call():
    units = [unit(0, 0.5, 0.4), unit(1, 1.0, 0.1)]
    failed = call(2.0, units, aborted_s=2.6, finish_start_s=2.5, finish_end_s=2.55)
    # Units end at 0.9 and 1.1, before G = 2.0; then the finish (0.05 s) fails the call.
    assert call_ideal(failed, order="serial") == pytest.approx(2.05)
    assert call_ideal(call(2.0, units, aborted_s=2.6), order="serial") == pytest.approx(2.6)
