"""Interaction refinement: the head and every hand jointly, with depth order, contact, collision.

Starting from the separate fits (:mod:`~handface.fit.head_fit`, :mod:`~handface.fit.hand_fit`)
the rigid poses of the head and the hands are refined together (articulation and shape stay as
fitted) by Adam on

- **reprojection** of the face landmarks and hand keypoints (robust, in units of the detection
  noise), and priors keeping each part's depth near its size-prior estimate;
- **depth order**: hand vertices that project onto pixels where the image shows the hand over
  the face (:mod:`~handface.fit.evidence`) must be in front of the head surface there
  (``relu(z_hand - z_head)``, the head's depth rendered once); with an RGB-D depth map the
  visible hand keypoints' depths are pulled to the observed ones instead;
- **contact**: only for a hand the evidence says touches, the hand vertices nearest the face
  among those projecting onto the head are pulled onto its surface (to a small press depth,
  which the physics turns into a deformation). Which part touches is found geometrically from
  the current poses, never from a gesture name;
- **collision**: hand vertices deeper than the allowed press inside the head are pushed out;
  a hand a guide judges not touching is kept ``clearance_mm`` beyond the contact distance
  (:data:`~handface.geometry.contact.CONTACT_DISTANCE`), so the meshes agree with the verdict.

Contact evidence (decided after a first round without the contact term) needs both: the hand's
pixels overlap or touch the head's silhouette, and the hand's closest surface is within the
depth uncertainty of the size priors from the face (``contact_gap_fraction`` of its depth).
With a guide (:mod:`~handface.fit.guide`, ``--method hybrid``) the guide decides instead, and
the contact term pulls the hand vertices the guide says touch.
Signed distances use point-to-plane distances to the closest head triangles (found every few
steps, outward normals), the head in its canonical frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import roma
import torch
from jaxtyping import Float
from torch import Tensor

from handface.fit.evidence import HandFaceEvidence
from handface.fit.guide import HandGuide
from handface.fit.hand_fit import HandFit
from handface.fit.head_fit import NUM_SURFACE_LANDMARKS, HeadFit
from handface.geometry.camera import project_points
from handface.geometry.contact import CONTACT_DISTANCE, face_size, hand_size, in_contact
from handface.geometry.distance import faces_near, point_mesh_distance
from handface.geometry.normals import face_normals
from handface.losses import (
    cauchy,
    collision_hinge,
    contact_pull,
    depth_behind_hinge,
    robust_reprojection,
)


@dataclass
class InteractionConfig:
    """Settings of :func:`refine_interaction`."""

    iterations: int = 40
    """Adam steps of each of the two rounds (before and after the contact decision)."""
    correspondence_every: int = 8
    """Steps between updates of the closest head triangles of the hand vertices."""
    keypoint_noise: float = 0.03
    """Hand keypoint noise as a fraction of the hand's size in pixels."""
    landmark_noise: float = 0.012
    """Face landmark noise as a fraction of the face's size in pixels."""
    hand_depth_sigma: float = 0.15
    """Relative uncertainty of a hand's size-prior depth."""
    head_depth_sigma: float = 0.08
    """Relative uncertainty of the head's size-prior depth."""
    order_weight: float = 50.0
    contact_weight: float = 50.0
    collision_weight: float = 100.0
    depth_map_weight: float = 20.0
    press_mm: float = 2.0
    """How far the contact term presses the touching hand surface into the skin."""
    clearance_mm: float = 2.0
    """A hand a guide judges not touching is kept this far beyond the contact distance."""
    contact_vertices: int = 30
    """How many of the nearest hand vertices the contact term pulls onto the face."""
    contact_gap_fraction: float = 0.06
    """A hand touches only if its closest surface is within this share of its depth."""
    contact_gap_px: float = 0.02
    """...and its pixels come within this share of the face size of the head silhouette."""
    reach: float = 0.04
    """Head triangles farther than this (metres) from a hand's bounding box are ignored."""
    learning_rate_rotation: float = 0.01
    learning_rate_depth: float = 0.006
    """Adam step of the log-depth of each part (moves it along its viewing ray)."""
    learning_rate_translation: float = 0.001
    """Adam step (metres) of the remaining, sideways translation."""


