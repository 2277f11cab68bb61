"""What the image itself says about a hand and the face: pixel masks and their layering.

A hand's pixels are approximated by its detected skeleton drawn with the thickness of a finger
(from the palm's size in pixels), intersected with MediaPipe's person mask when there is one.
Where those pixels fall on the face (the rendered silhouette of the fitted head), the hand is
visible there, so it is *in front of* the face: the depth-order loss uses these pixels. The 2D
gap between the hand's pixels and the head's silhouette is the first contact cue: a hand
whose pixels neither overlap nor touch the head cannot touch it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from jaxtyping import Bool, Float

HAND_BONES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
    (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19),
    (19, 20),
)  # fmt: skip
"""Segments of the 21-keypoint hand skeleton (MediaPipe order)."""
PALM: tuple[int, ...] = (0, 1, 5, 9, 13, 17)


def finger_width_px(keypoints2d: Float[np.ndarray, "21 2"]) -> float:
    """Approximate finger width in pixels: a fifth of the wrist-to-middle-knuckle length."""
    return max(2.0, 0.2 * float(np.linalg.norm(keypoints2d[9] - keypoints2d[0])))


def hand_mask(
    keypoints2d: Float[np.ndarray, "21 2"],
    image_size: tuple[int, int],
    person_mask: Float[np.ndarray, "H W"] | None = None,
) -> Bool[np.ndarray, "H W"]:
    """Pixels of one hand: its skeleton drawn a finger wide, the palm filled.

    Args:
        image_size: (height, width) of the mask.
        person_mask: MediaPipe's person probability at the same size, or ``None``.
    """
    height, width = image_size
    canvas = np.zeros((height, width), np.uint8)
    thickness = max(1, int(round(finger_width_px(keypoints2d))))
    points = np.round(keypoints2d).astype(np.int32)
    for a, b in HAND_BONES:
        cv2.line(canvas, tuple(points[a]), tuple(points[b]), 1, thickness, cv2.LINE_8)
    cv2.fillConvexPoly(canvas, cv2.convexHull(points[list(PALM)]), 1)
    mask = canvas.astype(bool)
    if person_mask is not None:
        mask &= person_mask > 0.5
    return mask


@dataclass
class HandFaceEvidence:
    """Image evidence about one hand and the head."""

    overlap: Bool[np.ndarray, "H W"]
    """Hand pixels on the head's silhouette: the hand is in front of the face there."""
    gap_px: float
    """2D distance between the hand's pixels and the head silhouette (0 when they overlap)."""
    overlap_fraction: float
    """Share of the hand's pixels on the head."""

    @property
    def adjacent(self) -> bool:
        return self.gap_px == 0.0


def hand_face_evidence(
    hand: Bool[np.ndarray, "H W"], head_silhouette: Bool[np.ndarray, "H W"]
) -> HandFaceEvidence:
    """Overlap and 2D gap between a hand's pixels and the head's silhouette."""
    overlap = hand & head_silhouette
    count = int(hand.sum())
    if overlap.any():
        return HandFaceEvidence(overlap, 0.0, float(overlap.sum()) / max(count, 1))
    if count == 0 or not head_silhouette.any():
        return HandFaceEvidence(overlap, float("inf"), 0.0)
    distance = cv2.distanceTransform(
        (~head_silhouette).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE
    )
    return HandFaceEvidence(overlap, float(distance[hand].min()), 0.0)
