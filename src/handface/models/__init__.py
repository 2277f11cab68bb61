"""Parametric head and hand models behind one interface (Anny backend by default).

>>> from handface.models import AnnyHeadModel, AnnyHandModel, HeadParams, HandParams
>>> head, hand = AnnyHeadModel(), AnnyHandModel("right")
>>> face = head(HeadParams())                       # 4538 vertices, 478 + 68 landmarks
>>> right = hand(HandParams())                      # 1609 vertices, 21 MediaPipe keypoints

FLAME and MANO (files the user obtains) sit behind the same interface: ``FlameHeadModel(path)``,
``ManoHandModel(path, side)``. ``default_head_model()`` / ``default_hand_model(side)`` build the
embedded defaults (Anny).
"""

from handface.models.anny_backend import AnnyHandModel, AnnyHeadModel
from handface.models.base import HandModel, HandParams, HeadModel, HeadParams, MeshOutput
from handface.models.defaults import default_hand_model, default_head_model
from handface.models.face_areas import (
    FACE_AREA_NAMES,
    FaceAreas,
    load_face_areas,
    touched_areas,
)
from handface.models.flame_backend import FlameHeadModel, load_flame_landmark_embedding
from handface.models.landmarks import (
    HAND_KEYPOINT_NAMES,
    LANDMARK_LAYOUTS,
    MEDIAPIPE_INDEX_OF_68,
    BarycentricEmbedding,
    LandmarkLayout,
    landmarks_68_from_478,
    landmarks_478_from_68,
)
from handface.models.mano_backend import MANO_TO_MEDIAPIPE, ManoHandModel

__all__ = [
    "AnnyHandModel",
    "AnnyHeadModel",
    "BarycentricEmbedding",
    "FACE_AREA_NAMES",
    "FaceAreas",
    "FlameHeadModel",
    "HAND_KEYPOINT_NAMES",
    "HandModel",
    "HandParams",
    "HeadModel",
    "HeadParams",
    "LANDMARK_LAYOUTS",
    "LandmarkLayout",
    "MANO_TO_MEDIAPIPE",
    "MEDIAPIPE_INDEX_OF_68",
    "ManoHandModel",
    "MeshOutput",
    "default_hand_model",
    "default_head_model",
    "landmarks_478_from_68",
    "landmarks_68_from_478",
    "load_face_areas",
    "load_flame_landmark_embedding",
    "touched_areas",
]
