"""`sgl-conveyor serve`'s OpenAI chat API, driven by the official `openai` client over loopback.

One server for the module, on the session's model (SmolLM2-135M, float32, greedy where it
matters): plain chat, streaming, each tool_choice, parallel calls, the radix cache in `usage`,
the OpenAI error shape, and a stream closed early that stops the engine's decoding.
"""

from __future__ import annotations

import json
import socket
import threading

import openai
import pytest
import requests
from openai import OpenAI

from sgl_conveyor.backends.chat_templates import tool_chat_template_path
from sgl_conveyor.backends.server import serve
from sgl_conveyor.eval.router_cluster import wait_idle

pytestmark = pytest.mark.model


def _string_tool(name: str, field: str, description: str, max_length: int | None = 24) -> dict:
    prop = {"type": "string"} if max_length is None else {"type": "string", "maxLength": max_length}
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": {field: prop}, "required": [field]},
        },
    }


SEARCH = _string_tool("search", "query", "Search the web")
CALC = _string_tool("calc", "expr", "Evaluate an arithmetic expression")
STORY = _string_tool("write", "text", "Write a text", max_length=None)
TWO_CITIES = [{"role": "user", "content": "Search the population of Paris and of Rome."}]


def _shot(city: str, answer: str, call_id: str) -> list[dict]:
    """A worked round: the question, the model's call, the result, the answer."""
    arguments = json.dumps({"query": f"population of {city}"})
    call = {
        "id": call_id,
        "type": "function",
        "function": {"name": "search", "arguments": arguments},
    }
    return [
        {"role": "user", "content": f"How many people live in {city}?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call_id, "content": answer},
        {"role": "assistant", "content": answer},
    ]


# Two worked rounds: with them the 135M model calls the tool on its own (tool_choice "auto").
FEW_SHOT = [
    *_shot("Madrid", "Madrid has 3.3 million inhabitants.", "c1"),
    *_shot("Oslo", "Oslo has 0.7 million inhabitants.", "c2"),
    {"role": "user", "content": "How many people live in Lisbon?"},
]


@pytest.fixture(scope="module")
def server_url(local_backend):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ready = threading.Event()
    kwargs = {"ready": ready}
    threading.Thread(
        target=serve, args=(local_backend, "127.0.0.1", port), kwargs=kwargs, daemon=True
    ).start()
    assert ready.wait(60), "the server did not start"
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def client(server_url):
    return OpenAI(base_url=server_url + "/v1", api_key="none", max_retries=0, timeout=120)


def _idle(url: str) -> dict:
    return wait_idle([url])[0]


def _collect(stream) -> tuple[str, dict[int, dict], list, object]:
    """Content, calls by index (as the chunks build them), the chunks, and the usage."""
    content, calls, chunks, usage = "", {}, [], None
    for chunk in stream:
        chunks.append(chunk)
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            content += choice.delta.content or ""
            for tc in choice.delta.tool_calls or ():
                if tc.id is not None:
                    assert tc.index not in calls and tc.index == len(calls)
                    assert tc.type == "function" and tc.function.arguments == ""
                    calls[tc.index] = {"id": tc.id, "name": tc.function.name, "arguments": ""}
                else:
                    assert tc.function.name is None
                    calls[tc.index]["arguments"] += tc.function.arguments
    return content, calls, chunks, usage


def test_models_lists_the_served_model(client, local_backend):
    assert [m.id for m in client.models.list()] == [local_backend.get_model_name()]


def test_plain_chat_and_its_stream_say_the_same(client):
    messages = [{"role": "user", "content": "Name a fruit."}]
    whole = client.chat.completions.create(
        model="smollm2", messages=messages, max_tokens=10, temperature=0
    )
    choice = whole.choices[0]
    assert whole.object == "chat.completion" and whole.model == "smollm2"
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.message.tool_calls is None and choice.finish_reason in ("stop", "length")
    u = whole.usage
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens and u.completion_tokens <= 10

    stream = client.chat.completions.create(
        model="smollm2",
        messages=messages,
        max_tokens=10,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    content, calls, chunks, usage = _collect(stream)
    assert content == choice.message.content and not calls
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == choice.finish_reason
    assert chunks[-1].choices == [] and usage.completion_tokens == u.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])
    # the second time the whole prompt but its last token comes from the radix cache
    assert usage.prompt_tokens_details.cached_tokens >= usage.prompt_tokens - 1 > 0


