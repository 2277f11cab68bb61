"""Building a :class:`~handface.capture.Capture` from meshes, shared by fitting and DICE.

Whatever produced the meshes (optimisation or the network), the capture's derived fields
follow one rule: landmarks are read off the deformed head by the model's own embedding and
projected with the capture's camera; ``touching`` and ``min_distance_mm`` come from the hand's
signed distance to the deformed face (:mod:`handface.geometry.contact`); penetration figures
pool the penetration depths of every hand.
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from handface.capture import CapturedFace, CapturedHand
from handface.geometry.camera import project_points
from handface.geometry.contact import penetration_from_sdf, touching
from handface.models.base import HandModel, HeadModel
from handface.models.landmarks import landmarks_478_from_68


def _numpy(params: dict[str, Tensor]) -> dict[str, np.ndarray]:
    return {
        name: value.detach().reshape(-1).float().numpy()
        for name, value in params.items()
        if value is not None  # e.g. a backend without a mirrored articulation
    }


def captured_face(
    head_model: HeadModel,
    params: dict[str, Tensor],
    undeformed: Float[Tensor, "V 3"],
    deformed: Float[Tensor, "V 3"],
    rotation: Float[Tensor, "3 3"],
    contact: Float[Tensor, " V"],
    K: Float[Tensor, "3 3"],
    detected_landmarks: Float[np.ndarray, "478 2"],
) -> CapturedFace:
    """The face of a capture (camera frame); ``D`` is stored in the head's canonical frame."""
    with torch.no_grad():
        landmarks, landmarks68 = head_model.surface_landmarks(deformed[None].float())
    landmarks68 = landmarks68[0]
    # a head with only the 68-point layout: those 68 of the 478, NaN elsewhere
    landmarks = landmarks_478_from_68(landmarks68) if landmarks is None else landmarks[0]
    deformation = (deformed - undeformed) @ rotation
    return CapturedFace(
        params=_numpy(params),
        vertices=undeformed.detach().float().numpy(),
        vertices_deformed=deformed.detach().float().numpy(),
        faces=head_model.faces.numpy(),
        deformation=deformation.detach().float().numpy(),
        rotation=rotation.detach().float().numpy(),
        contact=contact.detach().float().numpy(),
        landmarks3d=landmarks.numpy(),
        landmarks2d=project_points(landmarks.double(), K.double()).float().numpy(),
        keypoints68_3d=landmarks68.numpy(),
        keypoints68_2d=project_points(landmarks68.double(), K.double()).float().numpy(),
        detected_landmarks2d=np.asarray(detected_landmarks, np.float32),
    )


def captured_hand(
    model: HandModel,
    params: dict[str, Tensor],
    vertices: Float[Tensor, "Vh 3"],
    keypoints: Float[Tensor, "21 3"],
    contact: Float[Tensor, " Vh"],
    sdf: Float[Tensor, " Vh"] | None,
    K: Float[Tensor, "3 3"],
    detection,
    presence: float | None = None,
) -> CapturedHand:
    """One hand of a capture; ``sdf`` is its signed distance to the deformed face (or None).

    ``detection``: MediaPipe's hand, or None for a hand only the network found, with its
    probability ``presence``.
    """
    if detection is None:
        detected, score, found_by = np.full((21, 2), np.nan, np.float32), presence, "network"
    else:
        detected = np.asarray(detection.keypoints, np.float32)
        score, found_by = float(detection.score), "detector"
    return CapturedHand(
        side=model.side,
        params=_numpy(params),
        vertices=vertices.detach().float().numpy(),
        faces=model.faces.numpy(),
        contact=contact.detach().float().numpy(),
        keypoints3d=keypoints.detach().float().numpy(),
        keypoints2d=project_points(keypoints.detach().double(), K.double()).float().numpy(),
        detected_keypoints2d=detected,
        detection_score=float(score if score is not None else float("nan")),
        touching=bool(touching(sdf)) if sdf is not None else False,
        min_distance_mm=round(1000.0 * float(sdf.min()), 3) if sdf is not None else float("inf"),
        found_by=found_by,
    )


def penetration_figures(sdfs: list[Float[Tensor, " Vh"]]) -> dict[str, float]:
    """``max_after_mm`` and ``collision_distance_mm`` of all hands against the deformed face."""
    if not sdfs:
        return {}
    depths = penetration_from_sdf(torch.cat(sdfs))
    return {
        "max_after_mm": round(1000.0 * float(depths.max()), 3),
        "collision_distance_mm": round(1000.0 * float(depths.sum() / depths.numel()), 4),
    }
