"""Temporal metrics on constructed sequences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from handface.eval.temporal import (
    acceleration_error,
    contact_flips,
    contact_flips_per_100,
    vertex_acceleration,
)


def test_acceleration_error_of_exact_motions():
    t = torch.arange(6.0, dtype=torch.float64)[:, None, None].expand(6, 4, 3)
    linear = 0.01 * t  # constant velocity: zero acceleration
    assert torch.allclose(vertex_acceleration(linear), torch.zeros(4, 4, 3, dtype=torch.float64))
    assert acceleration_error(linear, torch.zeros_like(linear)) == pytest.approx(0.0)
    quadratic = 0.5 * t**2  # acceleration 1 on each axis: |a| = sqrt(3)
    assert acceleration_error(quadratic, linear) == pytest.approx(math.sqrt(3.0))
    # a one-frame jitter of 1 mm along x on every vertex: accelerations -1, 2, -1 mm
    jitter = linear.clone()
    jitter[3, :, 0] += 0.001
    assert 1000 * acceleration_error(jitter, linear) == pytest.approx(4.0 / 4)  # (1+2+1)/4


def test_acceleration_error_masks_and_shapes():
    x = torch.zeros(5, 2, 3)
    y = x.clone()
    y[2] += 1.0
    valid = torch.tensor([True, True, False, True, True])
    assert math.isnan(acceleration_error(x, y, valid))  # every triple touches frame 2
    assert math.isnan(acceleration_error(x[:2], y[:2]))
    with pytest.raises(ValueError, match=r"\(T, N, 3\)"):
        acceleration_error(x, y[:, :1])


def test_contact_flips():
    truth = np.array([0, 0, 1, 1, 1, 0, 0, 0, 0], bool)
    assert contact_flips(truth) == 2
    assert contact_flips_per_100(truth) == pytest.approx(25.0)
    flicker = np.array([0, 1] * 5, bool)
    assert contact_flips_per_100(flicker) == pytest.approx(100.0)
    assert contact_flips_per_100(np.zeros(10, bool)) == 0.0
    assert math.isnan(contact_flips_per_100(np.zeros(1, bool)))
