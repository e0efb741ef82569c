"""The local engine on the real model: streaming, caching, stops, constraints, cancellation.

Short generations only (a few seconds each on 2 cores). Assertions are about tokens, counts and
cache hits, never about wall-clock speed.
"""

from __future__ import annotations

import json
import re
import threading
import time

import jsonschema
import pytest
import torch
from sglang.lang.ir import REGEX_BOOL, REGEX_FLOAT, REGEX_INT, REGEX_STR

from sgl_conveyor.backends.local import SamplingParams

pytestmark = pytest.mark.model

CHAT = "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
HAIKU = CHAT.format("Write a haiku about the sea.")


def greedy(n: int, **kw) -> SamplingParams:
    return SamplingParams(max_new_tokens=n, temperature=0.0, **kw)


def test_greedy_tokens_equal_transformers_generate(local_engine):
    """A request alone takes the unbatched path: same tokens as `model.generate`."""
    h = local_engine.submit(HAIKU, greedy(24, ignore_eos=True))
    h.result()
    ids = local_engine.prompts.encode(HAIKU).ids
    with torch.inference_mode():
        ref = local_engine.model.generate(
            torch.tensor([ids]), max_new_tokens=24, do_sample=False, eos_token_id=None
        )
    assert h.output_ids == ref[0, len(ids) :].tolist()


def test_stream_equals_non_stream(local_engine):
    text, meta = local_engine.submit(HAIKU, greedy(32)).result()
    h = local_engine.submit(HAIKU, greedy(32))
    events = list(h)
    assert "".join(e.text for e in events) == text
    assert [t for e in events for t in e.token_ids] == h.output_ids
    assert all(e.meta["finish_reason"] is None for e in events[:-1])
    assert events[-1].meta["finish_reason"] == meta["finish_reason"]
    assert events[-1].meta["completion_tokens"] == meta["completion_tokens"]


def test_cached_and_uncached_runs_give_the_same_tokens(local_engine):
    prompt = CHAT.format("List three fruits, one per line.")
    local_engine.flush_cache()
    cold = local_engine.submit(prompt, greedy(24))
    cold.result()
    warm = local_engine.submit(prompt, greedy(24))
    warm.result()
    assert cold.final_meta["cached_tokens"] == 0
    assert warm.final_meta["cached_tokens"] == warm.final_meta["prompt_tokens"] - 1
    assert warm.output_ids == cold.output_ids


TOOLS_SYSTEM = (
    "<|im_start|>system\nYou are an assistant that can call tools. To call a tool, answer with "
    'one JSON object {"tool": name, "arguments": {...}} and nothing else. The tool\'s result '
    "comes back in a message from the tool role; then answer the user in plain words.\n\n"
    "Tools:\n"
    + "\n".join(
        json.dumps(
            {
                "name": name,
                "description": desc,
                "parameters": {
                    "type": "object",
                    "properties": {arg: {"type": "string", "description": f"the {arg} to use"}},
                    "required": [arg],
                },
            }
        )
        for name, desc, arg in [
            ("search", "Search the web and return the top results with their snippets.", "query"),
            ("weather", "Current weather and a three-day forecast for a city.", "city"),
            ("python", "Run a short Python program and return what it prints.", "code"),
            ("calendar", "List the events of a day in the user's calendar.", "date"),
            ("email", "Send an e-mail on behalf of the user to one recipient.", "to"),
        ]
    )
    + '\n\nExample:\nuser: What is the weather in Oslo?\nassistant: {"tool": "weather", '
    '"arguments": {"city": "Oslo"}}\ntool: {"temp_c": 4, "sky": "rain"}\n'
    "assistant: It is 4 degrees and raining in Oslo.<|im_end|>\n"
)


