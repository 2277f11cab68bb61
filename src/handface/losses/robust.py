"""Robust kernels of squared residuals (inputs already divided by their noise scale)."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def cauchy(squared: Float[Tensor, "*shape"]) -> Float[Tensor, "*shape"]:
    """Cauchy (Lorentzian) kernel ``log(1 + r^2)``: quadratic near 0, logarithmic for outliers.

    Used where a few misdetections must not drag a fit (landmark reprojection, depth maps).

    Example:
        >>> cauchy(torch.tensor([0.0, 1.0])).tolist() == [0.0, float(torch.log(torch.tensor(2.0)))]
        True
    """
    return torch.log1p(squared)


def pseudo_huber(squared: Float[Tensor, "*shape"]) -> Float[Tensor, "*shape"]:
    """Pseudo-Huber kernel ``sqrt(1 + r^2) - 1``: quadratic near 0, linear for large residuals.

    Unlike :func:`cauchy` it keeps pulling a part back onto its detections when another term
    tugs it sideways.

    Example:
        >>> pseudo_huber(torch.tensor([0.0, 8.0])).tolist()  # sqrt(9) - 1
        [0.0, 2.0]
    """
    return torch.sqrt(1.0 + squared) - 1.0
