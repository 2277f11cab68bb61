"""Head fitting: rigid pose, shape and expression from MediaPipe's 478 face landmarks.

Works with any :class:`~handface.models.base.HeadModel` that has a landmark embedding: a model
with MediaPipe's 478-landmark layout (Anny) is fitted to all of them, a model with the 68-point
iBUG layout (FLAME with DECA's embedding) to the 68 detected landmarks of the same anatomical
meaning (:data:`~handface.models.landmarks.MEDIAPIPE_INDEX_OF_68`). Per-landmark arrays of this
module (weights, the fitted landmarks) are in the model's layout
(:data:`~handface.models.landmarks.LANDMARK_LAYOUTS`); detections are always MediaPipe's 478.

Stage 1 solves the rigid pose by PnP (OpenCV's SQPnP, then Levenberg-Marquardt) between the
average head's landmarks and the detected ones, with the camera of :mod:`handface.fit.camera`;
the metric scale comes from the **face-size prior**: the head has the size of the model's
average head (the average Anny adult by default) unless the landmarks' own proportions say
otherwise, and its shape parameters are pulled towards the average, so the depth follows from
the face's size in pixels.

Stage 2 refines pose, shape and expression with Adam on a robust reprojection loss, a weak
term on MediaPipe's relative landmark depths, and priors on expression and shape (the model's
``neutral_shape`` / ``shape_prior_scale``; expression and shape kept inside the model's
``expression_bounds`` / ``shape_bounds``). The Anny head's landmarks are exactly linear in the
facial actions and, about the average, in each phenotype shape parameter (the two interact by
about a millimetre); FLAME's are linear in both. So the loop runs on a precomputed linear
landmark basis (:class:`HeadLandmarkBasis`) and the full mesh is posed once at the end.
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

from handface.errors import InputError
from handface.geometry.camera import project_points
from handface.geometry.contact import face_size
from handface.losses.reprojection import robust_reprojection
from handface.losses.robust import cauchy
from handface.models.base import HeadModel, HeadParams, MeshOutput
from handface.models.landmarks import (
    LANDMARK_LAYOUTS,
    MEDIAPIPE_FACE_OVAL,
    NUM_MEDIAPIPE_SURFACE,
    LandmarkLayout,
)

FACE_OVAL: tuple[int, ...] = MEDIAPIPE_FACE_OVAL
"""MediaPipe face-mesh landmarks on the face outline (they slide with the silhouette)."""
NUM_SURFACE_LANDMARKS = NUM_MEDIAPIPE_SURFACE
"""Landmarks 468-477 are the irises; they follow the eyeballs, which the fit leaves at rest."""
SHAPE_STEP = 0.05
"""Step of the central differences that give the shape columns of the landmark basis."""
BASIS_CHUNK = 128
"""Forward passes per batch when computing the basis (bounds memory for FLAME's 400 columns)."""


def fit_layout(model: HeadModel) -> LandmarkLayout:
    """The landmark layout ``model`` is fitted in; a model without landmarks cannot be fitted."""
    name = model.landmark_layout
    if name is None:
        raise InputError(
            f"the {type(model).__name__} has no landmark embedding, so it cannot be fitted to "
            "face landmarks; give it one (FLAME: landmark_embedding=DECA's landmark_embedding.npy)"
        )
    return LANDMARK_LAYOUTS[name]


def layout_landmarks(model: HeadModel, output: MeshOutput) -> Float[Tensor, "B L 3"]:
    """The landmarks of ``model``'s layout in one of its forward passes."""
    layout = fit_layout(model)
    points = output.landmarks if layout.mediapipe_index is None else output.landmarks68
    if points is None:
        raise ValueError(f"{type(model).__name__}'s forward pass left its {layout.name} empty")
    return points


@dataclass
class HeadLandmarkBasis:
    """Canonical-frame landmarks (``L`` of the model's layout) as a linear function of
    expression and shape (float64)."""

    mean: Float[Tensor, "L 3"]
    """Neutral expression, average shape."""
    expression: Float[Tensor, "E L 3"]
    """Change per unit of each expression coefficient (about neutral, at the average shape)."""
    shape: Float[Tensor, "S L 3"]
    """Change per unit of each shape parameter about ``neutral_shape`` (central differences
    of step :data:`SHAPE_STEP`: Anny's age is piecewise linear with a kink at 5/9, just past
    the average 0.5, which a one-sided secant would straddle)."""
    neutral_shape: float = 0.5
    """The model's average shape value (``HeadModel.neutral_shape``)."""

    def __call__(
        self, expression: Float[Tensor, "B E"], shape: Float[Tensor, "B S"]
    ) -> Float[Tensor, "B L 3"]:
        return (
            self.mean
            + torch.einsum("be,eld->bld", expression, self.expression)
            + torch.einsum("bs,sld->bld", shape - self.neutral_shape, self.shape)
        )


_BASES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def landmark_basis(model: HeadModel) -> HeadLandmarkBasis:
    """The linear landmark basis of ``model`` (computed once per model, about 0.1 s for Anny)."""
    if model in _BASES:
        return _BASES[model]
    num_expr, num_shape = len(model.expression_labels), len(model.shape_labels)
    neutral, step = float(model.neutral_shape), SHAPE_STEP
    rows = 1 + num_expr + 2 * num_shape
    expression = torch.zeros(rows, num_expr)
    expression[1 : 1 + num_expr] = torch.eye(num_expr)
    shape = torch.full((rows, num_shape), neutral)
    shape[1 + num_expr : 1 + num_expr + num_shape] += step * torch.eye(num_shape)
    shape[1 + num_expr + num_shape :] -= step * torch.eye(num_shape)
    chunks = []
    with torch.no_grad():
        for i in range(0, rows, BASIS_CHUNK):
            params = HeadParams(
                expression=expression[i : i + BASIS_CHUNK], shape=shape[i : i + BASIS_CHUNK]
            )
            chunks.append(layout_landmarks(model, model(params)).double())
    landmarks = torch.cat(chunks)
    mean = landmarks[0]
    plus = landmarks[1 + num_expr : 1 + num_expr + num_shape]
    minus = landmarks[1 + num_expr + num_shape :]
    basis = HeadLandmarkBasis(
        mean=mean,
        expression=landmarks[1 : 1 + num_expr] - mean,
        shape=(plus - minus) / (2 * step),
        neutral_shape=neutral,
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
    """L2 prior on the expression coefficients (0 = neutral)."""
    expression_sparsity: float = 0.02
    """L1 prior on the expression coefficients (most facial actions are inactive in any one
    face)."""
    shape_weight: float = 0.5
    """Prior pulling the shape parameters to the model's average (``neutral_shape``), in units
    of its ``shape_prior_scale`` (Anny: 0.5 and 0.2)."""
    fit_shape: bool = True
    """Fit the shape parameters (Anny: the 9 phenotypes; else keep the average head)."""


@dataclass
class HeadFit:
    """A fitted head in the camera frame (float32 tensors, no gradients)."""

    params: HeadParams
    rotation: Float[Tensor, "3 3"]
    """Head canonical frame -> camera."""
    canonical_vertices: Float[Tensor, "V 3"]
    vertices: Float[Tensor, "V 3"]
    landmarks: Float[Tensor, "L 3"]
    """The fitted landmarks in the model's layout (:func:`fit_layout`: 478 for Anny)."""
    landmarks68: Float[Tensor, "68 3"]
    reprojection_px: float
    """Mean distance between fitted and detected landmarks (on the face surface: 468 of
    MediaPipe's, all 68 of the iBUG layout)."""


def landmark_weights(
    landmarks2d: Float[np.ndarray, "478 2"],
    hand_masks: list[np.ndarray] | None,
    config: HeadFitConfig,
    layout: LandmarkLayout | str = "mediapipe478",
) -> Float[np.ndarray, " L"]:
    """Per-landmark weights in ``layout`` (a name of ``LANDMARK_LAYOUTS`` or the layout) from
    the 478 detected landmarks: outline and hand-covered landmarks count less, irises not at
    all."""
    if isinstance(layout, str):
        layout = LANDMARK_LAYOUTS[layout]
    landmarks2d = layout.select(np.asarray(landmarks2d))
    weights = np.ones(layout.num_points)
    weights[layout.num_surface :] = 0.0
    weights[list(layout.outline)] = config.outline_weight
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
        landmark_depth: MediaPipe's relative depths (pixel units, 478 values), or ``None``.
        K: camera intrinsics.
        weights: per-landmark weights in the model's layout (:func:`fit_layout`; default
            :func:`landmark_weights` without hands).
    """
    config = config or HeadFitConfig()
    layout = fit_layout(model)
    if weights is None:
        weights = landmark_weights(landmarks2d, None, config, layout)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (layout.num_points,):
        raise ValueError(
            f"weights must be one per {layout.name} landmark ({layout.num_points}), "
            f"got shape {weights.shape}"
        )
    landmarks2d = layout.select(np.asarray(landmarks2d))
    if landmark_depth is not None:
        landmark_depth = layout.select(np.asarray(landmark_depth)[:, None])[:, 0]
    basis = landmark_basis(model)
    K64 = torch.as_tensor(K, dtype=torch.float64)
    target = torch.as_tensor(landmarks2d, dtype=torch.float64)
    w = torch.as_tensor(weights, dtype=torch.float64)
    face_px = face_size(landmarks2d[: layout.num_surface])
    scale = 1.0 / (config.noise_px * max(face_px, 1.0))

    use = weights > 0
    rvec, tvec = initial_pose(basis.mean[use].numpy(), landmarks2d[use], K64.numpy())
    rotation0 = roma.rotvec_to_rotmat(torch.as_tensor(rvec))
    delta = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    transl = torch.as_tensor(tvec).clone().requires_grad_(True)
    num_expr, num_shape = basis.expression.shape[0], basis.shape.shape[0]
    neutral, prior_scale = basis.neutral_shape, float(model.shape_prior_scale)
    expression_bounds, shape_bounds = model.expression_bounds, model.shape_bounds
    expression = torch.zeros(1, num_expr, dtype=torch.float64, requires_grad=True)
    shape = torch.full((1, num_shape), neutral, dtype=torch.float64, requires_grad=True)
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
        loss = robust_reprojection(project_points(camera, K64), target, scale, w)
        if depth_target is not None:
            z = camera[:, 2]
            z_px = z * K64[0, 0] / (z * w).sum() * w.sum()
            z_px = z_px - (z_px * w).sum() / w.sum()
            depth_residual = (z_px - depth_target) * scale
            loss = loss + config.depth_weight * (w * cauchy(depth_residual.pow(2))).sum() / w.sum()
        loss = loss + config.expression_weight * expression.pow(2).sum()
        loss = loss + config.expression_sparsity * expression.abs().sum()
        loss = loss + config.shape_weight * ((shape - neutral) / prior_scale).pow(2).sum()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            if expression_bounds is not None:
                expression.clamp_(*expression_bounds)
            if shape_bounds is not None:
                shape.clamp_(*shape_bounds)

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
        landmarks = layout_landmarks(model, out)[0].float()
        error = (project_points(landmarks.double(), K64) - target).norm(dim=-1)
    return HeadFit(
        params=params,
        rotation=rotation,
        canonical_vertices=out.extras["canonical_vertices"][0].float(),
        vertices=out.vertices[0].float(),
        landmarks=landmarks,
        landmarks68=out.landmarks68[0].float(),
        reprojection_px=float(error[: layout.num_surface].mean()),
    )
