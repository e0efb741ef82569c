"""Partial tools end to end on the real embedded model (SmolLM2-135M on this machine's CPU),
with the real search tool (SQLite FTS5 over HTTP on loopback)."""

from __future__ import annotations

import json

import pytest

import sgl_conveyor

pytestmark = pytest.mark.model


def _research():
    from sgl_conveyor.programs.search import research

    return research


def test_smollm2_writes_one_query_per_city_and_each_runs_while_decoding(local_backend):
    st = _research().run(
        question="What are the capitals of Norway, Sweden, Finland and Denmark?",
        backend=local_backend,
    )
    call = json.loads(st["call"])  # constrained decoding: always the schema's shape
    assert 3 <= len(call["queries"]) <= 5
    joined = " ".join(call["queries"]).lower()
    assert sum(c in joined for c in ("norway", "sweden", "finland", "denmark")) >= 3, call
    result = st["call_result"]
    assert [r["query"] for r in result["results"]] == call["queries"]
    report = sgl_conveyor.call_report(st, "call")["calls"][0]
    first = report["units"][0]
    assert first["dispatched_s"] < report["stream_end_s"]  # ran while the call was decoding
    meta = st.get_meta_info("answer")
    assert meta["cached_tokens"] / meta["prompt_tokens"] >= 0.95, meta


def test_partial_and_sequential_agree_on_the_real_model(local_backend):
    q = "How tall are Mont Blanc and the Matterhorn?"
    research = _research()
    partial = research.run(question=q, backend=local_backend)
    sequential = research.run(question=q, mode="sequential", backend=local_backend)
    assert partial["call"] == sequential["call"]
    assert partial["call_result"] == sequential["call_result"]


def test_run_batch_of_eight_programs_with_partial_tools(local_backend):
    cities = ["Madrid", "Vienna", "Prague", "Oslo", "Lisbon", "Warsaw", "Dublin", "Athens"]
    states = _research().run_batch(
        [{"question": f"What is the population of {c}?"} for c in cities],
        backend=local_backend,
        num_threads=8,
    )
    for city, st in zip(cities, states, strict=True):
        result = st["call_result"]
        assert not isinstance(result, Exception), result
        queries = json.loads(st["call"])["queries"]
        assert any(city.lower() in q.lower() for q in queries), (city, queries)
        assert [r["query"] for r in result["results"]] == queries
