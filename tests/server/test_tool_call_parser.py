"""The incremental hermes tool-call parser: whatever the chunking, the same content, the same
calls, and argument fragments that join into exactly the text the model wrote."""

from __future__ import annotations

import itertools
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from sgl_conveyor.backends.tool_call_parser import (
    ArgumentsDelta,
    CallEnded,
    CallStarted,
    ContentDelta,
    HermesToolCallParser,
    ParsedCall,
    parse_tool_calls,
)

# What a hermes model writes for two parallel calls (NousResearch Hermes-2-Pro's format, as its
# chat template asks for it and vLLM's hermes parser reads it).
HERMES_TWO_CALLS = (
    "<tool_call>\n"
    '{"name": "get_current_weather", "arguments": {"location": "San Francisco, CA", '
    '"unit": "fahrenheit"}}\n'
    "</tool_call>\n"
    "<tool_call>\n"
    '{"name": "search", "arguments": {"query": "population of Rome", "top_k": 3, '
    '"filters": {"lang": ["en", "it"], "safe": true, "since": null}}}\n'
    "</tool_call>"
)


def _run(chunks: list[str]) -> list:
    parser = HermesToolCallParser()
    events = []
    for chunk in chunks:
        events += parser.feed(chunk)
    events += parser.finish()
    return events


def _summary(events: list) -> tuple[str, list[tuple[int, str, str]]]:
    """Content and calls as a client assembles them, checking the stream's shape on the way."""
    content = "".join(e.text for e in events if isinstance(e, ContentDelta))
    calls: dict[int, list] = {}
    for e in events:
        if isinstance(e, CallStarted):
            assert e.index == len(calls) and e.index not in calls  # in order, once each
            calls[e.index] = [e.name, ""]
        elif isinstance(e, ArgumentsDelta):
            assert e.index == max(calls) and e.text  # only the open call, never empty
            calls[e.index][1] += e.text
        elif isinstance(e, CallEnded):
            assert calls[e.index] == [e.name, e.arguments]  # the fragments join into it
    assert sum(isinstance(e, CallEnded) for e in events) == len(calls)
    return content, [(i, n, a) for i, (n, a) in sorted(calls.items())]


def _chunked(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    bounds = [0, *points, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def test_two_hermes_calls_parse_into_the_models_own_argument_text():
    content, calls = parse_tool_calls(HERMES_TWO_CALLS)
    assert content == ""
    assert [c.name for c in calls] == ["get_current_weather", "search"]
    assert calls[0].arguments == '{"location": "San Francisco, CA", "unit": "fahrenheit"}'
    assert json.loads(calls[1].arguments)["filters"] == {
        "lang": ["en", "it"],
        "safe": True,
        "since": None,
    }


def test_arguments_stream_before_the_call_closes():
    parser = HermesToolCallParser()
    events = parser.feed('Let me look.\n<tool_call>\n{"name": "search", "arguments": {"query": "Pa')
    assert events[0] == ContentDelta("Let me look.")
    assert events[1] == CallStarted(0, "search")
    assert "".join(e.text for e in events[2:]) == '{"query": "Pa'
    assert parser.feed('ris"}}\n</tool') == [ArgumentsDelta(0, 'ris"}')]
    assert parser.feed("_call>") == [CallEnded(0, "search", '{"query": "Paris"}')]
    assert parser.finish() == []


def test_text_that_might_open_a_call_is_held_back_until_it_is_decided():
    parser = HermesToolCallParser()
    assert parser.feed("a <tool") == [ContentDelta("a")]
    assert parser.feed("box> b") == [ContentDelta(" <toolbox> b")]
    assert parser.finish() == []


def test_a_block_without_a_name_is_content_as_written():
    text = 'Here: <tool_call>{"oops": 1}</tool_call> done'
    assert parse_tool_calls(text) == (text, [])


def test_odd_but_usable_calls():
    # name after arguments, "parameters", arguments as a JSON string, no arguments, no end tag
    assert parse_tool_calls('<tool_call>{"arguments": {"a": 1}, "name": "f"}</tool_call>')[1] == [
        ParsedCall("f", '{"a": 1}')
    ]
    assert parse_tool_calls('<tool_call>{"name": "f", "parameters": {"a": 1}}</tool_call>')[1] == [
        ParsedCall("f", '{"a": 1}')
    ]
    text = '<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call>'
    assert parse_tool_calls(text)[1] == [ParsedCall("f", '{"a": 1}')]
    assert parse_tool_calls('<tool_call>{"name": "f"}</tool_call>')[1] == [ParsedCall("f", "{}")]
    # cut off by max_tokens: the call keeps what was written (the client sees it is invalid)
    assert parse_tool_calls('<tool_call>\n{"name": "f", "arguments": {"a": [1')[1] == [
        ParsedCall("f", '{"a": [1')
    ]
    # a new block before the previous one was closed
    text = '<tool_call>{"name": "f", "arguments": {}}\n<tool_call>{"name": "g"}'
    _, calls = parse_tool_calls(text)
    assert [c.name for c in calls] == ["f", "g"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_blank = st.sampled_from(["", "\n", " ", "\n\n"])


@st.composite
def hermes_responses(draw):
    """A response as a hermes model writes it: optional content, then calls with any JSON
    arguments, in the model's own spacing."""
    parts, expected = [], []
    content = draw(st.text(alphabet=st.characters(blacklist_characters="<"), max_size=20))
    parts.append(content)
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True))
        args = draw(st.dictionaries(st.text(max_size=6), _json, max_size=3))
        indent = draw(st.sampled_from([None, 2]))
        sep = draw(st.sampled_from([(", ", ": "), (",", ":")]))
        raw = json.dumps(args, indent=indent, separators=sep, ensure_ascii=draw(st.booleans()))
        parts.append(draw(_blank) + "<tool_call>" + draw(_blank))
        parts.append('{"name": ' + json.dumps(name) + ', "arguments": ' + raw + "}")
        parts.append(draw(_blank) + "</tool_call>")
        expected.append((name, raw, args))
    parts.append(draw(_blank))
    return "".join(parts), content, expected


@settings(max_examples=300, deadline=None)
@given(hermes_responses(), st.lists(st.integers(0, 10_000), max_size=40))
def test_any_rechunking_gives_the_same_content_and_calls(response, cuts):
    text, content, expected = response
    whole = _summary(_run([text]))
    assert _summary(_run(_chunked(text, cuts))) == whole
    assert _summary(_run(list(text))) == whole  # one character at a time
    got_content, calls = whole
    if expected:
        assert got_content == content.rstrip(" \t\r\n")
    assert [(n, a) for _, n, a in calls] == [(n, raw) for n, raw, _ in expected]
    assert [json.loads(a) for _, _, a in calls] == [args for _, _, args in expected]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["<tool_call>", "</tool_call>", "{", "}", '"', '"name"', ": ", '"f"', ",", "\n", "<"]
        )
        | st.text(max_size=4),
        max_size=30,
    ),
    st.lists(st.integers(0, 10_000), max_size=20),
)
def test_any_text_parses_the_same_whatever_the_chunking(pieces, cuts):
    text = "".join(pieces)
    whole = _summary(_run([text]))
    assert _summary(_run(_chunked(text, cuts))) == whole
    assert _summary(_run(list(text))) == whole


def test_feeding_after_finish_is_an_error():
    parser = HermesToolCallParser()
    parser.finish()
    try:
        parser.feed("x")
    except RuntimeError:
        return
    raise AssertionError("feed after finish was accepted")
