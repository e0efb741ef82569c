"""The radix prefix cache on its own: no model, no torch (payloads are token ranges)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgl_conveyor.backends.local.radix_cache import EMPTY, RadixCache


@dataclass(frozen=True)
class Span:
    """A payload that remembers which tokens it was made for, 10 bytes per token."""

    tokens: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return 10 * len(self.tokens)

    def split(self, at: int) -> tuple[Span, Span]:
        return Span(self.tokens[:at]), Span(self.tokens[at:])


def spans_for(tokens):
    return lambda a, b: Span(tuple(tokens[a:b]))


def joined(match) -> tuple[int, ...]:
    out: tuple[int, ...] = ()
    for seg in match.segments:
        out += seg.tokens
    return out


def test_insert_then_match_returns_the_cached_prefix_and_its_payload():
    tree = RadixCache()
    seq = [1, 2, 3, 4, 5]
    assert tree.insert(seq, spans_for(seq)) == 0
    m = tree.match_prefix([1, 2, 3, 4, 5, 6, 7])
    assert m.length == 5
    assert joined(m) == (1, 2, 3, 4, 5)
    assert tree.match_prefix([9, 1]).length == 0
    assert tree.total_tokens == 5 and tree.total_bytes == 50


def test_a_match_inside_an_edge_splits_it_and_keeps_every_token_once():
    tree = RadixCache()
    seq = [1, 2, 3, 4, 5, 6]
    tree.insert(seq, spans_for(seq))
    m = tree.match_prefix([1, 2, 3, 9])
    assert m.length == 3 and joined(m) == (1, 2, 3)
    assert m.node.key == (1, 2, 3)
    assert tree.num_nodes == 2 and tree.total_tokens == 6 and tree.total_bytes == 60
    # the lower half is still reachable and still holds its own tokens
    full = tree.match_prefix(seq)
    assert full.length == 6 and joined(full) == tuple(seq)


def test_limit_caps_the_match():
    tree = RadixCache()
    seq = [1, 2, 3, 4]
    tree.insert(seq, spans_for(seq))
    m = tree.match_prefix(seq, limit=3)
    assert m.length == 3 and joined(m) == (1, 2, 3)
    assert tree.match_prefix(seq, limit=0).length == 0


def test_insert_reuses_the_cached_part_and_stores_only_the_rest():
    tree = RadixCache()
    a = [1, 2, 3, 4]
    b = [1, 2, 3, 7, 8]
    made = []

    def maker(tokens):
        def make(start, end):
            made.append((start, end))
            return Span(tuple(tokens[start:end]))

        return make

    tree.insert(a, maker(a))
    assert tree.insert(b, maker(b)) == 3
    assert made == [(0, 4), (3, 5)]
    assert tree.total_tokens == 6  # 1 2 3 | 4 | 7 8
    assert joined(tree.match_prefix(b)) == tuple(b)
    assert joined(tree.match_prefix(a)) == tuple(a)


def test_lru_eviction_drops_the_least_recently_used_leaf_first():
    tree = RadixCache(budget_bytes=100)
    old, new = [1, 2, 3, 4], [5, 6, 7, 8]
    tree.insert(old, spans_for(old))
    tree.insert(new, spans_for(new))
    tree.match_prefix(old)  # touch: `new` becomes the least recently used
    third = [9, 9, 9]
    tree.insert(third, spans_for(third))  # 110 bytes > 100: evict one leaf
    assert tree.total_bytes <= 100
    assert tree.match_prefix(old).length == 4
    assert tree.match_prefix(new).length == 0
    assert tree.match_prefix(third).length == 3
    assert tree.evicted_tokens == 4


def test_eviction_walks_up_when_a_parent_becomes_a_leaf():
    tree = RadixCache(budget_bytes=1000)
    a, b = [1, 2, 3, 4], [1, 2, 5, 6]
    tree.insert(a, spans_for(a))
    tree.insert(b, spans_for(b))  # nodes: (1 2) -> (3 4), (5 6)
    tree.budget_bytes = 0
    tree.evict()
    assert tree.total_bytes == 0 and tree.total_tokens == 0 and tree.num_nodes == 0


def test_locked_nodes_survive_eviction_until_unlocked():
    tree = RadixCache(budget_bytes=1000)
    a, b = [1, 2, 3, 4], [1, 2, 5, 6]
    tree.insert(a, spans_for(a))
    tree.insert(b, spans_for(b))
    m = tree.match_prefix(a)
    tree.lock(m.node)
    assert tree.locked_bytes() == 40  # (1 2) and (3 4)
    tree.budget_bytes = 0
    tree.evict()
    assert tree.match_prefix(a).length == 4  # locked path kept
    assert tree.match_prefix(b).length == 2  # (5 6) was evictable
    assert tree.total_bytes == 40  # over budget: only locked bytes remain
    tree.unlock(m.node)
    tree.evict()
    assert tree.total_bytes == 0


def test_a_split_of_a_locked_node_keeps_the_lock_on_both_halves():
    tree = RadixCache(budget_bytes=1000)
    a = [1, 2, 3, 4]
    tree.insert(a, spans_for(a))
    m = tree.match_prefix(a)
    tree.lock(m.node)
    tree.match_prefix([1, 2, 9])  # splits the locked edge at 2
    tree.budget_bytes = 0
    tree.evict()
    assert tree.match_prefix(a).length == 4
    tree.unlock(m.node)  # walks through the new upper node too
    tree.evict()
    assert tree.total_tokens == 0


def test_unlock_without_lock_is_an_error():
    tree = RadixCache()
    tree.insert([1, 2], spans_for([1, 2]))
    with pytest.raises(RuntimeError):
        tree.unlock(tree.match_prefix([1, 2]).node)


def test_budget_is_enforced_on_insert_and_clear_keeps_locked_nodes():
    tree = RadixCache(budget_bytes=200)
    for i in range(10):
        seq = [100 + i] * 5
        tree.insert(seq, spans_for(seq))
        assert tree.total_bytes <= 200
    keep = [100 + 9] * 5
    m = tree.match_prefix(keep)
    tree.lock(m.node)
    tree.clear()
    assert tree.total_tokens == 5 and tree.match_prefix(keep).length == 5


def test_empty_payloads_track_cached_tokens_for_a_replay_backend():
    tree = RadixCache(budget_bytes=None)
    tree.insert([1, 2, 3])
    assert tree.match_prefix_length([1, 2, 3, 4]) == 3
    assert tree.match_prefix([1, 2, 3]).segments == (EMPTY,)
    assert tree.match_prefix_length([1, 2, 5]) == 2
    assert tree.total_bytes == 0


def _lcp(a, b) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=12), min_size=1, max_size=12),
    st.lists(st.lists(st.integers(0, 3), max_size=12), min_size=1, max_size=8),
)
def test_matches_agree_with_a_naive_model(inserted, queries):
    tree = RadixCache()
    for seq in inserted:
        tree.insert(seq, spans_for(seq))
    prefixes = {tuple(seq[:k]) for seq in inserted for k in range(1, len(seq) + 1)}
    assert tree.total_tokens == len(prefixes)  # every distinct prefix is stored exactly once
    for q in queries + inserted:
        m = tree.match_prefix(q)
        assert m.length == max(_lcp(seq, q) for seq in inserted)
        assert joined(m) == tuple(q[: m.length])  # payloads follow the tokens through splits
    assert tree.total_bytes == 10 * tree.total_tokens
