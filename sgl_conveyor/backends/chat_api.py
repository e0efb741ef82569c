"""The OpenAI chat API of `sgl-conveyor serve`: `/v1/chat/completions` and `/v1/models`.

Requests are rendered with `templates/hermes_chatml.jinja` (tools listed in the system turn),
decoded by the same engine as `/generate` (so the same limits, radix cache and disconnect
abort), and the model's `<tool_call>` blocks are parsed as they decode and streamed as
`delta.tool_calls`, argument fragments in the model's own text. `tool_choice` "required" and a
named function are forced with a grammar (`tool_grammar`); "auto" decodes freely. Every
malformed field is a 400 in the OpenAI error shape; nothing here touches the model directly.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from sgl_conveyor.backends.chat_templates import tool_chat_template
from sgl_conveyor.backends.engine_events import engine_events
from sgl_conveyor.backends.local.constraints import ANY_JSON
from sgl_conveyor.backends.local.sampling import SamplingParams
from sgl_conveyor.backends.tool_call_parser import (
    END_TAG,
    ArgumentsDelta,
    CallStarted,
    ContentDelta,
    HermesToolCallParser,
)
from sgl_conveyor.backends.tool_grammar import ToolGrammarError, forced_calls_grammar

if TYPE_CHECKING:
    from sgl_conveyor.backends.server import ConveyorServer

ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_TOOLS = 128
TOOL_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_KINDS = {404: "not_found_error", 500: "server_error", 503: "server_error"}


class ChatRequestError(ValueError):
    """A chat request the server refuses, with the field at fault (OpenAI's `param`)."""

    def __init__(
        self, message: str, param: str | None = None, *, status: int = 400, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.param, self.status, self.code = param, status, code


def openai_error(
    status: int, message: str, *, param: str | None = None, code: str | None = None, close=False
) -> JSONResponse:
    """OpenAI's error shape: {"error": {"message", "type", "param", "code"}}."""
    kind = _KINDS.get(status, "invalid_request_error")
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": param, "code": code}},
        status_code=status,
        headers={"Connection": "close"} if close else None,
    )


@dataclass
class ChatRequest:
    """A validated chat request: what to render, how to decode, how to answer."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]  # the `function` objects
    tool_choice: str  # none, auto, required, or "function" (then `forced_name`)
    forced_name: str | None
    parallel_tool_calls: bool
    stream: bool
    include_usage: bool
    params: dict[str, Any] = field(default_factory=dict)  # SamplingParams fields

    @property
    def parses_calls(self) -> bool:
        return bool(self.tools) and self.tool_choice != "none"


# --- validation ----------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def _number(body: Mapping[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ChatRequestError(f"{key} must be a number, got {_type_name(value)}", key)
    if not lo <= value <= hi:
        raise ChatRequestError(f"{key} must be between {lo:g} and {hi:g}, got {value}", key)
    return float(value)


def _integer(body: Mapping[str, Any], key: str, lo: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ChatRequestError(f"{key} must be an integer, got {_type_name(value)}", key)
    if lo is not None and value < lo:
        raise ChatRequestError(f"{key} must be >= {lo}, got {value}", key)
    return value


def _flag(body: Mapping[str, Any], key: str, default: bool, where: str = "") -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ChatRequestError(
            f"{where}{key} must be true or false, got {_type_name(value)}", where + key
        )
    return value


def _text(content: Any, param: str, *, optional: bool = False) -> str | None:
    """A message's content as text: a string, or an array of text parts."""
    if content is None:
        if optional:
            return None
        raise ChatRequestError(f"{param} is required", param)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise ChatRequestError(f"{param}[{i}] must be a content part object", param)
            if part["type"] != "text":
                raise ChatRequestError(
                    f"{param}[{i}] is a {part['type']!r} part; this server takes text only", param
                )
            if not isinstance(part.get("text"), str):
                raise ChatRequestError(f"{param}[{i}].text must be a string", param)
            parts.append(part["text"])
        return "".join(parts)
    raise ChatRequestError(f"{param} must be a string or an array of text parts", param)


def _tool_calls(raw: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise ChatRequestError(f"{where} must be an array", where)
    calls = []
    for i, call in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
            raise ChatRequestError(f"{at} must be an object with a function", at)
        fn = call["function"]
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise ChatRequestError(f"{at}.function.name must be a string", f"{at}.function.name")
        arguments = fn.get("arguments", "{}")
        if not isinstance(arguments, (str, dict)):
            raise ChatRequestError(
                f"{at}.function.arguments must be a string", f"{at}.function.arguments"
            )
        call_id = call.get("id")
        if call_id is not None and not isinstance(call_id, str):
            raise ChatRequestError(f"{at}.id must be a string", f"{at}.id")
        calls.append(
            {
                "id": call_id,
                "type": "function",
                "function": {"name": fn["name"], "arguments": arguments},
            }
        )
    return calls


def _messages(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise ChatRequestError("messages must be a non-empty array", "messages")
    out = []
    for i, m in enumerate(raw):
        at = f"messages[{i}]"
        if not isinstance(m, dict):
            raise ChatRequestError(f"{at} must be an object", at)
        role = m.get("role")
        if role not in ROLES:
            raise ChatRequestError(
                f"{at}.role must be one of {', '.join(ROLES)}, got {_type_name(role)}"
                + (f" {role!r}" if isinstance(role, str) else ""),
                f"{at}.role",
            )
        if role == "assistant":
            calls = _tool_calls(m["tool_calls"], f"{at}.tool_calls") if m.get("tool_calls") else []
            content = _text(m.get("content"), f"{at}.content", optional=True)
            message: dict[str, Any] = {"role": role, "content": content or ""}
            if calls:
                message["tool_calls"] = calls
        elif role == "tool":
            message = {"role": role, "content": _text(m.get("content"), f"{at}.content")}
            call_id = m.get("tool_call_id")
            if call_id is not None and not isinstance(call_id, str):
                raise ChatRequestError(f"{at}.tool_call_id must be a string", f"{at}.tool_call_id")
            message["tool_call_id"] = call_id
        else:  # a developer message is a system message to this model
            message = {
                "role": "system" if role == "developer" else role,
                "content": _text(m.get("content"), f"{at}.content"),
            }
        out.append(message)
    return out


def _tools(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ChatRequestError("tools must be an array", "tools")
    if len(raw) > MAX_TOOLS:
        raise ChatRequestError(f"at most {MAX_TOOLS} tools, got {len(raw)}", "tools")
    out, names = [], set()
    for i, tool in enumerate(raw):
        at = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise ChatRequestError(f'{at} must be an object of type "function"', at)
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise ChatRequestError(f"{at}.function must be an object", f"{at}.function")
        name = fn.get("name")
        if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
            raise ChatRequestError(
                f"{at}.function.name must be 1-64 letters, digits, '_', '-', '.' or ':'",
                f"{at}.function.name",
            )
        if name in names:
            raise ChatRequestError(f"two tools are named {name!r}", f"{at}.function.name")
        names.add(name)
        params = fn.get("parameters")
        if params is not None and not isinstance(params, dict):
            where = f"{at}.function.parameters"
            raise ChatRequestError(f"{where} must be a JSON Schema object", where)
        description = fn.get("description")
        if description is not None and not isinstance(description, str):
            raise ChatRequestError(
                f"{at}.function.description must be a string", f"{at}.function.description"
            )
        entry: dict[str, Any] = {"name": name}
        if description:
            entry["description"] = description
        entry["parameters"] = params if params is not None else {"type": "object", "properties": {}}
        out.append(entry)
    return out


def _tool_choice(raw: Any, tools: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    if raw is None:
        return ("auto" if tools else "none"), None
    if isinstance(raw, str):
        if raw not in ("none", "auto", "required"):
            raise ChatRequestError(
                f'tool_choice must be "none", "auto", "required" or a function, got {raw!r}',
                "tool_choice",
            )
        if raw == "required" and not tools:
            raise ChatRequestError('tool_choice "required" needs tools', "tool_choice")
        return raw, None
    fn = raw.get("function") if isinstance(raw, dict) else None
    if (
        not isinstance(fn, dict)
        or raw.get("type") != "function"
        or not isinstance(fn.get("name"), str)
    ):
        raise ChatRequestError(
            'tool_choice must be a string or {"type": "function", "function": {"name": ...}}',
            "tool_choice",
        )
    if fn["name"] not in {t["name"] for t in tools}:
        raise ChatRequestError(
            f"tool_choice names {fn['name']!r}, which is not one of the tools", "tool_choice"
        )
    return "function", fn["name"]


def _stop(raw: Any, max_stops: int) -> tuple[str, ...]:
    if raw is None:
        return ()
    stops = [raw] if isinstance(raw, str) else raw
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise ChatRequestError("stop must be a string or an array of strings", "stop")
    if len(stops) > max_stops:
        raise ChatRequestError(f"at most {max_stops} stop strings", "stop")
    return tuple(s for s in stops if s)


def _response_format(raw: Any) -> str | None:
    """The json_schema constraint a `response_format` asks for (None: free text)."""
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return ANY_JSON
    if kind == "json_schema":
        spec = raw.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise ChatRequestError(
                "response_format.json_schema.schema must be an object", "response_format"
            )
        return json.dumps(schema)
    raise ChatRequestError(
        'response_format.type must be "text", "json_object" or "json_schema"', "response_format"
    )


def parse_request(body: Mapping[str, Any], *, max_new_tokens: int, max_stops: int) -> ChatRequest:
    """Validate a `/v1/chat/completions` body (unknown fields are ignored, as OpenAI's API
    ignores them; a known one of the wrong type is an error). `max_new_tokens`: the most
    `max_tokens` may ask."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ChatRequestError("model must be a string", "model")
    messages = _messages(body.get("messages"))
    tools = _tools(body.get("tools"))
    tool_choice, forced = _tool_choice(body.get("tool_choice"), tools)
    n = _integer(body, "n", lo=1)
    if n not in (None, 1):
        raise ChatRequestError(f"n must be 1 on this server, got {n}", "n")
    if body.get("logprobs") not in (None, False):
        raise ChatRequestError("logprobs are not supported on this route", "logprobs")
    key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = _integer(body, key, lo=1)
    if max_tokens is not None and max_tokens > max_new_tokens:
        raise ChatRequestError(f"{key} is {max_tokens}; this server allows {max_new_tokens}", key)
    stream = _flag(body, "stream", False)
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise ChatRequestError("stream_options must be an object", "stream_options")
    include_usage = _flag(options or {}, "include_usage", False, "stream_options.")
    schema = _response_format(body.get("response_format"))
    if schema is not None and tool_choice in ("required", "function"):
        raise ChatRequestError(
            "response_format cannot be combined with a forced tool call", "response_format"
        )
    params: dict[str, Any] = {
        "max_new_tokens": max_tokens or max_new_tokens,
        "temperature": _number(body, "temperature", 1.0, 0.0, 2.0),
        "top_p": max(_number(body, "top_p", 1.0, 0.0, 1.0), 1e-6),  # 0: the top token only
        "frequency_penalty": _number(body, "frequency_penalty", 0.0, -2.0, 2.0),
        "presence_penalty": _number(body, "presence_penalty", 0.0, -2.0, 2.0),
        "stop": _stop(body.get("stop"), max_stops),
        "seed": _integer(body, "seed"),
        "json_schema": schema,
    }
    return ChatRequest(
        model=model,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        forced_name=forced,
        parallel_tool_calls=_flag(body, "parallel_tool_calls", True),
        stream=stream,
        include_usage=include_usage,
        params=params,
    )


def render_prompt(req: ChatRequest) -> str:
    """The prompt text: the chat template, as transformers (and so vLLM) renders it."""
    from jinja2.exceptions import TemplateError
    from transformers.utils.chat_template_utils import render_jinja_template

    # With tool_choice "none" the tools stay in the prompt (as vLLM does by default): the answer
    # after a call then shares the call's prefix, and the radix cache serves it.
    tools = [{"type": "function", "function": t} for t in req.tools] or None
    try:
        rendered, _ = render_jinja_template(
            [req.messages],
            tools=tools,
            chat_template=tool_chat_template(),
            add_generation_prompt=True,
        )
    except TemplateError as e:
        raise ChatRequestError(f"the messages cannot be rendered: {e}", "messages") from e
    return rendered[0]


def sampling_params(req: ChatRequest) -> SamplingParams:
    """What the engine decodes with; a forced tool choice becomes a grammar."""
    params = dict(req.params)
    if req.tool_choice == "function":
        chosen = next(t for t in req.tools if t["name"] == req.forced_name)
        params["ebnf"] = _grammar([chosen], several=False)
    elif req.tool_choice == "required":
        params["ebnf"] = _grammar(req.tools, several=req.parallel_tool_calls)
    elif req.parses_calls and not req.parallel_tool_calls:
        params["stop"] = (*params["stop"], END_TAG)  # one call at most: stop when it closes
    try:
        return SamplingParams(**params)
    except ValueError as e:
        raise ChatRequestError(str(e)) from e


def _grammar(tools: Sequence[Mapping[str, Any]], *, several: bool) -> str:
    try:
        return forced_calls_grammar([(t["name"], t["parameters"]) for t in tools], several=several)
    except ToolGrammarError as e:
        raise ChatRequestError(str(e), "tools") from e


# --- responses -----------------------------------------------------------------------------------


def _usage(meta: Mapping[str, Any]) -> dict[str, Any]:
    prompt, completion = int(meta.get("prompt_tokens", 0)), int(meta.get("completion_tokens", 0))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": int(meta.get("cached_tokens", 0))},
    }


def _finish_reason(req: ChatRequest, meta: Mapping[str, Any], called: bool) -> str:
    """`length` when cut off; `tool_calls` when calls were made, except for a named tool
    choice (`stop`, as vLLM and OpenAI answer a forced function)."""
    reason = (meta.get("finish_reason") or {}).get("type")
    if reason == "length":
        return "length"
    if called and req.tool_choice != "function":
        return "tool_calls"
    return "stop"


def _call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


class ChatAPI:
    """The chat routes of one `ConveyorServer` (its limits, engine and helpers)."""

    def __init__(self, server: ConveyorServer) -> None:
        self.server = server
        self.created = int(time.time())

    async def models(self, request: Request) -> Response:
        model = {
            "id": self.server.model_path,
            "object": "model",
            "created": self.created,
            "owned_by": "sgl-conveyor",
            "max_model_len": self.server.context_len,
        }
        return JSONResponse({"object": "list", "data": [model]})

    async def chat_completions(self, request: Request) -> Response:
        from sgl_conveyor.backends.server import BadRequest, _Gone

        server = self.server
        try:
            body = await server._json(request)
            limits = server.limits
            cap = min(limits.max_new_tokens or server.context_len, server.context_len)
            req = parse_request(body, max_new_tokens=cap, max_stops=limits.max_stops)
            # rendering, tokenizing and compiling a grammar take a while: never on the loop
            handle = await asyncio.to_thread(self._submit, req)
        except _Gone:
            return Response(status_code=400)  # nobody reads it
        except ChatRequestError as e:
            return openai_error(e.status, str(e), param=e.param, code=e.code)
        except BadRequest as e:  # the body: too large, too slow, not JSON
            return openai_error(e.status, str(e), close=e.close)
        except ValueError as e:  # refused by the engine (a prompt over the context...)
            code = "context_length_exceeded" if "tokens" in str(e) else None
            return openai_error(400, str(e), param="messages", code=code)
        except Exception as e:  # the engine is shut down, or failed: still OpenAI's shape
            return openai_error(500, f"{type(e).__name__}: {e}")
        rid = handle.id
        if req.stream:
            return StreamingResponse(
                self._stream(req, handle),
                media_type="text/event-stream",
                headers={"X-Accel-Buffering": "no"},
            )
        try:
            results = await server._results(request, [handle])
        except Exception as e:  # the engine failed the request
            return openai_error(500, f"{type(e).__name__}: {e}")
        if results is None:
            return Response(status_code=400)  # the client went away: nobody reads it
        text, meta = results[0]
        return JSONResponse(self._completion(req, rid, text, meta))

    def _submit(self, req: ChatRequest) -> Any:
        server = self.server
        prompt = render_prompt(req)
        if len(prompt) > server.max_prompt_chars:
            raise ChatRequestError(
                f"the prompt has {len(prompt)} characters, more than the "
                f"{server.max_prompt_tokens} tokens this server accepts",
                "messages",
                code="context_length_exceeded",
            )
        params = sampling_params(req)
        rid = "chatcmpl-" + uuid.uuid4().hex
        return server.engine.submit(
            prompt, params, rid=rid, max_prompt_tokens=server.max_prompt_tokens
        )

    def _completion(
        self, req: ChatRequest, rid: str, text: str, meta: Mapping[str, Any]
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        called = False
        if req.parses_calls:
            parser = HermesToolCallParser()
            parser.feed(text)
            parser.finish()
            message["content"] = parser.content or None
            if parser.calls:
                called = True
                message["tool_calls"] = [
                    {
                        "id": _call_id(),
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    }
                    for c in parser.calls
                ]
        return {
            "id": rid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": _finish_reason(req, meta, called),
                }
            ],
            "usage": _usage(meta),
        }

    async def _stream(self, req: ChatRequest, handle: Any) -> AsyncIterator[bytes]:
        """The chunks of one streamed completion. If the client goes away, the response is
        cancelled here and so is the request (within one decode step)."""
        created = int(time.time())
        head = {"id": handle.id, "object": "chat.completion.chunk", "created": created}
        head["model"] = req.model

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            data = {**head, "choices": [choice], **extra}
            if req.include_usage:
                data.setdefault("usage", None)
            return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"

        parser = HermesToolCallParser() if req.parses_calls else None
        ids: dict[int, str] = {}
        meta: Mapping[str, Any] = {}
        try:
            yield chunk({"role": "assistant", "content": ""})
            async for event in engine_events(handle, f"chat-{handle.id[-8:]}"):
                if isinstance(event, Exception):  # the engine failed the request
                    error = {"message": str(event), "type": "server_error", "param": None}
                    yield b"data: " + json.dumps({"error": {**error, "code": None}}).encode()
                    yield b"\n\ndata: [DONE]\n\n"
                    return
                meta = event.meta
                pieces = parser.feed(event.text) if parser else [ContentDelta(event.text)]
                if event.finished and parser is not None:
                    pieces += parser.finish()
                for delta in _deltas(pieces, ids):
                    yield chunk(delta)
            yield chunk({}, _finish_reason(req, meta, bool(ids)))
            if req.include_usage:
                usage = {**head, "choices": [], "usage": _usage(meta)}
                yield b"data: " + json.dumps(usage).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"
        finally:
            if not handle.finished:
                handle.cancel()


def _deltas(events: Sequence[Any], ids: dict[int, str]) -> list[dict[str, Any]]:
    """Parser events -> chat deltas, adjacent fragments of one kind merged into one."""
    out: list[dict[str, Any]] = []
    for e in events:
        last = out[-1] if out else None
        if isinstance(e, ContentDelta):
            if last is not None and "content" in last:
                last["content"] += e.text
            else:
                out.append({"content": e.text})
        elif isinstance(e, CallStarted):
            ids[e.index] = _call_id()
            call = {"index": e.index, "id": ids[e.index], "type": "function"}
            out.append({"tool_calls": [{**call, "function": {"name": e.name, "arguments": ""}}]})
        elif isinstance(e, ArgumentsDelta):
            calls = last.get("tool_calls") if last is not None else None
            if calls and calls[0]["index"] == e.index and "id" not in calls[0]:
                calls[0]["function"]["arguments"] += e.text
            else:
                out.append({"tool_calls": [{"index": e.index, "function": {"arguments": e.text}}]})
    return out
