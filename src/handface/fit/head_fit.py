"""Head fitting: rigid pose, shape and the 52 facial actions from MediaPipe's 478 landmarks.

Stage 1 solves the rigid pose by PnP (OpenCV's SQPnP, then Levenberg-Marquardt) between the
average head's landmarks and the detected ones, with the camera of :mod:`handface.fit.camera`;
the metric scale comes from the **face-size prior**: the head has the size of the average Anny
adult unless the landmarks' own proportions say otherwise, and its shape parameters are
pulled towards the average, so the depth follows from the face's size in pixels.

Stage 2 refines pose, shape and expression with Adam on a robust reprojection loss, a weak
term on MediaPipe's relative landmark depths, and priors on expression and shape. The Anny
head's landmarks are exactly linear in the facial actions and, about the average, in each
phenotype shape parameter (the two interact by about a millimetre), so the loop runs on a
precomputed linear landmark basis (:class:`HeadLandmarkBasis`) and the full 4538-vertex mesh
is posed once at the end.
Landmarks on the face outline slide along the silhouette as the head turns, and landmarks
under a detected hand are guesses, so both are down-weighted.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import cv2
import numpy as np
import roma
import torch
from jaxtyping import Float
from torch import Tensor

from handface.geometry.camera import project_points
from handface.models.base import HeadModel, HeadParams

FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
"""MediaPipe face-mesh landmarks on the face outline (they slide with the silhouette)."""
NUM_SURFACE_LANDMARKS = 468
"""Landmarks 468-477 are the irises; they follow the eyeballs, which the fit leaves at rest."""


@dataclass
class HeadLandmarkBasis:
    """Canonical-frame landmarks as a linear function of expression and shape (float64)."""

    mean: Float[Tensor, "478 3"]
    """Neutral expression, average shape."""
    expression: Float[Tensor, "52 478 3"]
    """Change per unit of each facial action."""
    shape: Float[Tensor, "S 478 3"]
    """Change per unit of each shape parameter about 0.5."""

    def __call__(
        self, expression: Float[Tensor, "B 52"], shape: Float[Tensor, "B S"]
    ) -> Float[Tensor, "B 478 3"]:
        return (
            self.mean
            + torch.einsum("be,eld->bld", expression, self.expression)
            + torch.einsum("bs,sld->bld", shape - 0.5, self.shape)
        )


_BASES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def landmark_basis(model: HeadModel) -> HeadLandmarkBasis:
    """The linear landmark basis of ``model`` (computed once per model, about 0.1 s)."""
    if model in _BASES:
        return _BASES[model]
    num_expr, num_shape = len(model.expression_labels), len(model.shape_labels)
    step = 0.25
    expression = torch.zeros(1 + num_expr + num_shape, num_expr)
    expression[1 : 1 + num_expr] = torch.eye(num_expr)
    shape = torch.full((1 + num_expr + num_shape, num_shape), 0.5)
    shape[1 + num_expr :] += step * torch.eye(num_shape)
    with torch.no_grad():
        landmarks = model(HeadParams(expression=expression, shape=shape)).landmarks.double()
    mean = landmarks[0]
    basis = HeadLandmarkBasis(
        mean=mean,
        expression=landmarks[1 : 1 + num_expr] - mean,
        shape=(landmarks[1 + num_expr :] - mean) / step,
    )
    _BASES[model] = basis
    return basis


@dataclass
class HeadFitConfig:
    """Settings of :func:`fit_head`."""

    iterations: int = 150
    """Adam steps of the refinement on the linear landmark basis."""
    noise_px: float = 0.012
    """Landmark noise as a fraction of the face size; residuals are divided by it."""
    outline_weight: float = 0.3
    """Weight of the face-outline landmarks (:data:`FACE_OVAL`)."""
    occluded_weight: float = 0.2
    """Weight of landmarks covered by a detected hand."""
    depth_weight: float = 0.1
    """Weight of MediaPipe's relative landmark depths."""
    expression_weight: float = 0.02
    """L2 prior on the 52 facial actions (0 = neutral)."""
    expression_sparsity: float = 0.02
    """L1 prior on the facial actions (most are inactive in any one face)."""
    shape_weight: float = 0.5
    """Prior pulling the shape parameters to the average (0.5), in units of 0.2."""
    fit_shape: bool = True
    """Fit the 9 phenotype shape parameters (else keep the average head)."""


@dataclass
class HeadFit:
    """A fitted head in the camera frame (float32 tensors, no gradients)."""

    params: HeadParams
    rotation: Float[Tensor, "3 3"]
    """Head canonical frame -> camera."""
    canonical_vertices: Float[Tensor, "V 3"]
    vertices: Float[Tensor, "V 3"]
    landmarks: Float[Tensor, "478 3"]
    landmarks68: Float[Tensor, "68 3"]
    reprojection_px: float
    """Mean distance between fitted and detected landmarks (468 surface landmarks)."""


def landmark_weights(
    landmarks2d: Float[np.ndarray, "478 2"],
    hand_masks: list[np.ndarray] | None,
    config: HeadFitConfig,
) -> Float[np.ndarray, "478"]:
    """Per-landmark weights: outline and hand-covered landmarks count less, irises not at all."""
    weights = np.ones(478)
    weights[NUM_SURFACE_LANDMARKS:] = 0.0
    weights[list(FACE_OVAL)] = config.outline_weight
    for mask in hand_masks or []:
        height, width = mask.shape
        col = np.clip(np.round(landmarks2d[:, 0]).astype(int), 0, width - 1)
        row = np.clip(np.round(landmarks2d[:, 1]).astype(int), 0, height - 1)
        weights = np.where(mask[row, col], weights * config.occluded_weight, weights)
    return weights


