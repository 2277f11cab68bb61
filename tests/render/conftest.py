"""Small meshes with known geometry for the render tests."""

from __future__ import annotations

import math

import pytest
import torch


def _midpoint(verts: list, cache: dict, i: int, j: int) -> int:
    """Index of the (unit-normalized) midpoint of edge (i, j), created once per edge."""
    key = (min(i, j), max(i, j))
    if key not in cache:
        m = [(a + b) / 2 for a, b in zip(verts[i], verts[j], strict=True)]
        n = math.sqrt(sum(c * c for c in m))
        verts.append(tuple(c / n for c in m))
        cache[key] = len(verts) - 1
    return cache[key]


def make_icosphere(subdivisions: int = 2, dtype: torch.dtype = torch.float64):
    """Unit icosphere: vertices on the unit sphere, outward (counter-clockwise) faces."""
    t = (1.0 + math.sqrt(5.0)) / 2.0
    verts = [
        (-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0),
        (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
        (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1),
    ]  # fmt: skip
    faces = [
        (0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11),
        (1, 5, 9), (5, 11, 4), (11, 10, 2), (10, 7, 6), (7, 1, 8),
        (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9),
        (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1),
    ]  # fmt: skip
    verts = [tuple(c / math.sqrt(1 + t * t) for c in v) for v in verts]
    for _ in range(subdivisions):
        cache: dict[tuple[int, int], int] = {}
        new_faces = []
        for a, b, c in faces:
            ab, bc, ca = (_midpoint(verts, cache, i, j) for i, j in ((a, b), (b, c), (c, a)))
            new_faces += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new_faces
    return torch.tensor(verts, dtype=dtype), torch.tensor(faces, dtype=torch.int64)


def make_random_rotation(generator: torch.Generator, dtype=torch.float64) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=dtype))
    q = q * torch.sign(torch.diagonal(r))
    return q * torch.det(q)


def make_quad(corners, dtype=torch.float64):
    """Two triangles (0, 1, 2), (0, 2, 3) over four 3D corners."""
    return torch.tensor(corners, dtype=dtype), torch.tensor([[0, 1, 2], [0, 2, 3]])


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.fixture
def icosphere():
    """``icosphere(subdivisions=2, dtype=float64) -> (vertices, faces)``."""
    return make_icosphere


@pytest.fixture
def random_rotation():
    """``random_rotation(generator) -> (3, 3)`` proper rotation."""
    return make_random_rotation


@pytest.fixture
def quad():
    """``quad(corners) -> (vertices (4, 3), faces (2, 3))``."""
    return make_quad
