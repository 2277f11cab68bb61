"""Surface normals of triangle meshes (pure, differentiable, batched)."""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

from handface.errors import InputError

__all__ = ["face_normals", "vertex_normals"]


def _corners(vertices: Tensor, faces: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The three corner positions of every face; a clear error for out-of-range faces.

    The check costs nothing on the normal path: torch's own index error is translated.
    """
    faces = faces.to(torch.int64)
    try:
        v0, v1, v2 = (vertices.index_select(-2, faces[:, i]) for i in range(3))
    except (IndexError, RuntimeError) as error:
        raise InputError(
            f"faces {tuple(faces.shape)} must index the {vertices.shape[-2]} vertices "
            f"{tuple(vertices.shape)} ({error})"
        ) from error
    return v0, v1, v2


def face_normals(
    vertices: Float[Tensor, "*batch V 3"], faces: Int[Tensor, "F 3"]
) -> Float[Tensor, "*batch F 3"]:
    """Unit right-hand normals of the triangles (``(v1 - v0) x (v2 - v0)``); differentiable.

    Normals are unit length at any scale. A zero-area triangle (collapsed to a segment or a
    point, e.g. with a repeated vertex) gets a zero normal, and so does a sliver whose angle
    at ``v0`` has a sine below ``16 eps`` of the dtype (its direction would be rounding noise,
    of unit length: ``(v1 - v0) x (v2 - v0)`` is not exactly 0 when ``v1 == v2`` with fused
    multiply-adds). NaN/inf corners give a NaN normal for that face only; faces that index
    past the vertices raise :class:`~handface.errors.InputError`.

    Example:
        >>> v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
        >>> face_normals(v, torch.tensor([[0, 1, 2]])).tolist()
        [[0.0, 0.0, 1.0]]
    """
    v0, v1, v2 = _corners(vertices, faces)
    e1, e2 = v1 - v0, v2 - v0
    n = torch.linalg.cross(e1, e2, dim=-1)
    length = torch.linalg.vector_norm(n, dim=-1, keepdim=True)
    with torch.no_grad():  # |e1 x e2| = |e1| |e2| sin(angle): a scale-free degeneracy test
        floor = torch.linalg.vector_norm(e1, dim=-1, keepdim=True)
        floor *= torch.linalg.vector_norm(e2, dim=-1, keepdim=True)
        floor *= 16 * torch.finfo(n.dtype).eps
        keep = ~(length <= floor)  # NaN stays NaN
    unit = n / torch.where(keep, length, torch.ones_like(length))
    return torch.where(keep, unit, torch.zeros_like(unit))


def vertex_normals(
    vertices: Float[Tensor, "*batch V 3"], faces: Int[Tensor, "F 3"]
) -> Float[Tensor, "*batch V 3"]:
    """Unit per-vertex normals: area-weighted sum of the incident faces' right-hand normals.

    For a counter-clockwise (seen from outside) winding they point outwards. Vertices without
    faces get a zero normal; zero-area faces add nothing (up to rounding), and duplicate faces
    count twice, which leaves the direction unchanged. The normalisation has an absolute floor
    of ``1e-12`` (metres squared): a vertex whose incident faces sum to a doubled area below
    it (micrometre triangles) gets a normal shorter than 1. A vertex whose only faces have
    zero area gets a zero normal or, when their rounding noise (~eps * edge^2) exceeds the
    floor, a meaningless one: use :func:`face_normals` (which zeroes degenerate faces) to
    detect that case. A NaN/inf corner makes the normals of its face's vertices NaN.
    Differentiable.

    Example:
        >>> v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
        >>> vertex_normals(v, torch.tensor([[0, 1, 2]]))[0].tolist()
        [0.0, 0.0, 1.0]
    """
    faces = faces.to(torch.int64)
    v0, v1, v2 = _corners(vertices, faces)
    # The cross product's length is twice the face area: area weighting for free.
    fn = torch.linalg.cross(v1 - v0, v2 - v0, dim=-1)
    normals = torch.zeros_like(vertices)
    for i in range(3):
        normals = normals.index_add(-2, faces[:, i], fn)
    # The floor keeps vertices without faces at 0 and the rounding noise of zero-area faces
    # (~eps * edge^2) near 0 rather than blowing it up to a random unit vector.
    return normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-12)
