"""The one definition of hand-face contact, penetration and touching (DESIGN.md).

Synthetic labels, fitting, the network, tracking, the avatar, evaluation and the demo all call
these functions, so ground truth and predictions follow one rule:

* **Signed distance** of a point to the other surface: negative inside it (generalized winding
  number, :func:`~handface.geometry.distance.signed_distance`), so penetrating points are the
  closest of all.
* **Contact**: a vertex is in contact when its signed distance to the other surface is at most
  :data:`CONTACT_DISTANCE` (5 mm). A vertex inside the other mesh is in contact, however deep.
* **Contact probability** of a predicted mesh: a logistic of that signed distance, 0.5 at
  5 mm, :data:`CONTACT_SOFTNESS` wide. A probability is read as contact when it is above
  :data:`CONTACT_PROBABILITY_THRESHOLD`.
* **Penetration depth** of a hand vertex: ``relu(-sdf)`` to the head surface; depths of
  :data:`SPURIOUS_PENETRATION` (5 cm) or more are zeroed as artefacts of the open head mesh
  (the Decaf/DICE evaluation code's rule).
* **Touching**: a hand touches the head when its closest vertex is in contact
  (``min sdf <= 5 mm``). A frame **collides** when a hand vertex is more than
  :data:`COLLISION_DEPTH` (5 mm) deep.
* **Sizes** used for pixel-unit noise scales: a hand's size is its wrist-to-middle-knuckle
  length, a face's the diagonal of its landmarks' bounding box.

Example:
    >>> import torch
    >>> contact_labels(torch.tensor([-0.02, 0.004, 0.006]))
    tensor([1., 1., 0.])
    >>> penetration_from_sdf(torch.tensor([-0.003, -0.07, 0.01]))
    tensor([0.0030, 0.0000, 0.0000])
"""

from __future__ import annotations

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from handface.errors import InputError
from handface.geometry.distance import faces_near, signed_distance

__all__ = [
    "COLLISION_DEPTH",
    "CONTACT_DISTANCE",
    "CONTACT_PROBABILITY_THRESHOLD",
    "CONTACT_SOFTNESS",
    "FAR",
    "SPURIOUS_PENETRATION",
    "collides",
    "contact_labels",
    "contact_probability",
    "face_size",
    "hand_size",
    "in_contact",
    "penetration_depth",
    "penetration_from_sdf",
    "surface_signed_distance",
    "touching",
]

CONTACT_DISTANCE = 0.005
"""A vertex is in contact within this signed distance (metres) of the other surface."""
CONTACT_SOFTNESS = 0.001
"""Width (metres) of the logistic that turns a signed distance into contact probability."""
CONTACT_PROBABILITY_THRESHOLD = 0.5
"""A contact probability strictly above this counts as contact."""
SPURIOUS_PENETRATION = 0.05
"""Penetration depths at or above this (metres) are artefacts of the open mesh and zeroed."""
COLLISION_DEPTH = 0.005
"""A frame collides when a hand vertex is deeper than this (metres) inside the head."""
FAR = 1.0
"""Signed distance (metres) reported for points beyond the query's reach of the surface."""


def contact_labels(sdf: Float[Tensor, "*shape"]) -> Float[Tensor, "*shape"]:
    """0/1 contact labels from signed distances to the other surface (``sdf <= 5 mm``)."""
    return (sdf <= CONTACT_DISTANCE).to(sdf.dtype if sdf.is_floating_point() else torch.float32)


def contact_probability(
    sdf: Float[Tensor, "*shape"], softness: float = CONTACT_SOFTNESS
) -> Float[Tensor, "*shape"]:
    """Contact probability from signed distances: 0.5 at 5 mm, towards 1 inside.

    Finite distances give probabilities in ``[0, 1]`` (saturating, never NaN); NaN gives NaN.
    ``softness`` must be positive (:class:`~handface.errors.InputError` otherwise).

    Example:
        >>> contact_probability(torch.tensor([-0.01, 0.0, 0.005, 0.02])).round(decimals=3)
        tensor([1.0000, 0.9930, 0.5000, 0.0000])
    """
    if isinstance(softness, int | float) and not softness > 0:
        raise InputError(f"contact softness must be a positive width in metres, got {softness}")
    return torch.sigmoid((CONTACT_DISTANCE - sdf) / softness)


