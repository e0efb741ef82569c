"""Partial tools through SGLang's real router (sglang-router 0.3.2) in front of two
`sgl-conveyor serve` workers, all on loopback: the path a user takes to scale out.

Workers and router are separate processes, started once for the module; per-worker engine
counters (asked of each worker directly) show where each request ran and where it stopped.
"""

from __future__ import annotations

import pytest
import requests
import sglang as sgl
from picky import picky_registry

import sgl_conveyor
from sgl_conveyor import ArgumentRejectedError
from sgl_conveyor.eval.router_cluster import Cluster, router_available, wait_idle, worker_stats

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(not router_available(), reason="sglang-router is not installed"),
]


@pytest.fixture(scope="module")
def cluster():
    with Cluster() as c:
        # float32: both workers decode exactly like each other and like a sequential run
        c.start_workers(2, serve_args=["--dtype", "float32", "--max-batch", "4"], threads=1)
        c.start_router(c.workers, "cache_aware")
        yield c


def _deltas(before, after, key):
    return [a[key] - b[key] for a, b in zip(after, before, strict=True)]


def test_the_router_sees_two_healthy_workers_and_their_loads(cluster):
    listed = requests.get(cluster.router + "/workers", timeout=10).json()["workers"]
    assert sorted(w["url"] for w in listed) == sorted(cluster.workers)
    assert all(w["is_healthy"] and w["connection_mode"] == "HTTP" for w in listed)
    # /get_loads makes the router poll each worker's /get_load (-1 where a worker cannot answer)
    loads = requests.get(cluster.router + "/get_loads", timeout=10).json()["workers"]
    assert len(loads) == 2 and all(entry["load"] >= 0 for entry in loads), loads
    info = requests.get(cluster.workers[0] + "/server_info", timeout=10).json()
    assert info["dp_size"] == 1 and info["model_path"] == listed[0]["model_id"]


def test_partial_search_through_the_router_equals_sequential_and_reuses_the_workers_cache(
    cluster,
):
    from sgl_conveyor.programs.search import research

    endpoint = sgl.RuntimeEndpoint(cluster.router)
    question = "What are the atomic masses of carbon and neon?"
    sequential = research.run(question=question, mode="sequential", backend=endpoint)
    sequential.sync()  # run() returns while the program's thread still runs
    before = wait_idle(cluster.workers)
    partial = research.run(question=question, mode="partial", backend=endpoint)
    partial.sync()
    after = wait_idle(cluster.workers)

    for key in ("call", "answer"):
        assert partial[key] == sequential[key], key
    assert str(partial["call_result"]) == str(sequential["call_result"])
    assert not isinstance(partial["call_result"], Exception), partial["call_result"]

    call = sgl_conveyor.call_report(partial, "call")["calls"][0]
    dispatched = [u["dispatched_s"] for u in call["units"] if u["dispatched_s"] is not None]
    assert len(call["units"]) >= 2 and min(dispatched) < call["stream_end_s"], call

    # Every request of the program went to one worker (the cache-aware policy follows the
    # prefix), and the follow-up gen found the call's whole state in that worker's cache.
    requests_per_worker = _deltas(before, after, "requests")
    assert sorted(requests_per_worker)[0] == 0 and max(requests_per_worker) >= 3
    meta = partial.get_meta_info("answer")
    assert meta["cached_tokens"] >= call["prompt_tokens"] + call["completion_tokens"] - 1, meta
    assert meta["cached_tokens"] / meta["prompt_tokens"] >= 0.9, meta
    # The call's prefix was pinned there while the tool ran, and released by the follow-up.
    holder = requests_per_worker.index(max(requests_per_worker))
    assert _deltas(before, after, "pins")[holder] >= 1
    assert _deltas(before, after, "pins_reused")[holder] >= 1
    assert after[holder]["pinned_now"] == 0


def test_an_invalid_call_stops_decoding_on_the_worker_that_runs_it(cluster):
    registry = picky_registry()

    @sgl.function
    def program(s):
        s += sgl.user("Write ten short lines about the sea.")
        s += sgl.assistant(
            sgl.partial_tool(
                "picky",
                name="call",
                registry=registry,
                max_tokens=300,
                ignore_eos=True,
                temperature=0,
            )
        )

    before = wait_idle(cluster.workers)
    state = program.run(backend=sgl.RuntimeEndpoint(cluster.router))
    state.sync()
    after = wait_idle(cluster.workers)  # nothing keeps decoding anywhere

    assert isinstance(state["call_result"], ArgumentRejectedError)
    assert sgl_conveyor.call_report(state, "call")["calls"][0]["aborted_s"] is not None
    aborted = _deltas(before, after, "aborted_requests")
    assert sorted(aborted) == [0, 1], aborted  # the abort reached the one worker that ran it
    ran = aborted.index(1)
    assert _deltas(before, after, "requests")[1 - ran] == 0
    # decoding stopped at the first line there, not at the 300 tokens the call allowed
    assert _deltas(before, after, "aborted_completion_tokens")[ran] < 100
    assert worker_stats(cluster.workers[ran])["running"] == 0


def test_select_passes_the_router_through_conveyor_endpoint(cluster):
    from sgl_conveyor.backends.sglang_server import ConveyorEndpoint

    @sgl.function
    def pick(s):
        s += sgl.user("Is the sky blue on a clear day? Answer yes or no.")
        s += sgl.assistant(sgl.select("yn", choices=["yes", "no"]))

    # sgl.select sends its choices as one batch, which sglang-router 0.3.2 refuses;
    # ConveyorEndpoint sends one request per choice, and gets the same decision as a worker
    through_router = pick.run(backend=ConveyorEndpoint(cluster.router))
    direct = pick.run(backend=sgl.RuntimeEndpoint(cluster.workers[0]))
    assert through_router["yn"] == direct["yn"] and through_router["yn"] in ("yes", "no")


def test_the_chat_api_through_the_router_runs_units_early_and_the_follow_up_hits_the_cache(
    cluster,
):
    from openai import OpenAI

    from sgl_conveyor import chat

    client = OpenAI(base_url=cluster.router + "/v1", api_key="none", max_retries=0, timeout=120)
    (model,) = [m.id for m in client.models.list().data]
    messages = [{"role": "user", "content": "What are the atomic masses of carbon and neon?"}]
    before = wait_idle(cluster.workers)
    turn = chat.complete(
        client,
        model=model,
        messages=messages,
        tools=["search"],
        tool_choice={"type": "function", "function": {"name": "search"}},
        max_tokens=80,
        temperature=0,
    )
    assert turn.error is None and turn.calls and turn.calls[0].error is None, turn.calls
    timeline = sgl_conveyor.call_report(turn, 0)["calls"][0]
    dispatched = [u["dispatched_s"] for u in timeline["units"] if u["dispatched_s"] is not None]
    assert dispatched and min(dispatched) < timeline["stream_end_s"], timeline

    follow = client.chat.completions.create(  # the next round offers the same tools
        model=model,
        messages=messages + turn.messages,
        tools=chat.tool_definitions(["search"]),
        max_tokens=4,
        temperature=0,
    )
    after = wait_idle(cluster.workers)
    assert sorted(_deltas(before, after, "requests"))[0] == 0  # both went to one worker
    reused = follow.usage.prompt_tokens_details.cached_tokens
    assert reused >= turn.usage.prompt_tokens + turn.usage.completion_tokens - 2, (
        reused,
        turn.usage,
    )
