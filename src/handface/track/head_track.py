"""Stage I of tracking: the head over a window of frames, jointly.

The single-image head fit (:mod:`handface.fit.head_fit`) per frame, made one problem: per frame a
rigid pose and the expression, one shape for the whole clip, and temporal smoothness. Each
frame starts from its own PnP pose (as the single-image fit does), and Adam minimises, over all
frames at once, first without and then with

- the robust landmark reprojection and MediaPipe's relative landmark depths (the single-image
  terms, per frame, averaged over frames);
- the expression and shape priors of the single-image fit;
- **smoothness**: the acceleration of the head's translation (``translation_accel_mm``), of its
  rotation matrix entries (``rotation_accel_deg``) and of the expression coefficients
  (``expression_accel``), each divided by its scale and squared
  (:func:`~handface.losses.temporal.acceleration_penalty`); acceleration, not velocity, so a
  turning head is not slowed down, only its jitter removed.

Windows: ``anchors`` are the last frames of the previous window (fixed), so the smoothness
continues across the boundary; ``shape`` fixes the clip's shape once the first window found it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch
from jaxtyping import Float
from torch import Tensor

from handface.fit.head_fit import HeadFitConfig, fit_layout, initial_pose, landmark_basis
from handface.geometry.camera import project_points
from handface.geometry.contact import face_size
from handface.losses.reprojection import robust_reprojection
from handface.losses.robust import cauchy
from handface.losses.temporal import acceleration_penalty
from handface.models.base import HeadModel


@dataclass
class HeadTrackConfig:
    """Settings of :func:`track_head`."""

    iterations: int = 60
    """Adam steps with the smoothness terms, after the single-image fit of every frame
    (``HeadFitConfig.iterations`` steps without them: coupled from the start, the frames
    converge too slowly)."""
    translation_accel_mm: float = 0.5
    """Scale of the head translation's acceleration (mm per frame squared)."""
    rotation_accel_deg: float = 0.3
    """Scale of the rotation's acceleration (degrees per frame squared, small angles)."""
    expression_accel: float = 0.03
    """Scale of the expression coefficients' acceleration (per frame squared)."""
    smoothness_weight: float = 1.0
    """Weight of the three smoothness terms (0: independent frames)."""


@dataclass
class HeadTrack:
    """The head over a window (float64 tensors, camera frame)."""

    rotation: Float[Tensor, "T 3 3"]
    transl: Float[Tensor, "T 3"]
    expression: Float[Tensor, "T E"]
    shape: Float[Tensor, "1 S"]

    def anchors(self, count: int = 2) -> HeadTrack:
        """The last ``count`` frames (the next window's fixed start)."""
        return HeadTrack(
            self.rotation[-count:], self.transl[-count:], self.expression[-count:], self.shape
        )


