"""SGLang programs on LocalBackend: what a user of the frontend expects to work."""

from __future__ import annotations

import re

import pytest
import sglang as sgl
from sglang.lang.choices import (
    greedy_token_selection,
    token_length_normalized,
    unconditional_likelihood_normalized,
)
from sglang.lang.ir import REGEX_FLOAT, REGEX_INT, SglSamplingParams

pytestmark = pytest.mark.model


@sgl.function
def qa(s, question, limit=24):
    s += sgl.system("You are a helpful assistant.")
    s += sgl.user(question)
    s += sgl.assistant(sgl.gen("answer", max_tokens=limit, temperature=0))


def test_roles_render_with_the_models_chatml_template(local_backend):
    assert local_backend.get_chat_template().name == "chatml"
    state = qa.run(question="What is the capital of France?", backend=local_backend)
    assert "Paris" in state["answer"]
    assert state.text().startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")
    assert state.messages()[-1] == {"role": "assistant", "content": state["answer"]}
    meta = state.get_meta_info("answer")
    assert meta["finish_reason"] == {"type": "stop", "matched": 2}
    assert meta["prompt_tokens"] > 0 and meta["completion_tokens"] > 0


def test_stream_text_iter_gives_the_same_text_as_a_plain_run(local_backend):
    plain = qa.run(question="Name a color.", backend=local_backend)
    state = qa.run(question="Name a color.", backend=local_backend, stream=True)
    chunks = list(state.text_iter("answer"))
    assert len(chunks) > 1
    assert "".join(chunks) == plain["answer"]


def test_fork_and_join_share_the_cached_prefix(local_backend):
    prefix = "Here are two tips for staying healthy: 1. Balanced diet. 2. Regular exercise.\n\n"
    fork_metas = []

    @sgl.function
    def tips(s):
        s += prefix
        s.sync()  # sglang only pre-warms the prefix for forks when the text is already there
        forks = s.fork(2)
        for i, f in enumerate(forks):
            f += f"Now, expand tip {i + 1} into one sentence:\n"
            f += sgl.gen("detail", max_tokens=16, stop="\n\n", temperature=0)
        forks.join()
        fork_metas.extend(f.get_meta_info("detail") for f in forks)
        s += "Tip 1:" + forks[0]["detail"] + "\nTip 2:" + forks[1]["detail"] + "\n"
        s += "In summary," + sgl.gen("summary", max_tokens=12, temperature=0)

    local_backend.flush_cache()
    state = tips.run(backend=local_backend)
    assert len(state["detail"]) == 2 and all(state["detail"])
    assert state.text().endswith(state["summary"])
    prefix_tokens = len(local_backend.engine.tokenizer.encode(prefix).ids)
    # commit_lazy_operations prefilled the prefix once; each fork prefilled only its own part
    assert all(m["cached_tokens"] >= prefix_tokens for m in fork_metas), fork_metas
    assert state.get_meta_info("summary")["cached_tokens"] >= prefix_tokens


@pytest.mark.parametrize(
    "method",
    [token_length_normalized, greedy_token_selection, unconditional_likelihood_normalized],
)
def test_select_returns_a_choice_and_its_logprobs(local_backend, method):
    @sgl.function
    def pick(s):
        s += sgl.user("Is the sky blue on a clear day? Answer yes or no.")
        s += sgl.assistant(sgl.gen("yn", choices=["yes", "no", "maybe not"], choices_method=method))

    state = pick.run(backend=local_backend)
    assert state["yn"] in ("yes", "no", "maybe not")
    meta = state.get_meta_info("yn")
    assert len(meta["normalized_prompt_logprobs"]) == 3
    tok = local_backend.engine.tokenizer
    assert [len(x) for x in meta["input_token_logprobs"]] == [
        len(tok.encode(c, add_special_tokens=False).ids) for c in ("yes", "no", "maybe not")
    ]


def test_select_prefers_the_likely_answer(local_backend):
    @sgl.function
    def capital(s):
        s += "The capital of France is"
        s += sgl.gen("city", choices=[" Paris", " a banana split with cream"])

    assert capital.run(backend=local_backend)["city"] == " Paris"