def in_contact(probability: Float[Tensor, "*shape"]) -> Bool[Tensor, "*shape"]:
    """Whether a contact probability (or a 0/1 label) counts as contact (``> 0.5``)."""
    return probability > CONTACT_PROBABILITY_THRESHOLD


def penetration_from_sdf(
    sdf: Float[Tensor, "*shape"], spurious: float = SPURIOUS_PENETRATION
) -> Float[Tensor, "*shape"]:
    """Penetration depth ``relu(-sdf)``, with depths ``>= spurious`` (5 cm) zeroed."""
    depth = torch.relu(-sdf)
    return torch.where(depth >= spurious, torch.zeros_like(depth), depth)


def penetration_depth(
    points: Float[Tensor, "*batch N 3"],
    vertices: Float[Tensor, "*batch V 3"],
    faces: Int[Tensor, "F 3"],
    spurious: float = SPURIOUS_PENETRATION,
) -> Float[Tensor, "*batch N"]:
    """How deep each point is inside the mesh (metres, >= 0; spurious depths zeroed).

    Differentiable in both point sets (zero gradient outside and for spurious depths). Points
    with no vertices give an empty result.

    Example:
        >>> import trimesh
        >>> s = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
        >>> v, f = torch.tensor(s.vertices), torch.tensor(s.faces)
        >>> p = torch.tensor([[0.0, 0, 0.09], [0, 0, 0.0], [0, 0, 0.2]], dtype=v.dtype)
        >>> penetration_depth(p, v, f).round(decimals=4)  # 1 cm; 10 cm is spurious; outside
        tensor([0.0100, 0.0000, 0.0000], dtype=torch.float64)
    """
    if points.shape[-2] == 0:
        return points.new_zeros(points.shape[:-1])
    sdf = signed_distance(points.to(vertices.dtype), vertices, faces).sdf
    return penetration_from_sdf(sdf, spurious)


def touching(
    sdf: Float[Tensor, "*batch N"], threshold: float = CONTACT_DISTANCE
) -> Bool[Tensor, "*batch"]:
    """Whether a hand touches: its minimum signed distance is at most 5 mm (False if empty).

    NaN distances (vertices whose position is unknown) are ignored: the other vertices decide,
    and an all-NaN hand does not touch.

    Example:
        >>> touching(torch.tensor([[0.02, 0.004], [0.02, 0.03]]))
        tensor([ True, False])
    """
    # Same as ``amin <= threshold``, but a NaN entry cannot hide a touching vertex.
    return (sdf <= threshold).any(dim=-1)


def collides(
    depths: Float[Tensor, "*batch N"], threshold: float = COLLISION_DEPTH
) -> Bool[Tensor, "*batch"]:
    """Whether any penetration depth exceeds ``threshold`` (5 mm).

    NaN depths are ignored (an all-NaN or empty set does not collide).

    Example:
        >>> collides(torch.tensor([[0.003, 0.0], [0.007, 0.0]]))
        tensor([False,  True])
    """
    return (depths > threshold).any(dim=-1)


