"""Pins in the radix cache: a waiting program's prefix survives other traffic until its
follow-up reuses it or its time is up. No model: payloads are token ranges, time is given."""

from __future__ import annotations

from dataclasses import dataclass

from sgl_conveyor.backends.local.radix_cache import RadixCache
from sgl_conveyor.backends.pinning import call_rid, pin_seconds


@dataclass(frozen=True)
class Span:
    """A payload of 10 bytes per token."""

    tokens: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return 10 * len(self.tokens)

    def split(self, at: int) -> tuple[Span, Span]:
        return Span(self.tokens[:at]), Span(self.tokens[at:])


def spans_for(tokens):
    return lambda a, b: Span(tuple(tokens[a:b]))


PROGRAM = list(range(100, 140))  # the state when the tool call ends: 40 tokens, 400 bytes


def _traffic(tree: RadixCache, n: int, start: int = 1000) -> None:
    """Unrelated requests, each a fresh 20-token prefix (200 bytes)."""
    for i in range(n):
        seq = list(range(start + 100 * i, start + 100 * i + 20))
        tree.insert(seq, spans_for(seq))


class Clock:
    """Time the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _cached(tree: RadixCache) -> int:
    return tree.match_prefix_length([*PROGRAM, 7, 8, 9])


def test_without_a_pin_other_traffic_evicts_the_waiting_prefix():
    tree = RadixCache(budget_bytes=1000)
    tree.insert(PROGRAM, spans_for(PROGRAM))
    _traffic(tree, 5)
    assert _cached(tree) == 0


def test_a_pinned_prefix_survives_traffic_and_the_followup_releases_it():
    tree = RadixCache(budget_bytes=1000)
    tree.insert(PROGRAM, spans_for(PROGRAM))
    assert tree.pin("call-1", PROGRAM, 30.0) == len(PROGRAM)
    _traffic(tree, 5)
    assert _cached(tree) == len(PROGRAM)
    assert tree.total_bytes <= 1000  # the rest of the cache still keeps the budget

    followup = [*PROGRAM, 7, 8, 9]
    match = tree.match_prefix(followup)
    tree.lock(match.node)
    assert tree.release_reused(match.node) == 1
    assert tree.pins() == {} and tree.pin_counts["reused"] == 1
    tree.unlock(match.node)
    _traffic(tree, 5, start=5000)  # released: plain LRU again
    assert _cached(tree) == 0


def test_a_pin_expires_at_its_deadline_when_no_followup_comes():
    clock = Clock()
    tree = RadixCache(budget_bytes=1000, clock=clock)
    tree.insert(PROGRAM, spans_for(PROGRAM))
    clock.now = 100.0
    tree.pin("call-1", PROGRAM, 5.0)
    clock.now = 104.9
    _traffic(tree, 5)  # eviction checks deadlines first: not yet
    assert _cached(tree) == len(PROGRAM)
    assert tree.expire_pins() == 0
    clock.now = 105.0
    assert tree.expire_pins() == 1
    assert tree.pins() == {} and tree.pin_counts["expired"] == 1
    _traffic(tree, 5)
    assert _cached(tree) == 0


def test_an_unrelated_request_does_not_release_the_pin():
    tree = RadixCache(budget_bytes=1000)
    tree.insert(PROGRAM, spans_for(PROGRAM))
    tree.pin("call-1", PROGRAM, 30.0)
    sibling = [*PROGRAM[:10], 1, 2, 3]  # shares only the first 10 tokens
    tree.insert(sibling, spans_for(sibling))
    match = tree.match_prefix(sibling)
    assert tree.release_reused(match.node) == 0
    assert tree.pins() == {"call-1": len(PROGRAM)}


def test_pins_hold_at_most_their_share_and_the_oldest_goes_first():
    tree = RadixCache(budget_bytes=2000)
    a, b = list(range(40)), list(range(500, 540))
    for seq in (a, b):
        tree.insert(seq, spans_for(seq))
    tree.pin("a", a, 30.0, max_bytes=600)
    tree.pin("b", b, 30.0, max_bytes=600)  # 800 bytes pinned: "a" is displaced
    assert tree.pins() == {"b": 40} and tree.pin_counts["displaced"] == 1
    huge = list(range(900, 980))
    tree.insert(huge, spans_for(huge))
    assert tree.pin("huge", huge, 30.0, max_bytes=600) == 0  # larger than the share
    assert tree.pins() == {"b": 40}  # and it displaced nobody


def test_release_and_flush_unlock_everything_a_pin_held():
    tree = RadixCache(budget_bytes=1000)
    tree.insert(PROGRAM, spans_for(PROGRAM))
    tree.pin("call-1", PROGRAM[:25], 30.0)  # splits the edge: the pin holds 25
    assert tree.locked_bytes() == 250
    assert tree.release("call-1") and not tree.release("call-1")
    assert tree.locked_bytes() == 0
    tree.pin("call-2", PROGRAM, 30.0)
    tree.clear()
    assert tree.pins() == {} and tree.total_bytes == 0


def test_pin_of_an_uncached_sequence_or_zero_seconds_pins_nothing():
    tree = RadixCache(budget_bytes=1000)
    assert tree.pin("x", [1, 2, 3], 30.0) == 0
    tree.insert(PROGRAM, spans_for(PROGRAM))
    assert tree.pin("x", PROGRAM, 0.0) == 0
    assert tree.pins() == {}


def test_the_request_id_mark_is_parsed_strictly():
    assert pin_seconds(call_rid(30)) == 30.0
    assert pin_seconds(call_rid(0)) is None
    assert pin_seconds("abc+pin2.5") == 2.5
    for hostile in (
        None,
        "",
        "+pin30",
        "abc+pin",
        "a+pinnan",
        "a+pininf",
        "a+pin-1",
        "a+pin0",
        "a+pin1e400",
        "a+pin" + "9" * 20,
        42,
    ):
        assert pin_seconds(hostile) is None, hostile
