"""Parametric head and hand models behind one interface (Anny backend by default).

>>> from handface.models import AnnyHeadModel, AnnyHandModel, HeadParams, HandParams
>>> head, hand = AnnyHeadModel(), AnnyHandModel("right")
>>> face = head(HeadParams())                       # 4538 vertices, 478 + 68 landmarks
>>> right = hand(HandParams())                      # 1609 vertices, 21 MediaPipe keypoints
"""

from handface.models.anny_backend import AnnyHandModel, AnnyHeadModel
from handface.models.base import HandModel, HandParams, HeadModel, HeadParams, MeshOutput
from handface.models.landmarks import (
    HAND_KEYPOINT_NAMES,
    MEDIAPIPE_INDEX_OF_68,
    BarycentricEmbedding,
    landmarks_68_from_478,
)

__all__ = [
    "AnnyHandModel",
    "AnnyHeadModel",
    "BarycentricEmbedding",
    "HAND_KEYPOINT_NAMES",
    "HandModel",
    "HandParams",
    "HeadModel",
    "HeadParams",
    "MEDIAPIPE_INDEX_OF_68",
    "MeshOutput",
    "landmarks_68_from_478",
]
