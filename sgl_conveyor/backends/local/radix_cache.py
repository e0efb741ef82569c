"""A token-level radix tree whose edges hold KV segments: the prefix cache shared by all requests.

Payloads are opaque `Segment`s, so the tree needs no torch (a replay backend uses it with
`EmptySegment`). It must never evict a node that a running request has locked, nor one that a
pin holds (the prefix a program waiting on a tool will reuse), until that pin is released or
expires.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@runtime_checkable
class Segment(Protocol):
    """The payload of one edge: whatever the cache stores for a run of consecutive tokens.

    `nbytes` must count the memory the segment keeps alive (for tensors: the bytes of the
    underlying storages, not of the views), since the byte budget is enforced with it."""

    @property
    def nbytes(self) -> int: ...

    def split(self, at: int) -> tuple[Segment, Segment]:
        """Two segments for tokens [0, at) and [at, len). The original is dropped afterwards."""
        ...


class EmptySegment:
    """A payload with no data: for a tree that only tracks which token prefixes are cached."""

    __slots__ = ()
    nbytes = 0

    def split(self, at: int) -> tuple[EmptySegment, EmptySegment]:
        return self, self


EMPTY = EmptySegment()


@dataclass(eq=False)
class Node:
    """One edge of the tree (from its parent to it) and the tokens it covers."""

    key: tuple[int, ...]
    segment: Segment | None
    parent: Node | None
    children: dict[int, Node] = field(default_factory=dict)
    lock_ref: int = 0
    last_access: int = 0

    @property
    def is_leaf(self) -> bool:
        return not self.children


@dataclass(eq=False)
class Pin:
    """A prefix kept hot for a program whose tool call is running: `node` (and its ancestors)
    stay locked until the follow-up request reuses it, or until `deadline` (monotonic s)."""

    key: str
    node: Node
    deadline: float
    tokens: int


@dataclass(frozen=True)
class PrefixMatch:
    """The longest cached prefix of a token sequence.

    `node` covers exactly the first `length` tokens (the root when nothing matched); `segments`
    are the payloads along the path from the root, whose lengths add up to `length`."""

    length: int
    node: Node
    segments: tuple[Segment, ...]


class RadixCache:
    """A radix tree over token ids with LRU eviction of unlocked leaves under a byte budget.

    Thread-safe: every public method takes the tree's lock, so several threads may share it.
    """

    def __init__(
        self, budget_bytes: int | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """`budget_bytes`: the most payload bytes to keep (None: unbounded). `clock`: seconds,
        for pin deadlines."""
        self.budget_bytes = budget_bytes
        self._now = clock
        self._lock = threading.RLock()
        self._clock = itertools.count(1)
        self.root = Node(key=(), segment=None, parent=None)
        self.root.lock_ref = 1  # the root is never evicted
        self._bytes = 0
        self._tokens = 0
        self._nodes = 0
        self.evicted_tokens = 0  # running total, for stats and tests
        self._pins: dict[str, Pin] = {}  # insertion order: the oldest pin first
        self.pin_counts = {"pinned": 0, "reused": 0, "expired": 0, "displaced": 0}

    # --- queries ------------------------------------------------------------------------------

    @property
    def total_bytes(self) -> int:
        """Payload bytes currently held by the tree."""
        return self._bytes

    @property
    def total_tokens(self) -> int:
        """Tokens currently stored (the sum of edge lengths)."""
        return self._tokens

    @property
    def num_nodes(self) -> int:
        return self._nodes

    def locked_bytes(self) -> int:
        """Bytes held by nodes that running requests have locked (not evictable)."""
        with self._lock:
            return sum(n.segment.nbytes for n in self._walk() if n.lock_ref > 0 and n.segment)

    def match_prefix_length(self, tokens: Sequence[int]) -> int:
        """How many leading tokens of `tokens` are cached (what a server reports as
        `cached_tokens` when it receives them as a prompt)."""
        return self.match_prefix(tokens).length

    def match_prefix(self, tokens: Sequence[int], *, limit: int | None = None) -> PrefixMatch:
        """The longest cached prefix of `tokens`, at most `limit` tokens long.

        When the match ends inside an edge, that edge is split so that the returned node covers
        exactly the matched tokens (it can then be locked on its own). Touches the path's
        access time, so a prefix in use is the last to be evicted."""
        with self._lock:
            n = len(tokens) if limit is None else max(0, min(limit, len(tokens)))
            node, pos, segments = self.root, 0, []
            stamp = next(self._clock)
            node.last_access = stamp
            while pos < n:
                child = node.children.get(tokens[pos])
                if child is None:
                    break
                common = _common_length(child.key, tokens, pos, n)
                if common < len(child.key):
                    child = self._split(child, common)
                child.last_access = stamp
                segments.append(child.segment)
                node, pos = child, pos + common
            return PrefixMatch(length=pos, node=node, segments=tuple(segments))

    # --- updates ------------------------------------------------------------------------------

    def insert(
        self,
        tokens: Sequence[int],
        segment_for: Callable[[int, int], Segment] | None = None,
    ) -> int:
        """Cache `tokens`, storing new payloads made by `segment_for(start, end)` for the
        positions not cached yet (already cached parts keep their payload; without
        `segment_for`, an `EmptySegment`). Returns how many leading tokens were already cached.
        Evicts down to the budget afterwards."""
        with self._lock:
            node, pos, n = self.root, 0, len(tokens)
            stamp = next(self._clock)
            while pos < n:
                child = node.children.get(tokens[pos])
                if child is None:
                    break
                common = _common_length(child.key, tokens, pos, n)
                if common < len(child.key):
                    child = self._split(child, common)
                child.last_access = stamp
                node, pos = child, pos + common
            already = pos
            if pos < n:
                segment = segment_for(pos, n) if segment_for is not None else EMPTY
                leaf = Node(key=tuple(tokens[pos:n]), segment=segment, parent=node)
                leaf.last_access = stamp
                node.children[tokens[pos]] = leaf
                self._account(leaf, +1)
            self.evict()
            return already

    def lock(self, node: Node) -> None:
        """Protect `node` and its ancestors from eviction (a running request uses them)."""
        with self._lock:
            while node is not None:
                node.lock_ref += 1
                node = node.parent

    def unlock(self, node: Node) -> None:
        """Undo one `lock(node)`."""
        with self._lock:
            while node is not None:
                if node.lock_ref <= 0:
                    raise RuntimeError("unlock of a radix node that is not locked")
                node.lock_ref -= 1
                node = node.parent

    def evict(self, extra_bytes: int = 0) -> int:
        """Evict least recently used unlocked leaves until the tree holds at most
        `budget - extra_bytes` bytes (room for `extra_bytes` more). Returns bytes freed."""
        with self._lock:
            if self.budget_bytes is None:
                return 0
            target = max(0, self.budget_bytes - extra_bytes)
            if self._bytes <= target:
                return 0
            self.expire_pins()
            heap = [(n.last_access, id(n), n) for n in self._walk() if self._evictable(n)]
            heapq.heapify(heap)
            freed = 0
            while heap and self._bytes > target:
                _, _, node = heapq.heappop(heap)
                if not self._evictable(node):  # changed since it was queued
                    continue
                parent = node.parent
                assert parent is not None
                del parent.children[node.key[0]]
                freed += self._account(node, -1)
                self.evicted_tokens += len(node.key)
                if parent is not self.root and self._evictable(parent):
                    heapq.heappush(heap, (parent.last_access, id(parent), parent))
            return freed

    def clear(self) -> int:
        """Drop every pin and every unlocked node (`flush_cache`). Returns bytes freed."""
        with self._lock:
            for key in list(self._pins):
                self.release(key)
            saved, self.budget_bytes = self.budget_bytes, 0
            try:
                return self.evict()
            finally:
                self.budget_bytes = saved

    # --- pins: a waiting program's prefix ------------------------------------------------------

    def pin(
        self,
        key: str,
        tokens: Sequence[int],
        seconds: float,
        *,
        max_bytes: int | None = None,
    ) -> int:
        """Keep the cached prefix of `tokens` from eviction for `seconds`, under `key` (a pin
        already under `key` is replaced). `max_bytes` bounds what all pins together hold:
        the oldest pins are dropped to make room, and a prefix larger than that is not pinned.
        Returns the pinned length in tokens (0: nothing pinned)."""
        with self._lock:
            now = self._now()
            self.release(key)
            self.expire_pins()
            if seconds <= 0:
                return 0
            match = self.match_prefix(tokens)
            if match.length == 0:
                return 0
            own = sum(seg.nbytes for seg in match.segments if seg is not None)
            if max_bytes is not None and own > max_bytes:
                return 0  # it alone is over the share: pinning it would starve the rest
            self.lock(match.node)
            self._pins[key] = Pin(key, match.node, now + seconds, match.length)
            self.pin_counts["pinned"] += 1
            if max_bytes is not None:
                while self._pins and self.pinned_bytes() > max_bytes:
                    oldest = next(iter(self._pins))
                    self.pin_counts["displaced"] += 1
                    self.release(oldest)
            return match.length if key in self._pins else 0

    def release(self, key: str) -> bool:
        """Drop the pin under `key`, if any (its nodes become evictable again)."""
        with self._lock:
            pin = self._pins.pop(key, None)
            if pin is None:
                return False
            self.unlock(pin.node)
            return True

    def release_reused(self, node: Node) -> int:
        """The follow-up has arrived: drop every pin whose prefix `node` (a request's match)
        covers, since that request now locks what the pin kept. Returns how many."""
        with self._lock:
            if not self._pins:
                return 0
            path = set()
            while node is not None:
                path.add(id(node))
                node = node.parent
            reused = [k for k, p in self._pins.items() if id(p.node) in path]
            for key in reused:
                self.release(key)
            self.pin_counts["reused"] += len(reused)
            return len(reused)

    def expire_pins(self) -> int:
        """Drop the pins past their deadline (a follow-up that never came). Returns how many."""
        with self._lock:
            now = self._now()
            late = [k for k, p in self._pins.items() if p.deadline <= now]
            for key in late:
                self.release(key)
            self.pin_counts["expired"] += len(late)
            return len(late)

    def pins(self) -> dict[str, int]:
        """The pinned prefixes: key -> pinned length in tokens."""
        with self._lock:
            return {k: p.tokens for k, p in self._pins.items()}

    def pinned_bytes(self) -> int:
        """Bytes on the paths that pins hold (each node counted once)."""
        with self._lock:
            seen: set[int] = set()
            total = 0
            for pin in self._pins.values():
                node = pin.node
                while node is not None and id(node) not in seen:
                    seen.add(id(node))
                    if node.segment is not None:
                        total += node.segment.nbytes
                    node = node.parent
            return total

    # --- internals ----------------------------------------------------------------------------

    def _evictable(self, node: Node) -> bool:
        return node is not self.root and node.is_leaf and node.lock_ref == 0

    def _split(self, child: Node, at: int) -> Node:
        """Split `child`'s edge after `at` tokens; returns the new upper node. The lower part
        keeps the original node object (so a request holding it stays valid), and the new
        upper node inherits its lock count, since every lock on `child` also covers it."""
        assert 0 < at < len(child.key)
        parent = child.parent
        assert parent is not None and child.segment is not None
        upper_seg, lower_seg = child.segment.split(at)
        old_bytes = child.segment.nbytes
        upper = Node(key=child.key[:at], segment=upper_seg, parent=parent)
        upper.lock_ref = child.lock_ref
        upper.last_access = child.last_access
        upper.children[child.key[at]] = child
        parent.children[child.key[0]] = upper
        child.key = child.key[at:]
        child.segment = lower_seg
        child.parent = upper
        self._bytes += upper_seg.nbytes + lower_seg.nbytes - old_bytes
        self._nodes += 1
        return upper

    def _account(self, node: Node, sign: int) -> int:
        nbytes = node.segment.nbytes if node.segment is not None else 0
        self._bytes += sign * nbytes
        self._tokens += sign * len(node.key)
        self._nodes += sign
        return nbytes

    def _walk(self) -> Iterator[Node]:
        stack = list(self.root.children.values())
        while stack:
            node = stack.pop()
            yield node
            stack.extend(node.children.values())


def _common_length(key: tuple[int, ...], tokens: Sequence[int], pos: int, end: int) -> int:
    """How many leading tokens of `key` equal `tokens[pos:end]`."""
    limit = min(len(key), end - pos)
    i = 0
    while i < limit and key[i] == tokens[pos + i]:
        i += 1
    return i
