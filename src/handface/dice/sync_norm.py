"""Batch normalisation over the global batch of a distributed run, on any device.

``torch.nn.SyncBatchNorm`` only runs on GPUs; DICE's backbone and IKNets use batch norm, so a
CPU run with ``torchrun`` (gloo) would normalise each process's share of the batch on its own
and train a different network than one process does. :class:`GlobalBatchNorm` all-reduces
the per-channel sums and sums of squares (with autograd, so gradients flow across processes)
and normalises every share with the statistics of the whole batch: N processes compute what
one process computes on the same global batch. Outside a distributed run, or in eval mode, it
is ordinary batch norm.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm (1d or 2d input) whose training statistics span all processes."""

    def _check_input_dim(self, input: Tensor) -> None:  # noqa: A002 - torch's name
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {input.dim()}D")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and _distributed()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        dims = [0, *range(2, x.dim())]
        count = x.new_tensor([x.numel() / x.shape[1]])
        local = torch.cat([x.sum(dims), (x * x).sum(dims), count])
        total = all_reduce(local)
        channels = x.shape[1]
        n = total[-1]
        mean = total[:channels] / n
        var = total[channels : 2 * channels] / n - mean * mean
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = (
                    self.momentum
                    if self.momentum is not None
                    else 1.0 / float(self.num_batches_tracked)
                )
                unbiased = var * n / (n - 1).clamp_min(1.0)
                self.running_mean.mul_(1 - momentum).add_(momentum * mean)
                self.running_var.mul_(1 - momentum).add_(momentum * unbiased)
        shape = [1, channels] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_to_global_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm1d/2d`` of ``module`` by :class:`GlobalBatchNorm` (same
    parameters and running statistics, shared, not copied)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, GlobalBatchNorm
    ):
        converted = GlobalBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine,
            module.track_running_stats,
        )  # fmt: skip
        if module.affine:
            converted.weight = module.weight
            converted.bias = module.bias
        converted.running_mean = module.running_mean
        converted.running_var = module.running_var
        converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
        return converted
    for name, child in module.named_children():
        setattr(module, name, convert_to_global_batchnorm(child))
    return module