@dataclass
class HandEvidence:
    """Per hand: its image evidence and the pixels where it must be in front of the head."""

    evidence: HandFaceEvidence
    keypoints2d: Float[np.ndarray, "21 2"]


@dataclass
class InteractionResult:
    head: HeadFit
    hands: list[HandFit]
    contact: dict[str, bool]
    """Per hand side: whether the contact term was applied (the evidence said touch)."""
    gaps_mm: dict[str, float] = field(default_factory=dict)
    """Per hand side: closest hand-to-face signed distance before the contact round."""
    gaps_px: dict[str, float] = field(default_factory=dict)
    """Per hand side: 2D gap between the hand's pixels and the head silhouette."""


class _HeadSurface:
    """Closest-triangle queries against the fitted head in its canonical frame."""

    def __init__(self, head: HeadFit, faces: Tensor, reach: float) -> None:
        self.vertices = head.canonical_vertices.double()
        self.faces = faces
        self.normals = face_normals(self.vertices, faces)
        self.reach = reach

    def correspond(
        self, points: Tensor, reach: float | None = None
    ) -> tuple[Tensor, Tensor, Tensor] | None:
        """Closest points and normals of the head triangles near ``points`` (canonical)."""
        reach = self.reach if reach is None else reach
        near = faces_near(self.vertices, self.faces, points, reach)
        if not near.any():
            return None
        faces = self.faces[near]
        result = point_mesh_distance(points, self.vertices, faces)
        return result.closest_points, self.normals[near][result.face_index], result.distance

    def signed(self, points: Tensor, closest: Tensor, normals: Tensor) -> Tensor:
        return ((points - closest) * normals).sum(-1)


def _pulled_vertices(guide: HandGuide | None, least: int = 3) -> Tensor | None:
    """Hand vertices a guide says touch (:func:`in_contact`; at least the ``least`` likeliest)."""
    if guide is None:
        return None
    probability = torch.as_tensor(guide.contact)
    chosen = in_contact(probability)
    if int(chosen.sum()) < least:
        chosen = torch.zeros_like(chosen)
        chosen[probability.topk(least).indices] = True
    return chosen


def _sample_map(values: Tensor, uv: Tensor) -> Tensor:
    """Nearest-pixel lookup of a (H, W) map at pixel coordinates (no gradient w.r.t. uv)."""
    height, width = values.shape
    col = uv[:, 0].detach().round().long().clamp(0, width - 1)
    row = uv[:, 1].detach().round().long().clamp(0, height - 1)
    return values[row, col]


