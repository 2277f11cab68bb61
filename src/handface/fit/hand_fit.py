"""Hand fitting: articulation, pose and depth from MediaPipe's 21 keypoints.

Stage 1 (articulation) fits the 20 joint-limited degrees of freedom
(:mod:`handface.models.hand_pose`) so that the hand's keypoints, after the best similarity
transform (Umeyama), match MediaPipe's keypoints lifted to 3D with its relative depths:
``(u - c_x, v - c_y, z_mp)``, all in pixels. Near a hand the camera is close to
weak-perspective, so this shape is the hand's up to scale; the depth axis counts less
(MediaPipe's z is the noisiest coordinate).

Stage 2 (placement) keeps the articulation and solves the rigid pose by PnP, started from the
similarity fit: the **hand-size prior** (the average Anny hand, shape 0.5) turns the hand's
size in pixels into its metric depth. Depth relative to the head is settled later by the
interaction refinement (:mod:`handface.fit.interaction`).
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
from handface.models.anny_backend import AnnyHandModel
from handface.models.base import HandParams


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
    """L2 prior on the articulation latent (0 = flat hand)."""


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
    """MediaPipe's keypoints as a 3D shape in pixel units, centred on the principal point."""
    uv = torch.as_tensor(keypoints2d, dtype=torch.float64)
    centre = torch.as_tensor(K, dtype=torch.float64)[:2, 2]
    z = torch.as_tensor(depth, dtype=torch.float64)
    return torch.cat([uv - centre, (z - z[0])[:, None]], dim=1)


def fit_articulation(
    rig, target: Float[Tensor, "21 3"], config: HandFitConfig
) -> tuple[Tensor, Tensor, Tensor]:
    """Articulation latent and similarity (rotation, scale) of the rig onto ``target``."""
    size = float(torch.linalg.vector_norm(target[9] - target[0]).clamp_min(1.0))
    axis_weights = torch.tensor([1.0, 1.0, config.depth_weight], dtype=torch.float64)
    articulation = torch.zeros(1, 20, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([articulation], lr=config.learning_rate)
    for _ in range(config.iterations):
        optimizer.zero_grad()
        keypoints = rig(articulation.float()).double()[0]
        fit = procrustes(keypoints, target, weights=None)
        residual = (fit.aligned - target) / (config.noise * size)
        loss = torch.log1p((residual.pow(2) * axis_weights).sum(-1)).mean()
        loss = loss + config.articulation_weight * articulation.pow(2).sum()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        keypoints = rig(articulation.float()).double()[0]
        fit = procrustes(keypoints, target)
    return articulation.detach().float(), fit.rotation, fit.scale


def fit_hand(
    model: AnnyHandModel,
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
    articulation, rotation, scale = fit_articulation(rig, target, config)
    with torch.no_grad():
        canonical_keypoints = rig(articulation).double()[0]
    # Weak perspective: pixels = (f / Z) * metres, so the image-plane scale gives the depth.
    # (The similarity scale would be biased by MediaPipe's compressed relative depths.)
    rotated = (canonical_keypoints @ rotation.T)[:, :2]
    rotated = rotated - rotated.mean(0)
    observed = target[:, :2] - target[:, :2].mean(0)
    scale = (rotated * observed).sum() / rotated.pow(2).sum().clamp_min(1e-12)
    depth = float(K64[0, 0]) / float(scale)
    centre_px = target[:, :2].mean(0) - scale * (canonical_keypoints @ rotation.T)[:, :2].mean(0)
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
