"""`sgl-conveyor serve` against hostile clients (issue 11, items 4, 5 and 10), over loopback.

Two servers on the session's model: one with the default `Limits`, one with small ones (so
that a test reaches them with little traffic). Partial, slow and disconnecting clients are raw
sockets; the rest is `requests`.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time

import pytest
import requests

from sgl_conveyor.backends.server import Limits, serve

pytestmark = pytest.mark.model

STRICT = Limits(
    max_body_bytes=64 * 2**10,
    max_prompt_tokens=100,
    max_new_tokens=64,
    max_n=2,
    max_prompts=4,
    body_timeout_s=1.0,
    header_timeout_s=1.5,
    keep_alive_s=1,
    max_connections=12,
)


def _start(backend, limits):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ready = threading.Event()
    kwargs = {"ready": ready, "limits": limits}
    threading.Thread(
        target=serve, args=(backend, "127.0.0.1", port), kwargs=kwargs, daemon=True
    ).start()
    assert ready.wait(60), "the server did not start"
    return port


@pytest.fixture(scope="module")
def default_port(local_backend):
    return _start(local_backend, None)


@pytest.fixture(scope="module")
def strict_port(local_backend):
    return _start(local_backend, STRICT)


def _url(port):
    return f"http://127.0.0.1:{port}"


def _stats(port):
    return requests.get(_url(port) + "/server_info", timeout=10).json()["internal_states"][0]


def _wait_idle(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = _stats(port)
        if s["running"] == 0 and s["waiting"] == 0:
            return s
        time.sleep(0.05)
    raise AssertionError(f"the engine still runs requests after {timeout} s: {s}")


def _connect(port, timeout=10.0):
    c = socket.create_connection(("127.0.0.1", port))
    c.settimeout(timeout)
    return c


def _head(port, length, extra=b""):
    return (
        b"POST /generate HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
        b"%sContent-Length: %d\r\n\r\n" % (port, extra, length)
    )


def _response(c):
    """(status, headers text, body bytes) of one response read off a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(65536)
        if not chunk:
            raise AssertionError(f"the connection closed before a response: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        (
            int(v)
            for k, _, v in (h.partition(b":") for h in head.split(b"\r\n")[1:])
            if k.strip().lower() == b"content-length"
        ),
        0,
    )
    while len(rest) < length:
        chunk = c.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, head.decode(), rest[:length]


def _closed_within(c, seconds):
    """True if the server closes `c` within `seconds` (recv gives EOF or a reset)."""
    c.settimeout(seconds)
    try:
        while c.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def _error_of(body):
    err = json.loads(body)["error"]
    assert set(err) == {"message", "type", "code"}
    return err


# --- class 4: request size -------------------------------------------------------------------


def test_a_body_over_the_limit_is_refused_at_once_with_413(default_port):
    """50 MB declared: refused from the headers (the body is never read), connection closed."""
    c = _connect(default_port)
    t0 = time.perf_counter()
    c.sendall(_head(default_port, 50 * 2**20) + b'{"text": "' + b"a" * 65536)
    status, head, body = _response(c)
    elapsed = time.perf_counter() - t0
    assert status == 413 and elapsed < 2.0, (status, elapsed)
    err = _error_of(body)
    assert err["code"] == 413 and "at most 4194304" in err["message"]
    assert "connection: close" in head.lower()
    assert _closed_within(c, 5)
    c.close()