def initial_pose(
    canonical: Float[np.ndarray, "N 3"],
    points2d: Float[np.ndarray, "N 2"],
    K: Float[np.ndarray, "3 3"],
) -> tuple[np.ndarray, np.ndarray]:
    """Rotation vector and translation with ``project(R @ canonical + t) ~ points2d`` (PnP)."""
    canonical = np.ascontiguousarray(canonical, dtype=np.float64)
    points2d = np.ascontiguousarray(points2d, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    ok, rvec, tvec = cv2.solvePnP(canonical, points2d, K, None, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:
        ok, rvec, tvec = cv2.solvePnP(canonical, points2d, K, None, flags=cv2.SOLVEPNP_EPNP)
    rvec, tvec = cv2.solvePnPRefineLM(canonical, points2d, K, None, rvec, tvec)
    return rvec.reshape(3), tvec.reshape(3)


def robust(squared: Tensor) -> Tensor:
    # Cauchy-like: quadratic for small residuals, logarithmic for outliers (misdetections).
    return torch.log1p(squared)


def fit_head(
    model: HeadModel,
    landmarks2d: Float[np.ndarray, "478 2"],
    landmark_depth: Float[np.ndarray, "478"] | None,
    K: Float[Tensor, "3 3"],
    *,
    weights: Float[np.ndarray, "478"] | None = None,
    config: HeadFitConfig | None = None,
) -> HeadFit:
    """Fit the head model to detected face landmarks (method: module docstring).

    Args:
        landmarks2d: MediaPipe's 478 landmarks in pixels (pixel centres at integers).
        landmark_depth: MediaPipe's relative depths (pixel units), or ``None``.
        K: camera intrinsics.
        weights: per-landmark weights (default :func:`landmark_weights` without hands).
    """
    config = config or HeadFitConfig()
    if weights is None:
        weights = landmark_weights(landmarks2d, None, config)
    basis = landmark_basis(model)
    K64 = torch.as_tensor(K, dtype=torch.float64)
    target = torch.as_tensor(landmarks2d, dtype=torch.float64)
    w = torch.as_tensor(weights, dtype=torch.float64)
    face_size = float(np.linalg.norm(np.ptp(landmarks2d[:NUM_SURFACE_LANDMARKS], axis=0)))
    scale = 1.0 / (config.noise_px * max(face_size, 1.0))

    use = weights > 0
    rvec, tvec = initial_pose(basis.mean[use].numpy(), landmarks2d[use], K64.numpy())
    rotation0 = roma.rotvec_to_rotmat(torch.as_tensor(rvec))
    delta = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    transl = torch.as_tensor(tvec).clone().requires_grad_(True)
    num_expr, num_shape = basis.expression.shape[0], basis.shape.shape[0]
    expression = torch.zeros(1, num_expr, dtype=torch.float64, requires_grad=True)
    shape = torch.full((1, num_shape), 0.5, dtype=torch.float64, requires_grad=True)
    groups = [
        {"params": [delta], "lr": 0.01},
        {"params": [transl], "lr": 0.002},
        {"params": [expression], "lr": 0.03},
    ]
    if config.fit_shape:
        groups.append({"params": [shape], "lr": 0.02})
    optimizer = torch.optim.Adam(groups)
    depth_target = None
    if landmark_depth is not None and config.depth_weight > 0:
        d = torch.as_tensor(landmark_depth, dtype=torch.float64)
        depth_target = d - (d * w).sum() / w.sum()

    def rotation_of(delta: Tensor) -> Tensor:
        return rotation0 @ roma.rotvec_to_rotmat(delta)

    for _ in range(config.iterations):
        optimizer.zero_grad()
        canonical = basis(expression, shape)[0]
        camera = canonical @ rotation_of(delta).T + transl
        residual = (project_points(camera, K64) - target) * scale
        loss = (w * robust(residual.pow(2).sum(-1))).sum() / w.sum()
        if depth_target is not None:
            z = camera[:, 2]
            z_px = z * K64[0, 0] / (z * w).sum() * w.sum()
            z_px = z_px - (z_px * w).sum() / w.sum()
            depth_residual = (z_px - depth_target) * scale
            loss = loss + config.depth_weight * (w * robust(depth_residual.pow(2))).sum() / w.sum()
        loss = loss + config.expression_weight * expression.pow(2).sum()
        loss = loss + config.expression_sparsity * expression.abs().sum()
        loss = loss + config.shape_weight * ((shape - 0.5) / 0.2).pow(2).sum()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            expression.clamp_(0.0, 1.0)
            shape.clamp_(0.0, 1.0)

    with torch.no_grad():
        rotation = rotation_of(delta).float()
        params = HeadParams(
            global_orient=roma.rotmat_to_rotvec(rotation)[None],
            transl=transl.float()[None],
            expression=expression.float(),
            shape=shape.float(),
        )
        dtype = model.template_vertices.dtype
        out = model(
            HeadParams(**{k: v.to(dtype) for k, v in vars(params).items() if v is not None})
        )
        landmarks = out.landmarks[0].float()
        error = (project_points(landmarks.double(), K64) - target).norm(dim=-1)
    return HeadFit(
        params=params,
        rotation=rotation,
        canonical_vertices=out.extras["canonical_vertices"][0].float(),
        vertices=out.vertices[0].float(),
        landmarks=landmarks,
        landmarks68=out.landmarks68[0].float(),
        reprojection_px=float(error[:NUM_SURFACE_LANDMARKS].mean()),
    )
