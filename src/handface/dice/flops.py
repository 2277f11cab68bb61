"""Multiply-add counts of a network's forward pass (for ``handface bench`` and model cards).

:func:`count_flops` runs the network once with forward hooks and adds up the multiply-adds of
its convolutions, linear layers and transformer encoder layers (attention projections, the
two attention products and the feed-forward block; counted analytically because PyTorch's
fused inference path calls no submodules). Normalisation, activations, pooling and the
parametric body models' skinning are not counted (they are a few percent of a DICE forward).

Papers (HRNet, METRO, DICE) quote multiply-adds as "GFLOPs"; :attr:`FlopCount.gmacs` is
that number, :attr:`FlopCount.gflops` twice it.

Example:
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Flatten(),
    ...                           torch.nn.Linear(8 * 4 * 4, 10))
    >>> count = count_flops(net, torch.zeros(1, 3, 4, 4))
    >>> count.macs == 8 * 4 * 4 * 3 * 9 + 128 * 10, count.by_kind
    (True, {'conv': 3456, 'linear': 1280})
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class FlopCount:
    """Multiply-adds of one forward pass, in total and by kind of layer."""

    macs: int
    by_kind: dict[str, int] = field(default_factory=dict)
    params: int = 0
    """Trainable parameters of the network (for convenience)."""

    @property
    def gmacs(self) -> float:
        """Giga multiply-adds (what papers call GFLOPs)."""
        return self.macs / 1e9

    @property
    def gflops(self) -> float:
        """Giga floating-point operations (two per multiply-add)."""
        return 2 * self.macs / 1e9


def _transformer_layer_macs(layer: nn.TransformerEncoderLayer, x: torch.Tensor) -> int:
    batch_first = layer.self_attn.batch_first
    tokens = x.shape[1] if batch_first else x.shape[0]
    batch = x.numel() // (tokens * x.shape[-1])
    d = x.shape[-1]
    ffn = layer.linear1.out_features
    projections = 4 * tokens * d * d
    attention = 2 * tokens * tokens * d
    feed_forward = 2 * tokens * d * ffn
    return batch * (projections + attention + feed_forward)


def count_flops(net: nn.Module, *inputs, **kwargs) -> FlopCount:
    """Multiply-adds of ``net(*inputs, **kwargs)`` (run once without gradients).

    The count is for the batch given (pass batch 1 for a per-image figure).
    """
    counts: dict[str, int] = defaultdict(int)
    inside_transformer: set[int] = set()
    for module in net.modules():
        if isinstance(module, nn.TransformerEncoderLayer):
            inside_transformer.update(id(m) for m in module.modules() if m is not module)

    def hook(module: nn.Module, args, output) -> None:
        if id(module) in inside_transformer or not args:
            return
        x = args[0]
        if isinstance(module, nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1]
            counts["conv"] += output.numel() * (module.in_channels // module.groups) * kernel
        elif isinstance(module, nn.Linear):
            counts["linear"] += (
                (x.numel() // module.in_features) * module.in_features * (module.out_features)
            )
        elif isinstance(module, nn.TransformerEncoderLayer):
            counts["transformer"] += _transformer_layer_macs(module, x)

    handles = [
        m.register_forward_hook(hook)
        for m in net.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.TransformerEncoderLayer))
    ]
    try:
        with torch.no_grad():
            net(*inputs, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    params = sum(p.numel() for p in net.parameters() if p.requires_grad)
    return FlopCount(macs=sum(counts.values()), by_kind=dict(counts), params=params)
