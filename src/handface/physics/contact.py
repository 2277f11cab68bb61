"""Rigid colliders (hand meshes) queried by the soft-tissue solver.

The solver needs, for skin points near a hand, how far they are inside (signed distance) and
which way is out. Only points inside a collider's bounding box (grown by the distance that
matters) are queried: every other point is provably farther than that from the mesh, so it
costs nothing and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from jaxtyping import Bool, Float, Int
from scipy.sparse.csgraph import connected_components
from torch import Tensor

from handface.errors import InputError
from handface.geometry import point_mesh_distance, signed_distance

__all__ = ["Collider", "ColliderQuery", "ColliderSet", "cap_holes"]

# Directions the skin normals are snapped to when choosing which side of a hand a point may
# leave it by (see ColliderSet.query): the 26 neighbours of a cube cell, at most ~27 degrees
# from any direction, so few distinct sub-meshes are queried.
_SNAP_DIRECTIONS = np.array(
    [(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1) if i or j or k],
    dtype=np.float64,
)
_SNAP_DIRECTIONS /= np.linalg.norm(_SNAP_DIRECTIONS, axis=1, keepdims=True)


@dataclass
class Collider:
    """A rigid body the skin must stay outside of: a triangle mesh, e.g. a posed hand.

    Its triangles must be wound outwards (counter-clockwise seen from outside). The mesh may be
    open (a hand cut at the wrist): the solver caps each hole with a fan (:func:`cap_holes`)
    and decides inside by the winding number, as :func:`handface.geometry.signed_distance`
    does. Same frame and units (metres) as the head vertices given to
    :func:`handface.physics.deform`.
    """

    vertices: Float[Tensor, "Vh 3"]
    faces: Int[Tensor, "Fh 3"]


@dataclass
class ColliderQuery:
    """Signed distance of points to the nearest (deepest) collider and the way out of it."""

    sdf: Float[np.ndarray, " N"]
    """Smallest signed distance over the colliders (negative inside); ``inf`` where a point is
    farther than the query's ``reach`` from every collider's bounding box."""
    closest: Float[np.ndarray, "N 3"]
    """The point of the collider surface ``sdf`` is measured to."""
    outward: Float[np.ndarray, "N 3"]
    """Unit direction out of the collider at ``closest``: where a point leaves it (zero where
    ``sdf`` is ``inf``)."""
    surface_normal: Float[np.ndarray, "N 3"]
    """Outward normal of the collider triangle the distance is measured to."""


def cap_holes(
    vertices: Float[np.ndarray, "V 3"], faces: Int[np.ndarray, "F 3"]
) -> tuple[Float[np.ndarray, "V2 3"], Int[np.ndarray, "F2 3"]]:
    """Close every boundary loop with a fan around its centroid, wound like its neighbours.

    A hand cut at the wrist has a winding number near 0.5 around the cut, so points there flip
    between inside and outside as they move by a fraction of a millimetre; the signed distance
    then jumps, which breaks both the solver's targets and its bound on how far a point must
    move to reach a hand. Capped, the mesh is closed and the winding number is 0 or 1.
    """
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    _, inverse, counts = np.unique(
        np.sort(directed, axis=1), axis=0, return_inverse=True, return_counts=True
    )
    boundary = directed[counts[inverse.ravel()] == 1]
    if boundary.size == 0:
        return vertices, faces
    num = vertices.shape[0]
    graph = sp.coo_matrix(
        (np.ones(len(boundary)), (boundary[:, 0], boundary[:, 1])), shape=(num, num)
    )
    _, loop_of = connected_components(graph, directed=False)
    loops, edge_loop = np.unique(loop_of[boundary[:, 0]], return_inverse=True)
    centres = np.zeros((loops.size, 3))
    loop_vertices = np.unique(boundary)
    np.add.at(centres, np.searchsorted(loops, loop_of[loop_vertices]), vertices[loop_vertices])
    centres /= np.bincount(np.searchsorted(loops, loop_of[loop_vertices]))[:, None]
    # A boundary edge a -> b of a face is traversed b -> a by the cap triangle next to it.
    cap = np.stack([boundary[:, 1], boundary[:, 0], num + edge_loop.ravel()], axis=1)
    return np.concatenate([vertices, centres]), np.concatenate([faces, cap])


class ColliderSet:
    """One or more colliders prepared for repeated queries (float64, bounding boxes)."""

    def __init__(self, colliders: Collider | Sequence[Collider]) -> None:
        if isinstance(colliders, Collider):
            colliders = [colliders]
        if len(colliders) == 0:
            raise InputError("deform needs at least one hand collider")
        self.vertices: list[Tensor] = []
        self.faces: list[Tensor] = []
        self.face_normals: list[np.ndarray] = []
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        for k, collider in enumerate(colliders):
            v, f = collider.vertices, collider.faces
            if v.dim() != 2 or v.shape[-1] != 3 or v.shape[0] == 0:
                raise InputError(f"collider {k}: vertices must be (Vh, 3), got {tuple(v.shape)}")
            if f.dim() != 2 or f.shape[-1] != 3 or f.shape[0] == 0:
                raise InputError(f"collider {k}: faces must be (Fh, 3), got {tuple(f.shape)}")
            v_np, f_np = cap_holes(
                v.detach().to("cpu", torch.float64).numpy(),
                f.detach().to("cpu", torch.int64).numpy(),
            )
            v64, f64 = torch.from_numpy(v_np), torch.from_numpy(f_np)
            tri = v_np[f_np]
            normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
            normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-300)
            self.vertices.append(v64)
            self.faces.append(f64)
            self.face_normals.append(normal)
            self.lo.append(v_np.min(axis=0))
            self.hi.append(v_np.max(axis=0))

    def near(self, points: Float[np.ndarray, "N 3"], reach: float) -> np.ndarray:
        """Which points lie within ``reach`` of some collider's bounding box (a superset of
        the points within ``reach`` of a collider)."""
        mask = np.zeros(points.shape[0], dtype=bool)
        for lo, hi in zip(self.lo, self.hi, strict=True):
            mask |= np.all((points >= lo - reach) & (points <= hi + reach), axis=1)
        return mask

    def query(
        self,
        points: Float[np.ndarray, "N 3"],
        reach: float,
        skin_normals: Float[np.ndarray, "N 3"] | None = None,
        max_exit_alignment: float = -0.25,
        mask: Bool[np.ndarray, " N"] | None = None,
    ) -> ColliderQuery:
        """Signed distance to the deepest collider for points near any of them.

        Points with no collider box within ``reach``, and points outside ``mask``, are not
        queried (``sdf = inf``): the caller only cares about distances below ``reach``.

        With ``skin_normals`` (outward normals of the skin at rest), a point inside a hand
        leaves it only through faces that face the skin: faces whose outward normal makes a
        cosine above ``max_exit_alignment`` with the skin normal (the back or the sides of a
        finger) are ignored for it, and ``sdf`` is minus the distance to the nearest remaining
        face. Without this a vertex pressed more than half-way through a finger would be
        pushed out of the back of it. For those points the skin normal is snapped to one of 26
        directions so that they share a few sub-mesh queries.
        """
        num = points.shape[0]
        sdf = np.full(num, np.inf)
        closest = np.zeros((num, 3))
        outward = np.zeros((num, 3))
        surface_normal = np.zeros((num, 3))
        for k in range(len(self.vertices)):
            near = np.all((points >= self.lo[k] - reach) & (points <= self.hi[k] + reach), axis=1)
            if mask is not None:
                near &= mask
            if not near.any():
                continue
            idx = np.flatnonzero(near)
            p = points[idx]
            res = signed_distance(torch.from_numpy(p), self.vertices[k], self.faces[k])
            s = res.sdf.numpy().copy()
            c = res.closest_points.numpy().copy()
            face = res.face_index.numpy().copy()
            # (p - c) / sdf is the unit outward direction on both sides of the surface; a point
            # on the surface has none and takes its triangle's normal.
            on_surface = np.abs(s) < 1e-12
            out = (p - c) / np.where(on_surface, 1.0, s)[:, None]
            out[on_surface] = self.face_normals[k][face[on_surface]]
            if skin_normals is not None:
                normal = skin_normals[idx]
                back = (s < 0) & (
                    np.einsum("ij,ij->i", self.face_normals[k][face], normal) > max_exit_alignment
                )
                if back.any():
                    rows = np.flatnonzero(back)
                    dist, point, front_face = self._front_closest(
                        k, p[rows], normal[rows], max_exit_alignment
                    )
                    ok = front_face >= 0
                    rows = rows[ok]
                    s[rows], c[rows], face[rows] = -dist[ok], point[ok], front_face[ok]
                    # The way out through a front face is along its normal: the direction to
                    # the nearest front point can graze other, excluded faces.
                    out[rows] = self.face_normals[k][front_face[ok]]
            deeper = s < sdf[idx]
            rows = idx[deeper]
            sdf[rows] = s[deeper]
            closest[rows] = c[deeper]
            outward[rows] = out[deeper]
            surface_normal[rows] = self.face_normals[k][face[deeper]]
        return ColliderQuery(
            sdf=sdf, closest=closest, outward=outward, surface_normal=surface_normal
        )

    def _front_closest(
        self, k: int, points: np.ndarray, normals: np.ndarray, max_exit_alignment: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Distance, closest point and face (-1: none) on the faces of collider ``k`` that
        face the skin."""
        snapped = np.argmax(normals @ _SNAP_DIRECTIONS.T, axis=1)
        dist = np.full(points.shape[0], np.inf)
        closest = points.copy()
        face = np.full(points.shape[0], -1)
        for direction in np.unique(snapped):
            rows = np.flatnonzero(snapped == direction)
            front = np.flatnonzero(
                self.face_normals[k] @ _SNAP_DIRECTIONS[direction] <= max_exit_alignment
            )
            if front.size == 0:
                continue
            res = point_mesh_distance(
                torch.from_numpy(points[rows]), self.vertices[k], self.faces[k][front]
            )
            dist[rows] = res.distance.numpy()
            closest[rows] = res.closest_points.numpy()
            face[rows] = front[res.face_index.numpy()]
        return dist, closest, face