def test_a_second_turn_hits_the_cache(local_engine):
    """Reinjection on a realistic agent turn: system prompt with tools, a user question, the
    model's tool call (re-sent as text by the program), then the tool's result. Everything but
    the new message is cached."""
    local_engine.flush_cache()
    turn1 = TOOLS_SYSTEM + CHAT.format("Find recent news about the Mars rover.")
    schema = json.dumps(
        {
            "type": "object",
            "properties": {
                "tool": {"type": "string", "enum": ["search", "weather", "python"]},
                "arguments": {
                    "type": "object",
                    "properties": {"query": {"type": "string", "maxLength": 40}},
                    "required": ["query"],
                },
            },
            "required": ["tool", "arguments"],
        }
    )
    h = local_engine.submit(turn1, greedy(60, json_schema=schema))
    call, meta1 = h.result()
    seen = meta1["prompt_tokens"] + meta1["completion_tokens"]
    turn2 = (
        turn1
        + call
        + '<|im_end|>\n<|im_start|>tool\n{"results": ["Rover finds ancient lake bed"]}'
        + "<|im_end|>\n<|im_start|>assistant\n"
    )
    _, meta = local_engine.submit(turn2, greedy(4)).result()
    # all but the call's last token and the stop token the grammar forced after it: those two
    # were sampled but never run through the model, so they have no KV
    assert meta["cached_tokens"] >= seen - 2
    assert meta["cached_tokens"] / meta["prompt_tokens"] >= 0.95, meta


def test_concurrent_requests_are_batched_and_match_their_solo_results(local_engine):
    prompts = [CHAT.format(f"Name {i} animals.") for i in range(2, 6)]
    solo = [local_engine.submit(p, greedy(16)).result()[0] for p in prompts]
    steps0 = dict(local_engine.counters)
    handles = [local_engine.submit(p, greedy(16)) for p in prompts]
    together = [h.result()[0] for h in handles]
    assert together == solo
    steps = local_engine.counters["decode_steps"] - steps0["decode_steps"]
    rows = local_engine.counters["decode_rows"] - steps0["decode_rows"]
    assert rows > steps  # several requests shared a forward


def test_rows_of_different_lengths_never_read_uninitialized_kv(local_engine, monkeypatch):
    """`torch.empty` may return any bits (CUDA's caching allocator hands back recycled memory).
    With it returning NaN, a request that joins a batch one token behind another must still
    decode what it decodes alone: the masked tail of its row is multiplied by a weight of 0,
    and 0 * NaN would turn its logits to NaN (this once ended forks after one token, and on
    CUDA made grammar-constrained calls pick token 0)."""
    prompt = CHAT.format("Say something short.")
    solo = local_engine.submit(prompt, greedy(8, ignore_eos=True)).result()[0]
    real_empty = torch.empty

    def nan_empty(*args, **kwargs):
        t = real_empty(*args, **kwargs)
        return t.fill_(float("nan")) if t.is_floating_point() else t

    local_engine.call(local_engine.pool.release)  # the next batch allocates a fresh pool
    monkeypatch.setattr(torch, "empty", nan_empty)
    first = iter(local_engine.submit(prompt, greedy(8, ignore_eos=True)))
    head = next(first).text  # decoding has started: the second request joins one token behind
    second = local_engine.submit(prompt, greedy(8, ignore_eos=True))
    assert [head + "".join(e.text for e in first), second.result()[0]] == [solo, solo]
    monkeypatch.undo()


def test_non_finite_logits_fail_the_request_with_a_clear_error(local_engine, monkeypatch):
    from sgl_conveyor.backends.local import engine as engine_module
    from sgl_conveyor.backends.local.engine import RequestError

    real = engine_module._check_finite

    def poisoned(logits, batch):
        real(torch.full_like(logits, float("nan")), batch)

    monkeypatch.setattr(engine_module, "_check_finite", poisoned)
    with pytest.raises(RequestError, match="non-finite logits"):
        local_engine.submit(HAIKU, greedy(4)).result()
    monkeypatch.undo()
    assert local_engine.submit(HAIKU, greedy(4)).result()[0]  # the engine serves on


def test_a_stop_string_split_across_tokens_is_cut_and_never_streamed(local_engine):
    full, _ = local_engine.submit(HAIKU, greedy(40)).result()
    tok = local_engine.tokenizer
    ids = tok.encode(full, add_special_tokens=False).ids
    pieces = [tok.decode([i]) for i in ids]
    # a stop made of the end of one token and the start of the next
    k = next(i for i in range(1, len(pieces)) if len(pieces[i - 1]) > 2 and len(pieces[i]) > 2)
    stop = pieces[k - 1][-2:] + pieces[k][:2]
    cut = full.index(stop)
    h = local_engine.submit(HAIKU, greedy(40, stop=(stop,)))
    deltas = [e.text for e in h]
    assert "".join(deltas) == full[:cut]
    assert h.final_meta["finish_reason"] == {"type": "stop", "matched": stop}


