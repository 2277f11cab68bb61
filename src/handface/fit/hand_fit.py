"""Hand fitting: articulation, pose and depth from MediaPipe's 21 keypoints.

Works with any :class:`~handface.models.base.HandModel`: it optimises the model's pose latent
(``HandParams.articulation``, ``model.num_articulation`` values: the 20 joint-limited degrees
of freedom of :mod:`handface.models.hand_pose` for Anny, PCA coefficients for MANO) through
its keypoint rig (:meth:`~handface.models.base.HandModel.keypoint_rig`).

Stage 1 (articulation) fits the latent so that the hand's keypoints, after the best similarity
transform (Umeyama), match MediaPipe's keypoints lifted to 3D with its relative depths
(:func:`lifted_keypoints`): ``((u - c_x) s, (v - c_y) s, z_mp)``, all in pixels, where
``s = 1 + (z_mp - mean z_mp) / f`` undoes the perspective (a keypoint nearer the camera than
the hand's mean depth looks bigger by exactly that factor). This shape is the hand's up to
scale; the depth axis counts less (MediaPipe's z is the noisiest coordinate).

Stage 2 (placement) keeps the articulation and solves the rigid pose by PnP, started from the
similarity fit: the **hand-size prior** (the model's average hand, ``HandParams.shape = None``;
Anny's shape 0.5) turns the hand's size in pixels into its metric depth. Depth relative to the
head is settled later by the interaction refinement (:mod:`handface.fit.interaction`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import roma
import torch
from jaxtyping import Float
from torch import Tensor

from handface.geometry.alignment import procrustes
from handface.geometry.camera import project_points
from handface.geometry.contact import hand_size
from handface.losses.robust import cauchy
from handface.models.base import HandModel, HandParams, KeypointRig

PERSPECTIVE_RANGE = (0.5, 1.5)
"""Clamp of the per-keypoint perspective factor of :func:`lifted_keypoints` (a hand spans a
few centimetres in depth at tens of centimetres; larger factors are detection errors)."""


@dataclass
class HandFitConfig:
    """Settings of :func:`fit_hand`."""

    iterations: int = 60
    """Adam steps of the articulation fit."""
    learning_rate: float = 0.15
    depth_weight: float = 0.3
    """Weight of MediaPipe's relative depth against the image coordinates."""
    noise: float = 0.03
    """Keypoint noise as a fraction of the hand's size in pixels."""
    articulation_weight: float = 0.01
    """L2 prior on the articulation latent (0 = flat hand for every backend)."""


@dataclass
class HandFit:
    """A fitted hand in the camera frame (float32 tensors, no gradients)."""

    side: str
    params: HandParams
    rotation: Float[Tensor, "3 3"]
    """Hand canonical frame -> camera."""
    canonical_vertices: Float[Tensor, "Vh 3"]
    canonical_keypoints: Float[Tensor, "21 3"]
    vertices: Float[Tensor, "Vh 3"]
    keypoints: Float[Tensor, "21 3"]
    reprojection_px: float
    """Mean distance between fitted and detected keypoints."""

    def moved(self, rotation: Float[Tensor, "3 3"], transl: Float[Tensor, "3"]) -> HandFit:
        """The same hand with a new rigid pose (canonical -> camera)."""
        rotation, transl = rotation.float(), transl.float()
        params = HandParams(
            global_orient=roma.rotmat_to_rotvec(rotation)[None],
            transl=transl[None],
            articulation=self.params.articulation,
            shape=self.params.shape,
        )
        return HandFit(
            side=self.side,
            params=params,
            rotation=rotation,
            canonical_vertices=self.canonical_vertices,
            canonical_keypoints=self.canonical_keypoints,
            vertices=self.canonical_vertices @ rotation.T + transl,
            keypoints=self.canonical_keypoints @ rotation.T + transl,
            reprojection_px=self.reprojection_px,
        )


def lifted_keypoints(
    keypoints2d: Float[np.ndarray, "21 2"], depth: Float[np.ndarray, "21"], K: Tensor
) -> Float[Tensor, "21 3"]:
    """MediaPipe's keypoints as a 3D shape in pixel units, centred on the principal point.

    ``(u - c) * s`` with ``s = 1 + (z - mean z) / f`` (clamped to :data:`PERSPECTIVE_RANGE`)
    and ``z - z_wrist``: with MediaPipe's relative depth ``z = (Z - Z_wrist) f / mean Z``
    (pixels), ``s = Z / mean Z`` and the result is the hand's camera-frame shape times
    ``f / mean Z``, exactly (the perspective undone, not only approximated as weak).
    """
    uv = torch.as_tensor(keypoints2d, dtype=torch.float64)
    K64 = torch.as_tensor(K, dtype=torch.float64)
    centre, focal = K64[:2, 2], K64[0, 0]
    z = torch.as_tensor(depth, dtype=torch.float64)
    factor = (1.0 + (z - z.mean()) / focal).clamp(*PERSPECTIVE_RANGE)
    return torch.cat([(uv - centre) * factor[:, None], (z - z[0])[:, None]], dim=1)


