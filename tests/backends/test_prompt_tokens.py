"""Prompt tokenization that keeps the tokens of a remembered sequence (tokenizer only)."""

from __future__ import annotations

from sgl_conveyor.backends.local.prompt_tokens import PromptTokenizer
from sgl_conveyor.backends.local.text_stream import TextStream


def remember_generation(pt, tok, prompt: str, generated_ids: list[int]) -> str:
    """What the engine does when a request ends: remember prompt + generated tokens."""
    first = pt.encode(prompt)
    stream = TextStream(tok, context_ids=first.ids)
    for tid in generated_ids:
        stream.push(tid)
    base = len(first.text)
    ends = first.ends + [e + base if e >= 0 else -1 for e in stream.ends]
    pt.remember(first.text + stream.raw_text, first.ids + generated_ids, ends)
    return first.text + stream.raw_text


def test_a_non_canonical_generation_keeps_its_tokens_in_the_next_prompt(smol_tokenizer):
    tok = smol_tokenizer
    pt = PromptTokenizer(tok)
    prompt = "<|im_start|>user\nGive JSON.<|im_end|>\n<|im_start|>assistant\n"
    # spell '{"city": "Paris"}' one character per token, as a grammar-constrained model may
    answer = '{"city": "Paris"}'
    generated = [tok.token_to_id(c) for c in answer.replace(" ", "Ġ")]
    assert None not in generated
    assert tok.encode(answer, add_special_tokens=False).ids != generated  # non-canonical
    seen = remember_generation(pt, tok, prompt, generated)
    follow = seen + "<|im_end|>\n<|im_start|>user\nThanks!<|im_end|>\n"
    out = pt.encode(follow)
    assert out.exact and out.text == follow
    assert out.ids[: out.reused] == (pt.encode(prompt).ids + generated)[: out.reused]
    assert out.reused >= len(pt.encode(prompt).ids) + len(generated)
    assert tok.decode(out.ids, skip_special_tokens=False) == follow


def test_unrelated_text_is_tokenized_canonically(smol_tokenizer):
    pt = PromptTokenizer(smol_tokenizer)
    remember_generation(pt, smol_tokenizer, "Hello there", [smol_tokenizer.token_to_id("!")])
    out = pt.encode("Goodbye")
    assert out.reused == 0
    assert out.ids == smol_tokenizer.encode("Goodbye").ids


def test_a_prefix_that_ends_inside_a_token_reuses_only_whole_tokens(smol_tokenizer):
    tok = smol_tokenizer
    pt = PromptTokenizer(tok)
    ids = tok.encode("The weather in Paris is sunny").ids
    described = pt.describe(ids)
    pt.remember(described.text, ids, described.ends)
    out = pt.encode("The weather in Par")  # cuts the token " Paris"
    assert out.exact and tok.decode(out.ids) == "The weather in Par"
    assert out.reused == len(tok.encode("The weather in").ids)


def test_boundaries_inside_multibyte_characters_are_not_reused(smol_tokenizer):
    tok = smol_tokenizer
    pt = PromptTokenizer(tok)
    text = "emoji 😀 here"
    described = pt.describe(tok.encode(text).ids)
    assert -1 in described.ends  # 😀 spans two tokens
    pt.remember(described.text, tok.encode(text).ids, described.ends)
    out = pt.encode(text + " and more")
    assert out.exact and out.reused == len(tok.encode(text).ids)


def test_superseded_sequences_are_dropped_and_capacity_is_bounded(smol_tokenizer):
    tok = smol_tokenizer
    pt = PromptTokenizer(tok, capacity=3)
    base = "a b c"
    for extra in ["", " d", " d e"]:
        d = pt.describe(tok.encode(base + extra).ids)
        pt.remember(d.text, tok.encode(base + extra).ids, d.ends)
    assert len(pt) == 1  # each extended the previous one
    for i in range(5):
        d = pt.describe(tok.encode(f"other {i}").ids)
        pt.remember(d.text, tok.encode(f"other {i}").ids, d.ends)
    assert len(pt) == 3
