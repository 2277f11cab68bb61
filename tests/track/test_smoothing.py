"""The closed-form acceleration smoother of ``track --method dice``."""

from __future__ import annotations

import pytest
import roma
import torch

from handface.losses.temporal import acceleration_penalty
from handface.track.smoothing import smooth_rotations, smooth_trajectory


def _objective(x, y, w, strength):
    data = (w[:, None] * (x - y).reshape(len(y), -1) ** 2).sum()
    second = x[2:] - 2 * x[1:-1] + x[:-2]
    return data + strength * second.pow(2).sum()


def test_constant_velocity_passes_and_strength_zero_returns_the_values():
    y = torch.linspace(0, 1, 7)[:, None] * torch.tensor([[1.0, -2.0, 0.5]])
    assert torch.allclose(smooth_trajectory(y, torch.ones(7), strength=50.0), y.double(),
                          atol=1e-4)  # fmt: skip
    noisy = y + 0.1 * torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(
        smooth_trajectory(noisy, torch.ones(7), strength=0.0), noisy.double(), atol=1e-5
    )


def test_it_is_the_minimiser_and_reduces_jitter():
    generator = torch.Generator().manual_seed(1)
    y = torch.randn(12, 4, dtype=torch.float64, generator=generator)
    w = torch.ones(12, dtype=torch.float64)
    x = smooth_trajectory(y, w, strength=5.0)
    best = _objective(x, y, w, 5.0)
    for _ in range(5):  # any perturbation costs more (up to the tiny steadying term)
        other = x + 1e-3 * torch.randn(12, 4, dtype=torch.float64, generator=generator)
        assert _objective(other, y, w, 5.0) > best - 1e-9
    # the gradient of the objective vanishes at the solution
    x = x.clone().requires_grad_(True)
    _objective(x, y, w, 5.0).backward()
    assert float(x.grad.abs().max()) < 1e-3
    assert acceleration_penalty(x.detach()) < 0.2 * acceleration_penalty(y)


def test_zero_weight_frames_are_filled_smoothly_and_may_be_nan():
    y = torch.arange(8, dtype=torch.float64)[:, None].repeat(1, 2)
    w = torch.ones(8, dtype=torch.float64)
    y[3:5] = float("nan")
    w[3:5] = 0.0
    x = smooth_trajectory(y, w, strength=1.0)
    assert torch.isfinite(x).all()
    assert torch.allclose(x[:, 0], torch.arange(8, dtype=torch.float64), atol=1e-4)


def test_anchors_continue_a_trajectory_across_windows():
    # a ramp 0, 1, ... cut in two: with the first window's last two frames as anchors, the
    # second window keeps the ramp's velocity even from a single weighted frame
    x = smooth_trajectory(
        torch.tensor([[5.0], [0.0], [0.0]]), torch.tensor([1.0, 0.0, 0.0]),
        strength=100.0, anchors=torch.tensor([[3.0], [4.0]]),
    )  # fmt: skip
    assert torch.allclose(x[:, 0], torch.tensor([5.0, 6.0, 7.0], dtype=torch.float64), atol=1e-3)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="one entry per frame"):
        smooth_trajectory(torch.zeros(4, 2), torch.ones(3), strength=1.0)
    with pytest.raises(ValueError, match="non-negative"):
        smooth_trajectory(torch.zeros(2, 2), torch.tensor([1.0, -1.0]), strength=1.0)
    with pytest.raises(ValueError, match="needs a frame"):
        smooth_trajectory(torch.zeros(3, 2), torch.zeros(3), strength=1.0)


def test_rotations_stay_rotations_and_a_steady_turn_is_kept():
    angles = torch.linspace(0, 0.5, 9, dtype=torch.float64)
    rotvecs = torch.stack([torch.zeros(9, dtype=torch.float64), angles, 0 * angles], -1)
    R = roma.rotvec_to_rotmat(rotvecs)
    noisy = roma.rotvec_to_rotmat(
        rotvecs + 0.05 * torch.randn(9, 3, dtype=torch.float64,
                                     generator=torch.Generator().manual_seed(2))
    )  # fmt: skip
    smoothed = smooth_rotations(noisy, torch.ones(9, dtype=torch.float64), strength=20.0)
    identity = torch.eye(3, dtype=torch.float64).expand(9, 3, 3)
    assert torch.allclose(smoothed @ smoothed.transpose(1, 2), identity, atol=1e-9)
    assert torch.allclose(torch.linalg.det(smoothed), torch.ones(9, dtype=torch.float64))
    error_before = roma.rotmat_geodesic_distance(noisy, R).mean()
    error_after = roma.rotmat_geodesic_distance(smoothed, R).mean()
    assert error_after < 0.7 * error_before
    # a steady turn: its matrix entries are not linear in time, so it bends by a hair (the
    # 0.5 rad turn by at most 0.005 rad, at its ends)
    steady = smooth_rotations(R, torch.ones(9, dtype=torch.float64), strength=20.0)
    assert float(roma.rotmat_geodesic_distance(steady, R).max()) < 5e-3
