"""DicePredictor's placement rules on constructed geometry."""

from __future__ import annotations

import pytest
import torch
import trimesh

from handface.geometry.contact import CONTACT_DISTANCE, surface_signed_distance, touching
from handface.geometry.settle import SETTLE_MARGIN, SETTLE_RANGE, settle_offset


@pytest.fixture(scope="module")
def ball():
    """A 10 cm ball 50 cm in front of the camera (a stand-in for a face)."""
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.1)
    vertices = torch.tensor(mesh.vertices).float() + torch.tensor([0.0, 0.0, 0.5])
    return vertices, torch.tensor(mesh.faces)


def _patch(centre: torch.Tensor) -> torch.Tensor:
    """A 2 cm square of points facing the camera (a stand-in for a hand)."""
    grid = torch.stack(
        torch.meshgrid(
            torch.linspace(-0.01, 0.01, 5), torch.linspace(-0.01, 0.01, 5), indexing="ij"
        ),
        -1,
    )
    return torch.cat([grid.reshape(-1, 2), torch.zeros(25, 1)], 1) + centre


def _gap(points, ball) -> float:
    return float(surface_signed_distance(points, *ball).min())


def test_a_floating_hand_judged_touching_slides_onto_the_skin(ball):
    hand = _patch(torch.tensor([0.0, 0.0, 0.37]))  # 3 cm in front of the ball
    shift = settle_offset(hand, *ball, touches=True, probe_stride=1)
    moved = hand + shift
    assert bool(touching(surface_signed_distance(moved, *ball)))
    assert 0.0 <= _gap(moved, ball) <= CONTACT_DISTANCE - SETTLE_MARGIN
    # along the ray through its centroid: the direction is the centroid's, the size is kept
    direction = torch.nn.functional.normalize(hand.mean(0), dim=0)
    assert torch.allclose(torch.nn.functional.normalize(shift, dim=0), direction, atol=1e-5)
    # the least slide: barely inside the verdict, not pushed through the ball
    assert _gap(moved, ball) > CONTACT_DISTANCE - SETTLE_MARGIN - 0.002


def test_a_hand_on_the_skin_judged_not_touching_slides_off(ball):
    hand = _patch(torch.tensor([0.0, 0.0, 0.401]))  # resting on the ball
    shift = settle_offset(hand, *ball, touches=False, probe_stride=1)
    gap = _gap(hand + shift, ball)
    assert CONTACT_DISTANCE + SETTLE_MARGIN <= gap < CONTACT_DISTANCE + SETTLE_MARGIN + 0.003
    assert float(shift[2]) < 0  # towards the camera


def test_agreeing_or_unreachable_hands_stay(ball):
    resting = _patch(torch.tensor([0.0, 0.0, 0.401]))
    assert torch.equal(settle_offset(resting, *ball, touches=True), torch.zeros(3))
    far = _patch(torch.tensor([0.3, 0.0, 0.3]))  # beside the ball: no slide along its ray helps
    assert torch.equal(settle_offset(far, *ball, touches=True), torch.zeros(3))
    # out of range: 30 cm in front needs more than a 20 % depth change
    assert SETTLE_RANGE < 0.3 / 0.1
    distant = _patch(torch.tensor([0.0, 0.0, 0.1]))
    assert torch.equal(settle_offset(distant, *ball, touches=True), torch.zeros(3))