def test_dtype_gen_is_constrained_like_the_runtime_endpoint(local_backend):
    @sgl.function
    def typed(s):
        s += sgl.user("How many legs does a dog have?")
        s += sgl.assistant(sgl.gen("n", dtype=int, max_tokens=8))
        s += sgl.user("What is pi, roughly?")
        s += sgl.assistant(sgl.gen("pi", dtype=float, max_tokens=12))
        s += sgl.user("Is water wet?")
        s += sgl.assistant(sgl.gen("wet", dtype=bool, max_tokens=4))
        s += sgl.user("Name a fruit.")
        s += sgl.assistant(sgl.gen("fruit", dtype=str, max_tokens=24))

    state = typed.run(backend=local_backend, temperature=0)
    assert re.fullmatch(REGEX_INT, state["n"]) and " " not in state["n"]
    assert re.fullmatch(REGEX_FLOAT, state["pi"])
    assert state["wet"] in ("True", "False")
    assert re.fullmatch(r"\"[\w\d\s]*\"", state["fruit"])


def test_run_batch_of_eight_programs_gives_each_its_own_answer(local_backend):
    questions = [f"What is {i} plus {i}? Answer with the number only." for i in range(1, 9)]
    states = qa.run_batch([{"question": q, "limit": 12} for q in questions], backend=local_backend)
    solo = [qa.run(question=q, limit=12, backend=local_backend)["answer"] for q in questions[:3]]
    answers = [s["answer"] for s in states]
    assert all(s.error() is None for s in states)
    assert answers[:3] == solo
    for q, state in zip(questions, states, strict=True):
        assert q in state.text()  # each program kept its own prompt and answer


def test_closing_generate_stream_aborts_the_request_and_keeps_its_kv(local_backend):
    @sgl.function
    def prompt_only(s):
        s += sgl.user("Tell me a long story about a dragon.")
        s += "<|im_start|>assistant\n"

    # drive the backend as the partial-tool node does: its own stream, closed early
    state = prompt_only.run(backend=local_backend)
    state.sync()
    exe = state.stream_executor
    sp = SglSamplingParams(max_new_tokens=200, ignore_eos=True, temperature=0)
    stream = local_backend.generate_stream(exe, sp)
    rid, got = None, ""
    for delta, meta in stream:
        rid, got = meta["id"], got + delta
        if meta["completion_tokens"] >= 4:
            break
    stream.close()  # returns once the request has ended and its KV is cached
    final = local_backend.request_meta(rid)
    assert final["finish_reason"]["type"] == "abort"
    assert 4 <= final["completion_tokens"] <= 5
    assert local_backend.abort(rid) is False
    engine = local_backend.engine
    ids = engine.prompts.encode(exe.text_).ids
    assert engine.radix.match_prefix_length(ids) == len(ids)  # the prompt's KV was cached


def test_end_program_is_idempotent_and_cheap(local_backend):
    state = qa.run(question="Say hi.", limit=4, backend=local_backend)
    for _ in range(3):
        local_backend.end_program(state.stream_executor)
    assert local_backend.get_server_info()["running"] == 0


def test_run_batch_prewarms_the_shared_constant_prefix(local_backend):
    prefix = (
        "You are a terse encyclopedia. For each topic, write one short fact and nothing else. Topic"
    )

    @sgl.function
    def fact(s, topic):
        s += prefix
        s += f": {topic}\nFact:" + sgl.gen("fact", max_tokens=8, temperature=0)

    local_backend.flush_cache()
    states = fact.run_batch(
        [{"topic": t} for t in ("iron", "owls", "tea", "ice")], backend=local_backend
    )
    prefix_tokens = len(local_backend.engine.tokenizer.encode(prefix).ids)
    for state in states:  # sglang traced the prefix and called cache_prefix before the batch
        assert state.get_meta_info("fact")["cached_tokens"] >= prefix_tokens - 1


def test_n_greater_than_one_returns_one_completion_per_sample(local_backend):
    @sgl.function
    def names(s):
        s += sgl.user("Invent a name for a cat.")
        s += sgl.assistant(sgl.gen("name", max_tokens=8, n=3, temperature=1.0))

    state = names.run(backend=local_backend)
    assert isinstance(state["name"], list) and len(state["name"]) == 3
    assert isinstance(state.get_meta_info("name"), list)
