"""Stage II of tracking: one hand side over a window of frames, jointly.

The single-image hand fit (:mod:`handface.fit.hand_fit`) per frame, made one problem: the
articulation of every frame where the hand is seen is fitted at once to MediaPipe's lifted
keypoints (per frame the best similarity, as in the single-image fit), and then, from there,
with the acceleration of the articulation penalised (``articulation_accel``), so fingers do not
flicker between poses the keypoints cannot tell apart (coupled from the start, the frames
converge too slowly). Frames without the hand take no part (the smoothness skips them).
Then each frame is placed by the single-image rule (:func:`~handface.fit.hand_fit.place_hand`:
the hand-size prior gives the depth); the placement over time is smoothed in stage III
(:mod:`~handface.track.interaction_track`). The shape is the model's average hand in every frame
(as in the single-image fit), so it is one shared shape per side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Bool, Float
from torch import Tensor

from handface.fit.hand_fit import HandFitConfig, lifted_keypoints, place_hand
from handface.geometry.alignment import procrustes
from handface.geometry.contact import hand_size
from handface.losses.robust import cauchy
from handface.losses.temporal import acceleration_penalty
from handface.models.base import HandModel, HandParams


@dataclass
class HandTrackConfig:
    """Settings of :func:`track_hand`."""

    articulation_accel: float = 0.1
    """Scale of the articulation latent's acceleration (per frame squared)."""
    smoothness_weight: float = 1.0
    """Weight of the smoothness term (0: independent frames)."""
    smooth_iterations: int = 40
    """Adam steps with the smoothness term, after the single-image fit of every frame (frames
    coupled from the start converge too slowly to the keypoints)."""


@dataclass
class HandTrack:
    """One hand side over a window (float64; rows of frames without the hand are zero)."""

    present: Bool[Tensor, " T"]
    articulation: Float[Tensor, "T A"]
    rotation: Float[Tensor, "T 3 3"]
    """Hand canonical frame -> camera (from the placement)."""
    transl: Float[Tensor, "T 3"]
    canonical_keypoints: Float[Tensor, "T 21 3"]
    canonical_vertices: Float[Tensor, "T Vh 3"]
    """The articulated hand in its own frame (posed once here for stage III and the capture)."""


def track_hand(
    model: HandModel,
    keypoints2d: Float[np.ndarray, "T 21 2"],
    keypoint_depth: Float[np.ndarray, "T 21"],
    K: Float[Tensor, "3 3"],
    *,
    fit: HandFitConfig | None = None,
    config: HandTrackConfig | None = None,
    anchors: Float[Tensor, "2 A"] | None = None,
) -> HandTrack:
    """Fit one hand side to every frame of a window where it is seen (NaN keypoints: not seen).

    Args:
        anchors: the previous window's last two articulations (fixed), for smoothness across
            windows.
    """
    fit = fit or HandFitConfig()
    config = config or HandTrackConfig()
    K64 = torch.as_tensor(K, dtype=torch.float64)
    frames = keypoints2d.shape[0]
    present = torch.as_tensor(np.isfinite(keypoints2d).all(axis=(1, 2)))
    num_articulation = model.num_articulation
    articulation = torch.zeros(frames, num_articulation, dtype=torch.float64)
    rotation = torch.eye(3, dtype=torch.float64).repeat(frames, 1, 1)
    transl = torch.zeros(frames, 3, dtype=torch.float64)
    canonical = torch.zeros(frames, 21, 3, dtype=torch.float64)
    if not bool(present.any()):
        vertices = torch.zeros(frames, model.num_vertices, 3, dtype=torch.float64)
        return HandTrack(present, articulation, rotation, transl, canonical, vertices)
    rig = model.keypoint_rig()
    index = torch.nonzero(present).flatten()
    targets = torch.stack(
        [lifted_keypoints(keypoints2d[t], keypoint_depth[t], K64) for t in index.tolist()]
    )
    sizes = torch.tensor([float(hand_size(target).clamp_min(1.0)) for target in targets])
    axis_weights = torch.tensor([1.0, 1.0, fit.depth_weight], dtype=torch.float64)
    latent = torch.zeros(len(index), num_articulation, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([latent], lr=fit.learning_rate)
    valid = present if anchors is None else torch.cat([torch.ones(2, dtype=torch.bool), present])

    def full(values: Tensor) -> Tensor:
        """Per-frame rows (zeros where the hand is absent), after the anchors."""
        out = torch.zeros(frames, num_articulation, dtype=values.dtype).index_put((index,), values)
        return out if anchors is None else torch.cat([anchors.to(values.dtype), out])

    smooth = config.smoothness_weight > 0
    for step in range(fit.iterations + (config.smooth_iterations if smooth else 0)):
        optimizer.zero_grad()
        keypoints = rig(latent.float()).double()
        aligned = procrustes(keypoints, targets).aligned
        residual = (aligned - targets) / (fit.noise * sizes[:, None, None])
        loss = cauchy((residual.pow(2) * axis_weights).sum(-1)).mean()
        loss = loss + fit.articulation_weight * latent.pow(2).sum(1).mean()
        if smooth and step >= fit.iterations:
            loss = loss + config.smoothness_weight * acceleration_penalty(
                full(latent) / config.articulation_accel, valid
            )
        loss.backward()
        optimizer.step()

    with torch.no_grad():
        latent = latent.detach()
        keypoints = rig(latent.float()).double()
        similarity = procrustes(keypoints, targets)
        for row, t in enumerate(index.tolist()):
            R, tr = place_hand(keypoints[row], similarity.rotation[row], targets[row],
                               keypoints2d[t], K64)  # fmt: skip
            rotation[t], transl[t] = R, tr
        articulation[index] = latent
        canonical[index] = keypoints
        dtype = model.template_vertices.dtype
        vertices = model(HandParams(articulation=articulation.to(dtype))).vertices.double()
    return HandTrack(present, articulation, rotation, transl, canonical, vertices)
