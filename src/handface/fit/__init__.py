"""Optimization-based capture: camera model, head and hand fits, interaction refinement."""

from handface.fit.camera import CameraEstimate, camera_for_image
from handface.fit.single_image import ReconstructConfig, Reconstructor, reconstruct

__all__ = [
    "CameraEstimate",
    "ReconstructConfig",
    "Reconstructor",
    "camera_for_image",
    "reconstruct",
]