def test_a_chunked_body_is_cut_off_at_the_limit(strict_port):
    """No Content-Length to trust: the server counts while it reads and stops at 64 KiB."""
    c = _connect(strict_port)
    c.sendall(
        b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    sent = {"bytes": 0}

    def pump():  # at most 4 MiB, far past the limit; stops when the server closes
        piece = b"a" * 16384
        try:
            for _ in range(256):
                c.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sent["bytes"] += len(piece)
        except OSError:
            pass

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    status, _, body = _response(c)
    assert status == 413 and _error_of(body)["code"] == 413
    t.join(10)
    c.close()
    assert sent["bytes"] < 4 * 2**20  # the server stopped reading long before the end


def test_health_answers_while_a_huge_prompt_is_tokenized_and_refused(
    default_port, local_backend, monkeypatch
):
    """A streamed prompt of 619 k characters (under the body limit, over the model's 8192
    tokens) is tokenized off the event loop: /health keeps answering, then a clear 400.
    Checked by mechanism (where the tokenizer ran, /health answering meanwhile), not by how
    many milliseconds /health took on this machine."""
    import asyncio

    prompts = local_backend.engine.prompts
    encode = prompts.encode
    on_loop: list[bool] = []

    def watched(text):
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        time.sleep(0.5)  # a slow tokenizer: /health must answer meanwhile
        return encode(text)

    monkeypatch.setattr(prompts, "encode", watched)
    text = "".join(f"w{i} " for i in range(90_000))  # 619 k chars, 530 k tokens
    payload = {"text": text, "stream": True, "sampling_params": {"max_new_tokens": 1}}
    out = {}

    def big():
        out["r"] = requests.post(_url(default_port) + "/generate", json=payload, timeout=120)

    t = threading.Thread(target=big)
    answered = 0
    t.start()
    while t.is_alive():
        if not on_loop:
            time.sleep(0.01)  # not tokenizing yet
            continue
        assert requests.get(_url(default_port) + "/health", timeout=30).status_code == 200
        answered += t.is_alive()
        time.sleep(0.02)
    t.join()
    r = out["r"]
    assert r.status_code == 400, r.text[:200]
    assert "tokens;" in _error_of(r.content)["message"]  # counted, so it was tokenized
    assert on_loop == [False], "the prompt was tokenized on the event loop"
    assert answered >= 2, "/health did not answer while the prompt was tokenized"


def test_a_prompt_over_max_prompt_tokens_gets_400(strict_port):
    url = _url(strict_port) + "/generate"
    r = requests.post(url, json={"text": "hello " * 300}, timeout=30)
    assert r.status_code == 400 and "at most 100" in _error_of(r.content)["message"]
    r = requests.post(url, json={"input_ids": [1] * 101}, timeout=30)
    assert r.status_code == 400 and "at most 100" in _error_of(r.content)["message"]
    r = requests.post(url, json={"text": "x" * 9000}, timeout=30)  # refused untokenized
    assert r.status_code == 400
    ok = {"text": "hello", "sampling_params": {"max_new_tokens": 1}}
    assert requests.post(url, json=ok, timeout=30).status_code == 200


# --- class 5: disconnects and caps -----------------------------------------------------------


def test_a_non_streaming_request_is_cancelled_when_its_client_disconnects(default_port):
    before = _wait_idle(default_port)["generated_tokens"]
    body = json.dumps(
        {
            "text": "Write a very long story about a dragon.",
            "sampling_params": {"max_new_tokens": 2000, "temperature": 0, "ignore_eos": True},
        }
    ).encode()
    c = _connect(default_port)
    c.sendall(_head(default_port, len(body)) + body)
    deadline = time.time() + 20
    while _stats(default_port)["running"] == 0:  # (tokens are counted when a request ends)
        assert time.time() < deadline, "the request never started"
        time.sleep(0.05)
    time.sleep(0.5)
    c.close()
    after = _wait_idle(default_port, timeout=10)["generated_tokens"]
    assert after - before < 300  # not the 2000 tokens it asked for


@pytest.mark.parametrize(
    "params, says",
    [
        ({"max_new_tokens": 10**9}, "at most 8192"),
        ({"max_new_tokens": 1e9}, "at most 8192"),
        ({"n": 10**9}, "at most 16"),
        ({"max_new_tokens": -1}, ">= 0"),
    ],
)
def test_max_new_tokens_and_n_are_capped(default_port, params, says):
    r = requests.post(
        _url(default_port) + "/generate",
        json={"text": "hi", "sampling_params": params},
        timeout=10,
    )
    assert r.status_code == 400 and says in _error_of(r.content)["message"], r.text


def test_configured_caps_on_max_new_tokens_and_n(strict_port):
    url = _url(strict_port) + "/generate"
    r = requests.post(url, json={"text": "hi", "sampling_params": {"max_new_tokens": 65}})
    assert r.status_code == 400 and "at most 64" in r.text
    r = requests.post(url, json={"text": "hi", "sampling_params": {"n": 3}}, timeout=10)
    assert r.status_code == 400 and "at most 2" in r.text
    r = requests.post(url, json={"text": ["a"] * 5}, timeout=10)
    assert r.status_code == 400 and "at most 4" in r.text
    sp = {"n": 2, "max_new_tokens": 2, "temperature": 0}
    r = requests.post(url, json={"text": "hi", "sampling_params": sp}, timeout=30)
    assert r.status_code == 200 and len(r.json()) == 2


# --- class 10: malformed input, partial and idle connections ---------------------------------

SELF_REF = {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}
MALFORMED = {
    "a list as sampling_params": {"text": "hi", "sampling_params": [1]},
    "a string as sampling_params": {"text": "hi", "sampling_params": "x"},
    "stop=5": {"text": "hi", "sampling_params": {"stop": 5}},
    'n="x"': {"text": "hi", "sampling_params": {"n": "x"}},
    "a dict rid": {"text": "hi", "rid": {"a": 1}},
    "string input_ids": {"input_ids": ["a"]},
    "negative input_ids": {"input_ids": [-1]},
    "out-of-vocabulary input_ids": {"input_ids": [10**9]},
    "input_ids nested wrong": {"input_ids": [[1, [2]]]},
    "input_ids half nested": {"input_ids": [1, [2]]},
    "a self-referencing json_schema": {"text": "hi", "sampling_params": {"json_schema": SELF_REF}},
    "an impossible regex": {"text": "hi", "sampling_params": {"regex": "[^\\x00-\\U0010FFFF]"}},
    "stop_token_ids out of vocabulary": {"text": "hi", "sampling_params": {"stop_token_ids": [-5]}},
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_gets_400_in_the_error_shape(default_port, body):
    sp = body.get("sampling_params")
    if isinstance(sp, dict):
        body = {**body, "sampling_params": {"max_new_tokens": 2, **sp}}
    r = requests.post(_url(default_port) + "/generate", json=body, timeout=30)
    assert r.status_code == 400, r.text[:300]
    assert _error_of(r.content)["code"] == 400


def test_a_deeply_nested_body_gets_400(default_port):
    deep = b'{"text": "hi", "sampling_params": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r = requests.post(_url(default_port) + "/generate", data=deep, timeout=30)
    assert r.status_code == 400 and "nested" in _error_of(r.content)["message"]


def test_a_hostile_request_does_not_fail_the_requests_in_flight(default_port):
    """Out-of-vocabulary ids and an impossible regex used to fail the engine's step, and with
    it every request running: a concurrent stream must finish normally."""
    body = {
        "text": "Tell me about the sea.",
        "stream": True,
        "sampling_params": {"max_new_tokens": 40, "temperature": 0, "ignore_eos": True},
    }
    url = _url(default_port) + "/generate"
    with requests.post(url, json=body, stream=True, timeout=60) as r:
        lines = r.iter_lines()
        next(line for line in lines if line.startswith(b"data: "))
        for hostile in ("out-of-vocabulary input_ids", "an impossible regex"):
            bad = {**MALFORMED[hostile]}
            bad["sampling_params"] = {"max_new_tokens": 2, **bad.get("sampling_params", {})}
            assert requests.post(url, json=bad, timeout=30).status_code == 400
        events = [line for line in lines if line.startswith(b"data: ")]
    assert events[-1] == b"data: [DONE]"
    last = json.loads(events[-2][len(b"data: ") :])
    assert "error" not in last and last["meta_info"]["finish_reason"]["type"] == "length"


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_a_disconnect_during_the_body_read_logs_no_traceback(default_port):
    records = _Records()
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(records)
    try:
        for _ in range(3):
            c = _connect(default_port)
            c.sendall(_head(default_port, 1000) + b'{"text": "hel')
            time.sleep(0.2)
            c.close()
        time.sleep(0.5)
        assert requests.get(_url(default_port) + "/health", timeout=10).status_code == 200
    finally:
        logger.removeHandler(records)
    tracebacks = [r for r in records.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not tracebacks, [r.getMessage() for r in tracebacks]


def test_a_slow_body_times_out_with_408(strict_port):
    c = _connect(strict_port)
    c.sendall(_head(strict_port, 100) + b'{"text": ')  # and then nothing
    t0 = time.perf_counter()
    status, _, body = _response(c)
    assert status == 408 and _error_of(body)["code"] == 408
    assert time.perf_counter() - t0 < 10  # the 1 s body limit, with room for a loaded machine
    assert _closed_within(c, 3)
    c.close()


@pytest.mark.parametrize("sent", [b"", b"POST /gene", b"POST /generate HTTP/1.1\r\nHost: x\r\n"])
def test_an_idle_or_partial_connection_is_closed(strict_port, sent):
    c = _connect(strict_port)
    c.sendall(sent)
    assert _closed_within(c, 4), "the server still holds the connection"
    c.close()


def test_an_idle_keep_alive_connection_is_closed(strict_port):
    c = _connect(strict_port)
    c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _response(c)[0] == 200
    assert _closed_within(c, 4)
    c.close()


def test_connections_past_the_limit_get_503(strict_port):
    idle = [_connect(strict_port) for _ in range(STRICT.max_connections)]
    try:
        c = _connect(strict_port)
        c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _response(c)[0] == 503
        c.close()
    finally:
        for s in idle:
            s.close()
    time.sleep(0.2)
    assert requests.get(_url(strict_port) + "/health", timeout=10).status_code == 200