def test_tool_choice_none_answers_in_text_with_the_tools_still_in_the_prompt(client):
    kwargs = {"model": "m", "messages": FEW_SHOT, "max_tokens": 12, "temperature": 0}
    with_tools = client.chat.completions.create(tools=[SEARCH], **kwargs)
    none = client.chat.completions.create(tools=[SEARCH], tool_choice="none", **kwargs)
    assert none.choices[0].message.tool_calls is None and none.choices[0].message.content
    assert none.choices[0].finish_reason in ("stop", "length")
    # the same prompt (tool section included), so an answer after a call reuses its prefix
    assert none.usage.prompt_tokens == with_tools.usage.prompt_tokens


def test_auto_the_model_calls_a_tool_on_its_own_and_it_streams_as_tool_calls(client):
    stream = client.chat.completions.create(
        model="m",
        messages=FEW_SHOT,
        tools=[SEARCH, CALC],
        max_tokens=40,
        temperature=0,
        stream=True,
    )
    content, calls, chunks, _ = _collect(stream)
    assert content == ""
    assert [c["name"] for c in calls.values()] == ["search"]
    assert json.loads(calls[0]["arguments"]) == {"query": "population of Lisbon"}
    fragments = [c for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert len(fragments) > 3  # the arguments came in pieces, as the model wrote them
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_required_makes_parallel_calls_with_schema_valid_arguments(client):
    stream = client.chat.completions.create(
        model="m",
        messages=TWO_CITIES,
        tools=[SEARCH],
        tool_choice="required",
        max_tokens=80,
        temperature=0,
        stream=True,
    )
    content, calls, chunks, _ = _collect(stream)
    assert content == "" and sorted(calls) == [0, 1]
    assert calls[0]["id"] != calls[1]["id"]
    queries = [json.loads(calls[i]["arguments"]) for i in (0, 1)]
    assert all(set(q) == {"query"} and len(q["query"]) <= 24 for q in queries)
    assert "Paris" in queries[0]["query"] and "Rome" in queries[1]["query"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    # the same, not streamed: the same calls (compare parsed JSON, as with any server)
    whole = client.chat.completions.create(
        model="m", messages=TWO_CITIES, tools=[SEARCH], tool_choice="required", max_tokens=80,
        temperature=0,
    )  # fmt: skip
    got = [json.loads(tc.function.arguments) for tc in whole.choices[0].message.tool_calls]
    assert got == queries and whole.choices[0].finish_reason == "tool_calls"


def test_parallel_tool_calls_false_forces_one_call(client):
    whole = client.chat.completions.create(
        model="m",
        messages=TWO_CITIES,
        tools=[SEARCH],
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=80,
        temperature=0,
    )
    assert len(whole.choices[0].message.tool_calls) == 1
    assert whole.choices[0].finish_reason == "tool_calls"


def test_a_named_tool_is_called_finishes_with_stop_and_the_follow_up_hits_the_cache(client):
    messages = list(TWO_CITIES)
    first = client.chat.completions.create(
        model="m",
        messages=messages,
        tools=[SEARCH, CALC],
        tool_choice={"type": "function", "function": {"name": "calc"}},
        max_tokens=40,
        temperature=0,
    )
    choice = first.choices[0]
    (call,) = choice.message.tool_calls
    assert call.function.name == "calc" and choice.finish_reason == "stop"
    assert set(json.loads(call.function.arguments)) == {"expr"}
    # the next round: the model's own call and its result, as an agent loop sends them
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "2.1 million and 2.8 million"},
    ]
    follow = client.chat.completions.create(
        model="m", messages=messages, tools=[SEARCH, CALC], max_tokens=4, temperature=0
    )
    # everything the first round read and wrote is cached (the template renders the call as
    # the model wrote it); only the tool message and the new turn are prefilled
    reused = follow.usage.prompt_tokens_details.cached_tokens
    assert reused >= first.usage.prompt_tokens + first.usage.completion_tokens - 2, (
        reused,
        first.usage,
    )


