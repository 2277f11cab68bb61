"""Deformation terms: DICE's stiffness-weighted loss and the avatar's displacement regularizer."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def stiffness_weights(stiffness: Float[Tensor, " V"]) -> Float[Tensor, " V"]:
    """Per-vertex weights of the deformation loss from tissue stiffness ``s`` in [0, 1].

    ``w = 1 / (1 - s + 0.1)^1.5`` (DICE's public code): errors on stiff tissue (forehead,
    nose bridge), which barely moves, cost up to 36x more than on the soft cheek.

    Example:
        >>> stiffness_weights(torch.tensor([0.0, 1.0])).round(decimals=3)
        tensor([ 0.8670, 31.6230])
    """
    return 1.0 / (1.0 - stiffness + 0.1).pow(1.5)


def deformation_loss(
    pred: Float[Tensor, "B V 3"],
    target: Float[Tensor, "B V 3"],
    weights: Float[Tensor, " V"] | None = None,
    mask: Float[Tensor, " B"] | None = None,
    magnitude_gain: float = 5000.0,
    limit: float = 0.03,
    limit_weight: float = 100.0,
) -> Float[Tensor, ""]:
    """DICE's L_deform (metres), per vertex
    ``(1 + 5000 |d_gt|) |d_pred - d_gt|^2 + 100 [|d_pred| > 3 cm] |d_pred|``.

    The first term weights vertices that really move (``|d_gt|`` large) more; the second
    penalises implausibly large predicted displacements. Both are weighted per vertex by
    ``weights`` (:func:`stiffness_weights`) and averaged over vertices and the batch items
    where ``mask > 0`` (the paper sums over vertices; the mean keeps the weight independent of
    the mesh resolution, so the loss weight of a config carries over between meshes).

    Example:
        >>> gt = torch.zeros(1, 2, 3); pred = gt.clone(); pred[0, 0, 0] = 0.04
        >>> round(float(deformation_loss(pred, gt)), 4)  # (0.04^2 + 100 * 0.04) / 2
        2.0008
    """
    gain = 1.0 + magnitude_gain * torch.linalg.vector_norm(target, dim=-1)
    error = gain * (pred - target).pow(2).sum(-1)
    size = torch.linalg.vector_norm(pred, dim=-1)
    error = error + limit_weight * size * (size > limit).to(size)
    if weights is not None:
        error = error * weights.to(error)
    per_item = error.mean(dim=1)
    if mask is None:
        return per_item.mean()
    mask = mask.to(per_item)
    return (per_item * mask).sum() / mask.sum().clamp_min(1.0)


def displacement_regularizer(displacement: Float[Tensor, "*B V 3"]) -> Float[Tensor, ""]:
    """The avatar's ``mean |delta|^2`` on hand-induced displacements (weight 5e3-3e4).

    Example:
        >>> displacement_regularizer(torch.tensor([[0.01, 0.0, 0.0], [0.0, 0.0, 0.0]]))
        tensor(5.0000e-05)
    """
    return displacement.pow(2).sum(-1).mean()
