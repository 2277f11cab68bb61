"""MediaPipe face mesh (478 landmarks with irises) and hands (21 keypoints + handedness).

``mediapipe==0.10.21`` bundles its models in the wheel (``mp.solutions``), so detection runs
offline. Coordinates are returned in handface's pixel convention (pixel centres at integer
coordinates): MediaPipe's normalised ``x`` maps to ``x * W - 0.5``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Float, UInt8

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass
class FaceDetection:
    """One face: 478 landmarks in pixels, plus MediaPipe's relative depth (same scale as x)."""

    landmarks: Float[np.ndarray, "478 2"]
    depth: Float[np.ndarray, "478"]


@dataclass
class HandDetection:
    """One hand: 21 keypoints in pixels (MediaPipe order), relative depths and handedness."""

    keypoints: Float[np.ndarray, "21 2"]
    depth: Float[np.ndarray, "21"]
    side: str
    """"left" or "right" as MediaPipe labels it (it assumes a mirrored selfie: see detector)."""
    score: float


@dataclass
class Detections:
    """Everything detected in one image."""

    image_size: tuple[int, int]
    """(height, width) in pixels."""
    faces: list[FaceDetection] = field(default_factory=list)
    hands: list[HandDetection] = field(default_factory=list)


class MediaPipeDetector:
    """Run MediaPipe's face mesh and hand landmarker on RGB images.

    Example:
        >>> detector = MediaPipeDetector()
        >>> detections = detector(np.zeros((64, 64, 3), np.uint8))
        >>> detections.faces, detections.hands
        ([], [])
    """

    def __init__(
        self, max_hands: int = 2, min_confidence: float = 0.3, mirrored_handedness: bool = True
    ) -> None:
        import mediapipe as mp

        self._face_mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=min_confidence,
        )
        self._hands = mp.solutions.hands.Hands(
            static_image_mode=True, max_num_hands=max_hands, min_detection_confidence=min_confidence
        )
        # MediaPipe's handedness assumes a front-camera (mirrored) image; for ordinary photos the
        # label is swapped so that "right" means the person's right hand.
        self._mirrored_handedness = mirrored_handedness

    def detect_face(self, image: UInt8[np.ndarray, "H W 3"]) -> FaceDetection | None:
        height, width = image.shape[:2]
        result = self._face_mesh.process(np.ascontiguousarray(image))
        if not result.multi_face_landmarks:
            return None
        points = np.array(
            [[p.x, p.y, p.z] for p in result.multi_face_landmarks[0].landmark], dtype=np.float64
        )
        return FaceDetection(
            landmarks=np.stack([points[:, 0] * width - 0.5, points[:, 1] * height - 0.5], axis=1),
            depth=points[:, 2] * width,
        )

    def detect_hands(self, image: UInt8[np.ndarray, "H W 3"]) -> list[HandDetection]:
        height, width = image.shape[:2]
        result = self._hands.process(np.ascontiguousarray(image))
        hands = []
        for landmarks, handedness in zip(
            result.multi_hand_landmarks or [], result.multi_handedness or [], strict=True
        ):
            points = np.array([[p.x, p.y, p.z] for p in landmarks.landmark], dtype=np.float64)
            label = handedness.classification[0].label.lower()
            if self._mirrored_handedness:
                label = {"left": "right", "right": "left"}[label]
            hands.append(
                HandDetection(
                    keypoints=np.stack(
                        [points[:, 0] * width - 0.5, points[:, 1] * height - 0.5], axis=1
                    ),
                    depth=points[:, 2] * width,
                    side=label,
                    score=float(handedness.classification[0].score),
                )
            )
        return hands

    def __call__(self, image: UInt8[np.ndarray, "H W 3"]) -> Detections:
        face = self.detect_face(image)
        return Detections(
            image_size=(int(image.shape[0]), int(image.shape[1])),
            faces=[] if face is None else [face],
            hands=self.detect_hands(image),
        )
