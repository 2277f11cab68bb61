"""Making a hand's mesh agree with a touch verdict by sliding it along its camera ray.

A verdict ("touching" or not) may come from evidence other than the meshes: a network's touch
head, or a video tracker's temporally consistent decision. The capture's ``touching`` is read
off the meshes (:func:`~handface.geometry.contact.touching`), so a hand whose placement
disagrees is moved, by the least depth change that agrees, along the ray through its centroid:
its image barely moves and its size stays.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from handface.geometry.contact import CONTACT_DISTANCE, surface_signed_distance, touching

SETTLE_MARGIN = 0.003
"""How far inside its verdict :func:`settle_offset` puts a hand: a touching hand within
``CONTACT_DISTANCE - margin`` of the skin, a non-touching one at least ``CONTACT_DISTANCE +
margin`` away (metres)."""

SETTLE_RANGE = 0.2
""":func:`settle_offset` moves a hand's centroid by at most ±20 % of its depth (about ±10 cm at
arm's length)."""


def settle_offset(
    hand_vertices: Float[Tensor, "Vh 3"],
    face_vertices: Float[Tensor, "Vf 3"],
    faces: Tensor,
    touches: bool,
    probe_stride: int = 4,
) -> Float[Tensor, "3"]:
    """The shortest slide along a hand's camera ray that makes it agree with a touch verdict.

    The hand (camera frame) moves by ``(f - 1) c`` for its centroid ``c``: along the ray through
    its centroid, so its image barely moves and its size stays. A coarse grid of ``f`` over
    ``1 ± SETTLE_RANGE`` finds the nearest factor that agrees (a touching hand within
    ``CONTACT_DISTANCE - SETTLE_MARGIN`` of the skin, a non-touching one beyond
    ``CONTACT_DISTANCE + SETTLE_MARGIN``), bisection then moves it to the boundary nearest 1;
    every ``probe_stride``-th hand vertex is probed. Zero when the hand agrees already (by the
    :func:`~handface.geometry.contact.touching` rule) or no factor in range does.

    Example:
        >>> import trimesh
        >>> ball = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
        >>> v = torch.tensor(ball.vertices).float() + torch.tensor([0.0, 0, 0.5])
        >>> hand = torch.tensor([[0.0, 0.0, 0.37]])  # 3 cm in front of the ball
        >>> shift = settle_offset(hand, v, torch.tensor(ball.faces), True, probe_stride=1)
        >>> 0.39 < float(hand[0, 2] + shift[2]) < 0.40
        True
    """
    centroid = hand_vertices.mean(0)
    probe = hand_vertices[::probe_stride]

    def agrees(factor: float) -> bool:
        moved = probe + (factor - 1.0) * centroid
        gap = float(surface_signed_distance(moved, face_vertices, faces).min())
        if touches:
            return gap <= CONTACT_DISTANCE - SETTLE_MARGIN
        return gap >= CONTACT_DISTANCE + SETTLE_MARGIN

    unmoved = centroid.new_zeros(3)
    full = surface_signed_distance(hand_vertices, face_vertices, faces)
    if bool(touching(full)) == touches:
        return unmoved
    grid = sorted(
        (float(f) for f in torch.linspace(1 - SETTLE_RANGE, 1 + SETTLE_RANGE, 17)),
        key=lambda f: abs(f - 1.0),
    )
    found = next((f for f in grid[1:] if agrees(f)), None)
    if found is None:
        return unmoved
    inner = 1.0  # disagrees: the boundary lies between inner and found
    for _ in range(7):
        middle = 0.5 * (inner + found)
        if agrees(middle):
            found = middle
        else:
            inner = middle
    return (found - 1.0) * centroid
