"""The body-model interface: parameter dataclasses in, :class:`MeshOutput` out.

A backend (Anny by default; FLAME/MANO files a user supplies later) implements
:class:`HeadModel` or :class:`HandModel`. Forward passes are stateless and differentiable: the
same parameters always give the same mesh, and gradients flow to every tensor field.

Frames: every model has a *canonical frame* (metres). The head's is z up, the face looking
towards -y, origin at the base of the neck; the hand's is the wrist at the origin, fingers
along +y. ``global_orient`` (axis-angle) rotates the posed mesh about the canonical origin and
``transl`` then moves it: ``world = R(global_orient) @ canonical + transl``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field, fields, replace
from typing import Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor

HandSide = Literal["left", "right"]


def _batch_of(*tensors: Tensor | None) -> int:
    sizes = {t.shape[0] for t in tensors if t is not None}
    if len(sizes - {1}) > 1:
        raise ValueError(f"inconsistent batch sizes in parameters: {sorted(sizes)}")
    return max(sizes, default=1)


@dataclass
class HeadParams:
    """Parameters of a head model; every field has batch size B (or 1, broadcast).

    Fields left ``None`` take their neutral value (zero rotation, neutral expression, average
    shape) in the model's forward pass.
    """

    global_orient: Float[Tensor, "B 3"] | None = None
    """Axis-angle rotation of the whole head about the canonical origin (base of the neck)."""
    transl: Float[Tensor, "B 3"] | None = None
    """Translation applied after the rotation (metres)."""
    neck: Float[Tensor, "B 3"] | None = None
    """Axis-angle rotation of the head on the neck (local frame of the head bone)."""
    jaw: Float[Tensor, "B 3"] | None = None
    """Axis-angle rotation of the jaw bone (local frame); x opens the mouth."""
    eyes: Float[Tensor, "B 2 3"] | None = None
    """Axis-angle rotations of the left and right eyeballs (local frames)."""
    expression: Float[Tensor, "B 52"] | None = None
    """The 52 ARKit facial actions, each in [0, 1] (0 = neutral).

    Order: ``HeadModel.expression_labels``."""
    shape: Float[Tensor, "B S"] | None = None
    """Phenotype shape parameters in [0, 1], 0.5 = average. Order: ``HeadModel.shape_labels``."""

    @property
    def batch_size(self) -> int:
        return _batch_of(*(getattr(self, f.name) for f in fields(self)))

    def detach(self) -> HeadParams:
        return replace(self, **{f.name: _detach(getattr(self, f.name)) for f in fields(self)})


@dataclass
class HandParams:
    """Parameters of a hand model; every field has batch size B (or 1, broadcast).

    The finger articulation is given either per bone (``finger_pose``) or in the compact,
    joint-limited parameterization (``articulation``, see :mod:`handface.models.hand_pose`);
    if both are given their rotations compose (compact first, then per-bone).
    """

    global_orient: Float[Tensor, "B 3"] | None = None
    """Axis-angle rotation of the hand about the wrist (the canonical origin)."""
    transl: Float[Tensor, "B 3"] | None = None
    """Translation applied after the rotation (metres)."""
    finger_pose: Float[Tensor, "B 20 3"] | None = None
    """Per-bone axis-angle rotations in each bone's local frame.

    Order: ``HandModel.pose_bone_labels``."""
    articulation: Float[Tensor, "B 20"] | None = None
    """Unconstrained latent of the compact parameterization; 0 = flat hand, limits enforced."""
    shape: Float[Tensor, "B S"] | None = None
    """Phenotype shape parameters in [0, 1], 0.5 = average."""

    @property
    def batch_size(self) -> int:
        return _batch_of(*(getattr(self, f.name) for f in fields(self)))

    def detach(self) -> HandParams:
        return replace(self, **{f.name: _detach(getattr(self, f.name)) for f in fields(self)})


def _detach(value: Tensor | None) -> Tensor | None:
    return None if value is None else value.detach()


@dataclass
class MeshOutput:
    """What a body model's forward pass returns (batch first, metres, the world frame)."""

    vertices: Float[Tensor, "B V 3"]
    faces: Int[Tensor, "F 3"]
    joints: Float[Tensor, "B J 3"]
    """Bone heads (joint centres), order of the model's ``joint_labels``."""
    keypoints: Float[Tensor, "B K 3"] | None = None
    """Hands: the 21 keypoints in MediaPipe order."""
    landmarks: Float[Tensor, "B 478 3"] | None = None
    """Heads: the 478 MediaPipe face-mesh landmarks."""
    landmarks68: Float[Tensor, "B 68 3"] | None = None
    """Heads: the 68-point (iBUG 300-W) layout."""
    extras: dict[str, Tensor] = field(default_factory=dict)
    """Backend-specific intermediates (e.g. canonical vertices before the global transform)."""


class HeadModel(torch.nn.Module, abc.ABC):
    """Interface of a parametric head model."""

    expression_labels: list[str]
    shape_labels: list[str]
    joint_labels: list[str]
    faces: Int[Tensor, "F 3"]

    @abc.abstractmethod
    def forward(self, params: HeadParams) -> MeshOutput:
        """Pose and shape the head."""

    @property
    def num_vertices(self) -> int:
        return int(self.template_vertices.shape[0])  # type: ignore[attr-defined]


class HandModel(torch.nn.Module, abc.ABC):
    """Interface of a parametric hand model of one side."""

    side: HandSide
    shape_labels: list[str]
    joint_labels: list[str]
    pose_bone_labels: list[str]
    faces: Int[Tensor, "F 3"]

    @abc.abstractmethod
    def forward(self, params: HandParams) -> MeshOutput:
        """Pose and shape the hand."""

    @property
    def num_vertices(self) -> int:
        return int(self.template_vertices.shape[0])  # type: ignore[attr-defined]
