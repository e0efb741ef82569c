"""Incremental detokenization and stop strings, on SmolLM2's real tokenizer (no model)."""

from __future__ import annotations

from sgl_conveyor.backends.local.text_stream import TextStream

SPECIAL = frozenset(range(17))


def run(tok, text, *, stop=(), check_stops=True):
    ids = tok.encode(text, add_special_tokens=False).ids
    stream = TextStream(tok, special_ids=SPECIAL, stop=stop)
    deltas, matched = [], None
    for tid in ids:
        delta, matched = stream.push(tid, check_stops=check_stops)
        deltas.append(delta)
        if matched is not None:
            break
    else:
        deltas.append(stream.flush())
    return ids, deltas, matched, stream


def test_deltas_are_exact_across_multibyte_characters(smol_tokenizer):
    text = "Café naïve — 😀👍🏽 日本語 🇫🇷 Ελληνικά ✓ done"
    ids, deltas, matched, _ = run(smol_tokenizer, text)
    assert matched is None
    assert "".join(deltas) == text
    assert not any("\ufffd" in d for d in deltas)
    assert len(ids) > len([d for d in deltas if d])  # some tokens were half a character


def test_a_stop_string_split_across_tokens_is_never_emitted(smol_tokenizer):
    text = "The answer is 42.\nObservation: done and more"
    ids, deltas, matched, _ = run(smol_tokenizer, text, stop=["Observation:"])
    pieces = [smol_tokenizer.decode([i]) for i in ids]
    assert "Observation:" not in pieces  # the stop really spans several tokens
    assert matched == "Observation:"
    assert "".join(deltas) == "The answer is 42.\n"
    assert not any("Obs" in d for d in deltas)


def test_held_back_text_is_released_when_no_stop_follows(smol_tokenizer):
    text = "We observe the Obs and the Observ"
    _, deltas, matched, _ = run(smol_tokenizer, text, stop=["Observation:"])
    assert matched is None
    assert deltas[-1] != ""  # the flush released the held-back "Observ"
    assert "".join(deltas) == text


def test_the_earliest_of_several_stops_wins(smol_tokenizer):
    text = "alpha beta gamma delta"
    _, deltas, matched, _ = run(smol_tokenizer, text, stop=["delta", "beta"])
    assert matched == "beta"
    assert "".join(deltas) == "alpha "


def test_stops_are_ignored_when_checking_is_off(smol_tokenizer):
    text = "one\n\ntwo"
    _, deltas, matched, _ = run(smol_tokenizer, text, stop=["\n\n"], check_stops=False)
    assert matched is None and "".join(deltas) == text


def test_special_tokens_are_invisible_but_kept_in_raw_text(smol_tokenizer):
    text = "<|im_start|>assistant\nHi there<|im_end|>\n"
    ids, deltas, _, stream = run(smol_tokenizer, text)
    assert "".join(deltas) == "assistant\nHi there\n"
    assert stream.raw_text == text
    assert len(stream.ends) == len(ids) and stream.ends[-1] == len(text)