def test_stop_token_ids_max_tokens_min_tokens_and_ignore_eos(local_engine):
    h = local_engine.submit(HAIKU, greedy(40))
    _, meta = h.result()
    assert meta["finish_reason"] == {"type": "stop", "matched": 2}  # <|im_end|>
    natural = len(h.output_ids)
    third = h.output_ids[2]
    h2 = local_engine.submit(HAIKU, greedy(40, stop_token_ids=(third,)))
    _, meta2 = h2.result()
    assert meta2["finish_reason"] == {"type": "stop", "matched": third}
    assert h2.output_ids == h.output_ids[:3]
    _, meta3 = local_engine.submit(HAIKU, greedy(5)).result()
    assert meta3["finish_reason"] == {"type": "length", "length": 5}
    assert meta3["completion_tokens"] == 5
    h4 = local_engine.submit(HAIKU, greedy(natural + 6, min_new_tokens=natural + 3))
    h4.result()
    assert len(h4.output_ids) >= natural + 3
    _, meta5 = local_engine.submit(HAIKU, greedy(natural + 4, ignore_eos=True)).result()
    assert meta5["completion_tokens"] == natural + 4


@pytest.mark.parametrize(
    "regex", [REGEX_INT, REGEX_FLOAT, REGEX_BOOL, REGEX_STR, r"[0-9]{4}-[0-9]{2}-[0-9]{2}"]
)
def test_regex_constrained_outputs_match(local_engine, regex):
    prompt = CHAT.format("When did the first person walk on the moon? Give a value.")
    text, meta = local_engine.submit(prompt, greedy(48, regex=regex)).result()
    assert meta["finish_reason"]["type"] == "stop", meta
    assert re.fullmatch(regex, text), text


def test_json_schema_constrained_output_validates(local_engine):
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 20},
            "population": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 3},
        },
        "required": ["city", "population", "tags"],
        "additionalProperties": False,
    }
    prompt = CHAT.format("Describe Paris as JSON with its population and some tags.")
    for sampled in (False, True):
        params = SamplingParams(
            max_new_tokens=80,
            temperature=0.9 if sampled else 0.0,
            seed=7,
            json_schema=json.dumps(schema),
        )
        text, meta = local_engine.submit(prompt, params).result()
        assert meta["finish_reason"]["type"] == "stop", (text, meta)
        jsonschema.validate(json.loads(text), schema)


def test_closing_early_stops_within_a_step_and_caches_the_kv(local_engine):
    local_engine.flush_cache()
    h = local_engine.submit(HAIKU, greedy(200, ignore_eos=True))
    seen = 0
    for event in h:
        seen += len(event.token_ids)
        if seen >= 3:
            h.cancel()
    meta = h.wait(30)
    assert meta["finish_reason"]["type"] == "abort"
    assert 3 <= meta["completion_tokens"] <= seen + 1
    ids = local_engine.prompts.encode(HAIKU).ids
    cached = local_engine.radix.match_prefix_length(ids + h.output_ids)
    # the KV of every token that went through the model was kept (the last sampled token
    # has none unless a step ran after it)
    assert cached >= len(ids) + len(h.output_ids) - 1


def test_abort_by_id_from_another_thread(local_engine):
    h = local_engine.submit(HAIKU, greedy(200, ignore_eos=True), rid="abort-me")
    first = next(iter(h))
    assert first.meta["id"] == "abort-me"
    threading.Thread(target=local_engine.abort, args=("abort-me",)).start()
    meta = h.wait(30)
    assert meta["finish_reason"]["type"] == "abort"
    assert meta["completion_tokens"] < 200
    assert local_engine.abort("abort-me") is False  # no longer running


