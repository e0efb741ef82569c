"""Tokenizes a prompt so that the part extending an earlier sequence keeps that sequence's tokens.

Re-tokenizing prompt + answer can split it differently from the tokens the model generated, and
every token after the first difference misses the prefix cache. It never changes a prompt's text.
"""

from __future__ import annotations

import bisect
import threading
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tokenizers.decoders import DecodeStream


@dataclass(frozen=True)
class Tokenized:
    """A tokenized prompt and what is known about it."""

    ids: list[int]
    reused: int  # leading tokens taken from a remembered sequence
    text: str  # the decoded text of `ids` (equal to the prompt when `exact`)
    ends: list[int]  # per token: the char offset in `text` after it, or -1 mid-character
    exact: bool  # decoding `ids` gives back the prompt exactly


@dataclass
class _Sequence:
    text: str
    ids: array
    bound_chars: list[int]  # increasing char offsets where a token boundary is clean
    bound_tokens: list[int]  # the token count at each of those offsets


class PromptTokenizer:
    """Text -> token ids with reuse of remembered sequences. Thread-safe.

    We remember recent sequences (prompt plus generated tokens, with the text offset each token
    boundary ends at) and tokenize a new prompt as: the remembered tokens of its longest
    remembered text prefix that ends on a clean token boundary, then the canonical tokens of
    the rest. The model then sees the tokens it generated itself (a constrained JSON call is
    often spelled with non-canonical tokens), and the prefix cache hits up to the new text. A
    remembered sequence is used only when its decoded text is exactly a prefix of the prompt."""

    def __init__(self, tokenizer: Any, *, capacity: int = 64) -> None:
        self._tok = tokenizer
        self._capacity = capacity
        self._seqs: OrderedDict[int, _Sequence] = OrderedDict()
        self._next_key = 0
        self._lock = threading.Lock()

    def encode(self, text: str) -> Tokenized:
        """Token ids for `text`, reusing the longest remembered prefix that fits."""
        with self._lock:
            best_key, best_chars, best_tokens = None, 0, 0
            for key, seq in self._seqs.items():
                common = _common_prefix_length(seq.text, text)
                if common <= best_chars:
                    continue
                i = bisect.bisect_right(seq.bound_chars, common) - 1
                if i >= 0 and seq.bound_chars[i] > best_chars:
                    best_key, best_chars, best_tokens = key, seq.bound_chars[i], seq.bound_tokens[i]
            if best_key is not None:
                self._seqs.move_to_end(best_key)
                seq = self._seqs[best_key]
                head_ids = list(seq.ids[:best_tokens])
                head_ends = _ends_of(seq, best_tokens)
        if best_key is None:
            ids = self._tok.encode(text, add_special_tokens=True).ids
            return self._finish(text, ids, [], [], 0)
        rest = self._tok.encode(text[best_chars:], add_special_tokens=False).ids
        return self._finish(text, head_ids + rest, head_ends, head_ids, best_chars)

    def describe(self, ids: Sequence[int]) -> Tokenized:
        """The text and token boundaries of a prompt given as token ids."""
        out = self._finish("", list(ids), [], [], 0)
        return Tokenized(ids=out.ids, reused=0, text=out.text, ends=out.ends, exact=True)

    def remember(self, text: str, ids: Sequence[int], ends: Sequence[int]) -> None:
        """Remember that `ids` decode to `text`, token boundary `i` ending at `ends[i]`
        (-1 where a token ends inside a character). Sequences that this one extends are
        dropped: it answers every lookup they would."""
        if len(ids) != len(ends) or not ids:
            return
        chars, tokens = [], []
        for i, end in enumerate(ends):
            if end > 0 and (not chars or end > chars[-1]):
                chars.append(end)
                tokens.append(i + 1)
            elif end > 0 and end == chars[-1]:
                tokens[-1] = i + 1  # a token with no visible text: keep the longer count
        if not chars:
            return
        packed = array("q", ids)
        with self._lock:
            for key in [
                k
                for k, s in self._seqs.items()
                if text.startswith(s.text) and packed[: len(s.ids)] == s.ids
            ]:
                del self._seqs[key]
            self._seqs[self._next_key] = _Sequence(text, packed, chars, tokens)
            self._next_key += 1
            while len(self._seqs) > self._capacity:
                self._seqs.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._seqs.clear()

    def __len__(self) -> int:
        return len(self._seqs)

    def _finish(
        self, text: str, ids: list[int], head_ends: list[int], head_ids: list[int], chars: int
    ) -> Tokenized:
        """Work out the text boundary of every token after the reused head, by decoding them
        incrementally with the head's last tokens as context."""
        ends = list(head_ends)
        stream = DecodeStream(head_ids[-8:], skip_special_tokens=False)
        pieces = [text[:chars]]
        pos = chars
        for tid in ids[len(head_ids) :]:
            piece = stream.step(self._tok, tid)
            if piece is None:
                ends.append(-1)
            else:
                pieces.append(piece)
                pos += len(piece)
                ends.append(pos)
        decoded = "".join(pieces)
        return Tokenized(
            ids=ids, reused=len(head_ids), text=decoded, ends=ends, exact=decoded == text
        )


def _ends_of(seq: _Sequence, n_tokens: int) -> list[int]:
    """Per-token ends for the first `n_tokens` of a remembered sequence (-1 where unknown)."""
    ends = [-1] * n_tokens
    for chars, tokens in zip(seq.bound_chars, seq.bound_tokens, strict=True):
        if tokens > n_tokens:
            break
        ends[tokens - 1] = chars
    return ends


def _common_prefix_length(a: str, b: str) -> int:
    """Length of the longest common prefix, by binary search over C-level comparisons."""
    hi = min(len(a), len(b))
    if a[:hi] == b[:hi]:
        return hi
    lo = 0  # a[:lo] == b[:lo] holds; a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo
