"""`sgl-conveyor serve` driven by sglang's own client, `sgl.RuntimeEndpoint`, over loopback HTTP.

The server runs in this process on the session's model (one load); every request goes through
real HTTP, the SGLang protocol, and the engine.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests
import sglang as sgl
from picky import picky_registry

import sgl_conveyor
from sgl_conveyor import ArgumentRejectedError
from sgl_conveyor.backends.server import serve
from sgl_conveyor.backends.sglang_server import ConveyorEndpoint, stream_generate
from sgl_conveyor.eval.router_cluster import wait_idle

pytestmark = pytest.mark.model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server_url(local_backend):
    port = _free_port()
    ready = threading.Event()
    holder = {}

    def run():
        holder["server"] = serve(local_backend, "127.0.0.1", port, ready=ready)

    t = threading.Thread(target=run, name="test-serve", daemon=True)
    t.start()
    assert ready.wait(60), "the server did not start"
    yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def endpoint(server_url):
    return sgl.RuntimeEndpoint(server_url)


def _idle(url):
    return wait_idle([url])[0]


def test_the_client_picks_the_models_chat_template(endpoint):
    assert endpoint.get_chat_template().name == "chatml"


@sgl.function
def qa(s, question):
    s += sgl.user(question)
    s += sgl.assistant(sgl.gen("answer", max_tokens=12, temperature=0))


def test_gen_over_http_equals_the_embedded_backend(endpoint, local_backend):
    over_http = qa.run(question="Name a fruit.", backend=endpoint)
    local = qa.run(question="Name a fruit.", backend=local_backend)
    assert over_http["answer"] == local["answer"] and over_http["answer"]
    meta = over_http.get_meta_info("answer")
    assert meta["completion_tokens"] > 0 and "cached_tokens" in meta


def test_streaming_with_text_iter(endpoint):
    st = qa.run(question="Count to five.", backend=endpoint, stream=True)
    pieces = list(st.text_iter("answer"))
    assert len(pieces) > 3
    st.sync()


def test_select_over_http(endpoint):
    @sgl.function
    def pick(s):
        s += sgl.user("Is the sky blue on a clear day? Answer yes or no.")
        s += sgl.assistant(sgl.select("yn", choices=["yes", "no"]))

    st = pick.run(backend=endpoint)
    assert st["yn"] in ("yes", "no")


def test_fork_and_join_over_http(endpoint):
    @sgl.function
    def two(s):
        s += sgl.user("Say something short.")
        s.sync()
        forks = s.fork(2)
        forks += sgl.assistant(sgl.gen("a", max_tokens=6, temperature=0))
        forks.join()

    st = two.run(backend=endpoint)
    assert len(st["a"]) == 2 and st["a"][0] == st["a"][1]


def test_closing_a_stream_aborts_the_request_on_the_server(endpoint, server_url):
    before = _idle(server_url)["generated_tokens"]

    class S:  # the two fields stream_generate reads of an executor
        text_ = "Write a very long story about a dragon."
        images_ = ()

    sp = sgl.gen("x", max_tokens=400, temperature=0, ignore_eos=True).sampling_params
    sp.stop = ()
    stream = stream_generate(endpoint, S(), sp)
    for _, _ in zip(range(3), stream, strict=False):
        pass
    stream.close()
    after = _idle(server_url)["generated_tokens"]
    assert after - before < 60  # not the 400 tokens the request asked for


def test_a_partial_tool_aborts_the_servers_decoding_at_the_first_bad_unit(endpoint, server_url):
    reg = picky_registry()

    @sgl.function
    def program(s):
        s += sgl.user("Write ten short lines about the sea.")
        s += sgl.assistant(
            sgl.partial_tool("picky", name="call", registry=reg, max_tokens=300, ignore_eos=True)
        )

    before = _idle(server_url)["generated_tokens"]
    st = program.run(backend=endpoint)
    assert isinstance(st["call_result"], ArgumentRejectedError)
    after = _idle(server_url)["generated_tokens"]
    report = sgl_conveyor.call_report(st, "call")["calls"][0]
    assert report["aborted_s"] is not None
    assert after - before < 100  # decoding stopped at the first line, not at 300 tokens


def test_the_follow_up_gen_after_reinjection_is_served_from_the_cache(endpoint):
    from sgl_conveyor.programs.search import research

    st = research.run(question="How many people live in Madrid?", backend=endpoint)
    assert not isinstance(st["call_result"], Exception), st["call_result"]
    meta = st.get_meta_info("answer")
    assert meta["cached_tokens"] / meta["prompt_tokens"] >= 0.95, meta


def test_concurrent_streams_interleave(server_url):
    first: list[float] = []
    ends: list[float] = []
    lock = threading.Lock()

    def one(i):
        ep = ConveyorEndpoint(server_url)

        class S:
            text_ = f"Tell a story number {i}."
            images_ = ()

        sp = sgl.gen("x", max_tokens=24, temperature=0, ignore_eos=True).sampling_params
        sp.stop = ()
        got_first = False
        for _ in ep.generate_stream(S(), sp):
            if not got_first:
                with lock:
                    first.append(time.perf_counter())
                got_first = True
        with lock:
            ends.append(time.perf_counter())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(ends) == 4
    assert max(first) < min(ends)  # every stream had started before any finished


def test_bad_requests_get_the_servers_error_shape(server_url):
    r = requests.post(
        server_url + "/generate", json={"text": "x", "sampling_params": {"foo": 1}}, timeout=10
    )
    assert r.status_code == 400 and "unknown sampling_params keys" in r.json()["error"]["message"]
    r = requests.post(server_url + "/generate", data=b"{not json", timeout=10)
    assert r.status_code == 400
    assert requests.get(server_url + "/health", timeout=10).status_code == 200


def test_streamed_logprobs_are_increments_as_sglang_sends_them(server_url):
    body = {
        "text": "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n",
        "sampling_params": {"max_new_tokens": 8, "temperature": 0, "ignore_eos": True},
        "return_logprob": True,
        "stream": True,
    }
    seen, events = 0, 0
    with requests.post(server_url + "/generate", json=body, stream=True, timeout=60) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            meta = json.loads(line[len(b"data: ") :])["meta_info"]
            events += 1
            seen += len(meta["output_token_logprobs"])  # this chunk's tokens only
            assert meta["output_token_logprobs_length"] == meta["completion_tokens"] == seen
    assert events > 1 and seen == 8
