"""`sgl-conveyor serve`: the part of the SGLang server's HTTP protocol the frontend uses.

Backed by the embedded engine (and its radix prefix cache), so any program written for a real
SGLang server — `sgl.RuntimeEndpoint(url)`, partial tools with early abort included — runs on a
machine with no GPU. Same routes, request fields, SSE event format and `meta_info` names as the
SGLang server; unknown sampling parameters are refused as the server refuses them. The OpenAI
chat API (`/v1/chat/completions`, `/v1/models`) lives in `chat_api.py`. It never
touches the model itself: every request goes through `Engine.submit`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from sgl_conveyor.backends.chat_api import ChatAPI
from sgl_conveyor.backends.engine_events import engine_events
from sgl_conveyor.backends.worker_routes import router_routes
from sgl_conveyor.sampling import SERVER_SAMPLING_KEYS

SAMPLING_KEYS = SERVER_SAMPLING_KEYS  # the server's `sampling_params` keys
# Accepted but not implemented by the embedded engine: refused when set to a non-default value.
UNSUPPORTED = {
    "stop_regex": (None, [], ()),
    "repetition_penalty": (None, 1.0),
    "ebnf": (None,),
    "structural_tag": (None,),
    "logit_bias": (None, {}),
    "custom_params": (None, {}),
    "beam_width": (None, 0, 1),
    "watermark": (None, False),
    "choice": (None,),
    "no_stop_trim": (None, False),
}


@dataclass(frozen=True)
class Limits:
    """What one client may ask of the server: every request is refused (or cut off) past these.

    None for `max_prompt_tokens` / `max_new_tokens` means the model's context length (the
    server never allows more than that anyway)."""

    max_body_bytes: int = 4 * 2**20  # a larger body is refused with 413, unread
    max_prompt_tokens: int | None = None  # tokens of one prompt (400 beyond)
    max_new_tokens: int | None = None  # sampling_params.max_new_tokens (400 beyond)
    max_n: int = 16  # sampling_params.n
    max_prompts: int = 64  # prompts in one batch request
    max_top_logprobs: int = 20  # top_logprobs_num
    max_stops: int = 64  # stop strings, and stop token ids
    body_timeout_s: float = 30.0  # to receive a whole body, from its first byte (408 after)
    header_timeout_s: float = 10.0  # from connecting (or the previous response) to headers
    keep_alive_s: int = 5  # an idle keep-alive connection is closed after this
    max_connections: int | None = 256  # uvicorn's limit_concurrency: 503 beyond


class BadRequest(ValueError):
    """A request the server refuses (400 unless `status` says otherwise), with the reason."""

    status = 400
    close = False  # also close the connection (the rest of the body is never read)


class TooLarge(BadRequest):
    status = 413
    close = True


class BodyTimeout(BadRequest):
    status = 408
    close = True


class _Gone(Exception):
    """The client disconnected before its request was read: nobody to answer."""


def _number(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = raw.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadRequest(f"sampling_params.{key} must be a finite number, got {_show(value)}")
    return value


def _integer(
    raw: Mapping[str, Any],
    key: str,
    default: int | None,
    lo: int | None = None,
    hi: int | None = None,
    where: str = "sampling_params.",
    why: str = "",
) -> int | None:
    value = raw.get(key)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{where}{key} must be an integer, got {_show(value)}")
    if lo is not None and value < lo:
        raise BadRequest(f"{where}{key} must be >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise BadRequest(f"{where}{key} is {value}; this server allows at most {hi}{why}")
    return value


def _flag(raw: Mapping[str, Any], key: str, where: str = "sampling_params.") -> bool | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, bool):
        raise BadRequest(f"{where}{key} must be true or false, got {_show(value)}")
    return value


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _params(
    raw: Any, top: Mapping[str, Any], limits: Limits, context_len: int, vocab_size: int
) -> SimpleNamespace:
    """Server-style sampling params (+ top-level logprob fields) -> what LocalBackend reads.
    Every field is type- and range-checked here: a malformed one is a 400, never a 500."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise BadRequest(f"sampling_params must be an object, got {_show(raw)}")
    unknown = sorted(set(raw) - SAMPLING_KEYS)
    if unknown:
        raise BadRequest(f"unknown sampling_params keys: {unknown}")
    for key, defaults in UNSUPPORTED.items():
        if key in raw and raw[key] not in defaults:
            raise BadRequest(f"sampling_params.{key} is not supported by this server")
    new_cap = min(limits.max_new_tokens or context_len, context_len)
    why = f" (the model's context is {context_len} tokens)" if new_cap == context_len else ""
    stop = raw.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and not (
        isinstance(stop, list) and all(isinstance(x, str) and x for x in stop)
    ):
        raise BadRequest("sampling_params.stop must be a string or a list of non-empty strings")
    stop_ids = raw.get("stop_token_ids")
    if stop_ids is not None and not (
        isinstance(stop_ids, list) and all(type(t) is int and 0 <= t < vocab_size for t in stop_ids)
    ):
        raise BadRequest(
            f"sampling_params.stop_token_ids must be a list of token ids in [0, {vocab_size})"
        )
    if len(stop or ()) > limits.max_stops or len(stop_ids or ()) > limits.max_stops:
        raise BadRequest(f"at most {limits.max_stops} stop strings and stop token ids")
    regex, schema = raw.get("regex"), raw.get("json_schema")
    if regex is not None and not isinstance(regex, str):
        raise BadRequest("sampling_params.regex must be a string")
    if schema is not None and not isinstance(schema, (str, dict)):
        raise BadRequest("sampling_params.json_schema must be a string or an object")
    for key in ("skip_special_tokens", "spaces_between_special_tokens"):
        _flag(raw, key)
    _integer(raw, "stream_interval", None, lo=1)
    ns = SimpleNamespace(
        max_new_tokens=_integer(raw, "max_new_tokens", 128, lo=0, hi=new_cap, why=why),
        min_new_tokens=_integer(raw, "min_new_tokens", 0, lo=0, hi=new_cap, why=why),
        n=_integer(raw, "n", 1, lo=1, hi=limits.max_n),
        stop=tuple(stop or ()),
        stop_token_ids=tuple(stop_ids or ()),
        temperature=_number(raw, "temperature", 1.0),
        top_p=_number(raw, "top_p", 1.0),
        top_k=_integer(raw, "top_k", -1, lo=-1),
        min_p=_number(raw, "min_p", 0.0),
        frequency_penalty=_number(raw, "frequency_penalty", 0.0),
        presence_penalty=_number(raw, "presence_penalty", 0.0),
        ignore_eos=bool(_flag(raw, "ignore_eos")),
        regex=regex,
        json_schema=schema,
        sampling_seed=_integer(raw, "sampling_seed", None),
        dtype=None,
        stop_regex=None,
        return_logprob=_flag(top, "return_logprob", ""),
        logprob_start_len=_integer(top, "logprob_start_len", None, lo=-1, where=""),
        top_logprobs_num=_integer(
            top, "top_logprobs_num", None, lo=0, hi=limits.max_top_logprobs, where=""
        ),
        return_text_in_logprobs=_flag(top, "return_text_in_logprobs", ""),
    )
    return ns


