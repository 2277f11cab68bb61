"""Mesh down- and up-sampling matrices for any triangle mesh, and left-right mirror maps.

A :class:`MeshSampling` holds a hierarchy of nested vertex subsets of one mesh: level 0 is the
full mesh and level ``k`` keeps ``sizes[k]`` of the vertices of level ``k - 1``. Between two
consecutive levels it stores

* the **downsampling** matrix ``D_k`` (``sizes[k] x sizes[k-1]``): a *selection*, each coarse
  vertex is the fine vertex it was chosen from (one 1 per row). Coarse meshes therefore lie on
  the fine surface and ``D_k @ U_k = I``;
* the **upsampling** matrix ``U_k`` (``sizes[k-1] x sizes[k]``): each fine vertex is a convex
  combination of (at most) three coarse vertices, the barycentric coordinates of its closest
  point on a triangle of the coarse mesh. Rows of selected vertices are exactly one-hot, so
  ``U_k`` reproduces coarse values exactly there, and an affine field ``x -> A x + b`` is
  reproduced up to ``|A| * (distance from the vertex to the coarse surface)``.

How the levels are built (deterministic; no randomness anywhere):

1. **Geodesic farthest-point sampling** on the edge graph of the full mesh (edge lengths as
   weights), restricted to the vertices of the previous level. The first vertex is the one
   closest to their centroid (the lowest index wins ties), then each next vertex is the one
   farthest (along the surface) from all chosen so far. Every connected component of the mesh
   gets at least one vertex as long as ``size`` is at least the number of components.
2. **Geodesic Voronoi cells** of the chosen vertices on the full mesh (multi-source Dijkstra).
3. The **coarse triangles** are the dual of the cells: every full-mesh triangle whose three
   corners lie in three different cells gives the triangle of those three cell centres (as in
   a restricted Delaunay triangulation). Cells that share an edge give coarse edges.
4. Each fine vertex is projected onto the coarse triangles incident to its own cell's centre
   and takes the barycentrics of the closest projection (falling back to the closest incident
   coarse edge, then to its cell's centre alone).

This is our own construction; the DICE/METRO code derives its matrices from quadric edge
collapse instead, which also yields a selection for ``D`` and barycentric rows for ``U``.

Mirror maps (:func:`mirror_correspondence`): the vertex permutation that matches a mesh with
its reflection (a symmetric head) or one mesh with the reflection of another (right and left
hand), built by greedy matching of nearest reflected neighbours, so the result is always a
permutation, and an involution when a mesh is matched with itself.

Example:
    >>> import trimesh
    >>> ico = trimesh.creation.icosphere(subdivisions=2)
    >>> v, f = torch.tensor(ico.vertices), torch.tensor(ico.faces)
    >>> sampling = compute_mesh_sampling(v, f, (54, 18))
    >>> sampling.sizes
    (162, 54, 18)
    >>> coarse = sampling.downsample(v[None], to_level=2)
    >>> sampling.upsample(coarse, from_level=2).shape
    torch.Size([1, 162, 3])
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor

from handface.errors import InputError
from handface.geometry.distance import closest_point_on_triangles

if TYPE_CHECKING:  # scipy is imported where it is used: `import handface.geometry` stays light
    import scipy.sparse as sp

__all__ = [
    "MeshSampling",
    "compute_mesh_sampling",
    "farthest_point_sampling",
    "mirror_correspondence",
    "mirror_label_permutation",
]


@dataclass
class MeshSampling:
    """Nested coarse levels of one mesh with their down/up-sampling operators.

    Level 0 is the full mesh; ``step k`` (``k = 1 .. num_levels``) goes between level ``k - 1``
    (fine) and level ``k`` (coarse). Every operator works on ``(B, V, C)`` tensors of any
    float dtype, on any device, and is differentiable.
    """

    sizes: tuple[int, ...]
    """Vertex count of each level, full mesh first (strictly decreasing)."""
    down_index: list[Int[Tensor, " Vc"]]
    """``down_index[k-1][i]``: the level ``k - 1`` vertex that coarse vertex ``i`` of level ``k``
    is (the selection ``D_k``)."""
    up_index: list[Int[Tensor, "Vf 3"]]
    """``up_index[k-1][j]``: the three level ``k`` vertices fine vertex ``j`` of level ``k - 1``
    interpolates (padding entries repeat a real index with zero weight)."""
    up_weight: list[Float[Tensor, "Vf 3"]]
    """Convex weights (non-negative, rows sum to 1) that go with ``up_index``."""

    def __post_init__(self) -> None:
        levels = len(self.sizes) - 1
        if not (len(self.down_index) == len(self.up_index) == len(self.up_weight) == levels):
            raise ValueError(
                f"{levels} coarse levels need {levels} down/up operators, got "
                f"{len(self.down_index)}, {len(self.up_index)}, {len(self.up_weight)}"
            )
        for k in range(levels):
            fine, coarse = self.sizes[k], self.sizes[k + 1]
            if self.down_index[k].shape != (coarse,) or self.up_index[k].shape != (fine, 3):
                raise ValueError(f"operators of step {k + 1} do not match sizes {self.sizes}")

    @property
    def num_levels(self) -> int:
        """Number of coarse levels (``len(sizes) - 1``)."""
        return len(self.sizes) - 1

    def _check(self, x: Tensor, level: int, step: int) -> None:
        if not 1 <= step <= self.num_levels:
            raise InputError(f"level must be in 1..{self.num_levels}, got {step}")
        if x.dim() != 3 or x.shape[1] != self.sizes[level]:
            raise InputError(
                f"expected (B, {self.sizes[level]}, C) values on level {level}, "
                f"got {tuple(x.shape)}"
            )

    def down(self, x: Float[Tensor, "B Vf C"], level: int) -> Float[Tensor, "B Vc C"]:
        """Values on level ``level - 1`` -> values on level ``level`` (``D_level @ x``)."""
        self._check(x, level - 1, level)
        return x[:, self.down_index[level - 1].to(x.device)]

    def up(self, x: Float[Tensor, "B Vc C"], level: int) -> Float[Tensor, "B Vf C"]:
        """Values on level ``level`` -> values on level ``level - 1`` (``U_level @ x``)."""
        self._check(x, level, level)
        index = self.up_index[level - 1].to(x.device)
        weight = self.up_weight[level - 1].to(device=x.device, dtype=x.dtype)
        return (x[:, index] * weight[None, :, :, None]).sum(dim=2)

    def downsample(self, x: Float[Tensor, "B V0 C"], to_level: int) -> Float[Tensor, "B Vk C"]:
        """Full-mesh values -> values on level ``to_level`` (a selection of vertices)."""
        return x[:, self.vertex_index(to_level).to(x.device)]

    def upsample(
        self, x: Float[Tensor, "B Vk C"], from_level: int, to_level: int = 0
    ) -> Float[Tensor, "B Vj C"]:
        """Values on level ``from_level`` -> values on the finer level ``to_level``."""
        if not 0 <= to_level <= from_level:
            raise InputError(f"cannot upsample from level {from_level} to level {to_level}")
        for level in range(from_level, to_level, -1):
            x = self.up(x, level)
        return x

    def vertex_index(self, level: int) -> Int[Tensor, " Vk"]:
        """Full-mesh index of every vertex of ``level`` (level 0: ``arange(V)``)."""
        if not 0 <= level <= self.num_levels:
            raise InputError(f"level must be in 0..{self.num_levels}, got {level}")
        index = torch.arange(self.sizes[0])
        for k in range(level):
            index = index[self.down_index[k]]
        return index

    def down_matrix(self, level: int, dense: bool = False) -> Tensor:
        """``D_level`` (``sizes[level] x sizes[level - 1]``), sparse COO unless ``dense``."""
        coarse, fine = self.sizes[level], self.sizes[level - 1]
        rows = torch.arange(coarse)
        indices = torch.stack([rows, self.down_index[level - 1]])
        matrix = torch.sparse_coo_tensor(
            indices, torch.ones(coarse, dtype=torch.float64), (coarse, fine), check_invariants=True
        ).coalesce()
        return matrix.to_dense() if dense else matrix

    def up_matrix(self, level: int, dense: bool = False) -> Tensor:
        """``U_level`` (``sizes[level - 1] x sizes[level]``), sparse COO unless ``dense``."""
        fine, coarse = self.sizes[level - 1], self.sizes[level]
        rows = torch.arange(fine).repeat_interleave(3)
        indices = torch.stack([rows, self.up_index[level - 1].reshape(-1)])
        values = self.up_weight[level - 1].reshape(-1).to(torch.float64)
        matrix = torch.sparse_coo_tensor(
            indices, values, (fine, coarse), check_invariants=True
        ).coalesce()  # repeated padding indices of a row add up (their weights are 0)
        return matrix.to_dense() if dense else matrix

    def truncate(self, num_levels: int) -> MeshSampling:
        """The same hierarchy with only its first ``num_levels`` coarse levels."""
        if not 0 <= num_levels <= self.num_levels:
            raise InputError(f"cannot keep {num_levels} of {self.num_levels} levels")
        return MeshSampling(
            sizes=self.sizes[: num_levels + 1],
            down_index=self.down_index[:num_levels],
            up_index=self.up_index[:num_levels],
            up_weight=self.up_weight[:num_levels],
        )

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Compact arrays for an ``.npz`` (int16/int32 indices, float32 weights)."""
        index_dtype = np.int16 if self.sizes[0] < 2**15 else np.int32
        arrays = {f"{prefix}sizes": np.asarray(self.sizes, dtype=np.int32)}
        for k in range(self.num_levels):
            arrays[f"{prefix}down{k + 1}"] = self.down_index[k].numpy().astype(index_dtype)
            arrays[f"{prefix}up_index{k + 1}"] = self.up_index[k].numpy().astype(index_dtype)
            arrays[f"{prefix}up_weight{k + 1}"] = self.up_weight[k].numpy().astype(np.float32)
        return arrays

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> MeshSampling:
        """Inverse of :meth:`to_arrays` (weights renormalised so rows sum to 1 in float64)."""
        sizes = tuple(int(s) for s in arrays[f"{prefix}sizes"])
        down, up_index, up_weight = [], [], []
        for k in range(len(sizes) - 1):
            down.append(torch.from_numpy(arrays[f"{prefix}down{k + 1}"].astype(np.int64)))
            up_index.append(torch.from_numpy(arrays[f"{prefix}up_index{k + 1}"].astype(np.int64)))
            weight = arrays[f"{prefix}up_weight{k + 1}"].astype(np.float64)
            up_weight.append(torch.from_numpy(weight / weight.sum(axis=1, keepdims=True)))
        return cls(sizes=sizes, down_index=down, up_index=up_index, up_weight=up_weight)