def refine_interaction(
    head: HeadFit,
    hands: list[HandFit],
    *,
    head_faces: Tensor,
    K: Float[Tensor, "3 3"],
    face_landmarks2d: Float[np.ndarray, "478 2"],
    landmark_weights: Float[np.ndarray, "478"],
    hand_keypoints2d: list[Float[np.ndarray, "21 2"]],
    head_depth: Float[Tensor, "H W"],
    evidence: list[HandFaceEvidence],
    observed_depth: Float[Tensor, "H W"] | None = None,
    config: InteractionConfig | None = None,
    guidance: list[HandGuide | None] | None = None,
) -> InteractionResult:
    """Refine head and hand poses jointly (method: module docstring).

    Args:
        head_depth: the fitted head's rendered depth (metres, ``inf`` off the head), at the
            image's resolution.
        evidence: per hand, :func:`~handface.fit.evidence.hand_face_evidence`.
        observed_depth: an RGB-D depth map (metres, 0 = missing), or ``None``.
        guidance: per hand, a learned guide (or None): it decides whether the hand touches
            and which of its vertices the contact term pulls.
    """
    config = config or InteractionConfig()
    K64 = torch.as_tensor(K, dtype=torch.float64)
    surface = _HeadSurface(head, head_faces, config.reach)
    head_rotation0 = head.rotation.double()
    head_transl0 = head.params.transl[0].double()
    canonical_landmarks = (head.landmarks.double() - head_transl0) @ head_rotation0
    lm_target = torch.as_tensor(face_landmarks2d, dtype=torch.float64)
    lm_weights = torch.as_tensor(landmark_weights, dtype=torch.float64)
    face_px = face_size(face_landmarks2d[:NUM_SURFACE_LANDMARKS])
    lm_scale = 1.0 / (config.landmark_noise * max(face_px, 1.0))
    head_depth = head_depth.double()
    overlap = [torch.as_tensor(e.overlap) for e in evidence]

    head_delta = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    head_shift = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    head_log_depth = torch.zeros((), dtype=torch.float64, requires_grad=True)
    hand_log_depths = [torch.zeros((), dtype=torch.float64, requires_grad=True) for _ in hands]
    hand_deltas = [torch.zeros(3, dtype=torch.float64, requires_grad=True) for _ in hands]
    hand_shifts = [torch.zeros(3, dtype=torch.float64, requires_grad=True) for _ in hands]
    optimizer = torch.optim.Adam(
        [
            {"params": [head_delta, *hand_deltas], "lr": config.learning_rate_rotation},
            # The head moves only in depth: its 478 landmarks pin it in the image plane.
            {"params": [*hand_shifts], "lr": config.learning_rate_translation},
            {"params": [head_log_depth, *hand_log_depths], "lr": config.learning_rate_depth},
        ]
    )
    hand_data = []
    for hand, keypoints2d in zip(hands, hand_keypoints2d, strict=True):
        size = hand_size(keypoints2d)
        hand_data.append(
            {
                "rotation0": hand.rotation.double(),
                "transl0": hand.params.transl[0].double(),
                "vertices": hand.canonical_vertices.double(),
                "keypoints": hand.canonical_keypoints.double(),
                "target": torch.as_tensor(keypoints2d, dtype=torch.float64),
                "scale": 1.0 / (config.keypoint_noise * max(size, 1.0)),
                "depth0": float(hand.params.transl[0, 2]),
            }
        )
    head_depth0 = float(head_transl0[2])

    def head_pose() -> tuple[Tensor, Tensor]:
        # depth moves the head along its viewing ray, so the image barely changes with it
        return (
            head_rotation0 @ roma.rotvec_to_rotmat(head_delta),
            head_transl0 * head_log_depth.exp() + head_shift,
        )

    def hand_pose(i: int) -> tuple[Tensor, Tensor]:
        data = hand_data[i]
        rotation = roma.rotvec_to_rotmat(hand_deltas[i]) @ data["rotation0"]
        centre = data["keypoints"].mean(0)
        # rotate about the hand's centre, so rotation and depth do not trade off
        centre_cam = (data["transl0"] + data["rotation0"] @ centre) * hand_log_depths[i].exp()
        transl = centre_cam - rotation @ centre + hand_shifts[i]
        return rotation, transl

    contact = {hand.side: False for hand in hands}
    gaps: dict[str, float] = {}
    correspondences: list = [None] * len(hands)
    guides = guidance if guidance is not None else [None] * len(hands)
    pulled = [_pulled_vertices(guide) for guide in guides]
    clearance = CONTACT_DISTANCE + config.clearance_mm / 1000.0

    def run(steps: int) -> None:
        for step in range(steps):
            optimizer.zero_grad()
            R_h, t_h = head_pose()
            landmarks = canonical_landmarks @ R_h.T + t_h
            # squared: the separate head fit already down-weighted unreliable landmarks, and
            # the head must hold its place in the image while the hands are moved onto it
            loss = robust_reprojection(
                project_points(landmarks, K64), lm_target, lm_scale, lm_weights, kernel="squared"
            )
            loss = loss + ((t_h[2] - head_depth0) / (config.head_depth_sigma * head_depth0)) ** 2
            for i, data in enumerate(hand_data):
                R, t = hand_pose(i)
                keypoints = data["keypoints"] @ R.T + t
                # pseudo-Huber: keeps pulling the hand back onto its keypoints when the contact
                # term tugs it sideways
                loss = loss + robust_reprojection(
                    project_points(keypoints, K64),
                    data["target"],
                    data["scale"],
                    kernel="pseudo_huber",
                )
                depth0 = data["depth0"]
                loss = loss + ((t[2] - depth0) / (config.hand_depth_sigma * depth0)) ** 2
                vertices = data["vertices"] @ R.T + t
                uv = project_points(vertices, K64)
                if observed_depth is not None:
                    uv_k = project_points(keypoints, K64)
                    observed = _sample_map(observed_depth.double(), uv_k)
                    valid = observed > 0
                    if valid.any():
                        err = (keypoints[valid, 2] - observed[valid]) / 0.01
                        loss = loss + config.depth_map_weight * cauchy(err.pow(2)).mean()
                in_front = _sample_map(overlap[i], uv)
                if in_front.any():
                    z_head = (
                        _sample_map(head_depth, uv[in_front]) * head_log_depth.exp() + head_shift[2]
                    )
                    finite = torch.isfinite(z_head)
                    if finite.any():
                        loss = loss + config.order_weight * depth_behind_hinge(
                            vertices[in_front][finite, 2], z_head[finite]
                        )
                # hand vertices in the head's canonical frame
                local = (vertices - t_h) @ R_h
                if step % config.correspondence_every == 0:
                    with torch.no_grad():
                        correspondences[i] = surface.correspond(local.detach())
                if correspondences[i] is None:
                    continue
                closest, normals, _ = correspondences[i]
                signed = surface.signed(local, closest, normals)
                press = config.press_mm / 1000.0
                loss = loss + config.collision_weight * collision_hinge(signed, press + 0.001)
                if guides[i] is not None and not guides[i].touching:
                    loss = loss + config.collision_weight * collision_hinge(signed, -clearance)
                if contact[hands[i].side]:
                    if pulled[i] is not None:  # where the guide says the hand touches
                        candidates = signed[pulled[i]]
                    else:
                        on_head = torch.isfinite(_sample_map(head_depth, uv))
                        candidates = signed[on_head] if on_head.sum() >= 3 else signed
                    loss = loss + config.contact_weight * contact_pull(
                        candidates, config.contact_vertices, press
                    )
            loss.backward()
            optimizer.step()

    run(config.iterations)
    # Contact decision from the first round (no contact term yet).
    with torch.no_grad():
        R_h, t_h = head_pose()
        for i, hand in enumerate(hands):
            R, t = hand_pose(i)
            local = ((hand_data[i]["vertices"] @ R.T + t) - t_h) @ R_h
            found = surface.correspond(local, reach=1.0)
            gap = float("inf")
            if found is not None:
                closest, normals, _ = found
                gap = float(surface.signed(local, closest, normals).min())
            gaps[hand.side] = 1000.0 * gap
            near_2d = evidence[i].gap_px <= config.contact_gap_px * face_px
            near_3d = gap <= config.contact_gap_fraction * float(t[2])
            contact[hand.side] = bool(near_2d and near_3d)
            if guides[i] is not None:  # a learned decision replaces the size-prior gate
                contact[hand.side] = bool(guides[i].touching)
    if any(contact.values()):
        run(config.iterations)

    with torch.no_grad():
        R_h, t_h = head_pose()
        head_out = HeadFit(
            params=type(head.params)(
                global_orient=roma.rotmat_to_rotvec(R_h).float()[None],
                transl=t_h.float()[None],
                expression=head.params.expression,
                shape=head.params.shape,
            ),
            rotation=R_h.float(),
            canonical_vertices=head.canonical_vertices,
            vertices=(head.canonical_vertices.double() @ R_h.T + t_h).float(),
            landmarks=(canonical_landmarks @ R_h.T + t_h).float(),
            landmarks68=(
                (head.landmarks68.double() - head_transl0) @ head_rotation0 @ R_h.T + t_h
            ).float(),
            reprojection_px=float(
                (project_points(canonical_landmarks @ R_h.T + t_h, K64) - lm_target)
                .norm(dim=-1)[:NUM_SURFACE_LANDMARKS]
                .mean()
            ),
        )
        hands_out = []
        for i, hand in enumerate(hands):
            R, t = hand_pose(i)
            moved = hand.moved(R, t)
            moved.reprojection_px = float(
                (project_points(moved.keypoints.double(), K64) - hand_data[i]["target"])
                .norm(dim=-1)
                .mean()
            )
            hands_out.append(moved)
    return InteractionResult(
        head=head_out,
        hands=hands_out,
        contact=contact,
        gaps_mm=gaps,
        gaps_px={hand.side: e.gap_px for hand, e in zip(hands, evidence, strict=True)},
    )
