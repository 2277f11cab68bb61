"""Temporal metrics of a tracked sequence against the ground truth (``handface bench track``).

- ``accel_err_mm``: the acceleration error of the human mesh recovery literature (HMMR, VIBE):
  the mean over frames and vertices of ``|a_pred - a_gt|`` with the per-vertex acceleration
  ``a[t] = x[t-1] - 2 x[t] + x[t+1]``, in millimetres per frame squared. A tracker that jitters
  has a large one even when each frame's error is small.
- ``contact_flips_per_100``: how often the touching verdict changes, per 100 frame-to-frame
  transitions (a verdict flipping every frame scores 100). Compared with the ground truth's own
  count: an approach -> press -> release clip has two real flips.

Example:
    >>> contact_flips_per_100(np.array([0, 0, 1, 1, 0], bool))
    50.0
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Bool, Float
from torch import Tensor


def vertex_acceleration(vertices: Float[Tensor, "T N 3"]) -> Float[Tensor, "T-2 N 3"]:
    """Second differences over time, ``x[t-1] - 2 x[t] + x[t+1]`` for ``t = 1 .. T-2``."""
    return vertices[:-2] - 2.0 * vertices[1:-1] + vertices[2:]


def acceleration_error(
    pred: Float[Tensor, "T N 3"],
    gt: Float[Tensor, "T N 3"],
    valid: Bool[Tensor, " T"] | None = None,
) -> float:
    """``accel_err`` in the units of the input per frame squared (metres in, metres out).

    ``valid`` marks frames where both are defined; an acceleration is scored only when its
    three frames are valid (frames outside ``valid`` may hold NaN). NaN when no triple is
    (fewer than 3 frames, or 0 vertices). ``valid`` must be a boolean ``(T,)`` mask
    (``ValueError`` otherwise).

    Example:
        >>> t = torch.arange(5.0)[:, None, None].expand(5, 2, 3)
        >>> round(acceleration_error(t, t ** 2 / 2), 6)  # gt: 1 per frame^2 on each axis
        1.732051
    """
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(
            f"pred and gt must both be (T, N, 3), got {tuple(pred.shape)} and {tuple(gt.shape)}"
        )
    if valid is not None and (valid.shape != pred.shape[:1] or valid.dtype != torch.bool):
        raise ValueError(
            f"valid must be a boolean mask of the {pred.shape[0]} frames, got "
            f"{valid.dtype} {tuple(valid.shape)}"
        )
    if pred.shape[0] < 3:
        return float("nan")
    error = (vertex_acceleration(pred.double()) - vertex_acceleration(gt.double())).norm(dim=-1)
    if valid is not None:
        keep = valid[:-2] & valid[1:-1] & valid[2:]
        error = error[keep]
    if error.numel() == 0:
        return float("nan")
    return float(error.mean())


def contact_flips(verdicts: Bool[np.ndarray, " T"]) -> int:
    """Changes of a per-frame boolean verdict between consecutive frames."""
    verdicts = np.asarray(verdicts, dtype=bool)
    return int(np.count_nonzero(verdicts[1:] != verdicts[:-1]))


def contact_flips_per_100(verdicts: Bool[np.ndarray, " T"]) -> float:
    """:func:`contact_flips` per 100 frame-to-frame transitions (NaN for fewer than 2 frames)."""
    verdicts = np.asarray(verdicts, dtype=bool)
    if verdicts.shape[0] < 2:
        return float("nan")
    return 100.0 * contact_flips(verdicts) / (verdicts.shape[0] - 1)
