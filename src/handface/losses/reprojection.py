"""2D reprojection terms: DICE's L1 on normalised coordinates, fitting's robust pixel form."""

from __future__ import annotations

from jaxtyping import Float
from torch import Tensor

from handface.losses.robust import cauchy, pseudo_huber

KERNELS = {"cauchy": cauchy, "pseudo_huber": pseudo_huber, "squared": lambda s: s}
"""Robust kernels by name for :func:`robust_reprojection`."""


def reprojection_l1(
    pred2d: Float[Tensor, "B N 2"],
    target2d: Float[Tensor, "B N 2"],
    visibility: Float[Tensor, "B N"] | None = None,
) -> Float[Tensor, ""]:
    """DICE's L_reproj: mean L1 between projected and target 2D points (visible ones only).

    Coordinates are whatever the caller uses consistently (DICE: crop coordinates normalised
    to [-1, 1]). ``visibility`` (0/1 or a confidence) weights each point; zero with a gradient
    when nothing is visible.

    Example:
        >>> import torch
        >>> reprojection_l1(torch.ones(1, 2, 2), torch.zeros(1, 2, 2), torch.tensor([[1.0, 0.0]]))
        tensor(1.)
    """
    error = (pred2d - target2d).abs().sum(-1) / 2.0
    if visibility is None:
        return error.mean()
    visibility = visibility.to(error)
    return (error * visibility).sum() / visibility.sum().clamp_min(1e-9)


def robust_reprojection(
    pred2d: Float[Tensor, "*B N 2"],
    target2d: Float[Tensor, "*B N 2"],
    scale: float | Float[Tensor, "*B"],
    weights: Float[Tensor, "*B N"] | None = None,
    kernel: str = "cauchy",
) -> Float[Tensor, ""]:
    """Fitting's 2D term: ``kernel(|(p - t) * scale|^2)``, weighted mean over points.

    ``scale`` is one over the detection noise in pixels (fitting uses a fraction of the face or
    hand size, :func:`handface.geometry.contact.face_size`); ``kernel`` is ``"cauchy"`` (outliers
    saturate), ``"pseudo_huber"`` (outliers keep a linear pull) or ``"squared"``.

    Example:
        >>> import torch
        >>> p, t = torch.tensor([[3.0, 4.0]]), torch.zeros(1, 2)
        >>> robust_reprojection(p, t, 0.2, kernel="squared")
        tensor(1.)
    """
    if isinstance(scale, Tensor):
        scale = scale[..., None, None]  # one scale per item: broadcast over points and (x, y)
    residual = (pred2d - target2d) * scale
    value = KERNELS[kernel](residual.pow(2).sum(-1))
    if weights is None:
        return value.mean()
    return (weights * value).sum() / weights.sum()
