"""Property tests: one response re-chunked every way servers chunk it (token fragments,
re-serialised JSON, one member per fragment, the whole call at the end, several calls per
chunk, empty and repeated fragments) runs the same units, gives the same results and errors,
and runs each unit exactly once, in every mode. Streams are the SDK's own chunk objects."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

from chat_chunks import Piece, call_script, chunk
from chat_tools import counting_tools
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sgl_conveyor.chat.engine import TurnEngine
from sgl_conveyor.chat.events import UnitReady
from sgl_conveyor.errors import (
    MalformedCallError,
    SchemaViolationError,
    TruncatedCallError,
    UnconfirmedCallError,
    UnknownToolCallError,
)
from sgl_conveyor.runtime.call import Mode

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

query = st.text(alphabet='abcdefgh é"\\', min_size=1, max_size=8)
lookup_call = st.builds(
    lambda qs: ("lookup", {"queries": qs}), st.lists(query, min_size=1, max_size=4)
)
book_call = st.builds(
    lambda place, n: ("book", {"place": place, "people": n}), query, st.integers(1, 9)
)
calls_st = st.lists(st.one_of(lookup_call, book_call), min_size=1, max_size=3)
modes = st.sampled_from(list(Mode))
shapes = st.fixed_dictionaries(
    {
        "style": st.sampled_from([None, "tokens", "reserialised", "per_member", "whole_at_end"]),
        "per_chunk": st.integers(1, 3),
        "empty_fragments": st.booleans(),
        "repeat_at_end": st.booleans(),
        "seed": st.integers(0, 2**16),
    }
)


def run_turn(tools: Any, script: list, mode: Mode, tool_choice: Any = "auto"):
    engine = TurnEngine(tools.toolset, mode, tool_choice=tool_choice)
    events = list(engine.run(lambda: iter(script)))
    return engine.turn, events


def expected_result(name: str, args: dict) -> Any:
    if name == "lookup":
        return {"answers": [q.upper() for q in args["queries"]]}
    return f"booked {args['place']} for {args['people']}"


def units_of(events: list, index: int) -> list[tuple[str, Any]]:
    return [(e.path, e.value) for e in events if isinstance(e, UnitReady) and e.index == index]


@SETTINGS
@given(calls=calls_st, mode=modes, shape=shapes)
def test_any_chunking_runs_the_same_units_and_results_exactly_once(calls, mode, shape):
    tools = counting_tools()
    rng = random.Random(shape.pop("seed"))
    turn, events = run_turn(tools, call_script(calls, rng, **shape), mode)

    assert turn.error is None and turn.stopped is None and turn.finish_reason == "tool_calls"
    assert [c.name for c in turn.calls] == [name for name, _ in calls]
    for i, (name, args) in enumerate(calls):
        call = turn.calls[i]
        assert call.error is None, call.error
        assert call.arguments == args
        assert call.result == expected_result(name, args)
        if name == "lookup":
            assert units_of(events, i) == [
                (f"/queries/{k}", q) for k, q in enumerate(args["queries"])
            ]
        else:
            assert units_of(events, i) == [("", args)]
    # Exactly once: identical pure queries of one response share one execution.
    queries = {q for name, args in calls if name == "lookup" for q in args["queries"]}
    assert tools.lookup.runs == Counter(dict.fromkeys(queries, 1))
    assert tools.lookup.finished == sum(1 for name, _ in calls if name == "lookup")
    booked = [(a["place"], a["people"]) for name, a in calls if name == "book"]
    assert Counter(tools.bookings.made) == Counter(booked)
    # The tool messages follow the assistant message, in index order.
    messages = turn.messages
    assert [m["tool_call_id"] for m in messages[1:]] == [f"call_{i}" for i in range(len(calls))]
    sent_back = [json.loads(t["function"]["arguments"]) for t in messages[0]["tool_calls"]]
    assert sent_back == [a for _, a in calls]  # a repeat the server added is not sent back


@SETTINGS
@given(
    before=st.lists(query, max_size=3),
    after=st.lists(query, max_size=2),
    book_first=st.booleans(),
    mode=modes,
    seed=st.integers(0, 2**16),
    style=st.sampled_from([None, "tokens", "per_member", "reserialised"]),
)
def test_a_schema_violation_fails_the_same_way_however_chunked(
    before, after, book_first, mode, seed, style
):
    bad = "x" * 30  # maxLength is 24
    calls = [("lookup", {"queries": [*before, bad, *after]})]
    if book_first:
        calls.insert(0, ("book", {"place": "Rome", "people": 2}))
    tools = counting_tools()
    turn, _ = run_turn(tools, call_script(calls, random.Random(seed), style=style), mode)

    failed = turn.calls[-1]
    assert isinstance(failed.error, SchemaViolationError)
    assert all(n == 1 for n in tools.lookup.runs.values())
    assert tools.lookup.finished == 0
    if mode is Mode.PARTIAL:
        # Caught at the bad query: the stream is closed there, nothing after it ran, and the
        # booking before it was never confirmed by the server, so it did not happen.
        assert failed.error.unit == f"/queries/{len(before)}"
        assert turn.stopped is not None
        assert set(tools.lookup.runs) <= set(before)
        assert tools.bookings.made == []
        if book_first:
            assert isinstance(turn.calls[0].error, UnconfirmedCallError)
    else:
        # The baselines validate the whole call after the response: nothing of it ran, and a
        # valid, confirmed call beside it did.
        assert turn.stopped is None and turn.finish_reason == "tool_calls"
        assert not tools.lookup.runs
        assert tools.bookings.made == ([("Rome", 2)] if book_first else [])


@SETTINGS
@given(
    calls=calls_st,
    mode=modes,
    seed=st.integers(0, 2**16),
    reason=st.sampled_from(["length", "stop"]),
)
def test_without_confirmation_nothing_irreversible_runs(calls, mode, seed, reason):
    tools = counting_tools()
    turn, _ = run_turn(tools, call_script(calls, random.Random(seed), finish_reason=reason), mode)
    assert tools.bookings.made == []
    for (name, args), call in zip(calls, turn.calls, strict=True):
        if name == "book":
            assert isinstance(call.error, UnconfirmedCallError)
        else:  # pure work may stand: it was complete, valid, and changes nothing
            assert call.result == expected_result(name, args)


def test_a_named_tool_choice_confirms_with_stop():
    tools = counting_tools()
    calls = [("book", {"place": "Oslo", "people": 3})]
    script = call_script(calls, random.Random(0), finish_reason="stop")
    choice = {"type": "function", "function": {"name": "book"}}
    turn, _ = run_turn(tools, script, Mode.PARTIAL, tool_choice=choice)
    assert turn.calls[0].result == "booked Oslo for 3"
    assert tools.bookings.made == [("Oslo", 3)]


@SETTINGS
@given(
    calls=st.lists(lookup_call, min_size=1, max_size=2),
    where=st.integers(0, 10**6),
    seed=st.integers(0, 2**16),
)
def test_a_duplicated_fragment_is_judged_on_the_text_it_makes(calls, where, seed):
    """A repeated fragment changes the call's text: the outcome is that of the same text sent
    in one piece (never a unit the final text does not hold), whatever the chunking."""
    rng = random.Random(seed)
    script = call_script(calls, rng, style="tokens", with_usage=False)
    deltas = [(k, p) for k, c in enumerate(script) for p in (c.choices[0].delta.tool_calls or [])]
    args_deltas = [(k, p) for k, p in deltas if p.function.arguments]
    k, p = args_deltas[where % len(args_deltas)]
    dup = Piece(p.index, arguments=p.function.arguments)
    script.insert(k + 1, chunk([dup]))
    texts: dict[int, str] = {}
    for c in script:
        for d in c.choices[0].delta.tool_calls or []:
            texts[d.index] = texts.get(d.index, "") + (d.function.arguments or "")
    whole = [
        chunk([Piece(i, id=f"call_{i}", name="lookup", arguments=t)]) for i, t in texts.items()
    ]
    whole.append(chunk(finish_reason="tool_calls"))

    def outcome(s):
        tools = counting_tools()
        turn, _ = run_turn(tools, s, Mode.PARTIAL)
        return [(c.result, type(c.error), c.arguments) for c in turn.calls], tools

    got, tools = outcome(script)
    want, _ = outcome(whole)
    assert got == want
    for _result, error, arguments in got:
        if error is None:
            assert set(arguments["queries"]) <= set(tools.lookup.runs)


def test_arguments_repeated_whole_at_the_end_are_accepted_once():
    tools = counting_tools()
    args = {"queries": ["a", "b"]}
    script = call_script([("lookup", args)], random.Random(3), style="tokens", repeat_at_end=True)
    turn, _ = run_turn(tools, script, Mode.PARTIAL)
    assert turn.calls[0].result == {"answers": ["A", "B"]}
    assert tools.lookup.runs == Counter({"a": 1, "b": 1})
    notes = [n[1] for n in turn.calls[0].timeline.notes]
    assert "repeated_arguments_ignored" in notes


def test_different_text_after_the_arguments_closed_is_malformed():
    tools = counting_tools()
    script = [
        chunk([Piece(0, id="c0", name="book", arguments='{"place": "Rome", "people": 2}')]),
        chunk([Piece(0, arguments='{"place": "Nice", "people": 2}')]),
        chunk(finish_reason="tool_calls"),
    ]
    turn, _ = run_turn(tools, script, Mode.PARTIAL)
    assert isinstance(turn.calls[0].error, MalformedCallError)
    assert tools.bookings.made == []


def test_a_call_cut_by_length_is_truncated_and_an_unknown_tool_stops_the_stream():
    tools = counting_tools()
    cut = [
        chunk([Piece(0, id="c0", name="lookup", arguments='{"queries": ["a", "b')]),
        chunk(finish_reason="length"),
    ]
    turn, _ = run_turn(tools, cut, Mode.PARTIAL)
    assert isinstance(turn.calls[0].error, TruncatedCallError)
    assert "length" in str(turn.calls[0].error)
    assert tools.lookup.runs == Counter({"a": 1}) and tools.lookup.finished == 0

    sent = []
    unknown = [
        chunk([Piece(0, id="c0", name="launch", arguments="{")]),
        chunk([Piece(0, arguments="}")]),
        chunk(finish_reason="tool_calls"),
    ]

    def stream():
        for c in unknown:
            sent.append(c)
            yield c

    engine = TurnEngine(tools.toolset, Mode.PARTIAL)
    list(engine.run(stream))
    assert isinstance(engine.turn.calls[0].error, UnknownToolCallError)
    assert "launch" in str(engine.turn.calls[0].error) and "lookup" in str(
        engine.turn.calls[0].error
    )
    assert len(sent) == 1  # nothing more was read once the call was known to be doomed


def test_early_units_the_final_arguments_do_not_confirm_are_redone(monkeypatch):
    """Should the streamed units ever differ from the final arguments' own (a detector and
    json disagreeing), the attempt is undone and the call runs again from the final
    arguments; pure units already run are reused, not run twice."""
    from sgl_conveyor.chat import arguments

    calls = {"n": 0}
    real = arguments.ArgumentStream.mismatches

    def disagree_once(self, value):
        calls["n"] += 1
        return ["/queries/1"] if calls["n"] == 1 else real(self, value)

    monkeypatch.setattr(arguments.ArgumentStream, "mismatches", disagree_once)
    tools = counting_tools("reversible")
    script = call_script([("lookup", {"queries": ["p", "q"]})], random.Random(4), style="tokens")
    turn, _ = run_turn(tools, script, Mode.PARTIAL)
    call = turn.calls[0]
    assert call.error is None and call.result == {"answers": ["P", "Q"]}
    assert len(call.timelines) == 2 and call.timelines[0].aborted is not None
    assert "differ from the final arguments" in call.timelines[0].abort_reason
    # What the first attempt ran is undone (a unit still running at the abort may not have run).
    ran_first = [u.path for u in call.timelines[0].units if u.ok]
    assert ran_first and set(ran_first) <= {"/queries/0", "/queries/1"}
    value = {"/queries/0": "p", "/queries/1": "q"}
    assert sorted(tools.lookup.undone) == sorted(value[p] for p in ran_first)
    assert tools.lookup.finished == 1


def test_parallel_calls_run_concurrently():
    """Call 0's unit waits for call 1's: only concurrent scopes can both finish."""
    import threading

    from chat_tools import CountingLookup, lookup_spec

    from sgl_conveyor.chat import ToolSet

    second = threading.Event()

    class Waiting(CountingLookup):
        def run_unit(self, unit, ctx):
            if unit.value == "first":
                assert second.wait(10), "call 1 never ran while call 0 was running"
            else:
                second.set()
            return super().run_unit(unit, ctx)

    tool = Waiting(lookup_spec())
    toolset = ToolSet([(lookup_spec(), tool)])
    script = call_script(
        [("lookup", {"queries": ["first"]}), ("lookup", {"queries": ["second"]})],
        random.Random(0),
        style="tokens",
    )
    engine = TurnEngine(toolset, Mode.PARTIAL)
    list(engine.run(lambda: iter(script)))
    assert [c.result for c in engine.turn.calls] == [
        {"answers": ["FIRST"]},
        {"answers": ["SECOND"]},
    ]


def test_a_pattern_goes_to_the_server_and_leaves_the_spec_alone():
    """`patterns` add a JSON Schema `pattern` to what the request sends; the tool's own spec
    (which validates the final arguments) is not changed by it."""
    import pytest

    from sgl_conveyor import default_registry
    from sgl_conveyor.chat import ToolSet
    from sgl_conveyor.errors import ToolSpecError

    spec = default_registry().spec("plan")
    before = spec.to_openai()
    sent = ToolSet(["plan"], patterns={"plan": {"plan": "^1\\. .*$"}}).definitions()
    assert sent[0]["function"]["parameters"]["properties"]["plan"]["pattern"] == "^1\\. .*$"
    assert sent[0]["function"]["strict"] is True
    assert spec.to_openai() == before and "pattern" not in str(spec.parameters)
    with pytest.raises(ToolSpecError, match="not a string argument"):
        ToolSet(["plan"], patterns={"plan": {"nope": "x"}}).definitions()
