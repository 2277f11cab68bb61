"""The one in-memory structure every dataset reader returns: :class:`InteractionSample`.

Frames and conventions (DESIGN.md): metres; vertices, keypoints and landmarks are in the
*camera* frame (OpenCV: x right, y down, z forward); ``R, t`` map the dataset's world frame to
the camera (``x_cam = R @ x_world + t``) and the parametric ``*_params`` are in that world frame
(synthetic data uses the camera as world frame, so there ``R = I, t = 0``). The deformation
``deformation`` is per face vertex in the head's canonical frame, with
``face_vertices_deformed = face_vertices + deformation @ head_rotation.T``. Contact labels are
per vertex, 1 when the vertex is within 5 mm of the other surface after deformation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jaxtyping import Float, Int
from torch import Tensor

HAND_SIDES: tuple[str, str] = ("left", "right")


@dataclass
class HandSample:
    """One hand of a sample, in the camera frame."""

    side: str
    """``"left"`` or ``"right"`` (the person's own left or right hand)."""
    vertices: Float[Tensor, "Vh 3"]
    faces: Int[Tensor, "Fh 3"]
    keypoints3d: Float[Tensor, "21 3"]
    """The 21 hand keypoints in MediaPipe order."""
    keypoints2d: Float[Tensor, "21 2"]
    """``keypoints3d`` projected with ``K`` (pixels, pixel centres at integers)."""
    contact: Float[Tensor, " Vh"]
    """1 where the hand vertex is within 5 mm of the deformed face, else 0."""
    params: dict[str, Tensor] = field(default_factory=dict)
    """The hand model's parameters (names of the backend that made the sample)."""


@dataclass
class InteractionSample:
    """A hand-face interaction frame with every label the methods train and evaluate on."""

    key: str
    """Identifier, unique in its dataset (``"000042"``, or ``"000042_0007"`` for a frame)."""
    image_size: tuple[int, int]
    """(width, height) in pixels."""
    K: Float[Tensor, "3 3"]
    R: Float[Tensor, "3 3"]
    t: Float[Tensor, " 3"]
    face_vertices: Float[Tensor, "Vf 3"]
    """Undeformed face (head) vertices."""
    face_vertices_deformed: Float[Tensor, "Vf 3"]
    face_faces: Int[Tensor, "Ff 3"]
    deformation: Float[Tensor, "Vf 3"]
    """Per-vertex displacement in the head's canonical frame (deformed = undeformed + D)."""
    head_rotation: Float[Tensor, "3 3"]
    """Rotation from the head's canonical frame to the camera frame."""
    face_contact: Float[Tensor, " Vf"]
    """1 where the face vertex is within 5 mm of a hand after deformation, else 0."""
    face_keypoints3d: Float[Tensor, "L 3"]
    """Face landmarks: the 478 MediaPipe landmarks (synthetic) or 68 points (Decaf)."""
    face_keypoints2d: Float[Tensor, "L 2"]
    face_keypoints68_3d: Float[Tensor, "68 3"]
    face_keypoints68_2d: Float[Tensor, "68 2"]
    head_params: dict[str, Tensor] = field(default_factory=dict)
    hands: dict[str, HandSample] = field(default_factory=dict)
    """Hands present in the sample, by side."""
    image: Float[Tensor, "H W 3"] | None = None
    """RGB in [0, 1], when the reader loads images."""
    depth: Float[Tensor, "H W"] | None = None
    """Metric depth along the optical axis (metres), 0 where nothing was rendered."""
    segmentation: Int[Tensor, "H W"] | None = None
    """0 background, 1 head, 2 left hand, 3 right hand."""
    info: dict[str, Any] = field(default_factory=dict)
    """Free-form facts about the sample (interaction family, press depth, sequence, frame)."""

    @property
    def in_contact(self) -> bool:
        """Whether any face vertex touches a hand."""
        return bool(self.face_contact.max() > 0.5) if self.face_contact.numel() else False

    def hand(self, side: str) -> HandSample | None:
        return self.hands.get(side)


SEGMENTATION_LABELS: dict[str, int] = {
    "background": 0,
    "head": 1,
    "left_hand": 2,
    "right_hand": 3,
    "body": 4,
}
"""Labels of the segmentation maps; ``head`` includes hair, ``body`` is the neck below the head
model, the shoulders and the clothes (synthetic renders)."""


def deformed_face(
    face_vertices: Float[Tensor, "*B V 3"],
    deformation: Float[Tensor, "*B V 3"],
    head_rotation: Float[Tensor, "*B 3 3"],
) -> Float[Tensor, "*B V 3"]:
    """Apply a canonical-frame deformation to posed face vertices.

    Example:
        >>> import torch
        >>> v = torch.zeros(2, 3); d = torch.tensor([[0.0, 0.0, 0.01], [0.0, 0.0, 0.0]])
        >>> deformed_face(v, d, torch.eye(3))[0, 2].item()
        0.01
    """
    return face_vertices + deformation @ head_rotation.transpose(-1, -2)