def test_stats_count_a_request_as_running_until_its_end_is_counted(local_engine, monkeypatch):
    """A reader who sees nothing running must see how every request ended: the router test
    waits until its workers are idle, then reads where the abort was counted. Ending a request
    takes time (its KV goes into the cache, its tokens are remembered); here it takes longer."""
    remember = local_engine._remember

    def slow_remember(req):
        time.sleep(0.3)
        remember(req)

    monkeypatch.setattr(local_engine, "_remember", slow_remember)
    before = local_engine.stats()["aborted_requests"]
    h = local_engine.submit(HAIKU, greedy(200, ignore_eos=True))
    next(iter(h))
    h.cancel()
    samples = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        samples.append(local_engine.stats())
        if h.finished and samples[-1]["running"] == 0:
            break
        time.sleep(0.005)
    idle = [s for s in samples if s["running"] == 0 and s["waiting"] == 0]
    assert idle, "the engine never became idle"
    assert all(s["aborted_requests"] == before + 1 for s in idle), [
        s["aborted_requests"] for s in idle
    ]
    assert len(samples) > len(idle)  # it was seen running while it ended


def test_logprobs_have_the_server_shape(local_engine):
    params = greedy(6, return_logprob=True, top_logprobs_num=3, return_text_in_logprobs=True)
    h = local_engine.submit(HAIKU, params)
    text, meta = h.result()
    out = meta["output_token_logprobs"]
    assert [t for _, t, _ in out] == h.output_ids
    assert all(lp <= 0 for lp, _, _ in out)
    assert "".join(s for _, _, s in out if s != "<|im_end|>") == text
    for (lp, tid, _), top in zip(out, meta["output_top_logprobs"], strict=True):
        assert len(top) == 3 and top[0][1] == tid and top[0][0] == pytest.approx(lp)


def test_seeded_sampling_is_reproducible(local_engine):
    def run(seed):
        p = SamplingParams(max_new_tokens=16, temperature=1.0, top_p=0.95, seed=seed)
        return local_engine.submit(HAIKU, p).result()[0]

    assert run(11) == run(11)
    assert len({run(s) for s in (11, 12, 13)}) > 1


def test_invalid_constraints_fail_at_submission(local_engine):
    with pytest.raises(ValueError, match="regex"):
        local_engine.submit(HAIKU, greedy(4, regex="(unclosed"))


def test_repetition_penalties_reduce_repeats(local_engine):
    prompt = CHAT.format("Repeat the word 'tea' many times.")
    plain = local_engine.submit(prompt, greedy(24, ignore_eos=True))
    plain.result()
    penalized = local_engine.submit(
        prompt, greedy(24, ignore_eos=True, frequency_penalty=1.5, presence_penalty=1.5)
    )
    penalized.result()
    assert len(set(penalized.output_ids)) > len(set(plain.output_ids))


def test_abort_all_cancels_every_running_request(local_engine):
    handles = [local_engine.submit(HAIKU, greedy(200, ignore_eos=True)) for _ in range(2)]
    next(iter(handles[0]))
    assert set(local_engine.running_ids()) >= {h.id for h in handles}
    assert local_engine.abort_all() >= 2
    for h in handles:
        assert h.wait(30)["finish_reason"]["type"] == "abort"
    assert local_engine.running_ids() == []


def test_streamed_logprobs_are_increments_with_the_total_length(local_engine):
    # SGLang's server sends each chunk's new tokens' logprobs only, and the running total in
    # output_token_logprobs_length; programs written for the server must see the same here.
    h = local_engine.submit(HAIKU, greedy(8, return_logprob=True))
    seen = 0
    for event in h:
        meta = event.meta
        new = meta["output_token_logprobs"]
        assert [t for _, t, _ in new] == list(event.token_ids)
        seen += len(new)
        assert meta["output_token_logprobs_length"] == meta["completion_tokens"] == seen
    assert seen == len(h.output_ids) == 8


def test_a_grammar_that_dead_ends_ends_its_request_not_the_batch(local_engine):
    # `a` then a class no character is in: it compiles, and allows nothing after `a`. Once,
    # that failed the engine's step, and with it every request in flight.
    other = local_engine.submit(HAIKU, greedy(24, ignore_eos=True))
    next(iter(other))  # the other request is decoding
    hostile = local_engine.submit(HAIKU, greedy(8, regex="a[^\\x00-\\U0010FFFF]"))
    text, meta = hostile.result()
    assert meta["finish_reason"]["type"] == "abort"
    assert "allows no further token" in meta["finish_reason"]["message"]
    assert text == "a"
    _, final = other.result()
    assert final["finish_reason"]["type"] == "length" and final["completion_tokens"] == 24
