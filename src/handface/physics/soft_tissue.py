"""Quasi-static soft-tissue response of the face to a rigid hand pressed into it.

Given the undeformed head surface, a per-vertex tissue stiffness map and one or more rigid hand
meshes that intersect it, :func:`deform` returns the displacement ``D`` of the head vertices
(``deformed = head_vertices + D``) that removes the penetration while deforming the skin as
little and as smoothly as soft tissue would.

Model (small displacements, quasi-static). The unknown is the displacement ``d`` (V x 3); the
energy is a discretized surface integral plus a contact penalty:

    E(d) = 1/2 sum_i M_i w_i |d_i|^2                  attachment to the skull
         + 1/2 mu   sum_c d_c^T L d_c                 membrane (Dirichlet energy of d)
         + 1/2 beta sum_c d_c^T L M^-1 L d_c          bending (squared Laplacian of d)
         + 1/2 sum_i kappa_i relu(margin - sdf(x_i))^2    non-penetration

with ``L`` the cotangent Laplacian, ``M`` the lumped vertex areas, ``d_c`` one coordinate
column and ``sdf`` the signed distance to the deepest hand (negative inside). Why these terms:

* Attachment: the skin is tied to the skull by the tissue under it (a Winkler foundation).
  ``w_i = w_soft + (w_stiff - w_soft) * s_i^gamma`` grows with the stiffness ``s_i``: where
  skin lies on bone there is little tissue to compress or shear, so a dent stays local.
* Membrane: neighbouring skin moves together. With the attachment it sets how far a dent
  spreads beyond the contact, the decay length ``sqrt(mu / w)``: 10 mm for stiffness 0,
  ~6 mm on the cheeks of the stored map, ~2.8 mm on the forehead, 2.5 mm for stiffness 1. A
  10 mm press on the cheek has faded below 0.1 mm about 3-4 cm from the contact.
* Bending: without it the displacement has a kink at the rim of the contact; it rounds the
  rim over ``(beta / w)^(1/4)`` (~3 mm) and is kept small enough (``beta < mu^2 / 4w``) that
  the decay does not oscillate into a raised ring around the dent.
* Penalty: the hand is rigid, so the skin must leave it whatever its stiffness. Consequence:
  the press depth is always fully absorbed by the skin; stiffness decides how far the dent
  spreads around the contact, not how deep it is. ``kappa_i`` is ``penalty_weight`` times the
  vertex's own elastic stiffness (the diagonal of the elastic operator) rather than one
  constant: the mesh mixes 7 mm triangles on the cheeks with sub-millimetre slivers at the
  lips, and a constant that dominates the former loses against the latter. The remaining
  penetration is micrometres, and ``margin`` (0.1 mm) keeps the solved skin just outside.

All terms use the surface operators (areas, cotangent weights), so the response does not
depend on how the surface is triangulated. Every quadratic term is isotropic (the same scalar
operator acts on x, y and z), so one sparse factorization serves all three coordinates.

Which way out. The nearest surface point is the wrong exit for a vertex pressed more than half
way through a finger (it would leave by the back of the finger) or one under the edge of a flat
surface (it would leave sideways). A vertex leaves a hand only through faces that face the
skin: their outward normal makes a cosine below ``max_exit_alignment`` with the skin's outward
normal, so the skin moves into the head with the surface that presses on it. The skin normal
is averaged over ``exit_normal_radius`` so that folds (the mouth corner) take the direction of
the face around them, and it is oriented by the hand (a penetrating vertex entered through the
hand face nearest to it), so the winding of the head mesh does not matter. A hand cut at the
wrist is capped first, so inside and outside are unambiguous near the cut.

Solver: majorize-minimize. At the iterate ``x_k``, each vertex within the margin gets the target
``q_i = closest_i + margin * n_i`` (just outside its exit face). The signed distance is
1-Lipschitz, so ``relu(margin - sdf(x)) <= |x - q_i|`` wherever ``sdf(q_i) >= margin``, and the
surrogate ``1/2 d^T A d + 1/2 sum_active kappa_i |x_i - q_i|^2`` bounds the energy from above.
It is quadratic with the system matrix ``A + diag(kappa * active)``: one sparse Cholesky-like
LU (symmetric ordering, no pivoting: the matrix is positive definite) and three right-hand
sides. Vertices outside the active set can still move into the hand in the surrogate's
minimizer, and on a non-convex hand ``q_i`` can land inside another finger, so each step is
followed by a backtracking line search on the true energy: the recorded energy never increases.
The isotropic surrogate pins each contact vertex at its target, so tangential sliding along the
hand is slow to converge: the contact behaves as sticking, which suits skin on skin. The loop
stops once no vertex is inside a hand and an iteration gains less than ``tolerance``.

Speed: only a local region is solved for. Seeds are the vertices within ``seed_distance`` of a
hand; the free vertices are those within ``solve_radius`` (Euclidean) of a seed; all others
keep ``D = 0`` (a clamped boundary where the dent has long decayed). Signed distances are only
computed for free vertices that may be within the margin: those inside a hand's bounding box,
less their rest distance to the hands minus how far they have moved.

Limits: contact is enforced at the head's vertices (a knuckle can still poke between them by
less than an edge length); the skin does not collide with itself or with the eyeballs; a hand
that does not penetrate the skin gives ``D = 0`` (one resting within ``margin`` is not pushed
away); no gradients flow through the result.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from jaxtyping import Bool, Float, Int
from scipy.sparse.linalg import splu
from scipy.spatial import cKDTree
from torch import Tensor

from handface.errors import InputError
from handface.physics.contact import Collider, ColliderQuery, ColliderSet
from handface.physics.operators import cotangent_laplacian, lumped_mass

__all__ = ["Collider", "DeformationResult", "SoftTissueConfig", "deform"]


@dataclass
class SoftTissueConfig:
    """Material and solver settings of :func:`deform` (SI units: metres)."""

    attachment_soft: float = 1e4
    """Attachment weight ``w`` (1/m^2, relative to ``membrane_weight``) of tissue with
    stiffness 0. A dent fades out over the decay length ``sqrt(membrane_weight / w)``: 10 mm
    here, the soft cheek and lips, where a press spreads over a few centimetres."""
    attachment_stiff: float = 1.6e5
    """Attachment weight of tissue with stiffness 1 (skin on bone): decay length 2.5 mm."""
    stiffness_exponent: float = 2.0
    """``gamma`` in ``w = w_soft + (w_stiff - w_soft) * stiffness^gamma``. The stored map puts
    the cheeks at 0.1-0.35 and the forehead at ~0.9; 2 gives them decay lengths of ~6-10 mm
    and ~2.8 mm."""
    membrane_weight: float = 1.0
    """Weight ``mu`` of the membrane (Dirichlet) energy of the displacement; the other weights
    are relative to it, so only ratios matter."""
    bending_weight: float = 1.5e-6
    """Weight ``beta`` (m^2) of the squared Laplacian of the displacement: rounds the rim of a
    dent over ``(beta / w)^(1/4)``, ~3.5 mm on the soft cheek. Kept below
    ``membrane_weight^2 / (4 attachment_stiff)``: above that the decay oscillates and a dent
    gets a raised ring around it."""
    penalty_weight: float = 1e4
    """Non-penetration penalty of a vertex, as a multiple of its own elastic stiffness (the
    diagonal of the elastic operator). Relative, so that it dominates equally on large and on
    tiny or sliver triangles: the remaining penetration is about (the displacement difference
    to its neighbours) / penalty_weight, micrometres. Much larger values only make the linear
    systems ill-conditioned."""
    margin: float = 1e-4
    """Skin is pushed to at least this distance (m) outside the hands, so that the remaining
    penalty-sized penetration still leaves it outside."""
    max_exit_alignment: float = -0.25
    """A vertex inside a hand is pushed out only through hand faces whose outward normal makes
    a cosine of at most this with the skin's outward normal, i.e. the faces that press on the
    skin: it then moves into the head with the hand, rather than out of the back of a finger it
    was pressed more than half-way through, or sideways out of the side of a finger or punch
    whose edge happens to be nearer than its front."""
    exit_normal_radius: float = 0.015
    """The skin normal of that test is averaged over the touchable skin within this radius (m),
    so that creases (the corner of the mouth, the lips) take the direction of the face around
    them rather than their own."""
    seed_distance: float = 0.002
    """Vertices within this distance (m) of a hand seed the solve region."""
    solve_radius: float = 0.05
    """Vertices farther than this (m, Euclidean) from every seed stay fixed at ``D = 0``. A soft
    dent has decayed to under 1% of its depth 4 cm from the contact."""
    max_iterations: int = 30
    """Majorize-minimize iterations at most."""
    tolerance: float = 1e-3
    """Stop when an iteration lowers the energy by less than this fraction and no vertex is
    inside a hand."""
    max_backtracks: int = 5
    """Halvings of the step in the line search before the solver stops: by then the steps
    only slide contact vertices by fractions of a millimetre."""


@dataclass
class DeformationResult:
    """What :func:`deform` returns; tensors in the dtype of the head vertices given."""

    displacement: Float[Tensor, "V 3"]
    """``D``: deformed = head_vertices + D, same frame as the input."""
    energy_history: list[float]
    """Total energy at the start and after each accepted iteration (non-increasing)."""
    iterations: int
    """Accepted majorize-minimize iterations (``len(energy_history) - 1``)."""
    max_penetration_before: float
    """Depth (m) of the deepest head vertex inside any hand before the solve (0 if none)."""
    max_penetration_after: float
    """The same after the solve."""
    region: Bool[Tensor, " V"]
    """Vertices that were free in the solve; all others have ``D = 0``."""


@dataclass
class _System:
    """The problem restricted to the free vertices (all arrays indexed like ``free``)."""

    free: Int[np.ndarray, " n"]
    rest: Float[np.ndarray, "n 3"]
    elastic: sp.csc_matrix
    """``A``: the quadratic elastic energy is ``1/2 sum_c d_c^T A d_c``."""
    penalty: Float[np.ndarray, " n"]
    """Per-vertex penalty weight (``penalty_weight`` times the diagonal of ``A``; 0 for
    vertices the hands do not act on)."""
    skin: Float[np.ndarray, "n 3"]
    """Outward skin directions at rest: which side of a hand the skin may leave it by."""
    clearance: Float[np.ndarray, " n"]
    """Lower bound of each rest position's signed distance to the hands (-inf: inside, or not
    touchable). A vertex displaced by less than ``clearance - margin`` cannot be within
    ``margin`` of a hand, so it is not queried."""

    def elastic_energy(self, d: Float[np.ndarray, "n 3"]) -> float:
        return 0.5 * float(np.sum(d * (self.elastic @ d)))


def _attachment_weights(stiffness: np.ndarray, config: SoftTissueConfig) -> np.ndarray:
    s = np.clip(stiffness, 0.0, 1.0) ** config.stiffness_exponent
    return config.attachment_soft + (config.attachment_stiff - config.attachment_soft) * s


def _elastic_operator(
    rest: np.ndarray, faces: np.ndarray, stiffness: np.ndarray, config: SoftTissueConfig
) -> sp.csr_matrix:
    """``A = M W + mu L + beta L M^-1 L`` on the whole mesh (V x V)."""
    mass = lumped_mass(rest, faces)
    lap = cotangent_laplacian(rest, faces)
    inv_mass = np.divide(1.0, mass, out=np.zeros_like(mass), where=mass > 0)
    full = sp.diags(mass * _attachment_weights(stiffness, config)) + config.membrane_weight * lap
    if config.bending_weight > 0:
        full = full + config.bending_weight * (lap @ sp.diags(inv_mass) @ lap)
    return full.tocsr()


def _solve_region(
    rest: np.ndarray, faces: np.ndarray, first: ColliderQuery, config: SoftTissueConfig
) -> np.ndarray:
    """Free vertices: referenced by a face and within ``solve_radius`` of a seed vertex."""
    seeds = np.flatnonzero(first.sdf < config.seed_distance)
    dist, _ = cKDTree(rest[seeds]).query(rest, distance_upper_bound=config.solve_radius)
    used = np.zeros(rest.shape[0], dtype=bool)
    used[faces.ravel()] = True
    return np.flatnonzero(np.isfinite(dist) & used)


def _vertex_normals(rest: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vertex normals (right-hand rule of the faces) and the area around each vertex."""
    tri = rest[faces]
    face_normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = 0.5 * np.linalg.norm(face_normal, axis=1)
    normals = np.zeros_like(rest)
    weight = np.zeros(rest.shape[0])
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normal)
        weight += np.bincount(faces[:, k], weights=area, minlength=rest.shape[0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)
    return normals, weight


def _skin_directions(
    rest: np.ndarray,
    faces: np.ndarray,
    first: ColliderQuery,
    candidates: np.ndarray,
    touchable: np.ndarray,
    radius: float,
) -> np.ndarray:
    """Outward direction of the skin at the ``candidates`` vertices, at the scale of a hand.

    Orientation: the winding of the input is not trusted to be outward (a plane patch has no
    inside). A penetrating vertex entered the hand through the hand surface nearest to it,
    which faces the skin, so its outward skin normal opposes that surface's normal (hand
    meshes must be outward-oriented anyway for the winding-number inside test). The sign is the
    vote of all penetrating vertices, shallow ones (least likely to be nearer the far side of a
    finger) counting most.

    Scale: normals are averaged (area-weighted) over the touchable vertices within ``radius``,
    so that a crease or a fold (the corner of the mouth, where vertex normals point anywhere)
    gets the direction of the surface around it, which is the side a hand comes from.
    """
    normals, weight = _vertex_normals(rest, faces)
    inside = np.flatnonzero(first.sdf < 0)
    agreement = np.einsum("ij,ij->i", normals[inside], first.surface_normal[inside])
    if float(np.sum(agreement / (1e-4 - first.sdf[inside]))) > 0:
        normals = -normals
    sources = np.flatnonzero(touchable)
    if radius <= 0 or candidates.size == 0:
        return normals[candidates]
    neighbours = cKDTree(rest[sources]).query_ball_point(rest[candidates], radius)
    counts = np.fromiter((len(n) for n in neighbours), dtype=np.int64, count=candidates.size)
    flat = sources[np.fromiter(itertools.chain.from_iterable(neighbours), dtype=np.int64)]
    owner = np.repeat(np.arange(candidates.size), counts)
    smooth = np.zeros((candidates.size, 3))
    np.add.at(smooth, owner, normals[flat] * weight[flat, None])
    smooth += normals[candidates] * 1e-12  # a vertex with no touchable neighbour keeps its own
    return smooth / np.linalg.norm(smooth, axis=1, keepdims=True)


def _box_distance(points: np.ndarray, colliders: ColliderSet) -> np.ndarray:
    """Distance from each point to the nearest collider bounding box (0 inside one)."""
    dist = np.full(points.shape[0], np.inf)
    for lo, hi in zip(colliders.lo, colliders.hi, strict=True):
        gap = np.maximum(np.maximum(lo - points, points - hi), 0.0)
        dist = np.minimum(dist, np.linalg.norm(gap, axis=1))
    return dist


def _build_system(
    rest: np.ndarray,
    faces: np.ndarray,
    stiffness: np.ndarray,
    touchable: np.ndarray,
    first: ColliderQuery,
    colliders: ColliderSet,
    config: SoftTissueConfig,
) -> _System:
    """Everything the iterations need; fixed vertices have d = 0, so only the free block of
    ``A`` enters."""
    free = _solve_region(rest, faces, first, config)
    block = _elastic_operator(rest, faces, stiffness, config)[free][:, free].tocsc()
    touch = touchable[free]
    # The rest signed distance is known where it was queried; elsewhere the distance to the
    # collider boxes bounds it from below (a point outside every box is outside every hand).
    rest_sdf = first.sdf[free]
    clearance = np.where(np.isfinite(rest_sdf), rest_sdf, _box_distance(rest[free], colliders))
    clearance = np.where(touch, clearance, np.inf)
    # Skin directions matter only for points that can get inside a hand: near the boxes.
    near = touch & colliders.near(rest[free], config.exit_normal_radius)
    skin = np.zeros((free.size, 3))
    skin[near] = _skin_directions(
        rest, faces, first, free[near], touchable, config.exit_normal_radius
    )
    return _System(
        free=free,
        rest=rest[free],
        elastic=block,
        penalty=np.where(touch, config.penalty_weight * block.diagonal(), 0.0),
        skin=skin,
        clearance=clearance,
    )


@dataclass
class _State:
    d: Float[np.ndarray, "n 3"]
    energy: float
    contact: ColliderQuery


def _evaluate(
    system: _System, d: np.ndarray, colliders: ColliderSet, config: SoftTissueConfig
) -> _State:
    """True energy at ``d`` (with the collider query at the deformed positions)."""
    moved = np.linalg.norm(d, axis=1)
    maybe_near = system.clearance - moved < config.margin
    contact = colliders.query(
        system.rest + d,
        config.margin,
        system.skin,
        config.max_exit_alignment,
        mask=maybe_near,
    )
    violation = np.maximum(config.margin - contact.sdf, 0.0)
    penalty = 0.5 * float(np.sum(system.penalty * violation**2))
    return _State(d=d, energy=system.elastic_energy(d) + penalty, contact=contact)


def _surrogate_minimizer(
    system: _System, state: _State, config: SoftTissueConfig
) -> np.ndarray | None:
    """Minimizer of the quadratic majorizer at ``state`` (None if no vertex is in the margin)."""
    contact = state.contact
    active = contact.sdf < config.margin
    if not active.any():
        return None
    target = contact.closest[active] + config.margin * contact.outward[active]
    weight = np.where(active, system.penalty, 0.0)
    matrix = system.elastic + sp.diags(weight)
    rhs = np.zeros_like(state.d)
    rhs[active] = weight[active, None] * (target - system.rest[active])
    # The matrix is symmetric positive definite: a symmetric ordering without pivoting is
    # exact and 3x faster than SuperLU's default.
    lu = splu(
        matrix.tocsc(),
        permc_spec="MMD_AT_PLUS_A",
        diag_pivot_thresh=0.0,
        options={"SymmetricMode": True},
    )
    return lu.solve(rhs)


def _line_search(
    system: _System,
    state: _State,
    proposal: np.ndarray,
    colliders: ColliderSet,
    config: SoftTissueConfig,
) -> _State | None:
    """First step ``d + t (proposal - d)``, t = 1, 1/2, ..., that does not raise the energy."""
    step = proposal - state.d
    t = 1.0
    for _ in range(config.max_backtracks + 1):
        trial = _evaluate(system, state.d + t * step, colliders, config)
        if trial.energy <= state.energy:
            return trial
        t *= 0.5
    return None


def _check_inputs(vertices: Tensor, faces: Tensor, stiffness: Tensor) -> None:
    if vertices.dim() != 2 or vertices.shape[-1] != 3 or not vertices.is_floating_point():
        raise InputError(
            f"head_vertices must be a float (V, 3) tensor, got {tuple(vertices.shape)}"
        )
    if faces.dim() != 2 or faces.shape[-1] != 3 or faces.shape[0] == 0:
        raise InputError(f"faces must be (F, 3) with F >= 1, got {tuple(faces.shape)}")
    if int(faces.min()) < 0 or int(faces.max()) >= vertices.shape[0]:
        raise InputError(f"faces index vertices outside 0..{vertices.shape[0] - 1}")
    if stiffness.shape != vertices.shape[:1]:
        raise InputError(
            f"stiffness must have one value per vertex ({vertices.shape[0]}), "
            f"got shape {tuple(stiffness.shape)}"
        )


def _max_depth(sdf: np.ndarray) -> float:
    return float(max(0.0, -sdf.min())) if sdf.size else 0.0


def deform(
    head_vertices: Float[Tensor, "V 3"],
    faces: Int[Tensor, "F 3"],
    stiffness: Float[Tensor, " V"],
    hand: Collider | Sequence[Collider],
    config: SoftTissueConfig | None = None,
    *,
    contact_mask: Bool[Tensor, " V"] | None = None,
    initial: Float[Tensor, "V 3"] | None = None,
) -> DeformationResult:
    """Displacement of the head vertices that pushes them out of rigid hand(s) like soft tissue.

    Args:
        head_vertices: undeformed head surface (metres, any frame shared with the hands).
        faces: its triangles.
        stiffness: per-vertex tissue stiffness in [0, 1] (1 = skin on bone), e.g.
            ``handface.models.regions.load_face_regions().stiffness``.
        hand: one collider or several (both hands); the skin is kept outside all of them.
        config: material and solver settings (defaults: :class:`SoftTissueConfig`).
        contact_mask: vertices the hands can touch (default: all). For the Anny head pass
            ``load_face_regions().outer_surface``: the mouth lining and the eyeballs lie just
            behind the skin, so a deep press would otherwise reach them through the cheek or
            the lids and shove them out of the hand on their own; masked out, they are carried
            along by the skin they are attached to (eyeballs, being separate meshes, stay put).
        initial: a displacement to start from (a warm start: the previous video frame's
            ``D``, in this call's frame). The solver keeps whichever of it and ``D = 0`` has
            the lower energy, so a stale start never makes the result worse; it only saves
            iterations when the hands moved little.

    Returns:
        :class:`DeformationResult` with ``D`` in the dtype and on the device of
        ``head_vertices`` (the solve runs on the CPU in float64; no gradients). Only vertices
        in ``result.region`` move. Deterministic: the same inputs give the same bits.

    Example:
        >>> import trimesh
        >>> grid = trimesh.creation.box(extents=(0.1, 0.1, 0.02)).subdivide().subdivide()
        >>> v = torch.tensor(grid.vertices, dtype=torch.float32)
        >>> f = torch.tensor(grid.faces)
        >>> ball = trimesh.creation.icosphere(subdivisions=2, radius=0.01)
        >>> finger = Collider(torch.tensor(ball.vertices, dtype=torch.float32)
        ...                   + torch.tensor([0.0, 0.0, 0.018]), torch.tensor(ball.faces))
        >>> result = deform(v, f, torch.zeros(len(v)), finger)
        >>> result.max_penetration_before > 0.001, result.max_penetration_after < 1e-4
        (True, True)
    """
    config = SoftTissueConfig() if config is None else config
    _check_inputs(head_vertices, faces, stiffness)
    num = head_vertices.shape[0]
    if contact_mask is None:
        touchable = np.ones(num, dtype=bool)
    elif contact_mask.shape == (num,):
        touchable = contact_mask.detach().to("cpu", torch.bool).numpy()
    else:
        raise InputError(
            f"contact_mask must have one value per vertex ({num}), got {tuple(contact_mask.shape)}"
        )
    dtype = head_vertices.dtype
    colliders = ColliderSet(hand)
    rest = head_vertices.detach().to("cpu", torch.float64).numpy()
    faces_np = faces.detach().to("cpu", torch.int64).numpy()

    first = colliders.query(rest, max(config.seed_distance, config.margin), mask=touchable)
    depth_before = _max_depth(first.sdf)
    if not (first.sdf < 0).any():
        return DeformationResult(
            displacement=torch.zeros(num, 3, dtype=dtype, device=head_vertices.device),
            energy_history=[0.0],
            iterations=0,
            max_penetration_before=0.0,
            max_penetration_after=0.0,
            region=torch.zeros(num, dtype=torch.bool, device=head_vertices.device),
        )

    stiff_np = stiffness.detach().to("cpu", torch.float64).numpy()
    system = _build_system(rest, faces_np, stiff_np, touchable, first, colliders, config)
    free = system.free
    state = _evaluate(system, np.zeros((free.size, 3)), colliders, config)
    if initial is not None:
        if tuple(initial.shape) != (num, 3):
            raise InputError(
                f"initial must be one displacement per vertex ({num}, 3), "
                f"got {tuple(initial.shape)}"
            )
        start = initial.detach().to("cpu", torch.float64).numpy()[free]
        warm = _evaluate(system, start, colliders, config)
        if warm.energy < state.energy:
            state = warm
    history = [state.energy]
    iterations = 0
    for _ in range(config.max_iterations):
        proposal = _surrogate_minimizer(system, state, config)
        if proposal is None:
            break
        accepted = _line_search(system, state, proposal, colliders, config)
        if accepted is None:
            break
        iterations += 1
        decrease = state.energy - accepted.energy
        state = accepted
        history.append(state.energy)
        resolved = not (state.contact.sdf < 0).any()
        if resolved and decrease <= config.tolerance * history[-2]:
            break

    displacement = np.zeros_like(rest)
    displacement[free] = state.d
    region = np.zeros(num, dtype=bool)
    region[free] = True
    device = head_vertices.device
    return DeformationResult(
        displacement=torch.from_numpy(displacement).to(device, dtype),
        energy_history=history,
        iterations=iterations,
        max_penetration_before=depth_before,
        max_penetration_after=_max_depth(
            colliders.query(rest + displacement, 0.0, mask=touchable).sdf
        ),
        region=torch.from_numpy(region).to(device),
    )
