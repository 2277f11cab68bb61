"""Detection: image and video loading and MediaPipe face mesh, hands and person mask.

Loading gives :class:`LoadedImage` and :class:`FrameReader`; detection gives :class:`Detections`.
The only user of mediapipe.
"""

from handface.detect.images import VIDEO_SUFFIXES, LoadedImage, exif_focal_lengths, load_image
from handface.detect.mediapipe_detector import (
    Detections,
    FaceDetection,
    HandDetection,
    MediaPipeDetector,
)
from handface.detect.video import DepthReader, FrameReader, VideoFrame, natural_sort_key

__all__ = [
    "VIDEO_SUFFIXES",
    "DepthReader",
    "Detections",
    "FaceDetection",
    "FrameReader",
    "HandDetection",
    "LoadedImage",
    "MediaPipeDetector",
    "VideoFrame",
    "exif_focal_lengths",
    "load_image",
    "natural_sort_key",
]
