"""`sgl-conveyor serve`: the part of the SGLang server's HTTP protocol the frontend uses.

Backed by the embedded engine (and its radix prefix cache), so any program written for a real
SGLang server — `sgl.RuntimeEndpoint(url)`, partial tools with early abort included — runs on a
machine with no GPU. Same routes, request fields, SSE event format and `meta_info` names as the
SGLang server; unknown sampling parameters are refused as the server refuses them. It never
touches the model itself: every request goes through `Engine.submit`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

# The SGLang server's `sampling_params` keys (sglang/srt/sampling/sampling_params.py).
SAMPLING_KEYS = frozenset(
    {
        "max_new_tokens",
        "stop",
        "stop_token_ids",
        "stop_regex",
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "frequency_penalty",
        "presence_penalty",
        "repetition_penalty",
        "min_new_tokens",
        "n",
        "json_schema",
        "regex",
        "ebnf",
        "structural_tag",
        "ignore_eos",
        "skip_special_tokens",
        "spaces_between_special_tokens",
        "no_stop_trim",
        "stream_interval",
        "logit_bias",
        "sampling_seed",
        "custom_params",
        "beam_width",
        "watermark",
        "choice",
    }
)
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


class BadRequest(ValueError):
    """A request the server refuses (400), with the reason."""


def _params(raw: Mapping[str, Any] | None, top: Mapping[str, Any]) -> SimpleNamespace:
    """Server-style sampling params (+ top-level logprob fields) -> what LocalBackend reads."""
    raw = dict(raw or {})
    unknown = sorted(set(raw) - SAMPLING_KEYS)
    if unknown:
        raise BadRequest(f"unknown sampling_params keys: {unknown}")
    for key, defaults in UNSUPPORTED.items():
        if key in raw and raw[key] not in defaults:
            raise BadRequest(f"sampling_params.{key} is not supported by this server")
    ns = SimpleNamespace(
        max_new_tokens=raw.get("max_new_tokens", 128),
        min_new_tokens=raw.get("min_new_tokens", 0),
        n=raw.get("n", 1),
        stop=raw.get("stop") or (),
        stop_token_ids=raw.get("stop_token_ids") or (),
        temperature=raw.get("temperature", 1.0),
        top_p=raw.get("top_p", 1.0),
        top_k=raw.get("top_k", -1),
        min_p=raw.get("min_p", 0.0),
        frequency_penalty=raw.get("frequency_penalty", 0.0),
        presence_penalty=raw.get("presence_penalty", 0.0),
        ignore_eos=raw.get("ignore_eos", False),
        regex=raw.get("regex"),
        json_schema=raw.get("json_schema"),
        sampling_seed=raw.get("sampling_seed"),
        dtype=None,
        stop_regex=None,
        return_logprob=top.get("return_logprob"),
        logprob_start_len=top.get("logprob_start_len"),
        top_logprobs_num=top.get("top_logprobs_num"),
        return_text_in_logprobs=top.get("return_text_in_logprobs"),
    )
    if ns.max_new_tokens is None:
        ns.max_new_tokens = 128
    return ns


def _batch(value: Any, size: int, name: str) -> list[Any]:
    if isinstance(value, list):
        if len(value) != size:
            raise BadRequest(f"{name} has {len(value)} entries for {size} prompts")
        return value
    return [value] * size


class ConveyorServer:
    """The HTTP application around one LocalBackend (its engine does all the work)."""

    def __init__(self, backend: Any, *, model_path: str | None = None):
        self.backend = backend
        self.engine = backend.engine
        self.model_path = model_path or backend.get_model_name()
        self.started = time.time()
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
            }
        )

    async def server_info(self, request: Request) -> Response:
        import sglang

        loaded = self.engine.loaded
        return JSONResponse(
            {
                "model_path": self.model_path,
                "served_by": "sgl-conveyor serve",
                "version": getattr(sglang, "__version__", "unknown"),
                "device": str(loaded.device),
                "dtype": str(loaded.dtype).replace("torch.", ""),
                "max_batch": self.engine.max_batch,
                "context_length": self.engine.context_len,
                "uptime_s": round(time.time() - self.started, 3),
                "internal_states": [self.engine.stats()],
            }
        )

    async def health(self, request: Request) -> Response:
        return Response(status_code=200)

    async def health_generate(self, request: Request) -> Response:
        params = _params({"max_new_tokens": 1, "temperature": 0}, {})
        await asyncio.to_thread(self._run_one, "Hi", None, params, None)
        return Response(status_code=200)

    async def flush_cache(self, request: Request) -> Response:
        running = self.engine.stats()["running"] + self.engine.stats()["waiting"]
        if running:
            return Response(f"Cache not flushed: {running} requests are running.", status_code=400)
        await asyncio.to_thread(self.engine.flush_cache)
        return Response("Cache flushed.", status_code=200)

    async def abort_request(self, request: Request) -> Response:
        try:
            body = await _json(request)
        except BadRequest as e:
            return _error(400, str(e))
        rid = body.get("rid")
        if body.get("abort_all"):
            self.engine.abort_all()
        elif rid:
            self.engine.abort(str(rid))
        return Response(status_code=200)

    async def generate(self, request: Request) -> Response:
        try:
            body = await _json(request)
            if body.get("image_data"):
                raise BadRequest("images are not supported by this server")
            prompts, single = self._prompts(body)
            size = len(prompts)
            raw_params = _batch(body.get("sampling_params") or {}, size, "sampling_params")
            params = [_params(p, body) for p in raw_params]
            rids = body.get("rid")
            rids = _batch(rids, size, "rid") if isinstance(rids, list) else [rids] * size
            if size > 1 and rids[0] is not None and len(set(rids)) != size:
                raise BadRequest("rid must be a list of distinct ids for a batch")
            n = int(params[0].n or 1)
            if n != 1 and (size != 1 or body.get("stream")):
                raise BadRequest("n > 1 is supported for one prompt, without streaming")
        except BadRequest as e:
            return _error(400, str(e))
        if body.get("stream"):
            if size != 1:
                return _error(400, "streaming supports one prompt per request")
            try:
                handle = self._submit(prompts[0], params[0], rids[0])
            except (ValueError, BadRequest) as e:
                return _error(400, str(e))
            return StreamingResponse(
                self._sse(handle),
                media_type="text/event-stream",
                headers={"X-Accel-Buffering": "no"},
            )
        try:
            if n != 1:
                outs = await asyncio.to_thread(
                    lambda: [
                        self._run_one(prompts[0], None, _seeded(params[0], i), None)
                        for i in range(n)
                    ]
                )
                return JSONResponse([{"text": t, "meta_info": m} for t, m in outs])
            results = await asyncio.gather(
                *(
                    asyncio.to_thread(self._run_one, p, None, sp, rid)
                    for p, sp, rid in zip(prompts, params, rids, strict=True)
                )
            )
        except (ValueError, BadRequest) as e:
            return _error(400, str(e))
        out = [{"text": t, "meta_info": m} for t, m in results]
        return JSONResponse(out[0] if single else out)

    # --- helpers ------------------------------------------------------------------------------

    def _prompts(self, body: Mapping[str, Any]) -> tuple[list[str | list[int]], bool]:
        """The prompts of a request, and whether it was a single prompt (not a batch)."""
        if body.get("text") is not None:
            text = body["text"]
            prompts = text if isinstance(text, list) else [text]
            if not prompts or not all(isinstance(p, str) for p in prompts):
                raise BadRequest("text must be a string or a non-empty list of strings")
            return list(prompts), not isinstance(text, list)
        ids = body.get("input_ids")
        if not ids or not isinstance(ids, list):
            raise BadRequest("give text or input_ids")
        if isinstance(ids[0], list):
            return [list(map(int, x)) for x in ids], False
        return [list(map(int, ids))], True

    def _submit(self, prompt: str | Sequence[int], params: Any, rid: str | None):
        engine_params, _ = self.backend.sampling_params(params)
        return self.engine.submit(prompt, engine_params, rid=rid)

    def _run_one(self, prompt: Any, _unused: Any, params: Any, rid: str | None):
        return self._submit(prompt, params, rid).result()

    async def _sse(self, handle: Any) -> AsyncIterator[bytes]:
        """SGLang's event stream: cumulative `text` and `meta_info` per event, then [DONE].

        Events are pumped from the engine's handle by a thread into an asyncio queue; if the
        client goes away, the request is cancelled (its KV still goes into the cache)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        done = object()

        def pump() -> None:
            try:
                for event in handle:
                    loop.call_soon_threadsafe(queue.put_nowait, event)
            except Exception as e:  # engine failure: reported as an error event
                loop.call_soon_threadsafe(queue.put_nowait, e)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, done)

        threading.Thread(target=pump, name=f"serve-{handle.id[:8]}", daemon=True).start()
        text = ""
        try:
            while True:
                item = await queue.get()
                if item is done:
                    break
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


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as e:
        raise BadRequest(f"the body is not valid JSON: {e.msg}") from e
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": "BadRequest", "code": status}}, status_code=status
    )


def serve(
    backend: Any,
    host: str = "127.0.0.1",
    port: int = 30000,
    *,
    log_level: str = "warning",
    ready: threading.Event | None = None,
) -> Any:
    """Run the server (blocking). Returns the uvicorn Server when it stops."""
    import uvicorn

    app = ConveyorServer(backend).app
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)
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
        "sgl.RuntimeEndpoint(url) at it.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=30000)
    p.add_argument("--model", default=None, help="a model folder or .gguf (default: SmolLM2)")
    p.add_argument("--dtype", default="auto", help="auto, float32 or bfloat16")
    p.add_argument("--max-batch", type=int, default=16, help="sequences decoded together")
    p.add_argument("--cache-mb", type=int, default=512, help="prefix cache budget (MiB)")
    p.add_argument("--log-level", default="warning")
    args = p.parse_args(argv)

    from sgl_conveyor.backends.local import LocalBackend

    t0 = time.perf_counter()
    backend = LocalBackend(
        args.model,
        dtype=args.dtype,
        max_batch=args.max_batch,
        cache_budget_bytes=args.cache_mb * 2**20,
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
    serve(backend, args.host, args.port, log_level=args.log_level, ready=ready)
    backend.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
