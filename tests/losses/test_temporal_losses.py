"""Smoothness terms: exact values, masks and gradients."""

from __future__ import annotations

import pytest
import torch

from handface.losses.temporal import acceleration_penalty, velocity_penalty


def test_exact_values_on_small_sequences():
    ramp = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    assert float(velocity_penalty(ramp)) == 1.0
    assert float(acceleration_penalty(ramp)) == 0.0  # constant velocity is not penalised
    bump = torch.tensor([[0.0, 0.0], [1.0, 2.0], [0.0, 0.0]])
    assert float(velocity_penalty(bump)) == pytest.approx(2.5)  # (1+4+1+4) / (2 pairs * 2)
    assert float(acceleration_penalty(bump)) == pytest.approx(10.0)  # (4+16) / 2


def test_invalid_frames_break_the_chain():
    x = torch.tensor([[0.0], [1.0], [100.0], [3.0], [4.0]])
    valid = torch.tensor([True, True, False, True, True])
    assert float(velocity_penalty(x, valid)) == 1.0  # only (0,1) and (3,4)
    assert float(acceleration_penalty(x, valid)) == 0.0  # no valid triple
    with pytest.raises(ValueError, match="one entry per frame"):
        velocity_penalty(x, valid[:3])


def test_short_sequences_give_zero_with_a_graph():
    x = torch.zeros(1, 3, requires_grad=True)
    loss = acceleration_penalty(x) + velocity_penalty(x)
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.equal(x.grad, torch.zeros(1, 3))


def test_gradient_pulls_a_jittering_frame_back():
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0]], dtype=torch.float64)
    x[2] += 0.5
    x.requires_grad_(True)
    acceleration_penalty(x).backward()
    assert float(x.grad[2, 0]) > 0 and float(x.grad[1, 0]) < 0 and float(x.grad[3, 0]) < 0
    torch.autograd.gradcheck(lambda v: acceleration_penalty(v), (x.detach().requires_grad_(),))