def test_closing_the_stream_stops_the_decoding_of_an_invalid_call(
    client, server_url, local_backend
):
    before = _idle(server_url)["generated_tokens"]
    stream = client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "Write a very long story about a dragon."}],
        tools=[STORY],
        tool_choice="required",
        max_tokens=300,
        temperature=0,
        stream=True,
    )
    arguments = ""
    for chunk in stream:
        for tc in chunk.choices[0].delta.tool_calls or ():
            arguments += tc.function.arguments or ""
        if len(arguments) > 12:  # the client decides the call is invalid: it hangs up
            break
    stream.close()
    decoded = _idle(server_url)["generated_tokens"] - before
    # the tokens behind what the client read (the forced call's head, then the arguments)
    seen = '<tool_call>\n{"name": "write", "arguments": ' + arguments
    read = len(local_backend.engine.tokenizer.encode(seen, add_special_tokens=False).ids)
    # the engine stopped within a step of the server seeing the hang-up: it decoded about
    # what the client read (plus the chunks in flight), not the 300 tokens asked for
    assert read - 2 <= decoded <= read + 24, (read, decoded)


def _raw(url: str, body) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(url + "/v1/chat/completions", data=data, timeout=30)


def test_bad_requests_get_the_openai_error_shape(client, server_url):
    ok = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    cases = [
        ({**ok, "temperature": "hot"}, "temperature"),
        ({**ok, "n": 2}, "n"),
        ({**ok, "messages": "Hi"}, "messages"),
        ({**ok, "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({**ok, "max_tokens": 10**9}, "max_tokens"),
        ({**ok, "tools": [SEARCH], "tool_choice": {"type": "function", "function": {"name": "x"}}},
         "tool_choice"),
        ({**ok, "tool_choice": "required"}, "tool_choice"),
        ({**ok, "stream": "yes"}, "stream"),
        ({**ok, "tools": [{"type": "function", "function": {"name": "bad name!"}}]},
         "tools[0].function.name"),
    ]  # fmt: skip
    for body, param in cases:
        r = _raw(server_url, body)
        error = r.json()["error"]
        assert r.status_code == 400, (body, r.text)
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
        assert error["type"] == "invalid_request_error" and error["param"] == param, error
    r = _raw(server_url, b"{not json")
    assert r.status_code == 400 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    r = _raw(server_url, b"{" + b" " * (4 * 2**20) + b"}")  # past the body limit: unread
    assert r.status_code == 413 and r.json()["error"]["type"] == "invalid_request_error"
    # unknown fields are ignored; the official client raises its typed error on a bad field
    assert _raw(server_url, {**ok, "user": "u1", "metadata": {"a": "b"}}).status_code == 200
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="m", messages=ok["messages"], n=3)
    assert err.value.status_code == 400 and "n must be 1" in err.value.message
    # /generate keeps the SGLang server's own error shape
    r = requests.post(server_url + "/generate", json={"text": "x", "sampling_params": {"x": 1}})
    assert r.status_code == 400 and set(r.json()["error"]) == {"message", "type", "code"}


def test_the_template_is_a_package_file_vllm_can_be_given():
    text = tool_chat_template_path().read_text()
    assert "<tool_call>" in text and "add_generation_prompt" in text and "tools" in text


@pytest.mark.parametrize("mode", ["partial", "sequential"])
def test_sgl_conveyor_chat_against_serve_runs_units_while_the_call_streams(client, mode):
    """The client side on the real server side: `sgl_conveyor.chat` over serve's chat API, a
    named search call. In partial mode its queries run while serve is still streaming the
    call; in sequential mode none runs before the stream ended. Both give the same result."""
    from sgl_conveyor import call_report, chat

    messages = [
        {"role": "system", "content": "Search one short query per city."},
        {"role": "user", "content": "Compare the populations of Paris, Berlin and Rome."},
    ]
    turn = chat.complete(
        client,
        model="m",
        messages=messages,
        tools=["search"],
        mode=mode,
        tool_choice={"type": "function", "function": {"name": "search"}},
        max_tokens=80,
        temperature=0,
    )
    assert turn.error is None and turn.finish_reason == "stop"
    call = turn.calls[0]
    assert call.error is None and call.result is not None, call.error
    timeline = call.timeline
    assert timeline is not None and timeline.units and turn.stream_end is not None
    end = turn.stream_end
    early = [u for u in timeline.units if u.dispatched is not None and u.dispatched < end]
    if mode == "partial":
        assert early, "no query ran before serve's stream of the call ended"
    else:
        assert not early
    assert [m["role"] for m in turn.messages] == ["assistant", "tool"]
    assert call_report(turn, 0)["mode"] == mode
