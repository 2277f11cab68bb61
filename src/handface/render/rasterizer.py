"""Hard z-buffer rasterization in pure, vectorized PyTorch (CPU friendly, no gradients).

The pass answers, for every pixel centre, "which triangle is visible here and how deep is it".
Gradients are not needed here: :mod:`handface.render.interpolate` recomputes the barycentric
coordinates of each pixel differentiably from the vertex positions, given the face index this
pass found (the same split as pytorch3d's ``rasterize_meshes`` + ``interpolate_face_attributes``
or nvdiffrast's ``rasterize`` + ``interpolate``).

Algorithm (no Python loop over triangles):

1. project the vertices, cull triangles that cross the near plane or have zero screen area;
2. per triangle, the integer bounding box of the pixel centres it may cover, clipped to the
   image; one "run" per (triangle, box row), enumerated with ``repeat_interleave`` / ``arange``
   index arithmetic. Each run is narrowed to the columns where the row crosses the triangle
   (from the three edge lines, with a small safety margin), so candidates are about the covered
   pixels rather than the whole box;
3. the run pixels are enumerated the same way, in chunks of about ``max_candidates`` so that a
   triangle covering the whole image cannot blow up memory;
4. edge-function inside test at each pixel centre, with a consistent tie rule on edges (see
   :func:`_edge_setup`), so that a closed mesh has neither cracks nor double coverage;
5. visibility with one ``scatter_reduce(amin)`` per chunk on a packed int64 key
   ``(depth bits << face_bits) | face``: the bit pattern of a positive float32 is monotonic in
   its value, so the depth order is exact at float32 precision and ties go to the lower face;
6. depth and perspective-correct barycentrics of the winning face, once per covered pixel.

Conventions follow :mod:`handface.geometry.camera`: OpenCV camera (x right, y down, z forward),
pixel ``(col, row)`` has its centre at ``(u, v) = (col, row)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from handface.errors import InputError

_INT64_MAX = torch.iinfo(torch.int64).max


@dataclass
class Fragments:
    """Per-pixel result of :func:`rasterize`.

    Shapes are ``(B, H, W[, 3])`` when the vertices were batched and ``(H, W[, 3])`` otherwise.

    Attributes:
        face_index: index of the visible face into ``faces`` (``-1`` = background), int64.
        zbuf: metric z-depth (camera frame z) of the visible surface, ``inf`` on background.
        barycentrics: perspective-correct barycentric coordinates of the pixel centre in its
            face (weights of ``faces[f, 0..2]``), zeros on background. Detached: use
            :func:`handface.render.interpolate_vertex_attributes` for gradients.
        object_id: per-pixel object label (``face_object_id`` of the visible face, ``-1`` on
            background), or ``None`` when no labels were given.
    """

    face_index: Int[Tensor, "*batch H W"]
    zbuf: Float[Tensor, "*batch H W"]
    barycentrics: Float[Tensor, "*batch H W 3"]
    object_id: Int[Tensor, "*batch H W"] | None = None

    @property
    def mask(self) -> torch.Tensor:
        """Boolean foreground mask, ``face_index >= 0``."""
        return self.face_index >= 0

    @property
    def batched(self) -> bool:
        """Whether the fragments carry a leading batch dimension."""
        return self.face_index.dim() == 3

    @property
    def image_size(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return int(self.face_index.shape[-2]), int(self.face_index.shape[-1])


@dataclass
class Scene:
    """Several meshes joined into one, so one rasterization pass resolves their occlusions.

    Build with :meth:`from_meshes`. ``face_object_id[f]`` is the position in the input list of the
    mesh face ``f`` came from, so ``rasterize(..., face_object_id=scene.face_object_id)`` labels
    every pixel with the object it shows (e.g. 0 = head, 1 = right hand).
    """

    vertices: Float[Tensor, "*batch V 3"]
    faces: Int[Tensor, "F 3"]
    face_object_id: Int[Tensor, " F"]
    vertex_object_id: Int[Tensor, " V"]
    vertex_offsets: list[int]
    face_offsets: list[int]

    @classmethod
    def from_meshes(cls, meshes: Sequence[tuple[Tensor, Tensor]]) -> Scene:
        """Join ``[(vertices, faces), ...]``; vertices all ``(V_i, 3)`` or all ``(B, V_i, 3)``."""
        vertices, faces, face_object_id = join_meshes(meshes)
        counts_v = [int(v.shape[-2]) for v, _ in meshes]
        counts_f = [int(f.shape[0]) for _, f in meshes]
        vertex_object_id = torch.repeat_interleave(
            torch.arange(len(meshes)), torch.tensor(counts_v, dtype=torch.int64)
        )
        vertex_offsets = [0]
        face_offsets = [0]
        for nv, nf in zip(counts_v, counts_f, strict=True):
            vertex_offsets.append(vertex_offsets[-1] + nv)
            face_offsets.append(face_offsets[-1] + nf)
        return cls(vertices, faces, face_object_id, vertex_object_id, vertex_offsets, face_offsets)

    def rasterize(self, K: Tensor, height: int, width: int, **kwargs) -> Fragments:
        """:func:`rasterize` this scene; ``Fragments.object_id`` labels the meshes."""
        return rasterize(
            self.vertices,
            self.faces,
            K,
            height,
            width,
            face_object_id=self.face_object_id,
            **kwargs,
        )


def join_meshes(
    meshes: Sequence[tuple[Float[Tensor, "*batch Vi 3"], Int[Tensor, "Fi 3"]]],
) -> tuple[Float[Tensor, "*batch V 3"], Int[Tensor, "F 3"], Int[Tensor, " F"]]:
    """Concatenate meshes into one vertex/face list and label each face with its mesh index.

    Differentiable w.r.t. every input vertex tensor (plain concatenation).

    Example:
        >>> tri = torch.tensor([[0, 1, 2]])
        >>> v, f, obj = join_meshes([(torch.zeros(3, 3), tri), (torch.ones(3, 3), tri)])
        >>> f.tolist(), obj.tolist()
        ([[0, 1, 2], [3, 4, 5]], [0, 1])
    """
    if len(meshes) == 0:
        raise InputError("join_meshes needs at least one (vertices, faces) pair")
    verts, faces, labels = [], [], []
    offset = 0
    for i, (v, f) in enumerate(meshes):
        if v.shape[-1] != 3 or f.dim() != 2 or f.shape[-1] != 3:
            raise InputError(
                f"mesh {i}: expected vertices (..., V, 3) and faces (F, 3), "
                f"got {tuple(v.shape)} and {tuple(f.shape)}"
            )
        verts.append(v)
        faces.append(f.to(torch.int64) + offset)
        labels.append(torch.full((f.shape[0],), i, dtype=torch.int64))
        offset += v.shape[-2]
    return torch.cat(verts, dim=-2), torch.cat(faces), torch.cat(labels)


# --- shared helpers --------------------------------------------------------------------------


def _as_batched(
    vertices: Tensor, K: Tensor
) -> tuple[Float[Tensor, "B V 3"], Float[Tensor, "B 3 3"], bool]:
    """Vertices as ``(B, V, 3)``, ``K`` as ``(B, 3, 3)``, and whether the input was batched."""
    if vertices.dim() == 2:
        vertices, batched = vertices.unsqueeze(0), False
    elif vertices.dim() == 3:
        batched = True
    else:
        raise InputError(f"vertices must be (V, 3) or (B, V, 3), got {tuple(vertices.shape)}")
    if vertices.shape[-1] != 3:
        raise InputError(f"vertices must be (V, 3) or (B, V, 3), got {tuple(vertices.shape)}")
    K = K.to(vertices.dtype)
    if K.dim() == 2:
        K = K.unsqueeze(0)
    if K.shape[-2:] != (3, 3) or K.dim() != 3:
        raise InputError(f"K must be (3, 3) or (B, 3, 3), got {tuple(K.shape)}")
    K = K.expand(vertices.shape[0], 3, 3)
    return vertices, K, batched


def _project(vertices: Float[Tensor, "B V 3"], K: Float[Tensor, "B 3 3"]) -> Float[Tensor, "B V 2"]:
    """Pinhole projection, differentiable; z is clamped like ``geometry.camera.project_points``.

    Written out here because the batched-``K`` path must pair each batch element with its own
    camera.
    """
    z = vertices[..., 2:3].clamp_min(1e-8)
    xy = vertices[..., :2] / z
    # u = fx x + s y + cx, v = fy y + cy (general K rows 0 and 1).
    return torch.einsum("bvj,bij->bvi", xy, K[:, :2, :2]) + K[:, :2, 2].unsqueeze(1)


def _check_faces(faces: Tensor, num_vertices: int) -> Tensor:
    if faces.dim() != 2 or faces.shape[1] != 3:
        raise InputError(f"faces must be (F, 3), got {tuple(faces.shape)}")
    faces = faces.to(torch.int64)
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= num_vertices):
        raise InputError(f"faces index vertices outside [0, {num_vertices})")
    return faces


def _edge_setup(
    u: Float[Tensor, "N 3"], v: Float[Tensor, "N 3"]
) -> tuple[Float[Tensor, "N 3"], Float[Tensor, "N 3"], Float[Tensor, "N 3"], Tensor, Tensor]:
    """Oriented edge functions of each triangle and the tie rule for pixels exactly on an edge.

    ``u``, ``v``: pixel coordinates of the three corners. Edge ``i`` is the one opposite vertex
    ``i`` (from ``v[i+1]`` to ``v[i+2]``), so its edge function is proportional to the
    screen-space barycentric of vertex ``i``. Returns ``(A, B, C, owns, area2)`` with
    ``e_i(col, row) = A_i * col + (B_i * row + C_i)``, oriented so that the interior is positive
    whatever the winding; ``owns`` (N, 3) bool, whether pixels with ``e_i == 0`` belong to the
    triangle; and the signed doubled area.

    Why canonical edges: the shared edge of two triangles is computed from its two endpoints in
    a fixed (lexicographic) order, so both triangles evaluate bit-identical values (up to an
    exact sign flip) and agree on which side of the edge every pixel centre lies: no cracks, no
    double coverage, even with float rounding, as long as every caller evaluates
    ``A * col + (B * row + C)`` in that order. Ties (``e == 0``) follow a symbolic perturbation:
    the pixel belongs where ``p + (eps, eps^2)`` lies, which is the classic top-left rule.
    """
    ua, va = u.roll(-1, 1), v.roll(-1, 1)  # start of edge i: vertex i + 1
    ub, vb = u.roll(-2, 1), v.roll(-2, 1)  # end of edge i: vertex i + 2
    # Lexicographic order on (u, v) picks the canonical start point.
    a_first = (ua < ub) | ((ua == ub) & (va < vb))
    lo_u, lo_v = torch.where(a_first, ua, ub), torch.where(a_first, va, vb)
    dx = torch.where(a_first, ub, ua) - lo_u
    dy = torch.where(a_first, vb, va) - lo_v
    # e(p) = (p.u - lo.u) dy - (p.v - lo.v) dx, expanded so a candidate costs 2 mul + 2 add.
    c = lo_v * dx - lo_u * dy
    area2 = (u[:, 1] - u[:, 0]) * (v[:, 2] - v[:, 0]) - (v[:, 1] - v[:, 0]) * (u[:, 2] - u[:, 0])
    # e_ab(c) = -area2 for the triangle (a, b, c) = (v[i+1], v[i+2], v[i]), so the interior
    # is positive after multiplying by -sign(area2); sign flips are exact in floating point.
    negate = (area2 > 0).unsqueeze(1) == a_first
    sign = torch.where(negate, -1.0, 1.0).to(u.dtype)
    ddx, ddy = dx * sign, dy * sign
    # Oriented direction of the edge is (ddx, ddy); the pixel on the edge is owned when
    # e(p + (eps, eps^2)) > 0, i.e. ddy > 0, or ddy == 0 and ddx < 0.
    owns = (ddy > 0) | ((ddy == 0) & (ddx < 0))
    return ddy, -ddx, c * sign, owns, area2


def _inside(e: Tensor, owns: Tensor) -> Tensor:
    """Inside test with the tie rule of :func:`_edge_setup` (``e``, ``owns`` broadcast)."""
    return ((e > 0) | ((e == 0) & owns)).all(dim=-1)


def _depth_bary(
    e: Float[Tensor, "M 3"], inv_z: Float[Tensor, "M 3"]
) -> tuple[Float[Tensor, " M"], Float[Tensor, "M 3"]]:
    """Depth and perspective-correct barycentrics from the oriented edge functions."""
    e = e.clamp_min(0.0)  # a pixel owned through a tie can carry -0.0
    w = e * inv_z
    w_sum = w.sum(-1, keepdim=True)
    bary = w / w_sum
    z = e.sum(-1) / w_sum.squeeze(-1)
    return z, bary


# --- the fast rasterizer ---------------------------------------------------------------------


@torch.no_grad()
def rasterize(
    vertices_cam: Float[Tensor, "*batch V 3"],
    faces: Int[Tensor, "F 3"],
    K: Float[Tensor, "*batch 3 3"],
    height: int,
    width: int,
    *,
    face_object_id: Int[Tensor, " F"] | None = None,
    near: float = 1e-3,
    cull_backfaces: bool = False,
    max_candidates: int = 1 << 16,
) -> Fragments:
    """Rasterize triangle meshes given in the camera frame into per-pixel fragments.

    Args:
        vertices_cam: vertex positions in the camera frame (metres), ``(V, 3)`` or ``(B, V, 3)``
            (one mesh per batch element, all sharing ``faces``).
        faces: vertex indices of each triangle.
        K: pinhole intrinsics, shared or one per batch element.
        height, width: image size in pixels; pixel centres are sampled.
        face_object_id: optional per-face label (see :func:`join_meshes`); fills
            ``Fragments.object_id``.
        near: triangles with a vertex closer than this z (metres) are culled (no clipping).
        cull_backfaces: drop triangles whose right-hand normal (counter-clockwise winding seen
            from outside) points away from the camera. Off by default so that open meshes (the
            head's neck) and inconsistent windings still render.
        max_candidates: about how many (triangle, pixel) candidates are processed at once
            (at least one image row); memory is roughly 100 bytes per candidate. Smaller chunks
            stay in cache; the result does not depend on it.

    Returns:
        :class:`Fragments`.

    Example:
        >>> from handface.geometry.camera import intrinsics_from_fov
        >>> v = torch.tensor([[-1.0, -1.0, 2.0], [1.0, -1.0, 2.0], [0.0, 1.0, 2.0]])
        >>> frags = rasterize(v, torch.tensor([[0, 1, 2]]), intrinsics_from_fov(8, 8, 90.0), 8, 8)
        >>> frags.face_index.shape, float(frags.zbuf[4, 4])
        (torch.Size([8, 8]), 2.0)
    """
    vertices, K, batched = _as_batched(vertices_cam, K)
    if not vertices.is_floating_point():
        raise InputError("vertices must be a floating-point tensor")
    height, width = int(height), int(width)
    if height <= 0 or width <= 0:
        raise InputError(f"image size must be positive, got {height}x{width}")
    B, V, _ = vertices.shape
    faces = _check_faces(faces, V)
    F = faces.shape[0]
    if face_object_id is not None and face_object_id.shape != (F,):
        raise InputError(f"face_object_id must be ({F},), got {tuple(face_object_id.shape)}")
    device, dtype = vertices.device, vertices.dtype

    proj = _project(vertices, K)  # (B, V, 2)
    # Global face g = b * F + f; corner coordinates as (B * F, 3) tensors.
    u = proj[..., 0][:, faces].reshape(B * F, 3)
    v = proj[..., 1][:, faces].reshape(B * F, 3)
    tri_z = vertices[..., 2][:, faces].reshape(B * F, 3)
    A, Bc, C, owns, area2 = _edge_setup(u, v)
    keep = (tri_z > near).all(1) & (area2 != 0) & torch.isfinite(area2)
    if cull_backfaces:
        # With y pointing down, a triangle whose right-hand normal faces the camera (n_z < 0)
        # has negative doubled area in (u, v) pixel coordinates.
        keep &= area2 < 0
    inv_z = 1.0 / tri_z

    # Bounding box of the pixel centres each triangle may cover, clipped to the image.
    x0 = u.amin(1).ceil().clamp(0, width).to(torch.int64)
    x1 = u.amax(1).floor().clamp(-1, width - 1).to(torch.int64)
    y0 = v.amin(1).ceil().clamp(0, height).to(torch.int64)
    y1 = v.amax(1).floor().clamp(-1, height - 1).to(torch.int64)
    bh = y1 - y0 + 1
    active = torch.nonzero(keep & (x1 >= x0) & (bh > 0)).squeeze(1)

    # Key layout: 31 bits of depth above face_bits of face index, below the background key.
    face_bits = max(1, int(F).bit_length())
    if face_bits > 31:
        raise InputError(f"too many faces ({F}): at most 2**31 - 1 per mesh")
    keys = torch.full((B * height * width,), _INT64_MAX, dtype=torch.int64, device=device)

    if active.numel():
        # Level 1: one "run" per (triangle, bounding-box row). Everything that depends on the
        # row only is computed here, once per run instead of once per pixel.
        bh_a = bh.index_select(0, active)
        n_runs = int(bh_a.sum())
        run_face = torch.repeat_interleave(active, bh_a, output_size=n_runs)  # global face id
        first_run = torch.cumsum(bh_a, 0) - bh_a
        run_row = torch.arange(n_runs, device=device) - torch.repeat_interleave(
            first_run - y0.index_select(0, active), bh_a, output_size=n_runs
        )
        a = A.index_select(0, run_face)
        # e_i(col, row) = A_i * col + G_i with the per-run offset G_i = B_i * row + C_i.
        g = Bc.index_select(0, run_face) * run_row.to(dtype).unsqueeze(1) + C.index_select(
            0, run_face
        )
        # Columns where all three e_i > 0 on this row, from -G_i / A_i, widened by 0.01 px
        # (float32 rounding of e moves the crossing by ~1e-7 * |col|): only a pruning of the
        # candidates, the exact test below decides coverage.
        root = -g / a
        big = float(width + 1)
        lower = torch.where(a > 0, root, -big).amax(1).clamp(-big, big)
        upper = torch.where(a < 0, root, big).amin(1).clamp(-big, big)
        # A row parallel to an edge (A_i == 0) with G_i < 0 lies wholly outside it.
        empty = ((a == 0) & (g < 0)).any(1)
        start = torch.maximum((lower - 0.01).ceil().to(torch.int64), x0.index_select(0, run_face))
        stop = torch.minimum((upper + 0.01).floor().to(torch.int64), x1.index_select(0, run_face))
        run_len = torch.where(empty, 0, (stop - start + 1).clamp_min(0))
        # Per-run depth: 1/z = sum_i e_i / z_i / sum_i e_i is a ratio of affine functions of
        # the column, (P col + Q) / (S col + T).
        iz = inv_z.index_select(0, run_face)
        run_table = torch.stack(
            [
                *a.unbind(1),
                *g.unbind(1),
                start.to(dtype),
                (a * iz).sum(1),
                (g * iz).sum(1),
                a.sum(1),
                g.sum(1),
            ]
        )  # (11, R)
        batch_of = torch.div(run_face, F, rounding_mode="floor")
        run_pix = batch_of * (height * width) + run_row * width
        run_key_face = run_face - batch_of * F

        # Level 2, chunked over whole runs (a run has at most ``width`` pixels) so that
        # memory stays bounded whatever the triangle sizes.
        budget = max(int(max_candidates), width)
        ends = torch.cumsum(run_len, 0)
        total = int(ends[-1])
        r0 = 0
        while r0 < n_runs and (r0 == 0 or int(ends[r0 - 1]) < total):
            before = int(ends[r0 - 1]) if r0 > 0 else 0
            r1 = max(int(torch.searchsorted(ends, before + budget, right=True)), r0 + 1)
            _rasterize_runs(
                r0, r1, run_len, run_table, run_pix, run_face, run_key_face, owns, keys,
                face_bits,
            )  # fmt: skip
            r0 = r1

    keys = keys.view(B, height, width)
    covered = keys != _INT64_MAX
    face_index = torch.where(covered, keys & ((1 << face_bits) - 1), -1)

    # Depth and barycentrics of the winners only: one evaluation per covered pixel, with the
    # same expression as the inside test.
    zbuf = torch.full((B, height, width), float("inf"), dtype=dtype, device=device)
    bary = torch.zeros((B, height, width, 3), dtype=dtype, device=device)
    where = torch.nonzero(covered)  # (M, 3): batch, row, col without integer division
    if where.numel():
        b_idx, row, col = where.unbind(1)
        pix = (b_idx * height + row) * width + col
        gf = b_idx * F + face_index.view(-1).index_select(0, pix)
        col = col.to(dtype).unsqueeze(1)
        row = row.to(dtype).unsqueeze(1)
        e = A.index_select(0, gf) * col + (Bc.index_select(0, gf) * row + C.index_select(0, gf))
        zz, bb = _depth_bary(e, inv_z.index_select(0, gf))
        zbuf.view(-1).index_copy_(0, pix, zz)
        bary.view(-1, 3).index_copy_(0, pix, bb)

    object_id = None
    if face_object_id is not None:
        labels = face_object_id.to(device=device, dtype=torch.int64)
        object_id = torch.where(covered, labels[face_index.clamp_min(0)], -1)

    if not batched:
        face_index, zbuf, bary = face_index[0], zbuf[0], bary[0]
        object_id = object_id[0] if object_id is not None else None
    return Fragments(face_index=face_index, zbuf=zbuf, barycentrics=bary, object_id=object_id)


def _rasterize_runs(
    r0: int,
    r1: int,
    run_len: Tensor,
    run_table: Tensor,
    run_pix: Tensor,
    run_face: Tensor,
    run_key_face: Tensor,
    owns: Tensor,
    keys: Tensor,
    face_bits: int,
) -> None:
    """Test the pixels of runs ``[r0, r1)`` and fold the covered ones into the key buffer."""
    n = run_len[r0:r1]
    total = int(n.sum())
    if total == 0:
        return
    device, dtype = run_table.device, run_table.dtype
    owner = torch.repeat_interleave(torch.arange(r0, r1, device=device), n, output_size=total)
    # Column of each candidate = running index in the chunk - start of its run + first column.
    first = run_table[6, r0:r1] - (torch.cumsum(n, 0) - n).to(dtype)
    col = torch.arange(total, device=device, dtype=dtype) + first.index_select(0, owner - r0)
    # One 1-D gather per row of the table: much faster on CPU than one 2-D gather.
    t = [run_table[i].index_select(0, owner) for i in (0, 1, 2, 3, 4, 5, 7, 8, 9, 10)]
    e0 = t[0] * col + t[3]
    e1 = t[1] * col + t[4]
    e2 = t[2] * col + t[5]
    low = torch.minimum(torch.minimum(e0, e1), e2)
    inside = low > 0
    # Pixel centres exactly on an edge are rare with real data: resolve them on their own.
    on_edge = low == 0
    if bool(on_edge.any()):
        tie = torch.nonzero(on_edge).squeeze(1)
        e_tie = torch.stack([e0[tie], e1[tie], e2[tie]], dim=1)
        own = owns.index_select(0, run_face.index_select(0, owner.index_select(0, tie)))
        inside[tie] = _inside(e_tie, own)
    inv_depth = (t[6] * col + t[7]) / (t[8] * col + t[9])
    # Guard the key's range against rounding on degenerate slivers: a non-positive or NaN
    # value becomes "infinitely far" rather than a key that overflows or wins.
    inv_depth = torch.where(inv_depth > 0, inv_depth, 0.0)
    # Nearer = larger 1/z = larger float32 bit pattern; flip so that amin picks the nearest.
    # Candidates outside the triangle get the background key, which never wins.
    depth_key = ((1 << 31) - 1) - inv_depth.to(torch.float32).view(torch.int32).to(torch.int64)
    key = (depth_key << face_bits) | run_key_face.index_select(0, owner)
    key = torch.where(inside, key, _INT64_MAX)
    pix = run_pix.index_select(0, owner) + col.to(torch.int64)
    keys.scatter_reduce_(0, pix, key, reduce="amin", include_self=True)
