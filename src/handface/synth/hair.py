"""Hair for the synthetic head: a shell over the scalp with strand-like colour.

Anny's head is bald; painted hair leaves the skull's outline, which no real photo shows. The
shell is the scalp surface pushed out along its normals by the hair's thickness, thinning to
nothing at the hairline so the forehead and temples (where hands touch) stay uncovered. It is
rendered only: the physics and the labels use the head surface.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

HAIRLINE_FADE = 0.025
"""The shell thins to zero over this distance (metres) towards the edge of the scalp."""


def hair_shell(
    vertices: Float[Tensor, "V 3"],
    faces: Int[Tensor, "F 3"],
    normals: Float[Tensor, "V 3"],
    scalp: Bool[Tensor, " V"],
    thickness: float,
) -> tuple[Float[Tensor, "N 3"], Int[Tensor, "M 3"], Float[Tensor, " N"]]:
    """The shell's vertices and triangles, and each vertex's share of full thickness.

    ``normals``: outward unit vertex normals of the head; ``scalp``: the vertices under hair.

    Example:
        >>> import trimesh
        >>> sphere = trimesh.creation.icosphere(3, radius=0.1)
        >>> v = torch.tensor(sphere.vertices, dtype=torch.float32)
        >>> f = torch.tensor(sphere.faces)
        >>> shell, _, share = hair_shell(v, f, v / 0.1, v[:, 2] > 0, 0.01)
        >>> round(float(shell.norm(dim=1).max()), 3)
        0.11
    """
    inside = scalp[faces].all(dim=1)
    used = torch.unique(faces[inside])
    remap = torch.full((vertices.shape[0],), -1, dtype=torch.long)
    remap[used] = torch.arange(used.numel())
    bald = vertices[~scalp]
    if bald.numel():
        edge = torch.cdist(vertices[used], bald).min(dim=1).values
        share = (edge / HAIRLINE_FADE).clamp(0.0, 1.0)
    else:
        share = torch.ones(used.numel())
    share = share * share * (3 - 2 * share)
    shell = vertices[used] + normals[used] * (thickness * share)[:, None]
    return shell, remap[faces[inside]], share


def hair_colours(
    points: Float[Tensor, "N 3"], colour: tuple[float, float, float], seed: int
) -> Float[Tensor, "N 3"]:
    """Hair colour with fine strand-like streaks (high-frequency waves across one direction)."""
    generator = torch.Generator().manual_seed(seed)
    direction = torch.nn.functional.normalize(torch.randn(3, generator=generator), dim=0)
    frequency = 2 * torch.pi / (0.002 + 0.004 * torch.rand(1, generator=generator))
    streaks = torch.sin(points.float() @ direction * frequency)
    base = torch.tensor(colour, dtype=torch.float32)
    return (base * (1.0 + 0.25 * streaks[:, None]) + 0.02 * streaks[:, None]).clamp(0, 1)
