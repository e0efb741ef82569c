"""KV tensors of the local engine: radix-tree segments, prefill caches and the decode rows.

One run of tokens is one `[layers, 2 (K, V), kv_heads, tokens, head_dim]` tensor. Only models whose
layers are all full attention are supported; nothing here touches the radix tree itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers.cache_utils import Cache, CacheLayerMixin, DynamicCache


class KVSegment:
    """The K/V of a run of tokens, owned (cloned) so that it pins no larger tensor."""

    __slots__ = ("kv",)

    def __init__(self, kv: torch.Tensor) -> None:
        self.kv = kv  # [layers, 2, kv_heads, n, head_dim], contiguous, own storage

    @property
    def nbytes(self) -> int:
        return self.kv.untyped_storage().nbytes()

    def __len__(self) -> int:
        return self.kv.shape[3]

    def split(self, at: int) -> tuple[KVSegment, KVSegment]:
        # Views would keep the whole parent alive (and eviction would free nothing): clone.
        return KVSegment(self.kv[:, :, :, :at].clone()), KVSegment(self.kv[:, :, :, at:].clone())


def join_segments(segments: Sequence[KVSegment]) -> torch.Tensor | None:
    """One `[layers, 2, heads, n, dim]` tensor for consecutive segments (zero-copy for one)."""
    if not segments:
        return None
    if len(segments) == 1:
        return segments[0].kv
    return torch.cat([s.kv for s in segments], dim=3)


def check_supported(config: Any) -> None:
    """Refuse models whose attention the batch rows cannot represent (sliding windows,
    linear attention, MLA): they would silently compute wrong results."""
    layer_types = getattr(config, "layer_types", None) or []
    odd = sorted({t for t in layer_types if t != "full_attention"})
    if odd or getattr(config, "use_sliding_window", False):
        raise ValueError(
            f"the local engine supports full-attention models only (found {odd or 'sliding'})"
        )


def prefill_cache(config: Any, prefix: torch.Tensor | None) -> DynamicCache:
    """A DynamicCache holding `prefix` (`[layers, 2, heads, P, dim]`) without copying it. The
    prefix tensors are never written: `DynamicLayer.update` concatenates into new tensors."""
    cache = DynamicCache(config=config)
    if prefix is not None and prefix.shape[3] > 0:
        for i, layer in enumerate(cache.layers):
            k, v = prefix[i, 0].unsqueeze(0), prefix[i, 1].unsqueeze(0)
            layer.lazy_initialization(k, v)
            layer.keys, layer.values = k, v
    return cache


def cache_kv(cache: DynamicCache, start: int, end: int) -> torch.Tensor:
    """The K/V of tokens [start, end) of a batch-1 DynamicCache, as one owned tensor."""
    layers = [(lay.keys[0, :, start:end], lay.values[0, :, start:end]) for lay in cache.layers]
    return torch.stack([torch.stack(kv) for kv in layers])


class _Step:
    """Where the tokens of one decode step go: shared by the layers of one step's cache."""

    __slots__ = ("batch", "kv_len", "pos", "rows", "single_pos")

    def __init__(self, lens: Sequence[int], device: torch.device) -> None:
        self.batch = len(lens)
        self.kv_len = max(lens) + 1  # keys the step attends to, its own token included
        self.single_pos = lens[0] if self.batch == 1 else -1
        self.rows = torch.arange(self.batch, device=device)
        self.pos = torch.tensor(lens, device=device)


class _SlotLayer(CacheLayerMixin):
    """One layer of a decode step over rows [0, batch) of the pool."""

    is_sliding = False
    is_compileable = False

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, step: _Step) -> None:
        super().__init__()
        self._k, self._v, self._step = keys, values, step  # [rows, heads, capacity, dim]
        self.is_initialized = True

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        pass

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        st = self._step
        if st.batch == 1:
            p = st.single_pos
            self._k[0, :, p] = key_states[0, :, 0]
            self._v[0, :, p] = value_states[0, :, 0]
        else:
            self._k[st.rows, :, st.pos] = key_states[:, :, 0]
            self._v[st.rows, :, st.pos] = value_states[:, :, 0]
        return self._k[: st.batch, :, : st.kv_len], self._v[: st.batch, :, : st.kv_len]

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self._step.kv_len, 0

    def get_seq_length(self) -> int:
        return self._step.kv_len - 1

    def get_max_length(self) -> int:
        return -1


