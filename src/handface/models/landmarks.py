"""Landmark layouts and their embeddings on the model meshes.

- Face: the 478 MediaPipe face-mesh landmarks are a barycentric embedding on the head mesh
  (one triangle index and three barycentric weights per landmark), derived from real MediaPipe
  output on renders of the head (``python -m handface.models.build_landmarks``) and stored in
  ``models/assets/face_landmarks_mediapipe478.npz``.
- The 68-point iBUG 300-W layout follows from the 478: each of the 68 points is one MediaPipe
  landmark with the same anatomical meaning (table :data:`MEDIAPIPE_INDEX_OF_68`). A head model
  with only a 68-point embedding (FLAME) is fitted to those 68 of MediaPipe's detections
  (:data:`LANDMARK_LAYOUTS`).
- Hand: the 21 keypoints in MediaPipe order are bone heads (wrist, CMC/MCP/PIP/DIP/IP joints)
  and one fingertip vertex per finger, stored in ``models/assets/hand_keypoints.json``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

ASSETS = Path(str(resources.files("handface.models") / "assets"))
FACE_EMBEDDING_FILE = ASSETS / "face_landmarks_mediapipe478.npz"
HAND_KEYPOINTS_FILE = ASSETS / "hand_keypoints.json"

MEDIAPIPE_INDEX_OF_68: tuple[int, ...] = (
    # 0-16 jaw line, from the subject's right ear (image left) over the chin (8) to the left ear
    127, 234, 93, 58, 172, 136, 150, 176, 152, 400, 379, 365, 397, 288, 323, 454, 356,
    # 17-21 right brow (outer to inner), 22-26 left brow (inner to outer)
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # 27-30 nose bridge (top to tip), 31-35 nose base (right alar to left alar)
    168, 197, 5, 4, 98, 97, 2, 326, 327,
    # 36-41 right eye (outer corner, upper lid, inner corner, lower lid), 42-47 left eye
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    # 48-59 outer lips (right corner, upper lip, left corner, lower lip), 60-67 inner lips
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
    78, 81, 13, 311, 308, 402, 14, 178,
)  # fmt: skip
"""MediaPipe face-mesh index of each of the 68 iBUG points ("right" = the subject's right)."""

HAND_KEYPOINT_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "little_mcp", "little_pip", "little_dip", "little_tip",
)  # fmt: skip
"""The 21 hand keypoints in MediaPipe order."""

MEDIAPIPE_FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
"""MediaPipe face-mesh landmarks on the face outline (they slide with the silhouette)."""
NUM_MEDIAPIPE_SURFACE = 468
"""MediaPipe landmarks 468-477 are the irises; the first 468 lie on the face surface."""


@dataclass(frozen=True)
class LandmarkLayout:
    """A face landmark layout as fitting sees it: which detected MediaPipe landmarks it uses,
    which of its points lie on the face outline (they slide with the silhouette) and how many
    of its first points lie on the face surface (the rest, irises, follow the eyeballs)."""

    name: str
    num_points: int
    mediapipe_index: tuple[int, ...] | None
    """MediaPipe landmark of each point (``None``: the layout is MediaPipe's own 478)."""
    outline: tuple[int, ...]
    num_surface: int

    def select(self, mediapipe: Float[np.ndarray, "*B 478 C"]) -> Float[np.ndarray, "*B L C"]:
        """This layout's points out of MediaPipe's 478 (detections: 2D points, depths, ...)."""
        if self.mediapipe_index is None:
            return mediapipe
        return mediapipe[..., list(self.mediapipe_index), :]


LANDMARK_LAYOUTS: dict[str, LandmarkLayout] = {
    "mediapipe478": LandmarkLayout(
        "mediapipe478", 478, None, MEDIAPIPE_FACE_OVAL, NUM_MEDIAPIPE_SURFACE
    ),
    "ibug68": LandmarkLayout("ibug68", 68, MEDIAPIPE_INDEX_OF_68, tuple(range(17)), 68),
}
"""The layouts of ``HeadModel.landmark_layout``; iBUG points 0-16 are the jaw outline."""

