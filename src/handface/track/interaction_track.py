"""Stage III of tracking: the hands' placement over a window, with the interaction terms.

The single-image interaction refinement (:mod:`handface.fit.interaction`) over frames: per frame
and hand a rigid pose (rotation about the hand's centre, depth along the viewing ray, a small
sideways shift), refined by Adam over all frames of the window at once with

- the single-image terms, per frame and averaged over frames: keypoint reprojection
  (pseudo-Huber), the hand's size-prior depth, depth order where the image shows the hand over
  the face (or an RGB-D depth map at the keypoints), collision with the head, and - in the
  second round, for frames judged touching - the contact pull onto the skin; frames judged not
  touching are kept ``clearance_mm`` beyond the contact distance, so meshes agree with verdicts;
- **smoothness**: the acceleration of the hand's centre (``centre_accel_mm``) and of its
  rotation (``rotation_accel_deg``), over the frames where the hand is seen.

The head keeps stage I's pose except its depth: as in the single-image refinement it may slide
along its viewing ray (its 478 landmarks pin it in the image), within its size prior's
uncertainty and smoothly over time, so a hand that must be in front of the face is not pushed
off its keypoints instead.
The touching verdict per frame comes from the same gate as a single image (the hand's pixels
reach the head silhouette and its closest surface is within the depth uncertainty), or from a
guide's touch probability, turned into a score and made temporally consistent by
:func:`~handface.track.decisions.stable_verdicts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import roma
import torch
from jaxtyping import Bool, Float
from torch import Tensor

from handface.fit.interaction import InteractionConfig, _HeadSurface, _pulled_vertices
from handface.geometry.camera import project_points
from handface.geometry.contact import CONTACT_DISTANCE, hand_size
from handface.losses import (
    cauchy,
    clearance_hinge,
    collision_hinge,
    contact_pull,
    depth_behind_hinge,
    robust_reprojection,
)
from handface.losses.temporal import acceleration_penalty
from handface.track.decisions import continued_verdicts


@dataclass
class InteractionTrackConfig:
    """Settings of :func:`track_interaction` (the per-frame terms are ``interaction``'s)."""

    interaction: InteractionConfig = field(default_factory=InteractionConfig)
    centre_accel_mm: float = 3.0
    """Scale of the acceleration of the hand's centre (mm per frame squared)."""
    rotation_accel_deg: float = 1.0
    """Scale of the acceleration of the hand's rotation (degrees per frame squared)."""
    smoothness_weight: float = 1.0
    min_run: int = 3
    """A touching verdict changes only when the evidence holds this many frames
    (:func:`~handface.track.decisions.stable_verdicts`)."""
    gate_softness: float = 0.3
    """Width of the logistic that turns the gate's margins into a score (share of the limit)."""


@dataclass
class HeadFrames:
    """The head over a window (float64, from stage I)."""

    canonical_vertices: Float[Tensor, "T V 3"]
    rotation: Float[Tensor, "T 3 3"]
    transl: Float[Tensor, "T 3"]
    faces: Tensor
    depth_maps: list[Tensor]
    """Per frame the head's rendered depth (metres, inf off the head) at the working size."""
    map_scale: float
    """Working size / image size (the maps are looked up at ``uv * map_scale``)."""
    face_px: Float[np.ndarray, " T"]
    """Per frame the face's size in pixels (of the full image)."""


@dataclass
class HandFrames:
    """One hand side over a window: where it is seen and where stage II placed it."""

    side: str
    present: Bool[Tensor, " T"]
    canonical_vertices: Float[Tensor, "T Vh 3"]
    canonical_keypoints: Float[Tensor, "T 21 3"]
    rotation: Float[Tensor, "T 3 3"]
    transl: Float[Tensor, "T 3"]
    keypoints2d: Float[np.ndarray, "T 21 2"]
    overlap: list[np.ndarray | None]
    """Per frame the hand's pixels on the head silhouette (at the working size), or None."""
    gap_px: Float[np.ndarray, " T"]
    """Per frame the 2D gap between the hand's pixels and the head silhouette (full image)."""
    guides: list | None = None
    """Per frame a :class:`~handface.fit.guide.HandGuide` (or None): its touch probability
    decides, and its contact probabilities choose the pulled vertices."""
    anchors: tuple[Tensor, Tensor] | None = None
    """The previous window's last two (centre, rotation) of this hand, fixed."""
    score_history: np.ndarray | None = None
    """The previous window's last committed touching scores (context for the verdicts)."""


@dataclass
class HandResult:
    rotation: Float[Tensor, "T 3 3"]
    transl: Float[Tensor, "T 3"]
    touching: Bool[np.ndarray, " T"]
    """The temporally consistent verdict that decided the contact term."""
    scores: Float[np.ndarray, " T"]
    """The per-frame evidence the verdict was made from."""
    gaps_mm: Float[np.ndarray, " T"]


def _sample(values: Tensor, uv: Tensor) -> Tensor:
    height, width = values.shape
    col = uv[:, 0].detach().round().long().clamp(0, width - 1)
    row = uv[:, 1].detach().round().long().clamp(0, height - 1)
    return values[row, col]


def gate_score(gap_mm: float, gap_px: float, depth: float, face_px: float,
               config: InteractionConfig, softness: float) -> float:  # fmt: skip
    """The single-image contact gate as a score in [0, 1]: 0.5 where either margin is zero.

    Example:
        >>> round(gate_score(0.0, 0.0, 0.5, 200.0, InteractionConfig(), 0.3), 3)
        0.932
    """
    limit_3d = config.contact_gap_fraction * depth * 1000.0
    limit_px = max(config.contact_gap_px * face_px, 1.0)
    s3 = 1.0 / (1.0 + np.exp(-(limit_3d - gap_mm) / (softness * limit_3d)))
    s2 = 1.0 / (1.0 + np.exp(-(limit_px - gap_px) / (softness * limit_px)))
    return float(s3 * s2)


def track_interaction(
    head: HeadFrames,
    hands: list[HandFrames],
    K: Float[Tensor, "3 3"],
    *,
    observed_depth: list[Tensor | None] | None = None,
    config: InteractionTrackConfig | None = None,
) -> tuple[list[HandResult], Float[Tensor, "T 3"]]:
    """Refine every hand's placement over the window (method: module docstring); returns the
    hands and the head's translation per frame (moved along its viewing ray)."""
    config = config or InteractionTrackConfig()
    ic = config.interaction
    K64 = torch.as_tensor(K, dtype=torch.float64)
    frames = head.rotation.shape[0]
    surfaces = [
        _HeadSurface(_Head(head.canonical_vertices[t]), head.faces, ic.reach) for t in range(frames)
    ]
    states = [_HandState(hand, ic) for hand in hands]
    params = [p for state in states for p in state.parameters()]
    if not params:
        return [], head.transl.clone()
    # the head moves along its viewing ray only (its landmarks pin it in the image), as in the
    # single-image refinement: where a hand must be in front of the face, the face can give way
    head_log_depth = torch.zeros(frames, dtype=torch.float64, requires_grad=True)
    head_depth0 = head.transl[:, 2].clamp_min(0.05)
    optimizer = torch.optim.Adam(
        [
            {"params": [s.delta for s in states], "lr": ic.learning_rate_rotation},
            {"params": [s.shift for s in states], "lr": ic.learning_rate_translation},
            {
                "params": [head_log_depth, *[s.log_depth for s in states]],
                "lr": ic.learning_rate_depth,
            },
        ]
    )

    def head_transl() -> Tensor:
        return head.transl * head_log_depth.exp()[:, None]

    press = ic.press_mm / 1000.0
    clearance = CONTACT_DISTANCE + ic.clearance_mm / 1000.0
    rotation_scale = np.deg2rad(config.rotation_accel_deg)
    centre_scale = config.centre_accel_mm / 1000.0
    decided: list[np.ndarray | None] = [None] * len(states)

    def run(steps: int) -> None:
        for step in range(steps):
            optimizer.zero_grad()
            head_t = head_transl()
            scale_z = head_log_depth.exp()
            loss = (
                ((head_t[:, 2] - head_depth0) / (ic.head_depth_sigma * head_depth0)) ** 2
            ).mean()
            if config.smoothness_weight > 0:
                loss = loss + config.smoothness_weight * acceleration_penalty(head_t / centre_scale)
            for h, state in enumerate(states):
                if not bool(state.present.any()):
                    continue
                R, t, centre = state.pose()
                idx = state.index
                keypoints = state.keypoints_canonical @ R.transpose(1, 2) + t[:, None]
                loss = loss + robust_reprojection(
                    project_points(keypoints[idx], K64), state.target[idx], state.scale[idx],
                    kernel="pseudo_huber",
                )  # fmt: skip
                depth0 = state.depth0[idx]
                loss = loss + (((t[idx, 2] - depth0) / (state.depth_sigma * depth0)) ** 2).mean()
                if config.smoothness_weight > 0:
                    valid = state.valid_with_anchors()
                    loss = loss + config.smoothness_weight * (
                        acceleration_penalty(state.with_anchors(centre, 0) / centre_scale, valid)
                        + acceleration_penalty(
                            state.with_anchors(R.flatten(1), 1) / rotation_scale, valid
                        )
                    )
                vertices = state.vertices_canonical @ R.transpose(1, 2) + t[:, None]
                update = step % ic.correspondence_every == 0
                per_frame = torch.zeros((), dtype=torch.float64)
                for t_index in idx.tolist():
                    v = vertices[t_index]
                    if update:
                        state.lookup(t_index, v.detach(), head, K64)
                    if observed_depth is not None and observed_depth[t_index] is not None:
                        kp = keypoints[t_index]
                        observed = _sample(observed_depth[t_index].double(),
                                           project_points(kp, K64))  # fmt: skip
                        ok = observed > 0
                        if ok.any():
                            err = (kp[ok, 2] - observed[ok]) / 0.01
                            per_frame = per_frame + ic.depth_map_weight * cauchy(err.pow(2)).mean()
                    in_front, z_head = state.in_front[t_index], state.z_head[t_index]
                    if in_front is not None and bool(in_front.any()):
                        per_frame = per_frame + ic.order_weight * depth_behind_hinge(
                            v[in_front, 2], z_head * scale_z[t_index]
                        )
                    local = (v - head_t[t_index]) @ head.rotation[t_index]
                    if update:
                        with torch.no_grad():
                            state.correspondences[t_index] = surfaces[t_index].correspond(
                                local.detach()
                            )
                    found = state.correspondences[t_index]
                    if found is None:
                        continue
                    closest, normals, _ = found
                    signed = surfaces[t_index].signed(local, closest, normals)
                    per_frame = per_frame + ic.collision_weight * collision_hinge(
                        signed, press + 0.001
                    )
                    verdict = decided[h]
                    if verdict is None:
                        continue
                    if verdict[t_index]:
                        pulled = state.pulled[t_index]
                        if pulled is not None:
                            candidates = signed[pulled]
                        else:
                            on_head = state.on_head[t_index]
                            candidates = signed[on_head] if int(on_head.sum()) >= 3 else signed
                        per_frame = per_frame + ic.contact_weight * contact_pull(
                            candidates, ic.contact_vertices, press
                        )
                    else:
                        per_frame = per_frame + ic.collision_weight * clearance_hinge(
                            signed, clearance, ic.contact_vertices
                        )
                loss = loss + per_frame / max(1, len(idx))
            if loss.requires_grad:
                loss.backward()
                optimizer.step()

    run(ic.iterations)
    results_scores = []
    with torch.no_grad():
        head_t = head_transl()
        for h, state in enumerate(states):
            R, t, _ = state.pose()
            scores = np.zeros(frames)
            gaps = np.full(frames, np.inf)
            for t_index in state.index.tolist():
                v = state.vertices_canonical[t_index] @ R[t_index].T + t[t_index]
                local = (v - head_t[t_index]) @ head.rotation[t_index]
                found = surfaces[t_index].correspond(local, reach=1.0)
                if found is not None:
                    closest, normals, _ = found
                    gaps[t_index] = 1000.0 * float(
                        surfaces[t_index].signed(local, closest, normals).min()
                    )
                guide = state.guide(t_index)
                if guide is not None:
                    probability = guide.touch_probability
                    scores[t_index] = float(guide.touching if probability is None else probability)
                else:
                    scores[t_index] = gate_score(
                        gaps[t_index], float(hands[h].gap_px[t_index]), float(t[t_index, 2]),
                        float(head.face_px[t_index]), ic, config.gate_softness,
                    )  # fmt: skip
            decided[h] = continued_verdicts(
                scores, state.present.numpy(), hands[h].score_history, min_run=config.min_run
            )
            results_scores.append((scores, gaps))
    run(ic.iterations)
    results = []
    with torch.no_grad():
        for h, state in enumerate(states):
            R, t, _ = state.pose()
            scores, gaps = results_scores[h]
            results.append(HandResult(R.clone(), t.clone(), decided[h], scores, gaps))
        head_t = head_transl().detach()
    return results, head_t


class _Head:
    """The attribute :class:`_HeadSurface` reads, for one frame."""

    def __init__(self, canonical_vertices: Tensor) -> None:
        self.canonical_vertices = canonical_vertices


class _HandState:
    """Optimisation variables and cached lookups of one hand side over the window."""

    def __init__(self, hand: HandFrames, ic: InteractionConfig) -> None:
        self.hand = hand
        frames = hand.present.shape[0]
        self.present = hand.present
        self.index = torch.nonzero(hand.present).flatten()
        self.rotation0 = hand.rotation.double()
        self.transl0 = hand.transl.double()
        self.vertices_canonical = hand.canonical_vertices.double()
        self.keypoints_canonical = hand.canonical_keypoints.double()
        self.centre = self.keypoints_canonical.mean(1)
        self.target = torch.as_tensor(np.nan_to_num(hand.keypoints2d), dtype=torch.float64)
        sizes = [
            hand_size(hand.keypoints2d[t]) if bool(hand.present[t]) else 1.0 for t in range(frames)
        ]
        self.scale = torch.tensor([1.0 / (ic.keypoint_noise * max(s, 1.0)) for s in sizes],
                                  dtype=torch.float64)  # fmt: skip
        self.depth0 = self.transl0[:, 2].clamp_min(0.05)
        guided = hand.guides is not None and any(g is not None for g in hand.guides)
        self.depth_sigma = ic.hand_depth_sigma
        self.delta = torch.zeros(frames, 3, dtype=torch.float64, requires_grad=True)
        self.shift = torch.zeros(frames, 3, dtype=torch.float64, requires_grad=True)
        self.log_depth = torch.zeros(frames, dtype=torch.float64, requires_grad=True)
        self.correspondences: list = [None] * frames
        self.in_front: list[Tensor | None] = [None] * frames
        self.z_head: list[Tensor | None] = [None] * frames
        self.on_head: list[Tensor] = [torch.zeros(0, dtype=torch.bool)] * frames
        self.pulled = [_pulled_vertices(self.guide(t)) if guided else None for t in range(frames)]

    def guide(self, t: int):
        return None if self.hand.guides is None else self.hand.guides[t]

    def parameters(self) -> list[Tensor]:
        return [self.delta, self.shift, self.log_depth] if bool(self.present.any()) else []

    def pose(self) -> tuple[Tensor, Tensor, Tensor]:
        rotation = roma.rotvec_to_rotmat(self.delta) @ self.rotation0
        centre_cam = (self.transl0 + (self.rotation0 @ self.centre[..., None])[..., 0]) * (
            self.log_depth.exp()[:, None]
        )
        centre = centre_cam + self.shift
        transl = centre - (rotation @ self.centre[..., None])[..., 0]
        return rotation, transl, centre

    def with_anchors(self, values: Tensor, which: int) -> Tensor:
        anchors = self.hand.anchors
        if anchors is None:
            return values
        fixed = anchors[which].to(values.dtype).reshape(2, *values.shape[1:])
        return torch.cat([fixed, values])

    def valid_with_anchors(self) -> Tensor:
        if self.hand.anchors is None:
            return self.present
        return torch.cat([torch.ones(2, dtype=torch.bool), self.present])

    def lookup(self, t: int, vertices: Tensor, head: HeadFrames, K64: Tensor) -> None:
        """Per-vertex image lookups of frame ``t`` (refreshed with the correspondences)."""
        uv = project_points(vertices, K64) * head.map_scale
        depth_map = head.depth_maps[t].double()
        on_head = torch.isfinite(_sample(depth_map, uv))
        self.on_head[t] = on_head
        overlap = self.hand.overlap[t]
        if overlap is None:
            self.in_front[t] = None
            return
        in_front = _sample(torch.as_tensor(overlap), uv) & on_head
        self.in_front[t] = in_front
        self.z_head[t] = _sample(depth_map, uv[in_front])
