"""Bridging short gaps where the detector loses a hand near the face.

MediaPipe's hand landmarker often drops a hand that lies on the face (the hand and the face
look alike to it), which is exactly when contact happens. When a hand is detected before and
after a short gap, and it was near the face at both ends, its 2D keypoints and relative depths
are interpolated across the gap (linearly in time: a few frames of motion) and the frames are
marked as bridged. A hand that leaves the picture, or a gap longer than ``max_gap`` frames, is
not bridged: it is reported missing.

Example:
    >>> kp = np.zeros((5, 21, 2)); kp[1:4] = np.nan; kp[4] += 8.0
    >>> filled = bridge_gaps(kp, np.zeros((5, 21)), np.ones(5, bool), max_gap=3)
    >>> filled.bridged.tolist(), float(filled.keypoints[2, 0, 0])
    ([False, True, True, True, False], 4.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Bool, Float


@dataclass
class BridgedHand:
    """One side's per-frame hand observations after bridging (NaN where still missing)."""

    keypoints: Float[np.ndarray, "T 21 2"]
    depth: Float[np.ndarray, "T 21"]
    bridged: Bool[np.ndarray, " T"]
    """Frames filled by interpolation."""

    @property
    def present(self) -> Bool[np.ndarray, " T"]:
        """Frames with keypoints (detected or bridged)."""
        return np.isfinite(self.keypoints).all(axis=(1, 2))


def near_face(
    keypoints: Float[np.ndarray, "21 2"],
    face_landmarks: Float[np.ndarray, "N 2"] | None,
    margin: float = 0.5,
) -> bool:
    """The hand's keypoint box comes within ``margin`` face widths of the face's landmark box."""
    if face_landmarks is None or not np.isfinite(keypoints).all():
        return False
    low, high = face_landmarks.min(0), face_landmarks.max(0)
    pad = margin * float(high[0] - low[0])
    hand_low, hand_high = keypoints.min(0), keypoints.max(0)
    return bool(np.all(hand_high >= low - pad) and np.all(hand_low <= high + pad))


def bridge_gaps(
    keypoints: Float[np.ndarray, "T 21 2"],
    depth: Float[np.ndarray, "T 21"],
    near: Bool[np.ndarray, " T"],
    max_gap: int,
) -> BridgedHand:
    """Fill runs of missing frames (NaN keypoints) of at most ``max_gap`` frames that lie
    between two detected frames where the hand was ``near`` the face (see module docstring).

    Args:
        keypoints: per frame the detected 2D keypoints (pixels), NaN where not detected.
        depth: MediaPipe's relative keypoint depths, same layout.
        near: per frame, the detected hand was near the face (:func:`near_face`).
        max_gap: the longest run of missing frames that is bridged.
    """
    keypoints = np.array(keypoints, dtype=np.float64)
    depth = np.array(depth, dtype=np.float64)
    present = np.isfinite(keypoints).all(axis=(1, 2))
    bridged = bridgeable_gaps(present, near, max_gap)
    for start, end in _runs_of(bridged):
        before, after, length = start - 1, end, end - start
        weights = (np.arange(1, length + 1) / (length + 1))[:, None, None]
        keypoints[start:end] = (1 - weights) * keypoints[before] + weights * keypoints[after]
        depth[start:end] = (1 - weights[..., 0]) * depth[before] + weights[..., 0] * depth[after]
    return BridgedHand(keypoints=keypoints, depth=depth, bridged=bridged)


def bridgeable_gaps(
    seen: Bool[np.ndarray, " T"], near: Bool[np.ndarray, " T"], max_gap: int
) -> Bool[np.ndarray, " T"]:
    """The frames of runs of unseen frames of at most ``max_gap`` frames with a seen frame on
    both sides, where the hand was ``near`` the face: the gaps that are bridged.

    Example:
        >>> seen = np.array([1, 0, 0, 1, 0, 0, 0, 1, 0], bool)
        >>> bridgeable_gaps(seen, seen, max_gap=2).astype(int).tolist()
        [0, 1, 1, 0, 0, 0, 0, 0, 0]
    """
    seen = np.asarray(seen, dtype=bool)
    near = np.asarray(near, dtype=bool)
    out = np.zeros(len(seen), dtype=bool)
    for start, end in _runs_of(~seen):
        before, after = start - 1, end
        if before >= 0 and after < len(seen) and end - start <= max_gap:
            out[start:end] = bool(near[before] and near[after])
    return out


def _runs_of(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of the runs of True in ``mask`` (end exclusive)."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
