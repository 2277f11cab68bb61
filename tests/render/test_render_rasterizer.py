"""Hard rasterization pass: coverage, depth, visibility and tie rules against exact answers."""

from __future__ import annotations

import math

import pytest
import torch

from handface.errors import InputError
from handface.geometry.camera import intrinsics_from_fov
from handface.render import Scene, join_meshes, rasterize, rasterize_reference

# A camera with f = 1 and c = 0: a point at z = 1 projects to (u, v) = (x, y), so pixel-space
# geometry (integer corners, edges through pixel centres) can be written down exactly.
K_UNIT = torch.eye(3, dtype=torch.float64)


def _pixel_grid(height: int, width: int, dtype=torch.float64):
    rows, cols = torch.meshgrid(
        torch.arange(height, dtype=dtype), torch.arange(width, dtype=dtype), indexing="ij"
    )
    return cols, rows


def _coverage_count(vertices, faces, K, height, width):
    """How many faces cover each pixel, from one rasterization per face (no z-test between them)."""
    count = torch.zeros(height, width, dtype=torch.int64)
    for f in faces:
        count += rasterize(vertices, f[None], K, height, width).mask.long()
    return count


# --- coverage --------------------------------------------------------------------------------


def test_sphere_coverage_matches_projected_disk(icosphere, random_rotation, generator):
    # An icosphere has its vertices on the sphere of radius r and contains the ball of its
    # in-radius r_in (the nearest face plane), so its silhouette lies between the projected disks
    # of those two spheres: every pixel centre in the inner disk is covered, none outside the
    # outer disk. For a sphere of radius s centred on the optical axis at distance d the
    # silhouette is a disk of radius f * s / sqrt(d^2 - s^2) (the tangent cone).
    unit_v, faces = icosphere(3)
    unit_v = unit_v @ random_rotation(generator).T  # edges in no special direction
    r, d, size = 0.1, 0.5, 129
    K = intrinsics_from_fov(size, size, 40.0, dtype=torch.float64)
    vertices = unit_v * r + torch.tensor([0.0, 0.0, d], dtype=torch.float64)
    tri = unit_v[faces]
    normal = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    r_in = r * float(((normal / normal.norm(dim=1, keepdim=True)) * tri[:, 0]).sum(1).min())
    f = float(K[0, 0])
    radius_out = f * r / math.sqrt(d * d - r * r)
    radius_in = f * r_in / math.sqrt(d * d - r_in * r_in)
    assert radius_out - radius_in < 0.2  # the bound is tight enough to be a real check

    frags = rasterize(vertices.float(), faces, K.float(), size, size)
    cols, rows = _pixel_grid(size, size)
    dist = torch.hypot(cols - K[0, 2], rows - K[1, 2])
    covered = frags.mask
    assert covered[dist < radius_in - 1e-3].all()
    assert not covered[dist > radius_out + 1e-3].any()
    # Area: within the band between the two disks plus one pixel of lattice error along the
    # perimeter (pixel-centre counting of a convex shape is off by less than its boundary length).
    area = math.pi * radius_out**2
    assert (
        abs(int(covered.sum()) - area)
        <= math.pi * (radius_out**2 - radius_in**2) + 2 * math.pi * radius_out
    )
    assert abs(int(covered.sum()) - area) / area < 0.01

    # Depth: between the ray's intersections with the outer and the inner sphere.
    ray = torch.stack([(cols - K[0, 2]) / f, (rows - K[1, 2]) / f, torch.ones_like(cols)], -1)
    a = (ray * ray).sum(-1)

    def hit_z(s: float) -> torch.Tensor:  # nearest intersection of t * ray with the sphere s
        disc = (d**2) - a * (d * d - s * s)  # b = -2 d (ray . c has only z) -> quarter form
        return (d - torch.sqrt(disc.clamp_min(0))) / a

    inner = dist < radius_in - 1e-3
    z = frags.zbuf.double()
    assert (z[inner] >= hit_z(r)[inner] - 1e-5).all()
    assert (z[inner] <= hit_z(r_in)[inner] + 1e-5).all()
    centre = size // 2
    assert d - r - 1e-5 <= float(z[centre, centre]) <= d - r_in + 1e-5


