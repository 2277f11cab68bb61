"""Coarse mesh levels and left-right mirror maps of the body models (used by DICE).

The stored asset ``models/assets/mesh_sampling_anny.npz`` (written by
``python -m handface.models.build_mesh_sampling``) holds, for the Anny models:

* the head hierarchy 4538 -> 1513 -> 504 -> 168 vertices and the right-hand hierarchy
  1609 -> 402 -> 101 vertices (:class:`~handface.geometry.mesh_sampling.MeshSampling`,
  computed on the neutral meshes by geodesic farthest-point sampling);
* :class:`MirrorMaps`: the head's left-right vertex involution, the right-hand -> left-hand
  vertex correspondence, the mirror permutations of the facial-action labels and of the 68
  iBUG landmarks, and the sign flips that mirror a compact hand articulation.

Mirror axis: x of each model's canonical frame. The head's canonical frame has z up and the
face towards -y, so the person's left is +x; the Anny left hand is the right hand with x
negated, vertex for vertex (the correspondence is the identity), and the compact articulation
mirrors by negating its five abduction angles (the build script checks all of this).

Other backends (FLAME, MANO: files the user supplies) get the same structure computed on the
fly from their neutral meshes by :func:`compute_body_sampling` (a few seconds, cached).

Example:
    >>> sampling = load_mesh_sampling("anny")
    >>> sampling.head.sizes, sampling.hand.sizes
    ((4538, 1513, 504, 168), (1609, 402, 101))
    >>> int(sampling.mirror.head_vertices[sampling.mirror.head_vertices[7]])
    7
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from handface.errors import InputError
from handface.geometry.mesh_sampling import (
    MeshSampling,
    compute_mesh_sampling,
    mirror_correspondence,
    mirror_label_permutation,
)
from handface.models.base import HandModel, HandParams, HeadModel, HeadParams
from handface.models.landmarks import ASSETS

MESH_SAMPLING_FILES = {"anny": ASSETS / "mesh_sampling_anny.npz"}
"""Stored hierarchies by name."""
ANNY_HEAD_LEVELS = (1513, 504, 168)
"""Coarse levels of the Anny head stored in the asset (DICE on FLAME: 5023 -> 1675 -> 559)."""
ANNY_HAND_LEVELS = (402, 101)
"""Coarse levels of the Anny right hand stored in the asset (DICE on MANO: 778 -> 195)."""
HEAD_MIRROR_TOLERANCE = 0.002
"""Head vertices farther than this (metres) from every reflected vertex have no mirror partner
and map to themselves in :attr:`MirrorMaps.head_vertices`."""
IBUG68_MIRROR: tuple[int, ...] = (
    16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,  # jaw line
    26, 25, 24, 23, 22, 21, 20, 19, 18, 17,  # brows
    27, 28, 29, 30, 35, 34, 33, 32, 31,  # nose bridge, nose base
    45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,  # eyes
    54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,  # outer lips
    64, 63, 62, 61, 60, 67, 66, 65,  # inner lips
)  # fmt: skip
"""Mirror of each of the 68 iBUG points, by their definition (not measured on a mesh: the
embedded inner-lip points of the Anny head are not placed symmetrically, see the tests)."""


@dataclass
class MirrorMaps:
    """How values on the body models' vertices and labels change under a left-right mirror.

    Mirroring reflects x in the models' canonical frames (and in the camera frame).
    """

    head_vertices: Int[Tensor, " Vf"]
    """Involution of the head's vertices: ``mirror(x)[i] = reflect(x[head_vertices[i]])``."""
    head_matched: Bool[Tensor, " Vf"]
    """Whether a head vertex has a true partner (Anny: all but the 32 vertices at the back of
    the left eyeball, which the right eyeball lacks; they map to themselves)."""
    hand_right_to_left: Int[Tensor, " Vh"]
    """Left-hand vertex that mirrors each right-hand vertex (a permutation)."""
    expression: Int[Tensor, " E"]
    """Mirror of each expression label (``eyeBlinkLeft <-> eyeBlinkRight``); identity for
    backends whose expressions are not named by side."""
    landmarks68: Int[Tensor, " 68"]
    """Mirror permutation of the 68 iBUG landmarks."""
    landmarks478: Int[Tensor, " 478"] | None = None
    """Mirror permutation of the 478 MediaPipe landmarks; not stored yet (the embedded
    landmarks are too asymmetric to derive it from positions, and the wheel lacks MediaPipe's
    canonical face mesh)."""
    hand_articulation_sign: Float[Tensor, " 20"] | None = None
    """Multiplying the compact articulation by this mirrors the hand pose (Anny only)."""

    @property
    def hand_left_to_right(self) -> Int[Tensor, " Vh"]:
        """Inverse of :attr:`hand_right_to_left`."""
        return torch.argsort(self.hand_right_to_left)

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "mirror_head": self.head_vertices.numpy().astype(np.int16),
            "mirror_head_matched": self.head_matched.numpy(),
            "mirror_hand_right_to_left": self.hand_right_to_left.numpy().astype(np.int16),
            "mirror_expression": self.expression.numpy().astype(np.int16),
            "mirror_landmarks68": self.landmarks68.numpy().astype(np.int16),
        }
        if self.landmarks478 is not None:
            arrays["mirror_landmarks478"] = self.landmarks478.numpy().astype(np.int16)
        if self.hand_articulation_sign is not None:
            arrays["mirror_hand_articulation_sign"] = self.hand_articulation_sign.numpy().astype(
                np.int8
            )
        return arrays

    @classmethod
    def from_arrays(cls, arrays) -> MirrorMaps:
        def index(key: str) -> Tensor | None:
            return torch.from_numpy(arrays[key].astype(np.int64)) if key in arrays else None

        sign = arrays.get("mirror_hand_articulation_sign")
        return cls(
            head_vertices=index("mirror_head"),
            head_matched=torch.from_numpy(arrays["mirror_head_matched"].astype(bool)),
            hand_right_to_left=index("mirror_hand_right_to_left"),
            expression=index("mirror_expression"),
            landmarks68=index("mirror_landmarks68"),
            landmarks478=index("mirror_landmarks478"),
            hand_articulation_sign=None
            if sign is None
            else torch.from_numpy(sign.astype(np.float32)),
        )


