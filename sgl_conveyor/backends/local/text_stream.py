"""Exact text deltas of a generated token stream, with stop strings held back and cut.

A delta never holds half of a multi-byte character nor any part of a stop string. Never touches
the model or torch.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from tokenizers.decoders import DecodeStream


class TextStream:
    """Incremental detokenizer for one request.

    The longest visible tail that could still begin a stop string is held back until the next
    token decides. Special tokens are not part of the visible text (like a server with
    `skip_special_tokens`) but are part of `raw_text`, which the prompt tokenizer needs."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        special_ids: Collection[int] = (),
        stop: Sequence[str] = (),
        context_ids: Sequence[int] = (),
    ) -> None:
        """`context_ids`: the last few prompt tokens, so that tokenizers which decode a leading
        space differently at the start of a text (SentencePiece) get the first delta right."""
        self._tok = tokenizer
        self._decoder = DecodeStream(list(context_ids[-8:]), skip_special_tokens=False)
        self._special = special_ids
        self._stops = tuple(s for s in stop if s)
        self._max_hold = max((len(s) - 1 for s in self._stops), default=0)
        self._pending = ""
        self._raw: list[str] = []
        self._raw_len = 0
        self.ends: list[int] = []  # per token: char offset in raw_text after it, or -1 mid-char

    @property
    def raw_text(self) -> str:
        """The decoded text of every token pushed so far, special tokens included."""
        return "".join(self._raw)

    @property
    def held(self) -> str:
        """Visible text held back because it may begin a stop string."""
        return self._pending

    def push(self, token_id: int, *, check_stops: bool = True) -> tuple[str, str | None]:
        """Add one token. Returns (text to emit now, the stop string matched or None).

        On a match the emitted text ends just before the stop string, and the caller must stop:
        anything after it is dropped. `check_stops=False` (before `min_new_tokens`) emits
        everything without looking for stop strings."""
        piece = self._decoder.step(self._tok, token_id)
        if piece is None:  # an incomplete UTF-8 character: wait for the next token
            self.ends.append(-1)
            return "", None
        self._raw.append(piece)
        self._raw_len += len(piece)
        self.ends.append(self._raw_len)
        if token_id in self._special or not piece:
            return "", None
        text = self._pending + piece
        if not (check_stops and self._stops):
            self._pending = ""
            return text, None
        best_at, best = -1, None
        for stop in self._stops:
            at = text.find(stop)
            if at != -1 and (best is None or at < best_at):
                best_at, best = at, stop
        if best is not None:
            self._pending = ""
            return text[:best_at], best
        hold = self._hold_length(text)
        self._pending = text[len(text) - hold :] if hold else ""
        return text[: len(text) - hold], None

    def flush(self) -> str:
        """Release the held-back text (the stream ended without a stop string)."""
        out, self._pending = self._pending, ""
        return out

    def _hold_length(self, text: str) -> int:
        """The length of the longest suffix of `text` that is a proper prefix of a stop."""
        for n in range(min(self._max_hold, len(text)), 0, -1):
            tail = text[-n:]
            if any(stop.startswith(tail) for stop in self._stops):
                return n
        return 0
