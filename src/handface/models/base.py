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
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor

if TYPE_CHECKING:
    from handface.models.landmarks import BarycentricEmbedding

HandSide = Literal["left", "right"]
LandmarkLayoutName = Literal["mediapipe478", "ibug68"]
"""Face landmark layouts a head model can provide (see :data:`HeadModel.landmark_layout`)."""
KeypointRig = Callable[..., Tensor]
"""``rig(articulation (B, A), global_orient=None, transl=None) -> keypoints (B, 21, 3)``."""


def _batch_of(*tensors: Tensor | None) -> int:
    """The batch size B of parameters of size B or 1. Traceable: symbolic sizes (torch.export,
    ONNX) are unhashable and traced ones are not plain ints, so sizes are not put in a set and
    only plain ints are checked against each other."""
    sizes = [t.shape[0] for t in tensors if t is not None]
    batched = [size for size in sizes if not (isinstance(size, int) and size == 1)]
    concrete = sorted({size for size in batched if isinstance(size, int)})
    if len(concrete) > 1:
        raise ValueError(f"inconsistent batch sizes in parameters: {[1, *concrete]}")
    return batched[0] if batched else 1


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
    expression: Float[Tensor, "B E"] | None = None
    """Expression coefficients, order ``HeadModel.expression_labels``; 0 = neutral.

    Anny: the 52 ARKit facial actions, each in [0, 1]; FLAME: expression PCA coefficients
    (unbounded). ``HeadModel.expression_bounds`` says which."""
    shape: Float[Tensor, "B S"] | None = None
    """Shape parameters, order ``HeadModel.shape_labels``; ``HeadModel.neutral_shape`` = average.

    Anny: phenotypes in [0, 1], 0.5 = average; FLAME: identity PCA coefficients, 0 = average."""

    @property
    def batch_size(self) -> int:
        return _batch_of(*(getattr(self, f.name) for f in fields(self)))

    def detach(self) -> HeadParams:
        return replace(self, **{f.name: _detach(getattr(self, f.name)) for f in fields(self)})


@dataclass
class HandParams:
    """Parameters of a hand model; every field has batch size B (or 1, broadcast).

    The finger articulation is given either per bone (``finger_pose``) or in the backend's
    compact pose latent (``articulation``, ``HandModel.num_articulation`` values; the space
    fitting optimises); if both are given their rotations compose (compact first, then
    per-bone).
    """

    global_orient: Float[Tensor, "B 3"] | None = None
    """Axis-angle rotation of the hand about the wrist (the canonical origin)."""
    transl: Float[Tensor, "B 3"] | None = None
    """Translation applied after the rotation (metres)."""
    finger_pose: Float[Tensor, "B P 3"] | None = None
    """Per-bone axis-angle rotations in each bone's local frame.

    Order: ``HandModel.pose_bone_labels`` (20 bones for Anny, 15 joints for MANO)."""
    articulation: Float[Tensor, "B A"] | None = None
    """The backend's pose latent, ``HandModel.num_articulation`` values; 0 = flat hand.

    Anny: the 20 joint-limited degrees of freedom of :mod:`handface.models.hand_pose`
    (unconstrained latent, limits enforced); MANO: PCA pose coefficients (flat mean) or, for a
    file without the PCA space, the 45 axis-angle values of its 15 joints."""
    shape: Float[Tensor, "B S"] | None = None
    """Shape parameters; ``HandModel.neutral_shape`` = average.

    Anny: phenotypes in [0, 1], 0.5 = average; MANO: betas, 0 = average."""

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


class _ShapePrior:
    """Where a model's average shape is and how far fitting may move from it."""

    neutral_shape: float = 0.0
    """Value of every shape parameter for the average head/hand (``HeadParams.shape = None``)."""
    shape_prior_scale: float = 1.0
    """Typical deviation of a shape parameter from ``neutral_shape``: fitting's shape prior
    is ``((shape - neutral_shape) / shape_prior_scale)^2``. PCA coefficients (FLAME, MANO)
    are in standard deviations, so 1."""
    shape_bounds: tuple[float, float] | None = None
    """Range every shape parameter must stay in, or ``None`` (unbounded)."""

    def neutral_shape_tensor(self, batch: int = 1, dtype: torch.dtype = torch.float32) -> Tensor:
        """The average shape, ``(batch, len(shape_labels))``."""
        return torch.full(
            (batch, len(self.shape_labels)),  # type: ignore[attr-defined]
            self.neutral_shape,
            dtype=dtype,
        )