class SlotPool:
    """The KV rows of the requests being decoded, as one growable tensor
    `[layers, 2, rows, kv_heads, capacity, head_dim]`. Row i belongs to the i-th decoding
    request; the engine keeps rows [0, batch) in use, so a step needs no gather, and each step
    writes one K/V column per row in place (no per-step concatenation of the whole context, as
    `DynamicCache` does).

    A running request holds a private working copy of its context in its row, prefix included:
    the batched attention kernel needs each row's keys in one dense tensor, so requests that
    share a cached prefix (forks) cannot point at one copy of it while decoding together. The
    radix tree still stores every prefix once for all requests; the copy is one memcpy per
    admission (about 0.5 ms per 100 tokens in fp32) and lives only while the request runs."""

    def __init__(self, config: Any, dtype: torch.dtype, device: torch.device) -> None:
        self.layers = int(config.num_hidden_layers)
        self.heads = int(getattr(config, "num_key_value_heads", config.num_attention_heads))
        self.head_dim = int(
            getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        )
        self.dtype, self.device = dtype, device
        self.buf: torch.Tensor | None = None

    @property
    def rows(self) -> int:
        return 0 if self.buf is None else self.buf.shape[2]

    @property
    def capacity(self) -> int:
        return 0 if self.buf is None else self.buf.shape[4]

    @property
    def nbytes(self) -> int:
        return 0 if self.buf is None else self.buf.untyped_storage().nbytes()

    def bytes_per_token(self) -> int:
        return self.layers * 2 * self.heads * self.head_dim * self.dtype.itemsize

    def reserve(self, rows: int, capacity: int, used_rows: int, used_len: int) -> None:
        """Make room for `rows` rows of `capacity` tokens, keeping the first `used_len` tokens
        of rows [0, used_rows). Grows geometrically so that reallocations are rare."""
        if rows <= self.rows and capacity <= self.capacity:
            return
        new_rows = max(rows, self.rows)
        if new_rows > self.rows:
            new_rows = max(new_rows, min(2 * self.rows, new_rows + 8))
        new_cap = max(capacity, self.capacity)
        if new_cap > self.capacity:
            new_cap = max(new_cap, 2 * self.capacity)
        new_cap = -(-new_cap // 256) * 256
        # Zeroed, not `empty`: a batched step multiplies the masked-out positions of a shorter
        # row by a softmax weight of 0, and 0 * NaN is NaN. Recycled memory (CUDA's caching
        # allocator, a reused malloc block) can hold NaN or Inf bit patterns, which turned a
        # whole row's logits to NaN (greedy argmax then picks token 0, the end of text).
        buf = torch.zeros(
            (self.layers, 2, new_rows, self.heads, new_cap, self.head_dim),
            dtype=self.dtype,
            device=self.device,
        )
        if self.buf is not None and used_rows and used_len:
            buf[:, :, :used_rows, :, :used_len] = self.buf[:, :, :used_rows, :, :used_len]
        self.buf = buf

    def release(self) -> None:
        self.buf = None

    def load(self, row: int, cache: DynamicCache, length: int) -> None:
        """Copy the first `length` tokens of a batch-1 prefill cache into `row`."""
        assert self.buf is not None
        for i, layer in enumerate(cache.layers):
            self.buf[i, 0, row, :, :length] = layer.keys[0, :, :length]
            self.buf[i, 1, row, :, :length] = layer.values[0, :, :length]

    def move(self, src: int, dst: int, length: int) -> None:
        assert self.buf is not None
        self.buf[:, :, dst, :, :length] = self.buf[:, :, src, :, :length]

    def segment(self, row: int, start: int, end: int) -> KVSegment:
        assert self.buf is not None
        return KVSegment(self.buf[:, :, row, :, start:end].clone())

    def step_cache(self, lens: Sequence[int]) -> Cache:
        """The cache for one decode step of rows [0, len(lens)), row i holding lens[i] tokens.
        The step writes each row's new K/V at position lens[i]."""
        assert self.buf is not None
        step = _Step(lens, self.device)
        return Cache(
            layers=[_SlotLayer(self.buf[i, 0], self.buf[i, 1], step) for i in range(self.layers)]
        )

    def step_mask(self, lens: Sequence[int], *, additive: bool, dtype: torch.dtype) -> torch.Tensor:
        """The 4-D attention mask of a batched step: row i sees its own positions 0..lens[i]."""
        kv_len = max(lens) + 1
        pos = torch.arange(kv_len, device=self.device)
        keep = pos[None, :] <= torch.tensor(lens, device=self.device)[:, None]
        keep = keep[:, None, None, :]  # [batch, 1, 1, kv_len]
        if not additive:
            return keep
        mask = torch.zeros(keep.shape, dtype=dtype, device=self.device)
        return mask.masked_fill_(~keep, torch.finfo(dtype).min)