def surface_signed_distance(
    points: Float[Tensor, "N 3"],
    vertices: Float[Tensor, "V 3"],
    faces: Int[Tensor, "F 3"],
    reach: float = 0.05,
) -> Float[Tensor, " N"]:
    """Signed distance of ``points`` to a mesh, :data:`FAR` for points out of its reach.

    Only points inside the mesh's bounding box grown by ``reach`` are queried (the sign needs
    the whole mesh); the others get ``FAR``, as does every point when no triangle comes within
    ``reach`` of the points at all. Computed in float64, returned in the points' dtype. This is
    what contact labels and probabilities are made of, for a hand against the head (``points``
    = hand vertices) and for the face against a hand (``points`` = face vertices).

    Degenerate input: a point with a NaN coordinate gets NaN (the others are unaffected), one
    with an inf coordinate ``FAR``; no points give an empty result, no faces ``FAR``
    everywhere; non-finite mesh vertices raise :class:`~handface.errors.InputError`.

    Example:
        >>> import trimesh
        >>> s = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
        >>> v, f = torch.tensor(s.vertices).float(), torch.tensor(s.faces)
        >>> surface_signed_distance(torch.tensor([[0.0, 0, 0.102], [0, 0, 1.0]]), v, f)
        tensor([0.0020, 1.0000])
    """
    sdf = points.new_full((points.shape[0],), FAR)
    if points.shape[0] == 0:
        return sdf
    unknown = torch.isnan(points).any(dim=1)  # O(N): NaN points must not read as FAR
    if bool(unknown.any()):
        sdf[unknown] = float("nan")
    if vertices.shape[0] == 0 or faces.shape[0] == 0:
        if faces.shape[0]:
            raise InputError(f"faces index vertices but the mesh has none: {tuple(vertices.shape)}")
        return sdf
    low, high = vertices.min(0).values, vertices.max(0).values
    if not bool(torch.isfinite(low).all() & torch.isfinite(high).all()):
        raise InputError("surface_signed_distance: mesh vertices must be finite (NaN or inf)")
    if not faces_near(vertices, faces, points, reach).any():
        return sdf
    near = ((points >= low - reach) & (points <= high + reach)).all(dim=1)
    if near.any():
        result = signed_distance(points[near].double(), vertices.double(), faces)
        sdf[near] = result.sdf.to(points.dtype)
    return sdf


def hand_size(keypoints: Float[Tensor, "*batch 21 D"] | np.ndarray) -> Float[Tensor, "*batch"]:
    """A hand's size: the wrist-to-middle-knuckle length (MediaPipe points 0 and 9).

    Works on 2D (pixels) or 3D (metres) keypoints, tensors or arrays (an unbatched array gives
    a float, a batched one an array). Fewer than 10 keypoints raise
    :class:`~handface.errors.InputError`; coincident points 0 and 9 give 0; NaN gives NaN.
    """
    if keypoints.ndim < 2 or keypoints.shape[-2] < 10:
        raise InputError(
            f"hand_size needs the 21 hand keypoints (..., 21, D), got {tuple(keypoints.shape)}"
        )
    if isinstance(keypoints, np.ndarray):
        size = np.linalg.norm(keypoints[..., 9, :] - keypoints[..., 0, :], axis=-1)
        return float(size) if size.ndim == 0 else size
    return torch.linalg.vector_norm(keypoints[..., 9, :] - keypoints[..., 0, :], dim=-1)


def face_size(landmarks: Float[Tensor, "*batch N D"] | np.ndarray) -> Float[Tensor, "*batch"]:
    """A face's size: the diagonal of its landmarks' bounding box (pixels or metres).

    Pass the surface landmarks (MediaPipe's first 468; the irises add nothing). An unbatched
    array gives a float, a batched one an array. A single landmark (or coincident ones) gives
    0; no landmarks raise :class:`~handface.errors.InputError`; NaN gives NaN.
    """
    if landmarks.ndim < 2 or landmarks.shape[-2] == 0:
        raise InputError(f"face_size needs landmarks (..., N > 0, D), got {tuple(landmarks.shape)}")
    if isinstance(landmarks, np.ndarray):
        size = np.linalg.norm(np.ptp(landmarks, axis=-2), axis=-1)
        return float(size) if size.ndim == 0 else size
    extent = landmarks.amax(dim=-2) - landmarks.amin(dim=-2)
    return torch.linalg.vector_norm(extent, dim=-1)
