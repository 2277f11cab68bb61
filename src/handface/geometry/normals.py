"""Surface normals of triangle meshes (pure, differentiable, batched)."""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

__all__ = ["face_normals", "vertex_normals"]


def face_normals(
    vertices: Float[Tensor, "*batch V 3"], faces: Int[Tensor, "F 3"]
) -> Float[Tensor, "*batch F 3"]:
    """Unit right-hand normals of the triangles (``(v1 - v0) x (v2 - v0)``); differentiable.

    Example:
        >>> v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
        >>> face_normals(v, torch.tensor([[0, 1, 2]])).tolist()
        [[0.0, 0.0, 1.0]]
    """
    faces = faces.to(torch.int64)
    v0, v1, v2 = (vertices.index_select(-2, faces[:, i]) for i in range(3))
    return torch.nn.functional.normalize(torch.linalg.cross(v1 - v0, v2 - v0, dim=-1), dim=-1)


def vertex_normals(
    vertices: Float[Tensor, "*batch V 3"], faces: Int[Tensor, "F 3"]
) -> Float[Tensor, "*batch V 3"]:
    """Unit per-vertex normals: area-weighted sum of the incident faces' right-hand normals.

    For a counter-clockwise (seen from outside) winding they point outwards. Vertices without
    faces get a zero normal. Differentiable.

    Example:
        >>> v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
        >>> vertex_normals(v, torch.tensor([[0, 1, 2]]))[0].tolist()
        [0.0, 0.0, 1.0]
    """
    faces = faces.to(torch.int64)
    v0, v1, v2 = (vertices.index_select(-2, faces[:, i]) for i in range(3))
    # The cross product's length is twice the face area: area weighting for free.
    fn = torch.linalg.cross(v1 - v0, v2 - v0, dim=-1)
    normals = torch.zeros_like(vertices)
    for i in range(3):
        normals = normals.index_add(-2, faces[:, i], fn)
    return normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-12)
