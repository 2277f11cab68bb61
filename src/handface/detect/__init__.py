"""Detection: MediaPipe face mesh and hands -> :class:`Detections`. The only user of mediapipe."""

from handface.detect.mediapipe_detector import (
    Detections,
    FaceDetection,
    HandDetection,
    MediaPipeDetector,
)

__all__ = ["Detections", "FaceDetection", "HandDetection", "MediaPipeDetector"]