def fit_articulation(
    rig: KeypointRig,
    target: Float[Tensor, "21 3"],
    config: HandFitConfig,
    num_articulation: int = 20,
) -> tuple[Tensor, Tensor, Tensor]:
    """Articulation latent (``num_articulation`` values) and similarity (rotation, scale) of
    the rig onto ``target``."""
    size = float(hand_size(target).clamp_min(1.0))
    axis_weights = torch.tensor([1.0, 1.0, config.depth_weight], dtype=torch.float64)
    articulation = torch.zeros(1, num_articulation, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([articulation], lr=config.learning_rate)
    for _ in range(config.iterations):
        optimizer.zero_grad()
        keypoints = rig(articulation.float()).double()[0]
        fit = procrustes(keypoints, target, weights=None)
        residual = (fit.aligned - target) / (config.noise * size)
        loss = cauchy((residual.pow(2) * axis_weights).sum(-1)).mean()
        loss = loss + config.articulation_weight * articulation.pow(2).sum()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        keypoints = rig(articulation.float()).double()[0]
        fit = procrustes(keypoints, target)
    return articulation.detach().float(), fit.rotation, fit.scale


def place_hand(
    canonical_keypoints: Float[Tensor, "21 3"],
    rotation: Float[Tensor, "3 3"],
    lifted: Float[Tensor, "21 3"],
    keypoints2d: Float[np.ndarray, "21 2"],
    K: Float[Tensor, "3 3"],
) -> tuple[Float[Tensor, "3 3"], Float[Tensor, "3"]]:
    """Stage 2 (module docstring): the rigid pose of an articulated hand in the camera frame.

    Args:
        canonical_keypoints: the articulated hand's keypoints in its own frame (metres).
        rotation: its rotation from the articulation fit (:func:`fit_articulation`).
        lifted: :func:`lifted_keypoints` of the detection.
    """
    K64 = torch.as_tensor(K, dtype=torch.float64)
    canonical_keypoints = canonical_keypoints.double()
    rotation = rotation.double()
    # The lifted shape is the hand times f / mean Z, so its image-plane scale gives the depth.
    # (The similarity scale would be biased by MediaPipe's compressed relative depths.)
    rotated = (canonical_keypoints @ rotation.T)[:, :2]
    rotated = rotated - rotated.mean(0)
    observed = lifted[:, :2] - lifted[:, :2].mean(0)
    scale = (rotated * observed).sum() / rotated.pow(2).sum().clamp_min(1e-12)
    depth = float(K64[0, 0]) / float(scale)
    centre_px = lifted[:, :2].mean(0) - scale * (canonical_keypoints @ rotation.T)[:, :2].mean(0)
    transl = torch.cat([centre_px / scale, torch.tensor([depth], dtype=torch.float64)])
    rvec = roma.rotmat_to_rotvec(rotation).numpy().reshape(3, 1)
    tvec = transl.numpy().reshape(3, 1)
    points = np.ascontiguousarray(canonical_keypoints.numpy())
    image_points = np.ascontiguousarray(keypoints2d, dtype=np.float64)
    rvec, tvec = cv2.solvePnPRefineLM(points, image_points, K64.numpy(), None, rvec, tvec)
    if tvec[2, 0] > 0.05:
        rotation = roma.rotvec_to_rotmat(torch.as_tensor(rvec.reshape(3)))
        transl = torch.as_tensor(tvec.reshape(3))
    # else: a degenerate PnP (behind the camera) -- keep the similarity fit
    return rotation, transl


def fit_hand(
    model: HandModel,
    keypoints2d: Float[np.ndarray, "21 2"],
    keypoint_depth: Float[np.ndarray, "21"],
    K: Float[Tensor, "3 3"],
    *,
    config: HandFitConfig | None = None,
) -> HandFit:
    """Fit ``model`` (its side must match the detection's) to one detected hand.

    Args:
        keypoints2d: MediaPipe's 21 keypoints in pixels.
        keypoint_depth: MediaPipe's relative keypoint depths (pixel units).
        K: camera intrinsics.
    """
    config = config or HandFitConfig()
    K64 = torch.as_tensor(K, dtype=torch.float64)
    rig = model.keypoint_rig()
    target = lifted_keypoints(keypoints2d, keypoint_depth, K64)
    articulation, rotation, _ = fit_articulation(rig, target, config, model.num_articulation)
    with torch.no_grad():
        canonical_keypoints = rig(articulation).double()[0]
    rotation, transl = place_hand(canonical_keypoints, rotation, target, keypoints2d, K64)
    rotation, transl = rotation.float(), transl.float()
    params = HandParams(
        global_orient=roma.rotmat_to_rotvec(rotation)[None],
        transl=transl[None],
        articulation=articulation,
    )
    with torch.no_grad():
        out = model(HandParams(articulation=articulation))
    canonical_vertices = out.vertices[0].float()
    keypoints = canonical_keypoints.float() @ rotation.T + transl
    error = (project_points(keypoints.double(), K64) - torch.as_tensor(keypoints2d)).norm(dim=-1)
    return HandFit(
        side=model.side,
        params=params,
        rotation=rotation,
        canonical_vertices=canonical_vertices,
        canonical_keypoints=canonical_keypoints.float(),
        vertices=canonical_vertices @ rotation.T + transl,
        keypoints=keypoints,
        reprojection_px=float(error.mean()),
    )
