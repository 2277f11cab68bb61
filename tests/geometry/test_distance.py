"""Closest point, distance, winding number and signed distance against exact answers."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch
import trimesh

from handface.errors import InputError
from handface.geometry import (
    closest_point_on_triangles,
    point_mesh_distance,
    signed_distance,
    solid_angles,
    winding_number,
)
from handface.geometry import distance as distance_module
from handface.geometry.contact import penetration_depth


def test_doctests_of_distance_module():
    result = doctest.testmod(distance_module)
    assert result.attempted >= 5 and result.failed == 0


# --- meshes ----------------------------------------------------------------------------------


def icosphere(subdivisions: int = 3, radius: float = 1.0, dtype=torch.float64):
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return torch.tensor(mesh.vertices, dtype=dtype), torch.tensor(mesh.faces, dtype=torch.int64)


def keep_faces(vertices, faces, mask):
    """Sub-mesh with the faces in ``mask`` (vertices kept: unused ones do not matter)."""
    return vertices, faces[mask]


def head_like(dtype=torch.float64):
    """Head-sized (10 cm) bumpy closed surface + an inner 'eye' + an open 'neck' variant."""
    v, f = icosphere(4, dtype=dtype)
    direction = v / v.norm(dim=-1, keepdim=True)
    bump = 1.0 + 0.08 * torch.sin(3 * direction[:, 0]) * torch.cos(2 * direction[:, 1])
    outer = 0.1 * direction * bump[:, None]
    eye_v, eye_f = icosphere(2, radius=0.02, dtype=dtype)
    eye_v = eye_v + torch.tensor([0.03, -0.05, 0.0], dtype=dtype)
    vertices = torch.cat([outer, eye_v])
    faces = torch.cat([f, eye_f + outer.shape[0]])
    return vertices, faces, f.shape[0]


def brute_force_distance(points, vertices, faces):
    """Independent reference: every point against every triangle, float64."""
    tri = vertices.double()[faces]
    q = points.double()[:, None]
    closest, _ = closest_point_on_triangles(q, tri[None, :, 0], tri[None, :, 1], tri[None, :, 2])
    return (q - closest).norm(dim=-1).min(dim=1).values


def random_triangle_soup(num_faces: int, generator: torch.Generator):
    vertices = torch.rand(num_faces * 3, 3, generator=generator, dtype=torch.float64)
    # Small triangles scattered in the unit cube plus a few large ones across it.
    centres = vertices[0::3].repeat_interleave(3, dim=0)
    scale = torch.where(torch.arange(num_faces * 3) < 12, 1.0, 0.1).to(torch.float64)[:, None]
    vertices = centres + scale * (vertices - centres)
    faces = torch.arange(num_faces * 3).reshape(num_faces, 3)
    return vertices, faces


# --- closest point on a single triangle ---------------------------------------------------------

TRIANGLE = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 2.0, 0.0]], dtype=torch.float64)

# (point, closest point, barycentrics) worked out by hand, one per Voronoi region.
REGIONS = {
    "vertex_a": ([-1.0, -1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]),
    "vertex_b": ([3.0, -1.0, 0.0], [2.0, 0.0, 0.0], [0.0, 1.0, 0.0]),
    "vertex_c": ([-1.0, 3.0, 0.5], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]),
    "edge_ab": ([1.0, -1.0, 2.0], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]),
    "edge_ac": ([-2.0, 0.5, 0.0], [0.0, 0.5, 0.0], [0.75, 0.0, 0.25]),
    "edge_bc": ([2.0, 2.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.5, 0.5]),
    "face_below": ([0.5, 0.5, -3.0], [0.5, 0.5, 0.0], [0.5, 0.25, 0.25]),
    "face_in_plane": ([0.2, 1.0, 0.0], [0.2, 1.0, 0.0], [0.4, 0.1, 0.5]),
}


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_closest_point_voronoi_regions(region):
    point, expected, bary_expected = (torch.tensor(x, dtype=torch.float64) for x in REGIONS[region])
    closest, bary = closest_point_on_triangles(point, *TRIANGLE)
    torch.testing.assert_close(closest, expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(bary, bary_expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(bary @ TRIANGLE, closest, atol=1e-12, rtol=0)


def test_closest_point_broadcasts_and_float32():
    points = torch.tensor([r[0] for r in REGIONS.values()], dtype=torch.float32)
    expected = torch.tensor([r[1] for r in REGIONS.values()], dtype=torch.float32)
    closest, bary = closest_point_on_triangles(points, *TRIANGLE.float())  # (8, 3) vs (3,)
    assert closest.dtype == torch.float32 and bary.shape == (8, 3)
    torch.testing.assert_close(closest, expected, atol=1e-6, rtol=0)


def test_closest_point_degenerate_triangles_are_their_edges():
    a, b, c = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0]], dtype=torch.float64)
    point = torch.tensor([1.5, 1.0, 0.0], dtype=torch.float64, requires_grad=True)
    collinear, _ = closest_point_on_triangles(point, a, b, c)
    torch.testing.assert_close(collinear, torch.tensor([1.5, 0.0, 0.0], dtype=torch.float64))
    single = torch.tensor([0.3, -0.2, 0.7], dtype=torch.float64)
    collapsed, bary = closest_point_on_triangles(point, single, single, single)
    torch.testing.assert_close(collapsed, single)
    assert torch.isclose(bary.sum(), torch.tensor(1.0, dtype=torch.float64))
    (collinear.norm() + collapsed.norm()).backward()
    assert torch.isfinite(point.grad).all()


def test_closest_point_gradcheck_points_and_vertices():
    gen = torch.Generator().manual_seed(0)
    # Points spread over all regions of random (non-degenerate) triangles.
    points = torch.randn(24, 3, generator=gen, dtype=torch.float64).requires_grad_(True)
    tri = torch.randn(24, 3, 3, generator=gen, dtype=torch.float64)
    a, b, c = (tri[:, k].clone().requires_grad_(True) for k in range(3))
    assert torch.autograd.gradcheck(
        lambda p, a, b, c: closest_point_on_triangles(p, a, b, c)[0], (points, a, b, c)
    )


def test_solid_angle_of_octant_triangle():
    a, b, c = torch.eye(3, dtype=torch.float64)
    origin = torch.zeros(3, dtype=torch.float64)
    # The triangle spans one octant seen from the origin: 4 pi / 8; it faces away (+).
    assert math.isclose(float(solid_angles(origin, a, b, c)), math.pi / 2, rel_tol=1e-12)
    assert math.isclose(float(solid_angles(origin, a, c, b)), -math.pi / 2, rel_tol=1e-12)


# --- point-mesh distance -------------------------------------------------------------------------


def test_distance_single_triangle_mesh():
    faces = torch.tensor([[0, 1, 2]])
    points = torch.tensor([r[0] for r in REGIONS.values()], dtype=torch.float64)
    expected = torch.tensor([r[1] for r in REGIONS.values()], dtype=torch.float64)
    res = point_mesh_distance(points, TRIANGLE, faces)
    torch.testing.assert_close(res.closest_points, expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(res.distance, (points - expected).norm(dim=-1), atol=1e-12, rtol=0)
    assert res.face_index.dtype == torch.int64 and (res.face_index == 0).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distance_equals_brute_force_on_random_soups(seed):
    gen = torch.Generator().manual_seed(seed)
    vertices, faces = random_triangle_soup(300, gen)
    near = torch.rand(400, 3, generator=gen, dtype=torch.float64) * 1.4 - 0.2
    far = torch.randn(50, 3, generator=gen, dtype=torch.float64) * 30.0
    # Points exactly on the surface: random barycentric points of random faces.
    on_faces = torch.randint(0, faces.shape[0], (50,), generator=gen)
    w = torch.rand(50, 3, generator=gen, dtype=torch.float64)
    w = w / w.sum(-1, keepdim=True)
    on_surface = (w[:, :, None] * vertices[faces[on_faces]]).sum(1)
    points = torch.cat([near, far, on_surface, vertices[:20]])
    res = point_mesh_distance(points, vertices, faces)
    reference = brute_force_distance(points, vertices, faces)
    torch.testing.assert_close(res.distance, reference, atol=1e-12, rtol=0)
    assert res.distance[450:].max() < 1e-12  # on-surface points and vertices
    # The reported face and barycentrics reproduce the closest point.
    corners = vertices[faces[res.face_index]]
    torch.testing.assert_close((res.barycentrics[..., None] * corners).sum(1), res.closest_points)
    brute = point_mesh_distance(points, vertices, faces, method="brute_force")
    torch.testing.assert_close(brute.distance, reference, atol=1e-12, rtol=0)


def test_distance_exact_with_slivers_and_degenerate_triangles():
    gen = torch.Generator().manual_seed(16)
    a = torch.rand(200, 3, generator=gen, dtype=torch.float64)
    b = a + 0.05 * torch.randn(200, 3, generator=gen, dtype=torch.float64)
    # Needles: the third corner a hair off the middle of ab; plus segments and points.
    c = 0.5 * (a + b) + 1e-7 * torch.randn(200, 3, generator=gen, dtype=torch.float64)
    c[150:175] = 0.3 * a[150:175] + 0.7 * b[150:175]
    b[175:], c[175:] = a[175:], a[175:]
    vertices = torch.stack([a, b, c], dim=1).reshape(-1, 3)
    faces = torch.arange(600).reshape(200, 3)
    # Near the ends of the needles, where a wrong normal would misjudge them most.
    ends = torch.cat([a, 0.95 * a + 0.05 * b, 0.5 * (a + b)])
    points = torch.cat([ends, torch.rand(300, 3, generator=gen, dtype=torch.float64)])
    points = points + 1e-4 * torch.randn(points.shape, generator=gen, dtype=torch.float64)
    for dtype in (torch.float64, torch.float32):
        res = point_mesh_distance(points.to(dtype), vertices.to(dtype), faces)
        reference = brute_force_distance(points.to(dtype), vertices.to(dtype), faces)
        tolerance = 1e-12 if dtype == torch.float64 else 1e-6
        torch.testing.assert_close(res.distance.double(), reference, atol=tolerance, rtol=0)


def test_distance_float32_matches_float64():
    gen = torch.Generator().manual_seed(3)
    vertices, faces = head_like()[:2]
    points = torch.randn(300, 3, generator=gen, dtype=torch.float64) * 0.08
    res64 = point_mesh_distance(points, vertices, faces)
    res32 = point_mesh_distance(points.float(), vertices.float(), faces)
    assert res32.distance.dtype == torch.float32
    torch.testing.assert_close(res32.distance.double(), res64.distance, atol=2e-7, rtol=0)


def test_distance_to_sphere_matches_analytic_within_tessellation():
    vertices, faces = icosphere(4)
    gen = torch.Generator().manual_seed(4)
    direction = torch.randn(500, 3, generator=gen, dtype=torch.float64)
    direction = direction / direction.norm(dim=-1, keepdim=True)
    radius = torch.rand(500, 1, generator=gen, dtype=torch.float64) * 2.5
    points = direction * radius
    res = point_mesh_distance(points, vertices, faces)
    # Flat facets lie inside the sphere by at most their sagitta (~1e-3 at 4 subdivisions).
    sagitta = 1.5e-3
    analytic = (radius[:, 0] - 1.0).abs()
    assert (res.distance - analytic).abs().max() < sagitta
    assert ((res.closest_points.norm(dim=-1) - 1.0).abs() < sagitta).all()


def test_distance_exact_after_mesh_moves_with_same_faces():
    # The triangle grouping is cached per faces; a very different geometry with the same faces
    # must still give the exact answer (only the bounds are refit).
    vertices, faces = icosphere(3)
    points = torch.randn(200, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    point_mesh_distance(points, vertices, faces)
    scrambled = vertices[
        torch.randperm(vertices.shape[0], generator=torch.Generator().manual_seed(6))
    ]
    moved = torch.cat([scrambled[:, :1] * 3.0, scrambled[:, 1:]], dim=1)
    res = point_mesh_distance(points, moved, faces)
    torch.testing.assert_close(
        res.distance, brute_force_distance(points, moved, faces), atol=1e-12, rtol=0
    )


def test_grouping_is_rebuilt_when_the_first_geometry_was_degenerate():
    from handface.geometry import distance as module

    vertices, faces = icosphere(3)
    faces = faces.flip(0)  # a topology no other test has cached
    points = torch.randn(100, 3, generator=torch.Generator().manual_seed(15), dtype=torch.float64)
    collapsed = torch.zeros_like(vertices)  # every triangle at one point: useless grouping
    torch.testing.assert_close(
        point_mesh_distance(points, collapsed, faces).distance, points.norm(dim=-1)
    )
    key = module._grouping_key(faces.numpy())
    first = module._ORDER_CACHE[key].order.copy()
    res = point_mesh_distance(points, vertices, faces)
    torch.testing.assert_close(res.distance, brute_force_distance(points, vertices, faces))
    assert not np.array_equal(module._ORDER_CACHE[key].order, first)


def test_distance_gradient_is_unit_direction_from_closest_point():
    vertices, faces, _ = head_like()
    gen = torch.Generator().manual_seed(7)
    points = (torch.randn(100, 3, generator=gen, dtype=torch.float64) * 0.1).requires_grad_(True)
    res = point_mesh_distance(points, vertices, faces)
    res.distance.sum().backward()
    direction = (points - res.closest_points).detach()
    direction = direction / direction.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(points.grad, direction, atol=1e-9, rtol=0)


def test_distance_gradcheck_points_and_vertices():
    # A tetrahedron; generic points so that the chosen triangle does not change under the
    # finite-difference perturbation.
    vertices = torch.tensor(
        [[0.0, 0, 0], [1, 0.1, 0], [0.2, 1, 0.1], [0.3, 0.2, 1]], dtype=torch.float64
    ).requires_grad_(True)
    faces = torch.tensor([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]])
    points = torch.tensor(
        [[0.3, 0.3, -0.5], [1.5, 1.2, 0.4], [-0.6, 0.2, 0.3], [0.3, 0.3, 0.3], [0.4, -1.0, 2.0]],
        dtype=torch.float64,
        requires_grad=True,
    )
    assert torch.autograd.gradcheck(
        lambda p, v: point_mesh_distance(p, v, faces).distance, (points, vertices)
    )


def test_distance_batch_equals_loop_and_broadcasts():
    vertices, faces = icosphere(2)
    gen = torch.Generator().manual_seed(8)
    batch_vertices = torch.stack([vertices * 1.0, vertices * 0.5 + 0.2, vertices.flip(-1) * 2.0])
    points = torch.randn(3, 64, 3, generator=gen, dtype=torch.float64)
    batched = point_mesh_distance(points, batch_vertices, faces)
    assert batched.distance.shape == (3, 64) and batched.closest_points.shape == (3, 64, 3)
    for i in range(3):
        single = point_mesh_distance(points[i], batch_vertices[i], faces)
        assert single.distance.shape == (64,)
        torch.testing.assert_close(batched.distance[i], single.distance, atol=0, rtol=0)
        torch.testing.assert_close(batched.closest_points[i], single.closest_points, atol=0, rtol=0)
    shared = point_mesh_distance(points, vertices, faces)  # one mesh for every item
    for i in range(3):
        expected = point_mesh_distance(points[i], vertices, faces).distance
        torch.testing.assert_close(shared.distance[i], expected, atol=0, rtol=0)


def test_distance_rejects_bad_inputs():
    vertices, faces = icosphere(1)
    with pytest.raises(InputError):
        point_mesh_distance(torch.zeros(5, 2, dtype=torch.float64), vertices, faces)
    with pytest.raises(InputError):
        point_mesh_distance(torch.zeros(5, 3), vertices, faces)  # float32 vs float64
    with pytest.raises(InputError):
        point_mesh_distance(torch.zeros(5, 3, dtype=torch.float64), vertices, faces[:0])
    with pytest.raises(InputError):
        point_mesh_distance(
            torch.zeros(2, 5, 3, dtype=torch.float64), vertices.expand(3, -1, -1), faces
        )
    with pytest.raises(InputError):
        point_mesh_distance(torch.zeros(5, 3, dtype=torch.float64), vertices, faces, method="kd")
    with pytest.raises(InputError):
        signed_distance(torch.zeros(5, 3, dtype=torch.float64), vertices, faces + vertices.shape[0])


def test_points_on_the_surface_have_zero_distance_and_finite_gradients():
    vertices, faces = icosphere(2)
    vertices = vertices.clone().requires_grad_(True)
    centroids = vertices.detach()[faces[:10]].mean(1)
    points = torch.cat([centroids, vertices.detach()[:5]]).requires_grad_(True)
    res = signed_distance(points, vertices, faces)
    assert res.distance.abs().max() < 1e-12
    res.sdf.sum().backward()
    assert torch.isfinite(points.grad).all() and torch.isfinite(vertices.grad).all()


# --- winding number -----------------------------------------------------------------------------


@pytest.mark.parametrize("exact", [True, False])
def test_winding_number_closed_sphere(exact):
    vertices, faces = icosphere(3)
    inside = torch.tensor([[0.0, 0, 0], [0.5, -0.3, 0.2], [0, 0, 0.95]], dtype=torch.float64)
    outside = torch.tensor([[1.05, 0, 0], [3.0, 2.0, -1.0], [0, -50.0, 0]], dtype=torch.float64)
    wn = winding_number(torch.cat([inside, outside]), vertices, faces, exact=exact)
    # The fast far field is a truncated expansion: a few percent at worst (deep inside).
    tolerance = 1e-9 if exact else 0.1
    torch.testing.assert_close(
        wn, torch.tensor([1.0, 1, 1, 0, 0, 0], dtype=torch.float64), atol=tolerance, rtol=0
    )


@pytest.mark.parametrize("exact", [True, False])
def test_winding_number_half_at_hemisphere_opening(exact):
    vertices, faces = icosphere(4)
    centroid_z = vertices[faces].mean(1)[:, 2]
    vertices, faces = keep_faces(vertices, faces, centroid_z < 0)  # open at z = 0
    points = torch.tensor([[0.0, 0, 0], [0, 0, -0.5], [0, 0, 0.5]], dtype=torch.float64)
    wn = winding_number(points, vertices, faces, exact=exact)
    # The zig-zag rim makes it not exactly 1/2 even for the exact sum.
    assert abs(float(wn[0]) - 0.5) < (0.02 if exact else 0.05)
    assert float(wn[1]) > 0.6 and float(wn[2]) < 0.4  # inside the bowl / above the opening


def test_fast_winding_matches_exact_away_from_surface():
    vertices, faces, num_outer = head_like()
    gen = torch.Generator().manual_seed(9)
    points = (torch.rand(2000, 3, generator=gen, dtype=torch.float64) * 2 - 1) * 0.13
    distance = point_mesh_distance(points, vertices, faces).distance
    points = points[distance >= 1e-3]
    exact = winding_number(points, vertices, faces, exact=True)
    fast = winding_number(points, vertices, faces)
    # Closed outer surface + closed eye: exact values are 0, 1 or 2.
    assert set(exact.round().unique().tolist()) == {0.0, 1.0, 2.0}
    assert torch.equal(fast > 0.5, exact > 0.5)
    assert (fast - exact).abs().max() < 0.1
    # Open 'neck': drop the bottom of the outer surface; values are no longer integers.
    keep = torch.ones(faces.shape[0], dtype=torch.bool)
    keep[:num_outer] = vertices[faces[:num_outer]].mean(1)[:, 2] > -0.07
    exact_open = winding_number(points, vertices, faces[keep], exact=True)
    fast_open = winding_number(points, vertices, faces[keep])
    assert (fast_open - exact_open).abs().max() < 0.1
    clear = (exact_open - 0.5).abs() > 0.1
    assert torch.equal(fast_open[clear] > 0.5, exact_open[clear] > 0.5)


def test_fast_winding_error_shrinks_with_beta():
    vertices, faces = icosphere(4)
    centre = torch.zeros(1, 3, dtype=torch.float64)  # worst case: every node is far field
    errors = [float((winding_number(centre, vertices, faces, beta=b) - 1.0).abs()) for b in (2, 4)]
    assert errors[1] < 0.5 * errors[0] and errors[1] < 0.02


def test_exact_winding_is_differentiable_and_fast_is_float32_safe():
    vertices, faces = icosphere(2)
    points = torch.tensor([[0.2, 0.1, 0.0]], dtype=torch.float64, requires_grad=True)
    winding_number(points, vertices, faces, exact=True).sum().backward()
    # Inside a closed surface the winding number is constant: zero gradient.
    torch.testing.assert_close(points.grad, torch.zeros_like(points), atol=1e-9, rtol=0)
    wn32 = winding_number(points.detach().float(), vertices.float(), faces)
    assert wn32.dtype == torch.float32 and abs(float(wn32[0]) - 1.0) < 0.05


# --- signed distance ----------------------------------------------------------------------------


def test_signed_distance_closed_sphere_sign_and_magnitude():
    vertices, faces = icosphere(4)
    points = torch.tensor(
        [[0.0, 0, 0.5], [0.3, 0.2, -0.1], [0, 0, 1.5], [2.0, -1, 0]], dtype=torch.float64
    )
    res = signed_distance(points, vertices, faces)
    assert res.inside.tolist() == [True, True, False, False]
    assert (res.sdf[:2] < 0).all() and (res.sdf[2:] > 0).all()
    torch.testing.assert_close(res.sdf.abs(), res.distance, atol=0, rtol=0)
    analytic = points.norm(dim=-1) - 1.0
    assert (res.sdf - analytic).abs().max() < 1.5e-3
    depth = penetration_depth(points, vertices, faces, spurious=float("inf"))
    torch.testing.assert_close(depth, torch.relu(-res.sdf), atol=0, rtol=0)
    assert depth[2:].eq(0).all() and (depth[:2] > 0.4).all()


def test_signed_distance_open_cut_sphere():
    vertices, faces = icosphere(4)
    centroid_z = vertices[faces].mean(1)[:, 2]
    vertices, faces = keep_faces(vertices, faces, centroid_z < 0.6)  # cap removed
    points = torch.tensor(
        [[0.0, 0, 0], [0.0, 0.0, -0.8], [0.0, 0, 2.0], [1.5, 0, 0]], dtype=torch.float64
    )
    res = signed_distance(points, vertices, faces)
    assert res.inside.tolist() == [True, True, False, False]
    assert (res.sdf[:2] < 0).all() and (res.sdf[2:] > 0).all()
    assert 0.8 < float(res.winding_number[0]) < 1.0  # the hole lets some of the 'inside' out
    assert math.isclose(float(res.sdf[1]), -0.2, abs_tol=1.5e-3)


def test_signed_distance_head_like_with_inner_component():
    vertices, faces, _ = head_like()
    eye_centre = torch.tensor([0.03, -0.05, 0.0], dtype=torch.float64)
    points = torch.stack(
        [
            eye_centre,  # inside the eye, which is inside the head: wn 2, inside
            eye_centre + torch.tensor([0.025, 0, 0], dtype=torch.float64),  # between eye and skin
            torch.tensor([0.0, 0.0, 0.3], dtype=torch.float64),  # outside
        ]
    )
    res = signed_distance(points, vertices, faces)
    assert res.inside.tolist() == [True, True, False]
    torch.testing.assert_close(
        res.winding_number, torch.tensor([2.0, 1.0, 0.0], dtype=torch.float64), atol=0.1, rtol=0
    )
    exact = signed_distance(points, vertices, faces, exact_winding=True)
    torch.testing.assert_close(res.sdf, exact.sdf, atol=0, rtol=0)


def test_signed_distance_float32_agrees_with_float64():
    vertices, faces, _ = head_like()
    points = torch.randn(500, 3, generator=torch.Generator().manual_seed(14), dtype=torch.float64)
    points = points * 0.06
    res64 = signed_distance(points, vertices, faces)
    res32 = signed_distance(points.float(), vertices.float(), faces)
    assert res32.sdf.dtype == torch.float32 and res32.winding_number.dtype == torch.float32
    clear = res64.distance > 1e-4  # the sign of points on the surface is a coin toss
    assert clear.sum() > 400
    assert torch.equal(res32.inside[clear], res64.inside[clear])
    torch.testing.assert_close(res32.sdf.double(), res64.sdf, atol=2e-7, rtol=0)


def test_signed_distance_gradient_points_outwards_both_sides():
    vertices, faces = icosphere(4)
    points = torch.tensor(
        [[0.0, 0.0, 0.6], [0.0, 0.0, 1.4]], dtype=torch.float64, requires_grad=True
    )
    signed_distance(points, vertices, faces).sdf.sum().backward()
    # The SDF increases outwards inside and outside: gradient ~ +z for both.
    torch.testing.assert_close(
        points.grad, torch.tensor([[0.0, 0, 1], [0, 0, 1]], dtype=torch.float64), atol=0.05, rtol=0
    )


def test_signed_distance_gradient_reaches_vertices_and_batches():
    vertices, faces = icosphere(2)
    batch = torch.stack([vertices, vertices * 1.2]).requires_grad_(True)
    points = torch.tensor([[[0.0, 0, 0.5]], [[0.0, 0, 0.5]]], dtype=torch.float64)
    res = signed_distance(points, batch, faces)
    assert res.sdf.shape == (2, 1) and res.inside.all()
    # Pushing the surface outwards makes an inside point deeper: d sdf / d scale < 0.
    grad = torch.autograd.grad(res.sdf.sum(), batch)[0]
    radial = (grad * batch.detach()).sum(dim=(-1, -2))
    assert (radial < 0).all()
    for i in range(2):
        single = signed_distance(points[i], batch[i].detach(), faces)
        torch.testing.assert_close(single.sdf, res.sdf[i].detach(), atol=0, rtol=0)


def test_empty_point_set():
    vertices, faces = icosphere(1)
    res = signed_distance(torch.zeros(0, 3, dtype=torch.float64), vertices, faces)
    assert res.sdf.shape == (0,) and res.face_index.shape == (0,)


def test_sphere_winding_orientation_from_trimesh_is_outward():
    # Guards the sign convention of the fixtures above: trimesh spheres face outwards.
    mesh = trimesh.creation.icosphere(subdivisions=2)
    assert mesh.is_winding_consistent and mesh.volume > 0
    normals = np.asarray(mesh.face_normals)
    assert (np.einsum("ij,ij->i", normals, np.asarray(mesh.triangles_center)) > 0).all()
