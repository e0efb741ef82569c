"""Regex, JSON-schema and EBNF constrained decoding with xgrammar, the library SGLang itself uses.

Grammars compile once per distinct constraint; each request gets its own matcher. A grammar must
never allow a special token other than a stop token (see `GrammarCompiler`).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import torch
import xgrammar as xgr

from sgl_conveyor.backends.local.sampling import SamplingParams

ANY_JSON = "$$ANY$$"  # SGLang's json_schema value for "any JSON value"


class GrammarCompiler:
    """Compiles the constraint of a request into a fresh `Constraint`.

    Special tokens other than the stop tokens are emptied from the vocabulary xgrammar sees:
    this tokenizer does not mark them special, so xgrammar would otherwise allow `<|im_start|>`
    inside a JSON string while the visible text (which skips special tokens) would not show it."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        vocab_size: int,
        stop_token_ids: Collection[int],
        special_token_ids: Collection[int],
    ) -> None:
        self.vocab_size = vocab_size
        vocab = [""] * vocab_size
        for token, i in tokenizer.get_vocab(with_added_tokens=True).items():
            if i < vocab_size:
                vocab[i] = token
        stops = sorted(stop_token_ids)
        for i in special_token_ids:
            if i < vocab_size and i not in stop_token_ids:
                vocab[i] = ""  # never allowed by a grammar (see the module docstring)
        meta = xgr.TokenizerInfo._detect_metadata_from_hf(tokenizer.to_str())
        info = xgr.TokenizerInfo(
            vocab,
            vocab_type=meta["vocab_type"],
            vocab_size=vocab_size,
            stop_token_ids=stops,
            add_prefix_space=meta["add_prefix_space"],
        )
        self.stop_token_ids = frozenset(stops)
        self._compiler = xgr.GrammarCompiler(info, max_threads=2, cache_enabled=True)

    def for_params(self, p: SamplingParams) -> Constraint | None:
        """The constraint `p` asks for (regex, json_schema or ebnf), or None. Raises
        ValueError on an invalid one, in the caller's thread."""
        what = "json_schema" if p.json_schema is not None else "ebnf" if p.ebnf else "regex"
        try:
            if p.json_schema is not None:
                schema = p.json_schema
                if schema == ANY_JSON:
                    grammar = self._compiler.compile_builtin_json_grammar()
                else:
                    if not isinstance(schema, str):
                        schema = json.dumps(schema)
                    # compact JSON: a small model given free whitespace tends to ramble in it
                    grammar = self._compiler.compile_json_schema(schema, any_whitespace=False)
            elif p.ebnf is not None:
                grammar = self._compiler.compile_grammar(p.ebnf)
            elif p.regex is not None:
                grammar = self._compiler.compile_regex(p.regex)
            else:
                return None
        except (RuntimeError, ValueError, TypeError) as err:
            raise ValueError(f"invalid {what} for constrained decoding: {err}") from err
        constraint = Constraint(grammar, self.vocab_size, self.stop_token_ids)
        if not constraint.can_start():
            raise ValueError(f"the {what} matches no text: nothing can be generated under it")
        return constraint


class Constraint:
    """The grammar state of one request: masks its logits, follows its tokens."""

    def __init__(self, grammar: Any, vocab_size: int, stop_token_ids: frozenset[int]) -> None:
        self._matcher = xgr.GrammarMatcher(grammar)
        self._bitmask = xgr.allocate_token_bitmask(1, vocab_size)
        self._stop_ids = stop_token_ids
        self._vocab_size = vocab_size
        self._probe: torch.Tensor | None = None

    def can_start(self) -> bool:
        """Some token is allowed first (an impossible regex, e.g. an empty character class,
        allows none: the engine would fail its step, and every request in it, on the first
        token)."""
        if not self._matcher.fill_next_token_bitmask(self._bitmask):
            return True  # no mask needed: everything is allowed
        probe = torch.zeros(self._vocab_size)
        xgr.apply_token_bitmask_inplace(probe, self._bitmask, vocab_size=self._vocab_size)
        return bool(torch.isfinite(probe).any())

    def mask(self, logits: torch.Tensor) -> None:
        """Set the logits of every token the grammar forbids next to -inf, in place."""
        if self._matcher.fill_next_token_bitmask(self._bitmask):
            xgr.apply_token_bitmask_inplace(logits, self._bitmask)

    def accept(self, token_id: int) -> bool:
        return bool(self._matcher.accept_token(token_id))

    @property
    def terminated(self) -> bool:
        """The grammar accepted its stop token: the output is complete."""
        return bool(self._matcher.is_terminated())

    def only_stop_allowed(self) -> bool:
        """The output is complete and nothing but a stop token may follow, so the model's next
        token is known without running it (saves one decode step per constrained call)."""
        if not self._matcher.is_completed():
            return False
        if not self._matcher.fill_next_token_bitmask(self._bitmask):
            return False
        if self._probe is None:
            self._probe = torch.zeros(self._vocab_size)
        probe = self._probe.zero_()
        xgr.apply_token_bitmask_inplace(probe, self._bitmask, vocab_size=self._vocab_size)
        allowed = torch.isfinite(probe).nonzero().flatten().tolist()
        return bool(allowed) and all(i in self._stop_ids for i in allowed)
