"""The search service (SQLite FTS5 over the bundled corpus, HTTP on loopback) and the `search`
tool that queries it, one query per unit."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import requests
from tool_helpers import json_unit, make_ctx, make_tool, wait_until

from sgl_conveyor.errors import ArgumentRejectedError
from sgl_conveyor.tools.base import UnitResult
from sgl_conveyor.tools.builtin.search_service import SearchIndex, SearchServer, best_sentence


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    return SearchIndex()


def test_bm25_ranks_the_entity_first_and_picks_the_sentence_that_answers(index):
    hits = index.search("Paris population", 3)
    assert hits[0]["title"] == "Paris"
    assert hits[0]["snippet"] == "It has a population of about 2,100,000."
    assert hits[0]["score"] > hits[1]["score"]
    assert index.search("Microsoft market cap", 1)[0]["snippet"].startswith(
        "Microsoft has a market capitalization (market cap) of about 3,100 billion"
    )


def test_symbols_in_names_are_searchable(index):
    assert index.search("C++ creator", 1)[0]["title"] == "C++ (programming language)"
    assert index.search("C# language", 1)[0]["title"] == "C# (programming language)"


def test_query_syntax_of_fts5_cannot_break_a_search(index):
    for q in ['"unbalanced', "NEAR(a b", "title:paris", "*", "AND OR NOT", ""]:
        assert isinstance(index.search(q, 3), list)


def test_lookup_understands_attribute_synonyms_and_suggests_on_unknowns(index):
    assert index.lookup("Microsoft", "market cap")["value"] == 3100
    assert index.lookup("python", "created by")["value"] == "Guido van Rossum"
    assert index.lookup("Mount Everest", "elevation")["value"] == 8849
    with pytest.raises(LookupError) as e:
        index.lookup("Paris", "gdp")
    assert "population" in e.value.args[0]["attributes"]
    assert index.lookup("Berlinn", "populaton")["value"] == 3_750_000  # typos are forgiven
    with pytest.raises(LookupError) as e:
        index.lookup("Atlantis", "population")
    assert e.value.args[0]["error"] == "no entity named 'Atlantis'"


def test_best_sentence_prefers_words_that_are_not_the_title():
    text = "Oslo is the capital of Norway. Its population is about 700,000 people."
    assert best_sentence(text, {"oslo", "population"}, "Oslo").startswith("Its population")


def test_the_http_service_answers_and_stops_cleanly(index, no_leaks):
    with SearchServer(latency_ms=0, index=index) as server:
        s = requests.Session()
        assert s.get(server.url + "/health").json() == {"ok": True, "documents": len(index)}
        body = s.get(server.url + "/search", params={"q": "Danube length", "k": 2}).json()
        assert body["hits"][0]["title"] == "Danube River" and len(body["hits"]) == 2
        r = s.get(server.url + "/lookup", params={"entity": "Atlantis", "attribute": "x"})
        assert r.status_code == 404 and "no entity" in r.json()["error"]
        # a keep-alive connection is still open: stop() must not wait for it
    s.close()


def test_the_added_latency_is_applied(index, no_leaks):
    with SearchServer(latency_ms=150, latency_sigma=0, index=index) as server:
        s = requests.Session()
        s.get(server.url + "/health")  # no latency on health checks
        t0 = time.perf_counter()
        s.get(server.url + "/search", params={"q": "Rome"})
        assert time.perf_counter() - t0 >= 0.15
        s.close()


def test_the_latency_is_seeded():
    a = SearchServer(latency_ms=400, latency_sigma=0.6, seed=7).latency
    b = SearchServer(latency_ms=400, latency_sigma=0.6, seed=7).latency
    c = SearchServer(latency_ms=400, latency_sigma=0.6, seed=8).latency
    keys = [f"/search?q=query+{i}" for i in range(200)]
    draws = [a.sample(k) for k in keys]
    assert draws == [b.sample(k) for k in keys]  # same seed, same request: same delay
    assert draws != [c.sample(k) for k in keys]
    assert a.sample(keys[0]) == draws[0]  # paired across runs and modes, whatever the order
    assert 0.3 < sorted(draws)[100] < 0.5  # the median is about latency_ms


def test_the_tool_searches_each_query_as_its_unit_and_keeps_query_order(no_leaks):
    tool = make_tool("search")
    try:
        queries = ["Rome population", "Berlin population", "Paris population"]
        ctx = make_ctx(tool)
        tool.start(ctx)
        results = []
        for i in (2, 0, 1):  # units may finish in any order
            u = json_unit(f"/queries/{i}", queries[i], index=i)
            tool.check_unit(u, ctx)
            results.append(UnitResult(u, tool.run_unit(u, ctx)))
        out = tool.finish({"queries": queries}, results, ctx)
        assert [r["query"] for r in out["results"]] == queries
        assert [r["hits"][0]["title"] for r in out["results"]] == ["Rome", "Berlin", "Paris"]
        assert set(out["results"][0]["hits"][0]) == {"title", "snippet", "score"}
        seq_ctx = make_ctx(tool, mode="sequential")
        tool.start(seq_ctx)
        assert tool.finish({"queries": queries}, [], seq_ctx) == out
    finally:
        tool.close()


def test_an_empty_query_is_rejected():
    tool = make_tool("search")
    try:
        with pytest.raises(ArgumentRejectedError):
            tool.check_unit(json_unit("/queries/0", "   "), make_ctx(tool))
    finally:
        tool.close()


def test_the_tool_uses_a_service_named_in_its_limits_and_leaves_it_running(index, no_leaks):
    with SearchServer(latency_ms=0, index=index) as server:
        tool = make_tool("search", url=server.url)
        ctx = make_ctx(tool)
        tool.start(ctx)
        assert tool.client.url == server.url
        out = tool.finish({"queries": ["Oslo population"]}, [], ctx)
        assert out["results"][0]["hits"][0]["title"] == "Oslo"
        tool.close()
        assert requests.get(server.url + "/health", timeout=5).ok


def test_tools_share_one_in_process_service_until_the_last_closes(no_leaks):
    a, b = make_tool("search"), make_tool("plan")
    a.start(make_ctx(a))
    b.start(make_ctx(b))
    assert a.client.url == b.client().url
    a.close()
    assert requests.get(b.client().url + "/health", timeout=5).ok
    b.close()


def test_concurrent_queries_overlap_their_latency(no_leaks):
    tool = make_tool("search", latency_ms=300, latency_sigma=0)
    try:
        ctx = make_ctx(tool)
        tool.start(ctx)
        units = [json_unit(f"/queries/{i}", q, i) for i, q in enumerate(["Oslo", "Rome", "Lima"])]
        t0 = time.perf_counter()
        threads = [threading.Thread(target=tool.run_unit, args=(u, ctx)) for u in units]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert time.perf_counter() - t0 < 3 * 0.3  # three round trips, not one after another
    finally:
        tool.close()


def test_the_service_runs_as_a_program(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    module = "sgl_conveyor.tools.builtin.search_service"
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), "--latency-ms", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return requests.get(url + "/health", timeout=1).ok
            except requests.RequestException:
                return False

        assert wait_until(up, timeout=40), proc.stdout.read1(4000) if proc.poll() else "no answer"
        hits = requests.get(url + "/search", params={"q": "Lima"}, timeout=5).json()["hits"]
        assert hits[0]["title"] == "Lima"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