class HeadModel(_ShapePrior, torch.nn.Module, abc.ABC):
    """Interface of a parametric head model.

    Besides the forward pass, fitting needs from a backend: its landmark layout and embedding
    (:attr:`landmark_layout`, :attr:`landmark_embedding`), the range of its expression
    coefficients (:attr:`expression_bounds`) and its shape prior (:attr:`neutral_shape`,
    :attr:`shape_prior_scale`, :attr:`shape_bounds`).
    """

    expression_labels: list[str]
    shape_labels: list[str]
    joint_labels: list[str]
    faces: Int[Tensor, "F 3"]
    landmark_embedding: BarycentricEmbedding | None = None
    """The landmarks of :attr:`landmark_layout` fixed on the mesh surface (``None``: none)."""
    expression_bounds: tuple[float, float] | None = None
    """Range of every expression coefficient, or ``None`` (unbounded); 0 is always neutral."""
    face_uvs: Float[Tensor, "F 3 2"] | None = None
    """Texture coordinates of each triangle's corners (OBJ convention, see
    :func:`handface.render.sample_texture`), or ``None``: the backend has no UV layout."""

    @abc.abstractmethod
    def forward(self, params: HeadParams) -> MeshOutput:
        """Pose and shape the head."""

    @property
    def num_vertices(self) -> int:
        return int(self.template_vertices.shape[0])  # type: ignore[attr-defined]

    @property
    def landmark_layout(self) -> LandmarkLayoutName | None:
        """The face landmark layout of :attr:`landmark_embedding` (and of the forward pass).

        ``"mediapipe478"``: the forward pass fills ``MeshOutput.landmarks`` (MediaPipe's 478)
        and ``landmarks68``; ``"ibug68"``: only ``landmarks68`` (e.g. FLAME with a 68-point
        embedding); ``None``: no landmarks, so the model cannot be fitted to detections.
        """
        if self.landmark_embedding is None:
            return None
        count = int(self.landmark_embedding.face_index.shape[0])
        layouts: dict[int, LandmarkLayoutName] = {478: "mediapipe478", 68: "ibug68"}
        if count not in layouts:
            raise ValueError(f"a landmark embedding of {count} points is neither 478 nor 68")
        return layouts[count]

    def surface_landmarks(
        self, vertices: Float[Tensor, "B V 3"]
    ) -> tuple[Float[Tensor, "B 478 3"] | None, Float[Tensor, "B 68 3"] | None]:
        """The 478 MediaPipe and the 68 iBUG landmarks on any vertices of this mesh (posed,
        deformed), as the forward pass places them; ``None`` for a layout the model lacks."""
        from handface.models.landmarks import landmarks_68_from_478

        layout = self.landmark_layout
        if layout is None:
            return None, None
        points = self.landmark_embedding.apply(vertices, self.faces)  # type: ignore[union-attr]
        if layout == "mediapipe478":
            return points, landmarks_68_from_478(points)
        return None, points


class HandModel(_ShapePrior, torch.nn.Module, abc.ABC):
    """Interface of a parametric hand model of one side.

    Besides the forward pass, fitting needs from a backend: the size of its pose latent
    (:attr:`num_articulation`, given as ``HandParams.articulation``), a keypoint-only forward
    pass (:meth:`keypoint_rig`) and its shape prior (:attr:`neutral_shape`,
    :attr:`shape_prior_scale`, :attr:`shape_bounds`).
    """

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

    @property
    @abc.abstractmethod
    def num_articulation(self) -> int:
        """Size of the pose latent ``HandParams.articulation`` (what fitting optimises)."""

    def keypoint_rig(self, shape: Float[Tensor, "1 S"] | None = None) -> KeypointRig:
        """The 21 keypoints (MediaPipe order) as a function of the articulation, at a fixed
        ``shape`` (default: the average hand).

        Returns ``rig(articulation (B, A), global_orient=None, transl=None) -> (B, 21, 3)``,
        differentiable in all three. This default runs the full forward pass; a backend may
        override it with a faster keypoint-only one (Anny does).
        """

        def rig(
            articulation: Float[Tensor, "B A"],
            global_orient: Float[Tensor, "B 3"] | None = None,
            transl: Float[Tensor, "B 3"] | None = None,
        ) -> Float[Tensor, "B 21 3"]:
            params = HandParams(
                global_orient=global_orient, transl=transl, articulation=articulation, shape=shape
            )
            keypoints = self(params).keypoints
            assert keypoints is not None, "a hand model's forward pass must fill keypoints"
            return keypoints

        return rig