def reflect_points(points: Float[Tensor, "*B 3"]) -> Float[Tensor, "*B 3"]:
    """The left-right mirror of points: x negated (camera and canonical frames alike)."""
    return points * points.new_tensor((-1.0, 1.0, 1.0))


def reflect_rotation(rotation: Float[Tensor, "*B 3 3"]) -> Float[Tensor, "*B 3 3"]:
    """A rotation between mirrored frames: ``M R M`` with ``M = diag(-1, 1, 1)``."""
    flip = torch.diag(rotation.new_tensor((-1.0, 1.0, 1.0)))
    return flip @ rotation @ flip


@dataclass
class BodySampling:
    """Coarse levels of a head and a right hand, plus their mirror maps."""

    head: MeshSampling
    hand: MeshSampling
    """Levels of the *right* hand (the left hand's follow through ``mirror``)."""
    mirror: MirrorMaps
    head_digest: str = ""
    """Fingerprint of the head topology the levels belong to (:func:`topology_digest`)."""
    hand_digest: str = ""

    def truncate(self, head_levels: int, hand_levels: int) -> BodySampling:
        """Keep only the first coarse levels of each part."""
        return BodySampling(
            head=self.head.truncate(head_levels),
            hand=self.hand.truncate(hand_levels),
            mirror=self.mirror,
            head_digest=self.head_digest,
            hand_digest=self.hand_digest,
        )


def topology_digest(faces: Int[Tensor, "F 3"], num_vertices: int) -> str:
    """Short fingerprint of a mesh topology (vertex count and triangle list)."""
    data = np.ascontiguousarray(faces.detach().cpu().numpy().astype(np.int64)).tobytes()
    return f"{num_vertices}:" + hashlib.sha1(data).hexdigest()[:16]


def load_mesh_sampling(name: str = "anny") -> BodySampling:
    """The stored coarse levels and mirror maps of a model family (``"anny"``)."""
    if name not in MESH_SAMPLING_FILES:
        raise InputError(
            f"no stored mesh sampling named {name!r}; known: {', '.join(MESH_SAMPLING_FILES)} "
            "(compute others with handface.models.mesh_sampling.compute_body_sampling)"
        )
    path = MESH_SAMPLING_FILES[name]
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing; regenerate it with `python -m handface.models.build_mesh_sampling`"
        )
    with np.load(path) as data:
        arrays = dict(data)
    return BodySampling(
        head=MeshSampling.from_arrays(arrays, "head_"),
        hand=MeshSampling.from_arrays(arrays, "hand_"),
        mirror=MirrorMaps.from_arrays(arrays),
        head_digest=str(arrays["head_digest"]),
        hand_digest=str(arrays["hand_digest"]),
    )


def save_body_sampling(sampling: BodySampling, path) -> None:
    """Write a :class:`BodySampling` as a compressed ``.npz`` (what :func:`load_mesh_sampling`
    reads)."""
    np.savez_compressed(
        path,
        **sampling.head.to_arrays("head_"),
        **sampling.hand.to_arrays("hand_"),
        **sampling.mirror.to_arrays(),
        head_digest=np.array(sampling.head_digest),
        hand_digest=np.array(sampling.hand_digest),
    )


