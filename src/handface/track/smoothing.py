"""Least-squares smoothing of per-frame estimates (``handface track --method dice``).

A network predicts every frame on its own, so its meshes jitter. Given per-frame values ``y_t``
with weights ``w_t`` (0 where a frame has no estimate), :func:`smooth_trajectory` returns the
``x`` minimising

    sum_t w_t |x_t - y_t|^2  +  strength * sum_t |x_{t+1} - 2 x_t + x_{t-1}|^2,

the acceleration penalty of :mod:`handface.losses.temporal` in closed form (one ``T x T``
linear solve shared by every element). Constant-velocity motion passes unchanged; frames with
zero weight are filled by the smooth curve through their neighbours (a bridged gap). Two
``anchors`` (already-smoothed frames just before the window) continue a trajectory across
windows without a kink.

Example:
    >>> y = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    >>> smooth_trajectory(y, torch.ones(4), strength=10.0).squeeze(-1).round(decimals=4)
    tensor([0., 1., 2., 3.], dtype=torch.float64)
"""

from __future__ import annotations

import roma
import torch
from jaxtyping import Float
from torch import Tensor

STEADY = 1e-6
"""Weight of a tiny velocity penalty, relative to ``strength``: it makes the solution unique
(constant extrapolation) when fewer than two frames carry weight."""


def _differences(count: int, order: int) -> Tensor:
    """``(count - order, count)``: row ``t`` takes the ``order``-th forward difference at ``t``
    (order 2: ``x[t] - 2 x[t+1] + x[t+2]``)."""
    return torch.diff(torch.eye(count, dtype=torch.float64), n=order, dim=0)


def smooth_trajectory(
    values: Float[Tensor, "T ..."],
    weights: Float[Tensor, " T"],
    *,
    strength: float,
    anchors: Float[Tensor, "2 ..."] | None = None,
) -> Float[Tensor, "T ..."]:
    """The least-squares smooth trajectory (module docstring), float64.

    Args:
        values: per-frame values, time first; entries of zero-weight frames are ignored (they
            may be NaN).
        weights: per-frame data weights, ``>= 0``.
        strength: weight of the acceleration penalty (0: the values themselves, zero-weight
            frames filled by the smooth curve through them).
        anchors: the two frames before the first (fixed), or None.
    """
    values = torch.as_tensor(values, dtype=torch.float64)
    weights = torch.as_tensor(weights, dtype=torch.float64)
    count = values.shape[0]
    if weights.shape != (count,):
        raise ValueError(f"weights must have one entry per frame ({count}), got {weights.shape}")
    if bool((weights < 0).any()):
        raise ValueError("weights must be non-negative")
    if count == 0:
        return values.clone()
    flat = values.reshape(count, -1)
    flat = torch.where(weights[:, None] > 0, flat, torch.zeros_like(flat))
    fixed = 0 if anchors is None else 2
    total = count + fixed
    second = _differences(total, 2)
    first = _differences(total, 1)
    # a hair of smoothing even at strength 0, so zero-weight frames are still filled
    penalty = max(strength, STEADY) * (second.T @ second + STEADY * first.T @ first)
    system = penalty[fixed:, fixed:] + torch.diag(weights)
    rhs = weights[:, None] * flat
    if anchors is not None:
        known = torch.as_tensor(anchors, dtype=torch.float64).reshape(2, -1)
        rhs = rhs - penalty[fixed:, :fixed] @ known
    if not bool(weights.any()) and anchors is None:
        raise ValueError("smooth_trajectory needs a frame with weight or anchors")
    # the penalty alone is singular without anchors; a frame of weight makes it definite
    solved = torch.linalg.solve(system, rhs)
    return solved.reshape(values.shape)


def smooth_rotations(
    rotations: Float[Tensor, "T 3 3"],
    weights: Float[Tensor, " T"],
    *,
    strength: float,
    anchors: Float[Tensor, "2 3 3"] | None = None,
) -> Float[Tensor, "T 3 3"]:
    """:func:`smooth_trajectory` of rotation matrices, projected back onto rotations.

    The matrices are smoothed as 9-vectors; for the small frame-to-frame rotations of a video
    the projection (:func:`roma.special_procrustes`) is close to smoothing on the manifold.
    """
    smoothed = smooth_trajectory(rotations, weights, strength=strength, anchors=anchors)
    return roma.special_procrustes(smoothed)
