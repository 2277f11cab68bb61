"""L1 terms of DICE's mesh loss (vertices, keypoints, parameters), with optional masks."""

from __future__ import annotations

from jaxtyping import Float
from torch import Tensor


def masked_l1(
    pred: Float[Tensor, "B ..."],
    target: Float[Tensor, "B ..."],
    mask: Float[Tensor, " B"] | None = None,
) -> Float[Tensor, ""]:
    """Mean absolute error over everything, counting only the batch items where ``mask > 0``.

    DICE's L_vert, L_key and L_params are L1 (METHOD.md §1); the mask drops items that have no
    label for this part (e.g. a missing hand, or in-the-wild images with no 3D). Zero (with a
    gradient) when no item counts.

    Example:
        >>> import torch
        >>> pred, mask = torch.tensor([[1.0, 1.0], [5.0, 5.0]]), torch.tensor([1.0, 0])
        >>> masked_l1(pred, torch.zeros(2, 2), mask)
        tensor(1.)
    """
    error = (pred - target).abs().flatten(1).mean(dim=1)
    if mask is None:
        return error.mean()
    mask = mask.to(error)
    return (error * mask).sum() / mask.sum().clamp_min(1.0)
