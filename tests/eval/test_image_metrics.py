"""PSNR and SSIM inside a mask: exact cases, and that the mask decides what counts."""

from __future__ import annotations

import doctest
import math

import pytest
import torch

from handface.errors import InputError
from handface.eval import image_metrics
from handface.eval.image_metrics import masked_psnr, masked_ssim


def test_doctests():
    result = doctest.testmod(image_metrics)
    assert result.attempted >= 2 and result.failed == 0


def test_psnr_of_a_known_error_and_of_equal_images():
    a = torch.zeros(8, 8, 3)
    b = a.clone()
    b[:4] = 0.5  # half the pixels off by 0.5: mse 0.125
    everywhere = torch.ones(8, 8, dtype=torch.bool)
    assert masked_psnr(a, b, everywhere) == pytest.approx(-10 * math.log10(0.125))
    assert masked_psnr(a, a, everywhere) == math.inf
    lower_half = torch.zeros(8, 8, dtype=torch.bool)
    lower_half[4:] = True
    assert masked_psnr(a, b, lower_half) == math.inf  # the error is outside the mask


def test_ssim_falls_with_noise_and_ignores_what_the_mask_leaves_out():
    generator = torch.Generator().manual_seed(0)
    smooth = torch.linspace(0, 1, 32)[None, :, None].expand(32, 32, 3).contiguous()
    noisy = (smooth + 0.2 * torch.randn(32, 32, 3, generator=generator)).clamp(0, 1)
    everywhere = torch.ones(32, 32, dtype=torch.bool)
    assert masked_ssim(smooth, smooth, everywhere) == pytest.approx(1.0)
    assert masked_ssim(smooth, noisy, everywhere) < 0.5
    half = smooth.clone()
    half[:, 16:] = noisy[:, 16:]
    left = torch.zeros(32, 32, dtype=torch.bool)
    left[:, :8] = True  # more than a window's half-width from the noisy half
    assert masked_ssim(smooth, half, left) == pytest.approx(1.0)
    # a constant shift of brightness lowers SSIM's luminance term only a little
    assert 0.9 < masked_ssim(smooth, (smooth + 0.05).clamp(0, 1), everywhere) < 1.0


def test_bad_shapes_and_empty_masks_are_refused():
    a = torch.zeros(4, 4, 3)
    with pytest.raises(InputError, match="H, W, 3"):
        masked_psnr(a, torch.zeros(4, 5, 3), torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(InputError, match="mask must be"):
        masked_ssim(a, a, torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(InputError, match="no pixel"):
        masked_psnr(a, a, torch.zeros(4, 4, dtype=torch.bool))