def test_single_triangle_pixels_match_brute_force(generator):
    # Random (non-integer) vertices: no pixel centre lies exactly on an edge, so the covered set
    # is exactly the pixels whose three 2D barycentric coordinates are positive.
    H, W = 23, 31
    K = torch.tensor([[20.0, 0.0, 15.0], [0.0, 20.0, 11.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    cols, rows = _pixel_grid(H, W)
    tested = 0
    for _ in range(20):
        v = torch.rand(3, 3, generator=generator, dtype=torch.float64)
        v[:, :2] = v[:, :2] * 2.4 - 1.2
        v[:, 2] = 1.0 + v[:, 2]
        v[:, :2] *= v[:, 2:]  # spread in the image regardless of depth
        frags = rasterize(v, torch.tensor([[0, 1, 2]]), K, H, W)
        uv = (v[:, :2] / v[:, 2:]) @ K[:2, :2].T + K[:2, 2]
        T = torch.stack([uv[1] - uv[0], uv[2] - uv[0]], dim=1)  # 2x2
        rel = torch.stack([cols - uv[0, 0], rows - uv[0, 1]], dim=-1)
        l12 = rel @ torch.linalg.inv(T).T
        lam = torch.cat([1 - l12.sum(-1, keepdim=True), l12], dim=-1)
        inside = (lam > 0).all(-1)
        assert torch.equal(frags.mask, inside)
        tested += int(inside.sum() >= 5)
        # Perspective-correct barycentrics and depth from the same screen-space coordinates.
        w = lam / v[:, 2]
        bary = w / w.sum(-1, keepdim=True)
        torch.testing.assert_close(frags.barycentrics[inside], bary[inside])
        torch.testing.assert_close(frags.zbuf[inside], (bary @ v[:, 2])[inside])
    assert tested >= 10  # most random triangles cover several pixels


def test_quad_split_has_no_cracks_and_no_double_coverage(quad):
    # Integer corners with f = 1, z = 1: the diagonal and the borders run through pixel
    # centres, exactly the ties the top-left rule must split. Each triangle is rasterized alone
    # so double coverage would show (a z-buffer would hide it).
    for corners in (
        [[1, 1, 1], [9, 1, 1], [9, 9, 1], [1, 9, 1]],
        [[9, 1, 1], [9, 9, 1], [1, 9, 1], [1, 1, 1]],  # other diagonal
        [[1, 9, 1], [9, 9, 1], [9, 1, 1], [1, 1, 1]],  # other winding
    ):
        vertices, faces = quad(corners)
        count = _coverage_count(vertices, faces, K_UNIT, 12, 12)
        # Top-left rule on an axis-aligned rectangle: the half-open pixel set [1, 9) x [1, 9).
        expected = torch.zeros(12, 12, dtype=torch.int64)
        expected[1:9, 1:9] = 1
        assert torch.equal(count, expected)


def test_triangle_fan_around_a_pixel_centre_covers_each_pixel_once():
    # Eight triangles around a vertex sitting exactly on pixel (6, 6), ring vertices on integer
    # positions so several internal edges pass through pixel centres.
    ring = [(10, 6), (10, 10), (6, 11), (2, 9), (1, 6), (3, 2), (6, 1), (9, 3)]
    vertices = torch.tensor([[6.0, 6.0, 1.0]] + [[x, y, 1.0] for x, y in ring], dtype=torch.float64)
    faces = torch.tensor([[0, 1 + i, 1 + (i + 1) % 8] for i in range(8)])
    count = _coverage_count(vertices, faces, K_UNIT, 13, 13)
    assert count.max() == 1
    assert count[6, 6] == 1
    # Every pixel strictly inside the ring polygon (away from its outer border) is covered.
    cols, rows = _pixel_grid(13, 13)
    strictly_inside = torch.ones(13, 13, dtype=torch.bool)
    for i in range(8):
        (x0, y0), (x1, y1) = ring[i], ring[(i + 1) % 8]
        # The ring is clockwise on screen (y down), inside is where this cross product is > 0.
        e = (x1 - x0) * (rows - y0) - (y1 - y0) * (cols - x0)
        strictly_inside &= e > 0
    assert (count[strictly_inside] == 1).all()
    assert (count[count > 0] == 1).all()


def test_closed_mesh_pixels_are_covered_zero_or_two_times(icosphere, random_rotation, generator):
    # A ray through a convex closed surface crosses it exactly twice (in and out): with a
    # consistent edge rule, no pixel may see 1 or 3 faces, even along silhouette and shared edges.
    unit_v, faces = icosphere(1)
    vertices = unit_v @ random_rotation(generator).T * 0.2 + torch.tensor([0.0, 0.0, 1.0])
    K = intrinsics_from_fov(40, 40, 30.0, dtype=torch.float64)
    count = _coverage_count(vertices.float(), faces, K.float(), 40, 40)
    assert set(count.unique().tolist()) == {0, 2}


# --- depth and visibility --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_tilted_plane_depth_equals_ray_plane_intersection(dtype):
    point = torch.tensor([0.02, -0.01, 1.0], dtype=torch.float64)
    normal = torch.nn.functional.normalize(
        torch.tensor([0.3, -0.4, -1.0], dtype=torch.float64), dim=0
    )
    e1 = torch.nn.functional.normalize(
        torch.linalg.cross(normal, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)), dim=0
    )
    e2 = torch.linalg.cross(normal, e1)
    corners = torch.stack(
        [point + 1.5 * (sx * e1 + sy * e2) for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    )
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    H, W = 48, 64
    K = intrinsics_from_fov(W, H, 60.0, dtype=torch.float64)
    frags = rasterize(corners.to(dtype), faces, K.to(dtype), H, W)
    assert frags.mask.all()
    rtol = 1e-10 if dtype == torch.float64 else 2e-6
    for col, row in ((0, 0), (10, 5), (31, 23), (63, 47), (40, 30), (5, 44)):
        ray = torch.tensor(
            [(col - K[0, 2]) / K[0, 0], (row - K[1, 2]) / K[1, 1], 1.0], dtype=torch.float64
        )
        z = float((normal @ point) / (normal @ ray))  # t with ray z = 1, so t is the z-depth
        assert float(frags.zbuf[row, col]) == pytest.approx(z, rel=rtol)


def test_nearer_mesh_wins_and_swapping_depths_swaps_objects(quad):
    K = torch.tensor([[10.0, 0.0, 10.0], [0.0, 10.0, 10.0], [0.0, 0.0, 1.0]], dtype=torch.float64)

    def square(x0, x1, z):  # axis-aligned square spanning columns [x0, x1) at depth z
        xa, xb = (x0 - 10) / 10 * z, (x1 - 10) / 10 * z
        ya, yb = (2 - 10) / 10 * z, (18 - 10) / 10 * z
        return quad([[xa, ya, z], [xb, ya, z], [xb, yb, z], [xa, yb, z]])

    for z_head, z_hand in ((2.0, 1.0), (1.0, 2.0)):
        scene = Scene.from_meshes([square(2, 14, z_head), square(8, 18, z_hand)])
        frags = scene.rasterize(K, 20, 20)
        near_id = 1 if z_hand < z_head else 0
        overlap = frags.object_id[10, 8:14]
        assert (overlap == near_id).all()
        assert (frags.zbuf[10, 8:14] == min(z_head, z_hand)).all()
        assert (frags.object_id[10, 2:8] == 0).all()  # only the head there
        assert (frags.object_id[10, 14:18] == 1).all()  # only the hand there
        assert (frags.object_id[10, :2] == -1).all() and (frags.object_id[0] == -1).all()
        # face_index indexes the joined face list: head faces 0-1, hand faces 2-3.
        assert ((frags.face_index[10, 8:14] >= 2) == (near_id == 1)).all()


def test_interpenetrating_planes_resolve_per_pixel(quad):
    # Plane A: z = 1 + 0.2 x (tilted), plane B: z = 1. They cross at x = 0: A is nearer for
    # x < 0 (left half of the image), B for x > 0. Visibility must switch mid-triangle.
    K = torch.tensor([[20.0, 0.0, 15.5], [0.0, 20.0, 15.5], [0.0, 0.0, 1.0]], dtype=torch.float64)
    s = 1.0
    a, fa = quad(
        [[-s, -s, 1 - 0.2 * s], [s, -s, 1 + 0.2 * s], [s, s, 1 + 0.2 * s], [-s, s, 1 - 0.2 * s]]
    )
    b, fb = quad([[-s, -s, 1.0], [s, -s, 1.0], [s, s, 1.0], [-s, s, 1.0]])
    vertices, faces, obj = join_meshes([(a, fa), (b, fb)])
    frags = rasterize(vertices, faces, K, 32, 32, face_object_id=obj)
    assert (frags.object_id[:, :16] == 0).all()
    assert (frags.object_id[:, 16:] == 1).all()


def test_fast_rasterizer_equals_reference_on_random_scene(generator):
    # Triangles of all sizes (sub-pixel to larger than the image), some crossing the image
    # border or the near plane, overlapping in depth; float64 so that no pixel is a numerical
    # tie between the two implementations' (differently written) edge functions.
    n = 400
    centre = torch.rand(n, 3, generator=generator, dtype=torch.float64)
    centre = (centre - torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64)) * 2.0
    centre[:, 2] += 0.3
    centre[:, :2] *= centre[:, 2:]  # mostly inside the view frustum
    # Sizes from a hundredth of a pixel to a few times the image, relative to depth.
    scale = 10 ** (torch.rand(n, 1, 1, generator=generator, dtype=torch.float64) * 3.5 - 3.3)
    offsets = torch.randn(n, 3, 3, generator=generator, dtype=torch.float64) * scale
    vertices = (centre[:, None] + offsets * centre[:, None, 2:]).reshape(-1, 3)
    vertices[:6, 2] = -vertices[:6, 2]  # two triangles cross the camera plane
    faces = torch.arange(3 * n).view(n, 3)
    labels = torch.arange(n) % 3
    K = intrinsics_from_fov(61, 47, 70.0, dtype=torch.float64)
    assert (vertices[:, 2] < 1e-3).any()  # some triangles must be culled by the near plane
    fast = rasterize(vertices, faces, K, 47, 61, face_object_id=labels)
    ref = rasterize_reference(vertices, faces, K, 47, 61, face_object_id=labels)
    assert fast.mask.float().mean() > 0.5 and fast.face_index.unique().numel() > 50
    assert torch.equal(fast.face_index, ref.face_index)
    assert torch.equal(fast.object_id, ref.object_id)
    torch.testing.assert_close(fast.zbuf, ref.zbuf, rtol=1e-12, atol=0)
    torch.testing.assert_close(fast.barycentrics, ref.barycentrics, rtol=1e-9, atol=1e-9)
    # Tiny candidate chunks (faces split across chunks) give the same answer.
    chunked = rasterize(vertices, faces, K, 47, 61, face_object_id=labels, max_candidates=997)
    assert torch.equal(chunked.face_index, fast.face_index)
    assert torch.equal(chunked.zbuf, fast.zbuf)


def test_reference_equals_fast_in_float32_on_a_sphere(icosphere, random_rotation, generator):
    # In float32 on a real mesh: the two may only disagree on pixels whose centre is within
    # rounding of an edge; on a 5120-face sphere that is a handful of pixels at most.
    unit_v, faces = icosphere(4, dtype=torch.float32)
    vertices = unit_v @ random_rotation(generator, torch.float32).T * 0.1
    vertices = vertices + torch.tensor([0.01, -0.02, 0.4])
    K = intrinsics_from_fov(64, 64, 40.0)
    fast = rasterize(vertices, faces, K, 64, 64)
    ref = rasterize_reference(vertices, faces, K, 64, 64)
    assert torch.equal(fast.mask, ref.mask) or (fast.mask != ref.mask).sum() <= 3
    same = fast.face_index == ref.face_index
    assert (~same).sum() <= 5
    torch.testing.assert_close(fast.zbuf[same & fast.mask], ref.zbuf[same & fast.mask])


# --- culling, big triangles, batches, inputs ----------------------------------------------------


def test_triangle_covering_the_whole_image_is_chunked():
    vertices = torch.tensor([[-100.0, -100.0, 2.0], [100.0, -100.0, 2.0], [0.0, 100.0, 2.0]])
    frags = rasterize(
        vertices,
        torch.tensor([[0, 1, 2]]),
        intrinsics_from_fov(200, 150, 60.0),
        150,
        200,
        max_candidates=1000,
    )
    assert frags.mask.all()
    torch.testing.assert_close(frags.zbuf, torch.full((150, 200), 2.0))
    torch.testing.assert_close(frags.barycentrics.sum(-1), torch.ones(150, 200))


def test_near_plane_and_backface_culling():
    K = intrinsics_from_fov(16, 16, 60.0)
    tri = torch.tensor([[0, 1, 2]])
    # Counter-clockwise seen from the camera (normal towards -z, i.e. towards the camera).
    front = torch.tensor([[-1.0, -1.0, 2.0], [0.0, 1.0, 2.0], [1.0, -1.0, 2.0]])
    normal = torch.linalg.cross(front[1] - front[0], front[2] - front[0])
    assert normal[2] < 0
    assert rasterize(front, tri, K, 16, 16, cull_backfaces=True).mask.any()
    assert not rasterize(front[[0, 2, 1]], tri, K, 16, 16, cull_backfaces=True).mask.any()
    assert rasterize(front[[0, 2, 1]], tri, K, 16, 16).mask.any()  # two-sided by default
    behind = front.clone()
    behind[0, 2] = -0.5
    assert not rasterize(behind, tri, K, 16, 16).mask.any()
    assert not rasterize(front, tri, K, 16, 16, near=2.5).mask.any()
    assert rasterize(front, tri, K, 16, 16, near=1.5).mask.any()


def test_batched_rasterization_matches_per_item_calls(icosphere):
    unit_v, faces = icosphere(2, dtype=torch.float32)
    verts = torch.stack(
        [
            unit_v * 0.1 + torch.tensor([0.0, 0.0, 0.5]),
            unit_v * 0.07 + torch.tensor([0.03, 0.01, 0.4]),
        ]
    )
    K = torch.stack([intrinsics_from_fov(32, 24, 40.0), intrinsics_from_fov(32, 24, 60.0)])
    labels = torch.arange(faces.shape[0]) % 2
    batched = rasterize(verts, faces, K, 24, 32, face_object_id=labels)
    assert batched.face_index.shape == (2, 24, 32) and batched.batched
    for b in range(2):
        single = rasterize(verts[b], faces, K[b], 24, 32, face_object_id=labels)
        assert not single.batched
        assert torch.equal(batched.face_index[b], single.face_index)
        assert torch.equal(batched.zbuf[b], single.zbuf)
        assert torch.equal(batched.object_id[b], single.object_id)
    assert not torch.equal(batched.face_index[0], batched.face_index[1])


def test_empty_and_offscreen_meshes_give_background():
    K = intrinsics_from_fov(8, 8, 60.0)
    empty = rasterize(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.int64), K, 8, 6)
    assert empty.face_index.shape == (8, 6) and not empty.mask.any()
    assert torch.isinf(empty.zbuf).all()
    off = torch.tensor([[5.0, 5.0, 1.0], [6.0, 5.0, 1.0], [5.0, 6.0, 1.0]])
    assert not rasterize(off, torch.tensor([[0, 1, 2]]), K, 8, 8).mask.any()


def test_bad_inputs_raise_input_error():
    K = intrinsics_from_fov(8, 8, 60.0)
    v = torch.zeros(3, 3)
    with pytest.raises(InputError):
        rasterize(v, torch.tensor([[0, 1, 3]]), K, 8, 8)
    with pytest.raises(InputError):
        rasterize(v[:, :2], torch.tensor([[0, 1, 2]]), K, 8, 8)
    with pytest.raises(InputError):
        rasterize(v, torch.tensor([[0, 1, 2]]), K, 0, 8)
    with pytest.raises(InputError):
        join_meshes([])
