"""Image metrics of re-rendered frames inside a region: PSNR and SSIM (no learned metrics: LPIPS
needs downloaded network weights).

Both compare ``(H, W, 3)`` images with values in [0, 1] over the pixels of a boolean mask (the
face region of the avatar papers). SSIM is Wang et al. 2004's: an 11x11 Gaussian window with
sigma 1.5, ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` with ``L = 1``, computed per channel over
the whole image and averaged over the masked pixels and the channels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as nnf
from jaxtyping import Bool, Float
from torch import Tensor

from handface.errors import InputError

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def _check(a: Tensor, b: Tensor, mask: Tensor) -> None:
    if a.shape != b.shape or a.dim() != 3 or a.shape[-1] != 3:
        raise InputError(
            f"images must both be (H, W, 3), got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if mask.shape != a.shape[:2]:
        raise InputError(f"mask must be {tuple(a.shape[:2])}, got {tuple(mask.shape)}")
    if not bool(mask.any()):
        raise InputError("the mask selects no pixel")


def masked_psnr(
    a: Float[Tensor, "H W 3"], b: Float[Tensor, "H W 3"], mask: Bool[Tensor, "H W"]
) -> float:
    """Peak signal-to-noise ratio (dB, peak 1) over the masked pixels; ``inf`` if equal.

    Example:
        >>> a = torch.zeros(4, 4, 3); b = torch.full((4, 4, 3), 0.1)
        >>> round(masked_psnr(a, b, torch.ones(4, 4, dtype=torch.bool)), 3)
        20.0
    """
    _check(a, b, mask)
    mse = float((a.double() - b.double())[mask].pow(2).mean())
    return math.inf if mse == 0 else -10.0 * math.log10(mse)


def masked_ssim(
    a: Float[Tensor, "H W 3"], b: Float[Tensor, "H W 3"], mask: Bool[Tensor, "H W"]
) -> float:
    """Structural similarity averaged over the masked pixels and the channels (1 if equal).

    Example:
        >>> a = torch.rand(16, 16, 3, generator=torch.Generator().manual_seed(0))
        >>> masked_ssim(a, a, torch.ones(16, 16, dtype=torch.bool))
        1.0
    """
    _check(a, b, mask)
    x = a.double().permute(2, 0, 1)[:, None]  # (3, 1, H, W)
    y = b.double().permute(2, 0, 1)[:, None]
    offsets = torch.arange(SSIM_WINDOW, dtype=torch.float64) - SSIM_WINDOW // 2
    g = torch.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :])[None, None]
    pad = SSIM_WINDOW // 2

    def blur(z: Tensor) -> Tensor:
        return nnf.conv2d(nnf.pad(z, (pad, pad, pad, pad), mode="replicate"), window)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return round(float(ssim[:, 0][:, mask].mean()), 12)
