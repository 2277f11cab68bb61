"""Temporal smoothness of per-frame quantities (the tracker's and the avatar's smoothness terms).

Both terms take a sequence with time as the first axis, ``(T, ...)``: a rotation vector, a
translation, expression coefficients or whole vertex sets. They return the mean over frames and
elements of the squared finite differences, so a weight means the same for any clip length.
A ``valid`` mask (``(T,)``) drops every difference that touches an invalid frame (a frame where
the part was not seen), so a gap is neither pulled nor pushed.

Example:
    >>> x = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    >>> float(velocity_penalty(x)), float(acceleration_penalty(x))
    (1.0, 0.0)
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float
from torch import Tensor


def _differences(values: Tensor, order: int, valid: Tensor | None) -> tuple[Tensor, Tensor]:
    """``order``-th forward differences along time and the mask of those fully inside ``valid``."""
    diff = values
    keep = torch.ones(values.shape[0], dtype=torch.bool, device=values.device)
    if valid is not None:
        if valid.shape != (values.shape[0],):
            raise ValueError(
                f"valid must have one entry per frame ({values.shape[0]}), got {tuple(valid.shape)}"
            )
        keep = valid.to(torch.bool)
    for _ in range(order):
        diff = diff[1:] - diff[:-1]
        keep = keep[1:] & keep[:-1]
    return diff, keep


def _mean_square(diff: Tensor, keep: Tensor) -> Tensor:
    if diff.shape[0] == 0 or not bool(keep.any()):
        return diff.sum() * 0.0
    chosen = diff[keep]
    return chosen.pow(2).reshape(chosen.shape[0], -1).sum(-1).mean() / max(1, chosen[0].numel())


def velocity_penalty(
    values: Float[Tensor, "T ..."], valid: Bool[Tensor, " T"] | None = None
) -> Float[Tensor, ""]:
    """Mean squared first difference ``x[t+1] - x[t]`` (per element), over valid frame pairs."""
    return _mean_square(*_differences(values, 1, valid))


def acceleration_penalty(
    values: Float[Tensor, "T ..."], valid: Bool[Tensor, " T"] | None = None
) -> Float[Tensor, ""]:
    """Mean squared second difference ``x[t+1] - 2 x[t] + x[t-1]`` (per element), over valid
    frame triples: zero for constant velocity, so it smooths jitter without slowing motion."""
    return _mean_square(*_differences(values, 2, valid))