INTER_OCULAR_68 = (36, 45)
"""Outer eye corners in the 68 layout: the normaliser of face NME."""
INTER_OCULAR_478 = (33, 263)
"""The same outer eye corners in the MediaPipe 478 layout."""


@dataclass(frozen=True)
class BarycentricEmbedding:
    """Points fixed on a mesh surface: a triangle index and barycentric weights per point."""

    face_index: Int[Tensor, " L"]
    barycentrics: Float[Tensor, "L 3"]

    def apply(
        self, vertices: Float[Tensor, "*B V 3"], faces: Int[Tensor, "F 3"]
    ) -> Float[Tensor, "*B L 3"]:
        """Positions of the embedded points on the (posed) mesh; differentiable in ``vertices``.

        Example:
            >>> verts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
            >>> emb = BarycentricEmbedding(torch.tensor([0]), torch.tensor([[0.5, 0.25, 0.25]]))
            >>> emb.apply(verts, torch.tensor([[0, 1, 2]]))
            tensor([[0.2500, 0.2500, 0.0000]])
        """
        corners = vertices[..., faces[self.face_index], :]  # (*B, L, 3, 3)
        weights = self.barycentrics.to(vertices)
        return (corners * weights[..., None]).sum(-2)

    def save(self, path: Path, **metadata: np.ndarray) -> None:
        """Write the embedding (and any extra arrays, e.g. diagnostics) to an ``.npz`` file."""
        np.savez_compressed(
            path,
            face_index=self.face_index.cpu().numpy().astype(np.int64),
            barycentrics=self.barycentrics.cpu().numpy().astype(np.float64),
            **metadata,
        )

    @classmethod
    def load(cls, path: Path) -> BarycentricEmbedding:
        with np.load(path) as data:
            return cls(torch.from_numpy(data["face_index"]), torch.from_numpy(data["barycentrics"]))


@functools.lru_cache(maxsize=1)
def load_face_landmark_embedding() -> BarycentricEmbedding:
    """The 478-landmark embedding on the Anny head (see :mod:`handface.models.build_landmarks`)."""
    if not FACE_EMBEDDING_FILE.exists():
        raise FileNotFoundError(
            f"{FACE_EMBEDDING_FILE} is missing; regenerate it with "
            "`python -m handface.models.build_landmarks`"
        )
    return BarycentricEmbedding.load(FACE_EMBEDDING_FILE)


def landmarks_68_from_478(landmarks: Float[Tensor, "*B 478 C"]) -> Float[Tensor, "*B 68 C"]:
    """Select the 68-point layout from MediaPipe's 478 landmarks (2D or 3D)."""
    return landmarks[..., list(MEDIAPIPE_INDEX_OF_68), :]


def landmarks_478_from_68(landmarks68: Float[Tensor, "*B 68 C"]) -> Float[Tensor, "*B 478 C"]:
    """The 68 points at their MediaPipe indices of a 478 array, NaN elsewhere (for a head model
    with only the 68-point layout, where a consumer expects MediaPipe's 478)."""
    shape = (*landmarks68.shape[:-2], 478, landmarks68.shape[-1])
    out = landmarks68.new_full(shape, float("nan"))
    out[..., list(MEDIAPIPE_INDEX_OF_68), :] = landmarks68
    return out


@dataclass(frozen=True)
class HandKeypointDefinition:
    """Where each of the 21 hand keypoints comes from on an Anny hand."""

    bone_indices: list[int]
    """Bone whose head is the keypoint (ignored for fingertips)."""
    tip_vertices: list[int]
    """Vertex used for fingertips (ignored for joints)."""
    is_tip: list[bool]


@functools.lru_cache(maxsize=2)
def hand_keypoint_definition(side: str) -> HandKeypointDefinition:
    """The stored keypoint definition of the ``"left"`` or ``"right"`` Anny hand."""
    table = json.loads(HAND_KEYPOINTS_FILE.read_text())[side]
    return HandKeypointDefinition(
        bone_indices=[entry["bone_index"] for entry in table],
        tip_vertices=[entry.get("vertex", 0) for entry in table],
        is_tip=[entry["kind"] == "tip" for entry in table],
    )
