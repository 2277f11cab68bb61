"""Detection: image loading and MediaPipe face mesh, hands and person mask -> :class:`Detections`.

The only user of mediapipe.
"""

from handface.detect.images import VIDEO_SUFFIXES, LoadedImage, exif_focal_lengths, load_image
from handface.detect.mediapipe_detector import (
    Detections,
    FaceDetection,
    HandDetection,
    MediaPipeDetector,
)

__all__ = [
    "VIDEO_SUFFIXES",
    "Detections",
    "FaceDetection",
    "HandDetection",
    "LoadedImage",
    "MediaPipeDetector",
    "exif_focal_lengths",
    "load_image",
]
