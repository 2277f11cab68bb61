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

from handface.capture import Capture, CapturedFace, CapturedHand
from handface.data.sample import InteractionSample
from handface.geometry.camera import project_points
from handface.geometry.contact import (
    contact_probability,
    penetration_from_sdf,
    surface_signed_distance,
    touching,
)
from handface.models.base import HandModel, HeadModel
from handface.models.face_areas import load_face_areas, touched_areas
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


def touched_regions_by_hand(capture: Capture) -> dict[str, list[str]]:
    """The named face areas each touching hand touches: side -> areas, most touched first.

    One touching hand owns all of ``capture.touched_regions``; with two, each hand's areas are
    those whose face vertices are in contact with that hand's own surface (the contact rule of
    :mod:`handface.geometry.contact`). Empty when nothing touches or the head has no named
    areas (a FLAME head, say).

    Example:
        >>> touched_regions_by_hand(capture)                 # doctest: +SKIP
        {'right': ['left cheek'], 'left': ['chin']}
    """
    touching_sides = [side for side, hand in capture.hands.items() if hand.touching]
    face = capture.face
    if face is None or not touching_sides:
        return {}
    if len(np.asarray(face.vertices_deformed)) != len(load_face_areas().labels):
        return {}
    if len(touching_sides) == 1:
        return {touching_sides[0]: list(capture.touched_regions)}
    deformed = torch.as_tensor(np.asarray(face.vertices_deformed, np.float32))
    out = {}
    for side in touching_sides:
        hand = capture.hands[side]
        distance = surface_signed_distance(
            deformed,
            torch.as_tensor(np.asarray(hand.vertices, np.float32)),
            torch.as_tensor(np.asarray(hand.faces, np.int64)),
        )
        out[side] = touched_areas(contact_probability(distance).numpy())
    return out


def ground_truth_capture(sample: InteractionSample) -> Capture:
    """A synthetic (or Decaf) item's ground truth as a :class:`~handface.capture.Capture`, in
    its camera's frame, so every picture and export of captures shows the truth the same way.

    Contact and ``touching`` come from the labels (a hand touches when one of its vertices is
    labelled in contact), ``min_distance_mm`` from the hand's signed distance to the deformed
    face; the "detected" landmarks and keypoints are NaN (nothing was detected); the photo is
    the sample's render when it has one.

    Example:
        >>> truth = ground_truth_capture(SynthDataset("data/synth")[0])    # doctest: +SKIP
        >>> truth.touching, truth.touched_regions                          # doctest: +SKIP
        (True, ['left cheek'])
    """
    R = sample.R.detach().double().cpu()
    t = sample.t.detach().double().cpu()

    def camera(points: Tensor) -> np.ndarray:
        return (points.detach().double().cpu() @ R.T + t).numpy()

    def plain(value: Tensor) -> np.ndarray:
        return value.detach().cpu().numpy()

    deformed = camera(sample.face_vertices_deformed)
    faces = plain(sample.face_faces).astype(np.int64)
    contact = np.nan_to_num(plain(sample.face_contact).astype(np.float32))
    landmarks = camera(sample.face_keypoints3d)
    nan478 = np.full((478, 2), np.nan, np.float32)
    face = CapturedFace(
        params={name: plain(value).reshape(-1) for name, value in sample.head_params.items()},
        vertices=camera(sample.face_vertices),
        vertices_deformed=deformed,
        faces=faces,
        deformation=plain(sample.deformation),
        rotation=(R @ sample.head_rotation.detach().double().cpu()).numpy(),
        contact=contact,
        landmarks3d=landmarks if len(landmarks) == 478 else np.full((478, 3), np.nan),
        landmarks2d=plain(sample.face_keypoints2d) if len(landmarks) == 478 else nan478,
        keypoints68_3d=camera(sample.face_keypoints68_3d),
        keypoints68_2d=plain(sample.face_keypoints68_2d),
        detected_landmarks2d=nan478,
    )
    hands = {}
    for side, hand in sample.hands.items():
        vertices = camera(hand.vertices)
        hand_contact = np.nan_to_num(plain(hand.contact).astype(np.float32))
        sdf = surface_signed_distance(
            torch.as_tensor(vertices), torch.as_tensor(deformed), torch.as_tensor(faces)
        )
        hands[side] = CapturedHand(
            side=side,
            params={name: plain(value).reshape(-1) for name, value in hand.params.items()},
            vertices=vertices,
            faces=plain(hand.faces).astype(np.int64),
            contact=hand_contact,
            keypoints3d=camera(hand.keypoints3d),
            keypoints2d=plain(hand.keypoints2d),
            detected_keypoints2d=np.full((21, 2), np.nan, np.float32),
            detection_score=1.0,
            touching=bool((hand_contact > 0.5).any()),
            min_distance_mm=round(1000.0 * float(sdf.min()), 3),
        )
    image = None
    if sample.image is not None:
        image = (plain(sample.image).clip(0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    areas = touched_areas(contact) if len(contact) == len(load_face_areas().labels) else []
    return Capture(
        image_size=tuple(int(n) for n in sample.image_size),
        K=plain(sample.K).astype(np.float64),
        camera_source="given",
        face=face,
        hands=hands,
        touched_regions=areas,
        source=sample.key,
        image=image,
        mode="ground truth",
    )


def in_image_pixels(
    capture: Capture, image_size: tuple[int, int], K: Float[np.ndarray, "3 3"]
) -> Capture:
    """``capture``, made on a downscaled working copy of a photo, with its camera and 2D points
    moved into the pixels of the photo itself: ``image_size`` = (width, height) and the
    intrinsics ``K`` it has there. The 3D results do not change (the same camera sees them);
    ``capture.image`` stays the working copy, which the overlay draws on at its own scale.

    Example:
        >>> full = in_image_pixels(capture, (12000, 9000), K_photo)  # doctest: +SKIP
        >>> full.image_size, full.image.shape[:2]                      # doctest: +SKIP
        ((12000, 9000), (3464, 4618))
    """
    from dataclasses import replace

    from handface.geometry.camera import resized_pixels

    (work_width, work_height), (width, height) = capture.image_size, image_size
    sx, sy = width / work_width, height / work_height

    def moved(points: np.ndarray | None) -> np.ndarray | None:
        return None if points is None else resized_pixels(np.asarray(points), sx, sy)

    face = capture.face
    if face is not None:
        face = replace(face, landmarks2d=moved(face.landmarks2d),
                       keypoints68_2d=moved(face.keypoints68_2d),
                       detected_landmarks2d=moved(face.detected_landmarks2d))  # fmt: skip
    hands = {
        side: replace(
            hand,
            keypoints2d=moved(hand.keypoints2d),
            detected_keypoints2d=moved(hand.detected_keypoints2d),
        )  # fmt: skip
        for side, hand in capture.hands.items()
    }
    return replace(capture, image_size=(int(width), int(height)),
                   K=np.asarray(K, dtype=capture.K.dtype), face=face, hands=hands)  # fmt: skip