# --------------------------------------------------------------------------------------------
# Construction
# --------------------------------------------------------------------------------------------


def _edge_graph(vertices: np.ndarray, faces: np.ndarray) -> sp.csr_matrix:
    import scipy.sparse as sp

    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    edges = edges[edges[:, 0] != edges[:, 1]]
    # A zero-length edge would read as "no edge" in a sparse graph: keep it at a tiny length.
    length = np.maximum(
        np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1), 1e-12
    )
    n = len(vertices)
    graph = sp.coo_matrix((length, (edges[:, 0], edges[:, 1])), shape=(n, n))
    return (graph + graph.T).tocsr()


def _as_numpy(vertices: Tensor, faces: Tensor) -> tuple[np.ndarray, np.ndarray]:
    if vertices.dim() != 2 or vertices.shape[-1] != 3 or faces.dim() != 2 or faces.shape[-1] != 3:
        raise InputError(
            f"expected vertices (V, 3) and faces (F, 3), got {tuple(vertices.shape)}, "
            f"{tuple(faces.shape)}"
        )
    return (
        vertices.detach().cpu().to(torch.float64).numpy(),
        faces.detach().cpu().to(torch.int64).numpy(),
    )


def _fps(
    graph: sp.csr_matrix, vertices: np.ndarray, candidates: np.ndarray, num: int
) -> np.ndarray:
    """Geodesic farthest-point sampling of ``num`` of the (sorted) ``candidates``."""
    from scipy.sparse import csgraph

    centroid = vertices[candidates].mean(axis=0)
    first = candidates[np.argmin(np.linalg.norm(vertices[candidates] - centroid, axis=1))]
    distance = np.full(len(vertices), np.inf)
    chosen = [int(first)]
    pick = int(first)
    limit = np.inf
    for _ in range(num - 1):
        reach = csgraph.dijkstra(graph, directed=False, indices=pick, limit=limit)
        np.minimum(distance, reach, out=distance)
        distance[chosen[-1]] = 0.0
        within = distance[candidates]
        best = int(np.argmax(within))  # first (lowest index) of equally far candidates
        pick = int(candidates[best])
        # Only vertices closer than the current farthest candidate can change the next choice.
        limit = within[best]
        chosen.append(pick)
    return np.asarray(chosen, dtype=np.int64)


