"""The camera model of single-image capture.

A pinhole camera (OpenCV convention, no distortion) with square pixels and the principal point
at the image centre ``((W-1)/2, (H-1)/2)``. Its focal length (pixels) comes from, in order:

1. ``--focal`` (the user's value, pixels);
2. the photo's EXIF ``FocalLengthIn35mmFilm``: ``f_px = f_35 * diagonal_px / 43.27`` (43.27 mm
   is the diagonal of a 36 x 24 mm frame, so the conversion holds for any aspect ratio);
3. a default 35 mm-equivalent focal length of :data:`DEFAULT_FOCAL_35MM` (a diagonal field of
   view of 63 degrees, between a phone's wide camera and a portrait lens).

A wrong focal length mostly scales the recovered depth (the face-size prior fixes the metric
size), so hand-face relations survive it; pass ``--focal`` when the camera is known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from handface.errors import InputError

DEFAULT_FOCAL_35MM = 35.0
"""35 mm-equivalent focal length assumed when neither ``--focal`` nor EXIF gives one."""
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)


@dataclass(frozen=True)
class CameraEstimate:
    """Intrinsics of one photo and where their focal length came from."""

    K: Float[Tensor, "3 3"]
    source: str
    """``"--focal"``, ``"exif"``, ``"default"`` or ``"given"`` (intrinsics passed by a caller)."""

    @property
    def focal(self) -> float:
        return float(self.K[0, 0])


def focal_from_35mm(focal_35mm: float, width: int, height: int) -> float:
    """Focal length in pixels of a 35 mm-equivalent focal length on a ``width x height`` image.

    Example:
        >>> round(focal_from_35mm(43.27, 3000, 4000), 1)  # f_35 = diagonal -> f_px = diagonal
        5000.0
    """
    return focal_35mm * math.hypot(width, height) / FULL_FRAME_DIAGONAL_MM


def intrinsics(width: int, height: int, focal: float) -> Float[Tensor, "3 3"]:
    """Pinhole intrinsics with the principal point at the image centre (float64)."""
    return torch.tensor(
        [[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0], [0.0, 0.0, 1.0]],
        dtype=torch.float64,
    )


def camera_for_image(
    width: int,
    height: int,
    *,
    focal_px: float | None = None,
    exif_focal_35mm: float | None = None,
    default_focal_35mm: float = DEFAULT_FOCAL_35MM,
) -> CameraEstimate:
    """The camera of a ``width x height`` photo (rules: module docstring).

    Example:
        >>> camera_for_image(640, 480, focal_px=500.0).source
        '--focal'
    """
    if focal_px is not None:
        if not math.isfinite(focal_px) or focal_px <= 0:
            raise InputError(f"--focal must be a positive number of pixels, got {focal_px}")
        return CameraEstimate(intrinsics(width, height, focal_px), "--focal")
    if exif_focal_35mm is not None and exif_focal_35mm > 0:
        focal = focal_from_35mm(exif_focal_35mm, width, height)
        return CameraEstimate(intrinsics(width, height, focal), "exif")
    focal = focal_from_35mm(default_focal_35mm, width, height)
    return CameraEstimate(intrinsics(width, height, focal), "default")
