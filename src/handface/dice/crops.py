"""The crop rule DICE sees the world through, shared by training and inference.

The network looks at one square crop that holds the face and the hands. Its box is the
bounding square of the face landmarks and hand keypoints in the image, grown by
``CropConfig.scale``; in training these points are the labels' projections, at inference
MediaPipe's detections, so both see the same framing. A crop is an affine map from image
pixels to the network's input (``size`` x ``size`` pixels), optionally rotated and
horizontally flipped (augmentation, and the mirrored pass of the left hand). 2D targets and
predictions live in *normalised crop coordinates*: ``[-1, 1]`` across the crop, x right,
y down.

Example:
    >>> import numpy as np
    >>> crop = crop_box(np.array([[100.0, 100.0], [200.0, 140.0]]), CropConfig(size=64))
    >>> crop.centre.tolist(), round(crop.side, 1)
    ([150.0, 120.0], 120.0)
    >>> crop.to_normalised(np.array([[150.0, 120.0]])).tolist()
    [[0.0, 0.0]]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np
from jaxtyping import Float, UInt8


@dataclass(frozen=True)
class CropConfig:
    """How the network's input crop is framed."""

    size: int = 224
    """Side of the network's input in pixels (the paper: 224)."""
    scale: float = 1.2
    """The crop's side is this times the larger side of the points' bounding box."""
    min_side_px: float = 32.0
    """Smallest crop side in image pixels (a guard against degenerate boxes)."""


@dataclass(frozen=True)
class Crop:
    """A square crop: image pixel ``p`` maps to normalised ``R(angle) (p - centre) / (side / 2)``,
    then x is negated when ``flipped``."""

    centre: Float[np.ndarray, "2"]
    side: float
    """Side length in image pixels."""
    size: int
    """Side of the output image in pixels."""
    angle: float = 0.0
    """In-plane rotation (radians) applied to the content, counter-clockwise in the image."""
    flipped: bool = False

    def _rotation(self) -> np.ndarray:
        c, s = math.cos(self.angle), math.sin(self.angle)
        # image y points down, so a counter-clockwise turn on screen is this matrix
        return np.array([[c, s], [-s, c]])

    def to_normalised(self, points: Float[np.ndarray, "N 2"]) -> Float[np.ndarray, "N 2"]:
        """Image pixels -> normalised crop coordinates."""
        local = (np.asarray(points, np.float64) - self.centre) / (0.5 * self.side)
        local = local @ self._rotation().T
        if self.flipped:
            local = local * np.array([-1.0, 1.0])
        return local

    def to_image(self, normalised: Float[np.ndarray, "N 2"]) -> Float[np.ndarray, "N 2"]:
        """Normalised crop coordinates -> image pixels (inverse of :meth:`to_normalised`)."""
        local = np.asarray(normalised, np.float64)
        if self.flipped:
            local = local * np.array([-1.0, 1.0])
        return local @ self._rotation() * (0.5 * self.side) + self.centre

    def affine(self) -> Float[np.ndarray, "2 3"]:
        """The 2x3 map from image pixels to output pixels (pixel centres at integers)."""
        half = 0.5 * self.size
        linear = self._rotation() * (half / (0.5 * self.side))
        if self.flipped:
            linear = np.diag([-1.0, 1.0]) @ linear
        offset = np.array([half - 0.5, half - 0.5]) - linear @ self.centre
        return np.concatenate([linear, offset[:, None]], axis=1)

    def apply(self, image: UInt8[np.ndarray, "H W 3"]) -> UInt8[np.ndarray, "S S 3"]:
        """Cut the crop out of ``image`` (bilinear; black outside the image)."""
        return cv2.warpAffine(
            np.ascontiguousarray(image),
            self.affine(),
            (self.size, self.size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )

    def mirrored(self) -> Crop:
        """The same crop, horizontally flipped (for the network's mirrored pass)."""
        return replace(self, flipped=not self.flipped)


def crop_box(points: Float[np.ndarray, "N 2"], config: CropConfig) -> Crop:
    """The square crop around ``points`` (face landmarks and hand keypoints, pixels).

    Non-finite points (undetected) are ignored; at least one point must be finite.
    """
    points = np.asarray(points, np.float64).reshape(-1, 2)
    points = points[np.isfinite(points).all(axis=1)]
    if points.size == 0:
        raise ValueError("crop_box needs at least one finite point")
    low, high = points.min(axis=0), points.max(axis=0)
    side = max(float((high - low).max()) * config.scale, config.min_side_px)
    return Crop(centre=0.5 * (low + high), side=side, size=config.size)