def farthest_point_sampling(
    vertices: Float[Tensor, "V 3"],
    faces: Int[Tensor, "F 3"],
    num: int,
    candidates: Int[Tensor, " C"] | None = None,
) -> Int[Tensor, " num"]:
    """Choose ``num`` vertices spread evenly over the surface (geodesic farthest points).

    Distances run along mesh edges. The first vertex is the candidate nearest the candidates'
    centroid; each next one is the candidate farthest from all chosen so far. Deterministic.

    Args:
        candidates: vertices allowed to be chosen (default: all).

    Returns:
        Vertex indices in the order they were chosen.

    Example:
        >>> v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [3, 0, 0]])
        >>> f = torch.tensor([[0, 1, 1], [1, 2, 2], [2, 3, 3]])  # a polyline as thin triangles
        >>> farthest_point_sampling(v, f, 2).tolist()
        [1, 3]
    """
    v, f = _as_numpy(vertices, faces)
    cand = np.arange(len(v)) if candidates is None else np.sort(candidates.cpu().numpy())
    if not 1 <= num <= len(cand):
        raise InputError(f"cannot choose {num} of {len(cand)} candidate vertices")
    return torch.from_numpy(_fps(_edge_graph(v, f), v, cand, num))


def _coarse_step(
    graph: sp.csr_matrix,
    v: np.ndarray,
    faces: np.ndarray,
    fine: np.ndarray,
    num: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One level: choose ``num`` of the ``fine`` vertices; interpolation rows for ``fine``.

    Returns ``(down, up_index, up_weight)`` with ``down`` indexing into ``fine`` and
    ``up_index`` into the chosen vertices.
    """
    import scipy.sparse as sp
    from scipy.sparse import csgraph
    from scipy.spatial import cKDTree

    seeds = np.sort(_fps(graph, v, np.sort(fine), num))
    position_in_fine = {int(g): i for i, g in enumerate(fine)}
    down = np.asarray([position_in_fine[int(s)] for s in seeds], dtype=np.int64)
    seed_slot = np.full(len(v), -1, dtype=np.int64)
    seed_slot[seeds] = np.arange(num)

    _, _, owner_vertex = csgraph.dijkstra(
        graph, directed=False, indices=seeds, min_only=True, return_predecessors=True
    )
    owner = seed_slot[owner_vertex]  # cell (coarse vertex) of every full-mesh vertex
    unreached = owner_vertex < 0  # a component without a chosen vertex: nearest in space
    if unreached.any():
        owner[unreached] = cKDTree(v[seeds]).query(v[unreached])[1]

    # Dual of the cells: coarse triangles and edges.
    corner = owner[faces]
    distinct = (
        (corner[:, 0] != corner[:, 1])
        & (corner[:, 1] != corner[:, 2])
        & (corner[:, 0] != corner[:, 2])
    )
    triangles = np.unique(np.sort(corner[distinct], axis=1), axis=0)
    pairs = np.concatenate([corner[:, [0, 1]], corner[:, [1, 2]], corner[:, [2, 0]]])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    edges = np.unique(np.sort(pairs, axis=1), axis=0)

    points = torch.from_numpy(v[fine])
    cells = owner[fine]
    up_index = np.repeat(cells[:, None], 3, axis=1)
    up_weight = np.zeros((len(fine), 3))
    up_weight[:, 0] = 1.0
    best = np.full(len(fine), np.inf)
    seed_pos = torch.from_numpy(v[seeds])

    for simplex in (triangles, edges):
        if len(simplex) == 0:
            continue
        # (fine vertex, simplex) pairs: simplices incident to the vertex's own cell.
        incident = sp.coo_matrix(
            (
                np.ones(simplex.size),
                (simplex.reshape(-1), np.repeat(np.arange(len(simplex)), simplex.shape[1])),
            ),
            shape=(num, len(simplex)),
        ).tocsr()
        rows = incident[cells].tocoo()
        if rows.nnz == 0:
            continue
        which, s = rows.row, rows.col
        corners = simplex[s]
        if simplex.shape[1] == 3:
            a, b, c = (seed_pos[corners[:, i]] for i in range(3))
        else:  # a segment is a triangle with two equal corners
            a, b, c = seed_pos[corners[:, 0]], seed_pos[corners[:, 1]], seed_pos[corners[:, 1]]
        closest, bary = closest_point_on_triangles(points[which], a, b, c)
        dist = (closest - points[which]).norm(dim=-1).numpy()
        bary = bary.numpy()
        if simplex.shape[1] == 2:
            bary = np.stack([bary[:, 0], bary[:, 1] + bary[:, 2], np.zeros(len(bary))], axis=1)
            corners = np.concatenate([corners, corners[:, 1:]], axis=1)
        # The closest simplex per fine vertex (the first of equals); only improvements count,
        # so a vertex with a triangle never falls back to an edge.
        order = np.lexsort((dist, which))
        first = order[np.r_[True, which[order][1:] != which[order][:-1]]]
        take = first[dist[first] < best[which[first]] - 1e-15]
        best[which[take]] = dist[take]
        up_index[which[take]] = corners[take]
        up_weight[which[take]] = bary[take]

    # Selected vertices are reproduced exactly.
    is_seed = seed_slot[fine] >= 0
    up_index[is_seed] = seed_slot[fine[is_seed]][:, None]
    up_weight[is_seed] = np.array([1.0, 0.0, 0.0])
    up_weight = np.clip(up_weight, 0.0, None)
    up_weight /= up_weight.sum(axis=1, keepdims=True)
    return down, up_index, up_weight


def compute_mesh_sampling(
    vertices: Float[Tensor, "V 3"], faces: Int[Tensor, "F 3"], sizes: Sequence[int]
) -> MeshSampling:
    """Build nested coarse levels of ``sizes`` vertices (finest first) and their operators.

    See the module docstring for the construction. Each level is chosen from the vertices of
    the previous one, so every coarse vertex is a vertex of the full mesh. Takes about a second
    per thousand coarse vertices.

    Example:
        >>> import trimesh
        >>> ico = trimesh.creation.icosphere(subdivisions=1)
        >>> s = compute_mesh_sampling(torch.tensor(ico.vertices), torch.tensor(ico.faces), (12,))
        >>> s.sizes, s.up_weight[0].sum(1).sub(1).abs().max().item() < 1e-12
        ((42, 12), True)
    """
    v, f = _as_numpy(vertices, faces)
    sizes = tuple(int(s) for s in sizes)
    bounds = (len(v), *sizes)
    if any(bounds[i + 1] >= bounds[i] for i in range(len(sizes))) or (sizes and sizes[-1] < 1):
        raise InputError(f"level sizes must decrease from {len(v)} vertices, got {sizes}")
    graph = _edge_graph(v, f)
    fine = np.arange(len(v))
    down, up_index, up_weight = [], [], []
    for num in sizes:
        d, ui, uw = _coarse_step(graph, v, f, fine, num)
        down.append(torch.from_numpy(d))
        up_index.append(torch.from_numpy(ui))
        up_weight.append(torch.from_numpy(uw))
        fine = fine[d]
    return MeshSampling(
        sizes=(len(v), *sizes), down_index=down, up_index=up_index, up_weight=up_weight
    )


# --------------------------------------------------------------------------------------------
# Mirror maps
# --------------------------------------------------------------------------------------------


def mirror_correspondence(
    vertices: Float[Tensor, "V 3"],
    other: Float[Tensor, "V 3"] | None = None,
    axis: int = 0,
    neighbors: int = 8,
    max_distance: float | None = None,
) -> tuple[Int[Tensor, " V"], Float[Tensor, " V"]]:
    """Match each vertex, reflected across the plane ``x[axis] = 0``, with a vertex of ``other``.

    With ``other=None`` the mesh is matched with its own reflection (a symmetric head): the
    result is an *involution* (``perm[perm] == arange``); vertices on the symmetry plane, and
    vertices without a partner within ``max_distance`` (parts of the mesh that are not
    symmetric), map to themselves. With another mesh of the same size (a left hand for a right
    hand) it is a bijection: vertices left over by the nearest-neighbour pass are paired among
    themselves. Candidates are the ``neighbors`` nearest reflected points; pairs are taken
    greedily, shortest first.

    Returns:
        ``(perm, distance)``: ``other[perm[i]]`` matches the reflection of ``vertices[i]`` and
        ``distance[i]`` is how far apart they are (0 for an exactly symmetric pair; ``2 |x|``
        for an unmatched vertex of a self-match).

    Example:
        >>> v = torch.tensor([[-1.0, 0, 0], [0, 1, 0], [1, 0, 0], [0.5, 2, 0]])
        >>> perm, distance = mirror_correspondence(v, max_distance=0.1)
        >>> perm.tolist(), distance.tolist()
        ([2, 1, 0, 3], [0.0, 0.0, 0.0, 1.0])
    """
    from scipy.spatial import cKDTree

    source = vertices.detach().cpu().to(torch.float64).numpy()
    target = source if other is None else other.detach().cpu().to(torch.float64).numpy()
    if source.shape != target.shape:
        raise InputError(
            f"meshes to match must have the same vertices, got {source.shape} and {target.shape}"
        )
    same = other is None
    reflect = np.ones(3)
    reflect[axis] = -1.0
    reflected = source * reflect
    n = len(source)
    k = min(neighbors, n)
    dist, index = cKDTree(target).query(reflected, k=k)
    dist, index = dist.reshape(n, k), index.reshape(n, k)
    limit = np.inf if max_distance is None else max_distance
    keep = dist <= limit
    rows = np.nonzero(keep)[0]
    pairs = list(zip(dist[keep].tolist(), rows.tolist(), index[keep].tolist(), strict=True))
    perm = np.full(n, -1, dtype=np.int64)
    taken = np.zeros(n, dtype=bool)

    def assign(candidates: list[tuple[float, int, int]]) -> None:
        heapq.heapify(candidates)
        while candidates:
            _, i, j = heapq.heappop(candidates)
            if perm[i] >= 0 or taken[j] or (same and (perm[j] >= 0 or taken[i])):
                continue
            perm[i], taken[j] = j, True
            if same:
                perm[j], taken[i] = i, True

    assign(pairs)
    left = np.flatnonzero(perm < 0)
    if same:
        perm[left] = left
    elif len(left):
        free = np.flatnonzero(~taken)
        d = np.linalg.norm(reflected[left][:, None] - target[free][None], axis=-1)
        a, b = np.meshgrid(np.arange(len(left)), np.arange(len(free)), indexing="ij")
        extra = zip(
            d.ravel().tolist(), left[a.ravel()].tolist(), free[b.ravel()].tolist(), strict=True
        )
        assign(list(extra))
    distance = np.linalg.norm(reflected - target[perm], axis=1)
    return torch.from_numpy(perm), torch.from_numpy(distance)


def mirror_label_permutation(
    labels: Sequence[str], pairs: Sequence[tuple[str, str]] = (("Left", "Right"),)
) -> Int[Tensor, " L"]:
    """Index of each label's mirror image: ``"eyeBlinkLeft" <-> "eyeBlinkRight"``.

    A label whose name contains one word of a pair maps to the label with the other word in
    its place (the last occurrence is swapped); labels without a partner map to themselves.

    Example:
        >>> mirror_label_permutation(["jawOpen", "jawLeft", "jawRight"]).tolist()
        [0, 2, 1]
    """
    position = {label: i for i, label in enumerate(labels)}
    perm = list(range(len(labels)))
    for i, label in enumerate(labels):
        for a, b in pairs:
            for this, that in ((a, b), (b, a)):
                at = label.rfind(this)
                if at < 0:
                    continue
                partner = label[:at] + that + label[at + len(this) :]
                if partner in position:
                    perm[i] = position[partner]
    return torch.tensor(perm, dtype=torch.int64)