def track_head(
    model: HeadModel,
    landmarks2d: Float[np.ndarray, "T 478 2"],
    landmark_depth: Float[np.ndarray, "T 478"] | None,
    weights: Float[np.ndarray, "T L"],
    K: Float[Tensor, "3 3"],
    *,
    fit: HeadFitConfig | None = None,
    config: HeadTrackConfig | None = None,
    shape: Float[Tensor, "1 S"] | None = None,
    anchors: HeadTrack | None = None,
) -> HeadTrack:
    """Fit the head to every frame of a window jointly (method: module docstring).

    Args:
        landmarks2d: per frame MediaPipe's 478 landmarks (pixels); every frame must have a face
            (frames without one are bridged or left out by the caller).
        landmark_depth: their relative depths (pixel units), or None.
        weights: per frame and landmark of the model's layout
            (:func:`~handface.fit.head_fit.landmark_weights`).
        shape: the clip's shape, fixed (None: fitted, shared by the frames of this window).
        anchors: the previous window's last frames (fixed), for smoothness across windows.
    """
    fit = fit or HeadFitConfig()
    config = config or HeadTrackConfig()
    layout = fit_layout(model)
    frames = landmarks2d.shape[0]
    basis = landmark_basis(model)
    K64 = torch.as_tensor(K, dtype=torch.float64)
    selected = np.stack([layout.select(np.asarray(f)) for f in landmarks2d])
    target = torch.as_tensor(selected, dtype=torch.float64)
    w = torch.as_tensor(np.asarray(weights), dtype=torch.float64)
    face_px = np.array([face_size(s[: layout.num_surface]) for s in selected])
    scale = torch.as_tensor(1.0 / (fit.noise_px * np.maximum(face_px, 1.0)))

    rotation0 = torch.zeros(frames, 3, 3, dtype=torch.float64)
    transl0 = torch.zeros(frames, 3, dtype=torch.float64)
    for t in range(frames):
        use = weights[t] > 0
        rvec, tvec = initial_pose(basis.mean[use].numpy(), selected[t][use], K64.numpy())
        rotation0[t] = roma.rotvec_to_rotmat(torch.as_tensor(rvec))
        transl0[t] = torch.as_tensor(tvec)
    delta = torch.zeros(frames, 3, dtype=torch.float64, requires_grad=True)
    transl = transl0.clone().requires_grad_(True)
    num_expr = basis.expression.shape[0]
    expression = torch.zeros(frames, num_expr, dtype=torch.float64, requires_grad=True)
    neutral, prior_scale = basis.neutral_shape, float(model.shape_prior_scale)
    fitting_shape = shape is None and fit.fit_shape
    shape_value = (
        torch.full((1, basis.shape.shape[0]), neutral, dtype=torch.float64)
        if shape is None
        else torch.as_tensor(shape, dtype=torch.float64).reshape(1, -1).clone()
    ).requires_grad_(fitting_shape)
    groups = [
        {"params": [delta], "lr": 0.01},
        {"params": [transl], "lr": 0.002},
        {"params": [expression], "lr": 0.03},
    ]
    if fitting_shape:
        groups.append({"params": [shape_value], "lr": 0.02})
    optimizer = torch.optim.Adam(groups)
    depth_target = None
    if landmark_depth is not None and fit.depth_weight > 0:
        d = torch.as_tensor(
            np.stack([layout.select(np.asarray(f)[:, None])[:, 0] for f in landmark_depth]),
            dtype=torch.float64,
        )
        depth_target = d - (d * w).sum(1, keepdim=True) / w.sum(1, keepdim=True)
    rotation_scale = np.deg2rad(config.rotation_accel_deg)
    translation_scale = config.translation_accel_mm / 1000.0

    def with_anchors(values: Tensor, fixed: Tensor | None) -> Tensor:
        return values if fixed is None else torch.cat([fixed.detach(), values])

    def rotations() -> Tensor:
        return rotation0 @ roma.rotvec_to_rotmat(delta)

    smoothing = config.smoothness_weight > 0 and frames + (0 if anchors is None else 2) >= 3
    for step in range(fit.iterations + (config.iterations if smoothing else 0)):
        optimizer.zero_grad()
        canonical = basis(expression, shape_value.expand(frames, -1))
        rotation = rotations()
        camera = canonical @ rotation.transpose(1, 2) + transl[:, None]
        loss = robust_reprojection(project_points(camera, K64), target, scale, w)
        if depth_target is not None:
            z = camera[..., 2]
            z_px = z * K64[0, 0] / (z * w).sum(1, keepdim=True) * w.sum(1, keepdim=True)
            z_px = z_px - (z_px * w).sum(1, keepdim=True) / w.sum(1, keepdim=True)
            residual = (z_px - depth_target) * scale[:, None]
            loss = loss + fit.depth_weight * (w * cauchy(residual.pow(2))).sum() / w.sum()
        loss = loss + fit.expression_weight * expression.pow(2).sum(1).mean()
        loss = loss + fit.expression_sparsity * expression.abs().sum(1).mean()
        loss = loss + fit.shape_weight * ((shape_value - neutral) / prior_scale).pow(2).sum()
        if smoothing and step >= fit.iterations:
            fixed = anchors
            smooth = acceleration_penalty(
                with_anchors(transl, None if fixed is None else fixed.transl) / translation_scale
            )
            smooth = smooth + acceleration_penalty(
                with_anchors(rotation, None if fixed is None else fixed.rotation).flatten(1)
                / rotation_scale
            )
            smooth = smooth + acceleration_penalty(
                with_anchors(expression, None if fixed is None else fixed.expression)
                / config.expression_accel
            )
            loss = loss + config.smoothness_weight * smooth
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            if model.expression_bounds is not None:
                expression.clamp_(*model.expression_bounds)
            if fitting_shape and model.shape_bounds is not None:
                shape_value.clamp_(*model.shape_bounds)

    with torch.no_grad():
        return HeadTrack(
            rotation=rotations().detach(),
            transl=transl.detach().clone(),
            expression=expression.detach().clone(),
            shape=shape_value.detach().clone(),
        )
