"""Choosing the next token from logits (no model)."""

from __future__ import annotations

import math

import pytest
import torch

from sgl_conveyor.backends.local.sampling import SamplingParams, sample


def logits_of(probs: list[float], vocab: int = 1000) -> torch.Tensor:
    """Logits whose softmax puts `probs` on the first tokens and ~0 elsewhere."""
    out = torch.full((vocab,), -1e4)
    out[: len(probs)] = torch.tensor([math.log(p) for p in probs])
    return out


def draws(logits: torch.Tensor, p: SamplingParams, n: int = 300, seed: int = 0) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return [sample(logits.clone(), p, g) for _ in range(n)]


def test_greedy_by_temperature_or_top_k_one():
    logits = logits_of([0.2, 0.5, 0.3])
    assert sample(logits, SamplingParams(temperature=0), None) == 1
    assert set(draws(logits, SamplingParams(temperature=1.0, top_k=1), 50)) == {1}


def test_the_same_seed_gives_the_same_draws_and_another_seed_does_not():
    logits = torch.randn(5000, generator=torch.Generator().manual_seed(7))
    p = SamplingParams(temperature=1.0)
    assert draws(logits, p, 50, seed=1) == draws(logits, p, 50, seed=1)
    assert draws(logits, p, 50, seed=1) != draws(logits, p, 50, seed=2)


def test_top_p_keeps_only_the_nucleus():
    logits = logits_of([0.5, 0.3, 0.15, 0.05])
    seen = set(draws(logits, SamplingParams(temperature=1.0, top_p=0.7)))
    assert seen == {0, 1}  # 0.5 < 0.7 so token 1 is kept; 0.8 >= 0.7 so token 2 is not


def test_top_p_wider_than_the_window_falls_back_to_the_whole_vocabulary():
    flat = torch.zeros(2000)
    seen = set(draws(flat, SamplingParams(temperature=1.0, top_p=0.9), 400))
    assert max(seen) > 256  # tokens beyond the top-256 window are reachable
    assert len(seen) > 300


def test_top_k_and_min_p_cut_the_tail():
    logits = logits_of([0.4, 0.3, 0.2, 0.1])
    assert set(draws(logits, SamplingParams(temperature=1.0, top_k=2))) == {0, 1}
    assert set(draws(logits, SamplingParams(temperature=1.0, min_p=0.6))) == {0, 1}


def test_masked_tokens_are_never_drawn():
    logits = torch.zeros(100)
    logits[::2] = float("-inf")
    seen = set(draws(logits, SamplingParams(temperature=1.0), 500))
    assert seen and all(t % 2 == 1 for t in seen)


def test_temperature_sharpens_the_distribution():
    logits = logits_of([0.6, 0.4])
    cold = draws(logits, SamplingParams(temperature=0.2), 400)
    hot = draws(logits, SamplingParams(temperature=1.0), 400)
    assert cold.count(0) > hot.count(0)


def test_invalid_parameters_are_rejected():
    with pytest.raises(ValueError):
        SamplingParams(top_p=0.0)
    with pytest.raises(ValueError):
        SamplingParams(regex="a", json_schema="{}")
    with pytest.raises(ValueError):
        SamplingParams(max_new_tokens=-1)