def _batch(value: Any, size: int, name: str) -> list[Any]:
    if isinstance(value, list):
        if len(value) != size:
            raise BadRequest(f"{name} has {len(value)} entries for {size} prompts")
        return value
    return [value] * size


class ConveyorServer:
    """The HTTP application around one LocalBackend (its engine does all the work)."""

    def __init__(
        self, backend: Any, *, model_path: str | None = None, limits: Limits | None = None
    ):
        self.backend = backend
        self.engine = backend.engine
        self.model_path = model_path or backend.get_model_name()
        self.started = time.time()
        self.limits = limits or Limits()
        self.context_len = self.engine.context_len
        self.vocab_size = self.engine.loaded.vocab_size
        self.max_prompt_tokens = min(
            self.limits.max_prompt_tokens or self.context_len - 1, self.context_len - 1
        )
        # No token is longer than the longest vocabulary entry (in bytes for a byte-level BPE,
        # which bound its characters): a text longer than this many characters has more tokens
        # than allowed, and is refused without being tokenized.
        longest = max(map(len, self.engine.tokenizer.get_vocab(with_added_tokens=True)), default=1)
        self.max_prompt_chars = self.max_prompt_tokens * max(longest, 1)
        self.chat = ChatAPI(self)  # the OpenAI chat API (chat_api.py)
        self.app = Starlette(
            routes=[
                Route("/generate", self.generate, methods=["POST", "PUT"]),
                Route("/get_model_info", self.model_info, methods=["GET"]),
                Route("/model_info", self.model_info, methods=["GET"]),
                Route("/get_server_info", self.server_info, methods=["GET"]),
                Route("/server_info", self.server_info, methods=["GET"]),
                Route("/flush_cache", self.flush_cache, methods=["GET", "POST"]),
                Route("/abort_request", self.abort_request, methods=["POST"]),
                Route("/health", self.health, methods=["GET"]),
                Route("/health_generate", self.health_generate, methods=["GET"]),
                Route("/v1/chat/completions", self.chat.chat_completions, methods=["POST"]),
                Route("/v1/models", self.chat.models, methods=["GET"]),
                *router_routes(self.engine),
            ]
        )

    # --- routes -------------------------------------------------------------------------------

    async def model_info(self, request: Request) -> Response:
        return JSONResponse(
            {
                "model_path": self.model_path,
                "tokenizer_path": self.model_path,
                "is_generation": True,
                "preferred_sampling_params": None,
                "weight_version": "default",
                "served_model_name": self.model_path,
                "model_type": getattr(self.engine.model.config, "model_type", None),
                "architectures": getattr(self.engine.model.config, "architectures", None),
            }
        )

    async def server_info(self, request: Request) -> Response:
        import sglang

        loaded = self.engine.loaded
        return JSONResponse(
            {
                "model_path": self.model_path,
                "served_model_name": self.model_path,
                "served_by": "sgl-conveyor serve",
                "version": getattr(sglang, "__version__", "unknown"),
                "device": str(loaded.device),
                "dtype": str(loaded.dtype).replace("torch.", ""),
                "max_batch": self.engine.max_batch,
                "max_running_requests": self.engine.max_batch,  # the names a router reads
                "dp_size": 1,
                "context_length": self.engine.context_len,
                "uptime_s": round(time.time() - self.started, 3),
                "internal_states": [self.engine.stats()],
            }
        )

    async def health(self, request: Request) -> Response:
        return Response(status_code=200)

    async def health_generate(self, request: Request) -> Response:
        params = _params(
            {"max_new_tokens": 1, "temperature": 0}, {}, self.limits, self.context_len, 1
        )
        await asyncio.to_thread(self._run_one, "Hi", None, params, None)
        return Response(status_code=200)

    async def flush_cache(self, request: Request) -> Response:
        stats = self.engine.stats()
        running = stats["running"] + stats["waiting"]
        if running:
            return Response(f"Cache not flushed: {running} requests are running.", status_code=400)
        await asyncio.to_thread(self.engine.flush_cache)
        return Response("Cache flushed.", status_code=200)

    async def abort_request(self, request: Request) -> Response:
        try:
            body = await self._json(request)
        except _Gone:
            return Response(status_code=400)
        except BadRequest as e:
            return _error(e.status, str(e), close=e.close)
        rid = body.get("rid")
        if body.get("abort_all") is True:
            self.engine.abort_all()
        elif isinstance(rid, str) and rid:
            self.engine.abort(rid)
        elif rid is not None:
            return _error(400, "rid must be a string")
        return Response(status_code=200)

    async def generate(self, request: Request) -> Response:
        try:
            body = await self._json(request)
            jobs, single, n, stream = self._jobs(body)
            # Tokenizing (and compiling a grammar) can take a while: never on the event loop.
            handles = await asyncio.to_thread(self._submit_all, jobs)
        except _Gone:
            return Response(status_code=400)  # nobody reads it
        except BadRequest as e:
            return _error(e.status, str(e), close=e.close)
        except (ValueError, TypeError) as e:  # refused by the backend or the engine
            return _error(400, str(e))
        if stream:
            return StreamingResponse(
                self._sse(handles[0]),
                media_type="text/event-stream",
                headers={"X-Accel-Buffering": "no"},
            )
        try:
            results = await self._results(request, handles)
        except Exception as e:  # the engine failed the request
            return _error(500, f"{type(e).__name__}: {e}", kind="InternalServerError")
        if results is None:
            return Response(status_code=400)  # the client went away: nobody reads it
        out = [{"text": t, "meta_info": m} for t, m in results]
        return JSONResponse(out[0] if single and n == 1 else out)

    # --- helpers ------------------------------------------------------------------------------

    async def _json(self, request: Request) -> dict[str, Any]:
        """The request's JSON body, read incrementally up to `max_body_bytes` (whatever
        Content-Length says, chunked bodies too) within `body_timeout_s`."""
        limit = self.limits.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise TooLarge(f"the body has {declared} bytes; this server accepts at most {limit}")
        buf = bytearray()

        async def read() -> None:
            async for chunk in request.stream():
                if len(buf) + len(chunk) > limit:
                    raise TooLarge(f"the body is over {limit} bytes, the most this server accepts")
                buf.extend(chunk)

        try:
            await asyncio.wait_for(read(), self.limits.body_timeout_s)
        except asyncio.TimeoutError as e:
            raise BodyTimeout(
                f"the body was not received within {self.limits.body_timeout_s:g} s"
            ) from e
        except ClientDisconnect as e:
            raise _Gone from e
        if not buf:
            return {}
        if len(buf) > 2**16:
            return await asyncio.to_thread(_parse, buf)
        return _parse(buf)

    def _jobs(self, body: Mapping[str, Any]) -> tuple[list[tuple[Any, Any, Any]], bool, int, bool]:
        """(prompt, params, rid) per engine request, whether the prompt was single (not a
        batch), n, and whether to stream. Raises BadRequest."""
        if body.get("image_data"):
            raise BadRequest("images are not supported by this server")
        stream = _flag(body, "stream", "")
        prompts, single = self._prompts(body)
        size = len(prompts)
        raw_params = _batch(body.get("sampling_params"), size, "sampling_params")
        params = [
            _params(p, body, self.limits, self.context_len, self.vocab_size) for p in raw_params
        ]
        rids = body.get("rid")
        rids = _batch(rids, size, "rid") if isinstance(rids, list) else [rids] * size
        if not all(r is None or (isinstance(r, str) and r) for r in rids):
            raise BadRequest("rid must be a string, or a list of strings for a batch")
        if size > 1 and rids[0] is not None and len(set(rids)) != size:
            raise BadRequest("rid must be a list of distinct ids for a batch")
        n = params[0].n
        if n != 1 and (size != 1 or stream):
            raise BadRequest("n > 1 is supported for one prompt, without streaming")
        if stream and size != 1:
            raise BadRequest("streaming supports one prompt per request")
        if n != 1:
            return [(prompts[0], _seeded(params[0], i), None) for i in range(n)], single, n, False
        return list(zip(prompts, params, rids, strict=True)), single, 1, bool(stream)

    def _prompts(self, body: Mapping[str, Any]) -> tuple[list[str | list[int]], bool]:
        """The prompts of a request, and whether it was a single prompt (not a batch)."""
        if body.get("text") is not None:
            text = body["text"]
            prompts = text if isinstance(text, list) else [text]
            if not prompts or not all(isinstance(p, str) for p in prompts):
                raise BadRequest("text must be a string or a non-empty list of strings")
            self._check_count(len(prompts))
            for p in prompts:
                if len(p) > self.max_prompt_chars:
                    raise BadRequest(
                        f"the prompt has {len(p)} characters, more than the "
                        f"{self.max_prompt_tokens} tokens this server accepts"
                    )
            return list(prompts), not isinstance(text, list)
        ids = body.get("input_ids")
        if not ids or not isinstance(ids, list):
            raise BadRequest("give text or input_ids")
        batch = isinstance(ids[0], list)
        seqs = ids if batch else [ids]
        self._check_count(len(seqs))
        for seq in seqs:
            if not isinstance(seq, list) or not seq:
                raise BadRequest(
                    "input_ids must be a non-empty list of token ids, or a list of such lists"
                )
            if len(seq) > self.max_prompt_tokens:
                raise BadRequest(
                    f"the prompt has {len(seq)} tokens; this server accepts at most "
                    f"{self.max_prompt_tokens} (the model's context is {self.context_len})"
                )
            for t in seq:
                if type(t) is not int or not 0 <= t < self.vocab_size:
                    raise BadRequest(
                        f"input_ids holds {_show(t)}: token ids are integers in "
                        f"[0, {self.vocab_size})"
                    )
        return [list(s) for s in seqs], not batch

    def _check_count(self, size: int) -> None:
        if size > self.limits.max_prompts:
            raise BadRequest(
                f"the request has {size} prompts; this server accepts at most "
                f"{self.limits.max_prompts}"
            )

    def _submit_all(self, jobs: Sequence[tuple[Any, Any, Any]]) -> list[Any]:
        """Submit every request, or none: one refused cancels those already submitted."""
        handles: list[Any] = []
        try:
            for prompt, params, rid in jobs:
                handles.append(self._submit(prompt, params, rid))
        except BaseException:
            for h in handles:
                h.cancel()
            raise
        return handles

    async def _results(self, request: Request, handles: Sequence[Any]) -> list[Any] | None:
        """Every handle's (text, meta), or None if the client disconnected first: then the
        requests are cancelled (within one decode step; their KV still goes to the cache)."""
        waiting = _in_thread(lambda: [h.result() for h in handles])
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            await asyncio.wait({waiting, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not waiting.done():  # disconnected, or this task was cancelled
                for h in handles:
                    h.cancel()
        if not waiting.done():
            return None
        return waiting.result()

    def _submit(self, prompt: str | Sequence[int], params: Any, rid: str | None):
        engine_params, _ = self.backend.sampling_params(params)
        return self.engine.submit(
            prompt, engine_params, rid=rid, max_prompt_tokens=self.max_prompt_tokens
        )

    def _run_one(self, prompt: Any, _unused: Any, params: Any, rid: str | None):
        return self._submit(prompt, params, rid).result()

    async def _sse(self, handle: Any) -> AsyncIterator[bytes]:
        """SGLang's event stream: cumulative `text` and `meta_info` per event, then [DONE].

        If the client goes away, the request is cancelled (its KV still goes into the cache)."""
        text = ""
        try:
            async for item in engine_events(handle, f"serve-{handle.id[:8]}"):
                if isinstance(item, Exception):
                    err = {"message": str(item), "type": type(item).__name__, "code": 500}
                    yield b"data: " + json.dumps({"error": err}).encode() + b"\n\n"
                    break
                text += item.text
                # Cumulative text, but logprob lists of this event's tokens only (with
                # `output_token_logprobs_length` the total), as SGLang's server sends them.
                event = {"text": text, "meta_info": item.meta, "index": 0}
                yield b"data: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"
        finally:
            if not handle.finished:
                handle.cancel()


def _seeded(params: SimpleNamespace, i: int) -> SimpleNamespace:
    p = SimpleNamespace(**vars(params))
    p.n = 1
    if p.sampling_seed is not None:
        p.sampling_seed = int(p.sampling_seed) + i
    return p


def _parse(raw: bytes | bytearray) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadRequest(f"the body is not valid JSON: {getattr(e, 'msg', e)}") from e
    except RecursionError as e:
        raise BadRequest("the body is nested too deeply") from e
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _in_thread(fn: Callable[[], Any]) -> asyncio.Future[Any]:
    """Run a blocking wait on its own daemon thread (not the loop's small default executor,
    which long requests would exhaust); the future gets its result."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            result = fn()
        except BaseException as e:
            loop.call_soon_threadsafe(settle, None, e)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=run, name="serve-wait", daemon=True).start()
    return future


async def _disconnected(request: Request) -> None:
    """Return when the client disconnects (the body has been read: only that comes now)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
        await asyncio.sleep(0.05)


_KINDS = {400: "BadRequest", 408: "RequestTimeout", 413: "RequestEntityTooLarge"}  # stable names


def _error(status: int, message: str, *, kind: str | None = None, close: bool = False):
    """The error shape of SGLang's server: {"error": {"message", "type", "code"}}."""
    kind = kind or _KINDS.get(status) or HTTPStatus(status).phrase.replace(" ", "")
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": status}},
        status_code=status,
        headers={"Connection": "close"} if close else None,
    )


def _protocol(header_timeout_s: float) -> type:
    """uvicorn's h11 protocol, with a deadline for each request's headers: a connection that
    sends nothing, or part of a request line or of its headers, is closed after
    `header_timeout_s` (uvicorn alone keeps it open forever). The body has its own deadline
    (`Limits.body_timeout_s`), and idle keep-alive connections uvicorn's `timeout_keep_alive`."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def handle_events(self) -> None:
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle:  # a request's headers have arrived
                self._disarm()

        def on_response_complete(self) -> None:
            self._arm()  # before: a pipelined request, started in there, disarms it
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout_s, self._expire)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expire(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return Protocol


def serve(
    backend: Any,
    host: str = "127.0.0.1",
    port: int = 30000,
    *,
    log_level: str = "warning",
    ready: threading.Event | None = None,
    limits: Limits | None = None,
) -> Any:
    """Run the server (blocking). Returns the uvicorn Server when it stops. `limits` bounds
    what one request may ask (see `Limits`; the defaults when None)."""
    import uvicorn

    limits = limits or Limits()
    app = ConveyorServer(backend, limits=limits).app
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        http=_protocol(limits.header_timeout_s),
        timeout_keep_alive=limits.keep_alive_s,
        limit_concurrency=limits.max_connections,
    )
    server = uvicorn.Server(config)
    if ready is not None:
        original = server.startup

        async def startup(sockets=None):
            await original(sockets)
            ready.set()

        server.startup = startup
    server.run()
    return server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="sgl-conveyor serve",
        description="An SGLang-protocol HTTP server on the embedded engine (CPU or CUDA): point "
        "sgl.RuntimeEndpoint(url) at it, or an OpenAI client at url/v1 (chat completions).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=30000)
    p.add_argument("--model", default=None, help="a model folder or .gguf (default: SmolLM2)")
    p.add_argument("--dtype", default="auto", help="auto, float32 or bfloat16")
    p.add_argument("--max-batch", type=int, default=16, help="sequences decoded together")
    p.add_argument("--cache-mb", type=int, default=512, help="prefix cache budget (MiB)")
    p.add_argument(
        "--max-pin-s",
        type=float,
        default=60.0,
        help="longest a tool call's prefix stays pinned while its tool runs (0: never)",
    )
    p.add_argument("--log-level", default="warning")
    d = Limits()
    g = p.add_argument_group("request limits (every client is assumed hostile)")
    g.add_argument(
        "--max-body-mb",
        type=float,
        default=d.max_body_bytes / 2**20,
        help="largest request body, MiB (413 beyond; default %(default)g)",
    )
    g.add_argument(
        "--max-prompt-tokens",
        type=int,
        default=None,
        help="tokens of one prompt (400 beyond; default: the model's context)",
    )
    g.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="largest max_new_tokens (400 beyond; default: the model's context)",
    )
    g.add_argument("--max-n", type=int, default=d.max_n, help="largest n (default %(default)s)")
    g.add_argument(
        "--max-prompts",
        type=int,
        default=d.max_prompts,
        help="prompts in one batch request (default %(default)s)",
    )
    g.add_argument(
        "--body-timeout",
        type=float,
        default=d.body_timeout_s,
        help="seconds to receive a whole body (408 after; default %(default)g)",
    )
    g.add_argument(
        "--header-timeout",
        type=float,
        default=d.header_timeout_s,
        help="seconds for a request's headers to arrive (default %(default)g)",
    )
    g.add_argument(
        "--keep-alive",
        type=int,
        default=d.keep_alive_s,
        help="idle keep-alive connections are closed after this (s; default %(default)s)",
    )
    g.add_argument(
        "--max-connections",
        type=int,
        default=d.max_connections,
        help="concurrent connections and requests (503 beyond; default %(default)s)",
    )
    args = p.parse_args(argv)
    limits = Limits(
        max_body_bytes=int(args.max_body_mb * 2**20),
        max_prompt_tokens=args.max_prompt_tokens,
        max_new_tokens=args.max_new_tokens,
        max_n=args.max_n,
        max_prompts=args.max_prompts,
        body_timeout_s=args.body_timeout,
        header_timeout_s=args.header_timeout,
        keep_alive_s=args.keep_alive,
        max_connections=args.max_connections,
    )

    from sgl_conveyor.backends.local import LocalBackend

    t0 = time.perf_counter()
    backend = LocalBackend(
        args.model,
        dtype=args.dtype,
        max_batch=args.max_batch,
        cache_budget_bytes=args.cache_mb * 2**20,
        max_pin_s=args.max_pin_s,
    )
    loaded = backend.engine.loaded
    url = f"http://{args.host}:{args.port}"
    ready = threading.Event()

    def announce() -> None:
        if ready.wait(120):
            print(
                f"sgl-conveyor serve: {backend.get_model_name()} on {loaded.device} "
                f"({str(loaded.dtype).replace('torch.', '')}), ready in "
                f"{time.perf_counter() - t0:.1f} s, listening on {url}",
                flush=True,
            )

    threading.Thread(target=announce, daemon=True).start()
    serve(backend, args.host, args.port, log_level=args.log_level, ready=ready, limits=limits)
    backend.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