def neutral_head(model: HeadModel):
    """The model's neutral head in its canonical frame (``MeshOutput``, batch 1, no grad)."""
    like = model.template_vertices  # type: ignore[attr-defined]
    with torch.no_grad():
        return model(HeadParams(expression=like.new_zeros(1, len(model.expression_labels))))


def neutral_hand(model: HandModel):
    """The model's neutral (flat, average) hand in its canonical frame (``MeshOutput``)."""
    with torch.no_grad():
        return model(HandParams())


def _head_mirror(model: HeadModel) -> tuple[Tensor, Tensor]:
    head, distance = mirror_correspondence(
        neutral_head(model).vertices[0], max_distance=HEAD_MIRROR_TOLERANCE
    )
    return head, distance <= HEAD_MIRROR_TOLERANCE


def hand_articulation_mirror_sign(model: HandModel) -> Tensor | None:
    """Sign flips that mirror the compact articulation of ``model`` (``None``: none exists).

    Anny's hand bones have mirrored local frames, so flexion keeps its sign and abduction
    (rotation about the bone's local z) changes it.
    """
    from handface.models.anny_backend import AnnyHandModel
    from handface.models.hand_pose import COMPACT_DOFS

    if not isinstance(model, AnnyHandModel):
        return None
    return torch.tensor([-1.0 if dof.axis == 2 else 1.0 for dof in COMPACT_DOFS])


def compute_body_sampling(
    head_model: HeadModel,
    hand_model: HandModel,
    head_levels: Sequence[int],
    hand_levels: Sequence[int],
    left_hand_model: HandModel | None = None,
) -> BodySampling:
    """Coarse levels and mirror maps of any head and right-hand model, from neutral meshes.

    Args:
        head_levels, hand_levels: vertex counts of the coarse levels, finest first.
        left_hand_model: the matching left hand; without it the left hand is assumed to be the
            right one with x negated, vertex for vertex (true for Anny and MANO).
    """
    if hand_model.side != "right":
        raise InputError("the hand levels are built on the right hand; pass the right model")
    head = neutral_head(head_model).vertices[0]
    hand = neutral_hand(hand_model).vertices[0]
    head_mirror, matched = _head_mirror(head_model)
    if left_hand_model is None:
        right_to_left = torch.arange(hand.shape[0])
    else:
        right_to_left, _ = mirror_correspondence(hand, neutral_hand(left_hand_model).vertices[0])
    mirror = MirrorMaps(
        head_vertices=head_mirror,
        head_matched=matched,
        hand_right_to_left=right_to_left,
        expression=mirror_label_permutation(head_model.expression_labels),
        landmarks68=torch.tensor(IBUG68_MIRROR),
        hand_articulation_sign=hand_articulation_mirror_sign(hand_model),
    )
    return BodySampling(
        head=compute_mesh_sampling(head, head_model.faces, head_levels),
        hand=compute_mesh_sampling(hand, hand_model.faces, hand_levels),
        mirror=mirror,
        head_digest=topology_digest(head_model.faces, head.shape[0]),
        hand_digest=topology_digest(hand_model.faces, hand.shape[0]),
    )


_CACHE: dict[tuple, BodySampling] = {}


def body_sampling_for(
    head_model: HeadModel,
    hand_model: HandModel,
    head_levels: Sequence[int],
    hand_levels: Sequence[int],
) -> BodySampling:
    """Levels for these models: the stored Anny asset when it fits, else computed (cached).

    The stored hierarchy fits when the topologies match and the requested levels are its first
    levels; otherwise :func:`compute_body_sampling` runs once per (models, levels).
    """
    head_levels, hand_levels = tuple(head_levels), tuple(hand_levels)
    head_digest = topology_digest(head_model.faces, head_model.num_vertices)
    hand_digest = topology_digest(hand_model.faces, hand_model.num_vertices)
    key = (head_digest, hand_digest, head_levels, hand_levels)
    if key in _CACHE:
        return _CACHE[key]
    sampling = None
    if MESH_SAMPLING_FILES["anny"].exists():
        stored = load_mesh_sampling("anny")
        if (
            stored.head_digest == head_digest
            and stored.hand_digest == hand_digest
            and stored.head.sizes[1 : len(head_levels) + 1] == head_levels
            and stored.hand.sizes[1 : len(hand_levels) + 1] == hand_levels
        ):
            sampling = stored.truncate(len(head_levels), len(hand_levels))
    if sampling is None:
        sampling = compute_body_sampling(head_model, hand_model, head_levels, hand_levels)
    _CACHE[key] = sampling
    return sampling
