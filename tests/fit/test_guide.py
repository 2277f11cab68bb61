"""A learned guide's placement of a fitted hand (--method hybrid), on exact small cases."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from handface.fit.guide import HandGuide
from handface.fit.hand_fit import HandFit
from handface.fit.interaction import _pulled_vertices
from handface.fit.single_image import _place_as_guided
from handface.geometry.camera import project_points
from handface.models.base import HandParams


def _hand(transl) -> HandFit:
    canonical = torch.tensor([[0.0, 0, 0], [0.02, 0, 0], [0, 0.02, 0], [0, 0, 0.02]])
    keypoints = canonical[[0, 1, 2, 3] * 5 + [0]]
    transl = torch.tensor(transl)
    return HandFit(
        side="right",
        params=HandParams(
            global_orient=torch.zeros(1, 3), transl=transl[None], articulation=torch.zeros(1, 20)
        ),
        rotation=torch.eye(3),
        canonical_vertices=canonical,
        canonical_keypoints=keypoints,
        vertices=canonical + transl,
        keypoints=keypoints + transl,
        reprojection_px=0.0,
    )


def _guide(offset, contact=None) -> HandGuide:
    return HandGuide(
        side="right",
        offset_from_face=torch.tensor(offset, dtype=torch.float64),
        contact=torch.zeros(4) if contact is None else contact,
        touching=False,
        presence=1.0,
        keypoints2d=np.zeros((21, 2), np.float32),
        keypoint_depth=np.zeros(21, np.float32),
    )


def test_the_hand_slides_along_its_ray_to_the_guides_depth():
    K = torch.tensor([[500.0, 0, 200], [0, 500.0, 200], [0, 0, 1]], dtype=torch.float64)
    hand = _hand([0.05, -0.02, 0.80])
    head = SimpleNamespace(vertices=torch.tensor([[0.0, 0.0, 0.60], [0.0, 0.0, 0.64]]))
    placed = _place_as_guided(hand, head, _guide([0.04, -0.03, -0.02]))
    centre_before = hand.keypoints.double().mean(0)
    centre_after = placed.keypoints.double().mean(0)
    # the depth the guide asks: face centre (z 0.62) + offset (-0.02)
    assert abs(float(centre_after[2]) - 0.60) < 1e-6
    # the keypoint centroid still projects to the same pixel
    before, after = project_points(centre_before[None], K), project_points(centre_after[None], K)
    assert torch.allclose(before, after, atol=1e-6)
    # rigid: the hand keeps its shape and orientation
    assert torch.allclose(placed.rotation, hand.rotation)
    assert torch.allclose(placed.vertices - placed.vertices[0], hand.vertices - hand.vertices[0])
    assert _place_as_guided(hand, head, None) is hand


def test_the_contact_term_pulls_where_the_guide_says():
    chosen = _pulled_vertices(_guide([0, 0, 0], torch.tensor([0.9, 0.2, 0.7, 0.6, 0.1])))
    assert chosen.tolist() == [True, False, True, True, False]
    # too few likely vertices: the three likeliest
    few = _pulled_vertices(_guide([0, 0, 0], torch.tensor([0.3, 0.2, 0.45, 0.1, 0.4])))
    assert few.tolist() == [True, False, True, False, True]
    assert _pulled_vertices(None) is None
