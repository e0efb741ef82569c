"""Faster CPU kernels for the local model, swapped in at load time.

They must never change which operations run or their precision (see `PackedLinear` for why).
"""

from __future__ import annotations

import torch


class PackedLinear(torch.nn.Module):
    """`nn.Linear` in bf16 with its weight pre-packed for oneDNN.

    A plain bf16 `nn.Linear` reorders its weight for oneDNN on every call, which makes bf16
    decode no faster than fp32 on CPUs that compute bf16 natively. Packing once (what
    `torch.compile` does with freezing) removes that cost; without oneDNN nothing is swapped."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach()
        self.register_buffer("packed", torch.ops.mkldnn._reorder_linear_weight(weight, None))
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach())
        self.weight_shape = tuple(weight.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")


def available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def pack_linears(model: torch.nn.Module) -> int:
    """Replace every bf16 `nn.Linear` of a CPU model by a `PackedLinear`; returns how many."""
    if not available():
        return 0
    count = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.Linear) and child.weight.dtype == torch.bfloat16:
                setattr(module, name, PackedLinear(child))
                count += 1
    return count
