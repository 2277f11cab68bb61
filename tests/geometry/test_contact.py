"""The one definition of contact, penetration, touching and sizes against exact answers."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch
import trimesh

from handface.geometry import contact as contact_module
from handface.geometry.contact import (
    COLLISION_DEPTH,
    CONTACT_DISTANCE,
    CONTACT_PROBABILITY_THRESHOLD,
    CONTACT_SOFTNESS,
    FAR,
    SPURIOUS_PENETRATION,
    collides,
    contact_labels,
    contact_probability,
    face_size,
    hand_size,
    in_contact,
    penetration_depth,
    penetration_from_sdf,
    surface_signed_distance,
    touching,
)

RADIUS = 0.1


def test_doctests_of_contact_module():
    result = doctest.testmod(contact_module)
    assert result.attempted >= 10 and result.failed == 0


def test_constants_are_the_documented_ones():
    assert CONTACT_DISTANCE == 0.005
    assert CONTACT_SOFTNESS == 0.001
    assert CONTACT_PROBABILITY_THRESHOLD == 0.5
    assert SPURIOUS_PENETRATION == 0.05
    assert COLLISION_DEPTH == 0.005
    assert FAR == 1.0


@pytest.fixture(scope="module")
def sphere():
    """A 10 cm icosphere (float64) and its inradius: the mesh lies between r_in and RADIUS."""
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=RADIUS)
    vertices = torch.tensor(mesh.vertices, dtype=torch.float64)
    faces = torch.tensor(mesh.faces, dtype=torch.int64)
    a, b, c = vertices[faces].unbind(dim=1)
    normals = torch.linalg.cross(b - a, c - a)
    normals = normals / normals.norm(dim=-1, keepdim=True)
    inradius = float((normals * a).sum(-1).abs().min())
    assert 0.99 * RADIUS < inradius < RADIUS
    return vertices, faces, inradius


def point_below_face(vertices, faces, face_id: int, depth: float):
    """A point ``depth`` inside the convex icosphere below a face's centroid, and its normal.

    For a few millimetres the face's plane is the nearest one, so the exact depth is ``depth``.
    """
    a, b, c = vertices[faces[face_id]]
    normal = torch.linalg.cross(b - a, c - a)
    normal = normal / normal.norm()
    centroid = (a + b + c) / 3
    if torch.dot(normal, centroid) < 0:
        normal = -normal
    return centroid - depth * normal, normal


# --- contact labels and probabilities ----------------------------------------------------------


def test_contact_labels_threshold_is_inclusive_and_inside_counts():
    sdf = torch.tensor([-0.3, -0.02, 0.0, 0.004, CONTACT_DISTANCE, 0.0051, 0.02])
    assert contact_labels(sdf).tolist() == [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]


def test_contact_labels_keep_float_dtype_and_shape():
    sdf = torch.tensor([[0.001, 0.01], [0.006, -0.5]], dtype=torch.float64)
    labels = contact_labels(sdf)
    assert labels.dtype == torch.float64 and labels.shape == (2, 2)
    assert labels.tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_contact_probability_is_half_at_contact_distance():
    p = contact_probability(torch.tensor([CONTACT_DISTANCE], dtype=torch.float64))
    assert float(p) == 0.5
    # one softness further out: sigmoid(-1); one softness closer: sigmoid(1)
    p = contact_probability(torch.tensor([0.006, 0.004], dtype=torch.float64))
    expected = torch.sigmoid(torch.tensor([-1.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(p, expected)


def test_contact_probability_decreases_monotonically():
    sdf = torch.linspace(-0.01, 0.02, 301, dtype=torch.float64)
    p = contact_probability(sdf)
    assert bool((p.diff() < 0).all())
    assert float(p[0]) > 0.9999 and float(p[-1]) < 1e-4


def test_contact_probability_softness_sets_width():
    sdf = torch.tensor([0.007], dtype=torch.float64)
    sharp = contact_probability(sdf, softness=0.001)
    soft = contact_probability(sdf, softness=0.004)
    torch.testing.assert_close(sharp, torch.sigmoid(torch.tensor([-2.0], dtype=torch.float64)))
    torch.testing.assert_close(soft, torch.sigmoid(torch.tensor([-0.5], dtype=torch.float64)))


def test_contact_probability_gradcheck():
    sdf = torch.tensor([-0.002, 0.004, 0.0055, 0.009], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(contact_probability, (sdf,))


def test_contact_probability_agrees_with_labels_away_from_the_threshold():
    sdf = torch.tensor([-0.05, -0.001, 0.0, 0.003, 0.007, 0.01, 0.05])
    assert torch.equal(in_contact(contact_probability(sdf)), contact_labels(sdf).bool())


def test_in_contact_is_strictly_above_one_half():
    p = torch.tensor([0.0, 0.49, 0.5, 0.500001, 1.0])
    assert in_contact(p).tolist() == [False, False, False, True, True]
    # 0/1 labels read back as themselves
    assert in_contact(torch.tensor([1.0, 0.0])).tolist() == [True, False]


# --- penetration --------------------------------------------------------------------------------


def test_penetration_from_sdf_values():
    sdf = torch.tensor([0.01, 0.0, -0.003, -0.049, -0.05, -0.2], dtype=torch.float64)
    depth = penetration_from_sdf(sdf)
    expected = torch.tensor([0.0, 0.0, 0.003, 0.049, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(depth, expected, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_penetration_from_sdf_zeroes_from_five_centimetres(dtype):
    depth = penetration_from_sdf(torch.tensor([-0.049, -0.05, -0.051], dtype=dtype))
    assert float(depth[0]) == pytest.approx(0.049)
    assert depth[1:].tolist() == [0.0, 0.0]
    # a custom spurious depth moves the cut
    depth = penetration_from_sdf(torch.tensor([-0.049, -0.02], dtype=dtype), spurious=0.03)
    assert float(depth[0]) == 0.0 and float(depth[1]) == pytest.approx(0.02)


def test_penetration_from_sdf_gradient():
    sdf = torch.tensor([0.01, -0.003, -0.07], dtype=torch.float64, requires_grad=True)
    penetration_from_sdf(sdf).sum().backward()
    # outside and spurious: no pull; inside: d relu(-s)/ds = -1
    assert sdf.grad.tolist() == [0.0, -1.0, 0.0]


def test_penetration_depth_below_a_face(sphere):
    vertices, faces, _ = sphere
    p1, _ = point_below_face(vertices, faces, 0, 0.003)
    p2, _ = point_below_face(vertices, faces, 100, 0.002)
    outside = torch.tensor([0.0, 0.0, 2 * RADIUS], dtype=torch.float64)
    centre = torch.zeros(3, dtype=torch.float64)
    depth = penetration_depth(torch.stack([p1, p2, outside, centre]), vertices, faces)
    expected = torch.tensor([0.003, 0.002, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(depth, expected, rtol=0, atol=1e-9)


def test_penetration_depth_gradient_points_along_the_inward_normal(sphere):
    vertices, faces, _ = sphere
    p, normal = point_below_face(vertices, faces, 7, 0.003)
    centre = torch.zeros(3, dtype=torch.float64)  # spurious (10 cm deep): no gradient
    points = torch.stack([p, centre]).requires_grad_(True)
    penetration_depth(points, vertices, faces).sum().backward()
    torch.testing.assert_close(points.grad[0], -normal, rtol=0, atol=1e-6)
    assert points.grad[1].abs().max() == 0.0


def test_penetration_depth_batch_consistency(sphere):
    vertices, faces, _ = sphere
    p1, _ = point_below_face(vertices, faces, 3, 0.004)
    p2, _ = point_below_face(vertices, faces, 50, 0.001)
    points = torch.stack(
        [torch.stack([p1, p2]), torch.stack([p2, 1.5 * p1])]
    )  # (2, 2, 3): item 1 has one outside point
    shift = torch.tensor([0.3, -0.1, 0.2], dtype=torch.float64)
    batch_vertices = torch.stack([vertices, vertices + shift])
    points = points + torch.stack([torch.zeros(3, dtype=torch.float64), shift])[:, None]
    batched = penetration_depth(points, batch_vertices, faces)
    assert batched.shape == (2, 2)
    for i in range(2):
        single = penetration_depth(points[i], batch_vertices[i], faces)
        torch.testing.assert_close(batched[i], single, rtol=0, atol=1e-12)
    torch.testing.assert_close(
        batched,
        torch.tensor([[0.004, 0.001], [0.001, 0.0]], dtype=torch.float64),
        atol=1e-9,
        rtol=0,
    )


def test_penetration_depth_of_no_points(sphere):
    vertices, faces, _ = sphere
    depth = penetration_depth(torch.zeros(0, 3, dtype=torch.float64), vertices, faces)
    assert depth.shape == (0,)
    depth = penetration_depth(torch.zeros(2, 0, 3, dtype=torch.float64), vertices, faces)
    assert depth.shape == (2, 0)


# --- touching and collisions --------------------------------------------------------------------


def test_touching_uses_the_closest_vertex_inclusively():
    sdf = torch.tensor(
        [
            [0.02, CONTACT_DISTANCE],  # exactly 5 mm: touches
            [0.02, 0.0051],  # just beyond: does not
            [0.3, -0.04],  # inside: touches
            [0.01, 0.03],
        ],
        dtype=torch.float64,
    )
    assert touching(sdf).tolist() == [True, False, True, False]
    assert touching(sdf, threshold=0.01).tolist() == [True, True, True, True]


def test_touching_with_no_vertices_is_false():
    result = touching(torch.zeros(3, 0))
    assert result.dtype == torch.bool and result.shape == (3,) and not result.any()


def test_collides_is_strictly_deeper_than_five_millimetres():
    depths = torch.tensor(
        [[0.0, COLLISION_DEPTH], [0.0051, 0.0], [0.0, 0.0], [0.002, 0.03]], dtype=torch.float64
    )
    assert collides(depths).tolist() == [False, True, False, True]
    assert collides(depths, threshold=0.01).tolist() == [False, False, False, True]


def test_collides_and_touching_on_depths_from_sdf():
    sdf = torch.tensor([[0.1, -0.004], [0.1, -0.008], [0.1, -0.2]], dtype=torch.float64)
    # -20 cm is a spurious depth: touching, but no collision
    assert collides(penetration_from_sdf(sdf)).tolist() == [False, True, False]
    assert touching(sdf).tolist() == [True, True, True]


# --- surface signed distance --------------------------------------------------------------------


def test_surface_signed_distance_against_the_analytic_sphere(sphere):
    vertices, faces, inradius = sphere
    gen = torch.Generator().manual_seed(0)
    directions = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    radii = torch.linspace(0.06, 0.14, 40, dtype=torch.float64)
    points = directions * radii[:, None]
    sdf = surface_signed_distance(points, vertices, faces)
    assert sdf.dtype == torch.float64 and sdf.shape == (40,)
    # the faceted surface lies between the spheres of radius r_in and RADIUS, so the signed
    # distance along any ray is between |p| - RADIUS and |p| - r_in
    assert bool((sdf >= radii - RADIUS - 1e-12).all())
    assert bool((sdf <= radii - inradius + 1e-12).all())
    assert bool(((sdf < 0) == (radii < inradius)).all())


def test_surface_signed_distance_float32_points(sphere):
    vertices, faces, inradius = sphere
    points = torch.tensor([[0.0, 0.0, 0.103], [0.0, 0.08, 0.0]])
    sdf = surface_signed_distance(points, vertices.float(), faces)
    assert sdf.dtype == torch.float32
    assert 0.003 - 1e-6 <= float(sdf[0]) <= 0.103 - inradius + 1e-6
    assert -(RADIUS - 0.08) - 1e-6 <= float(sdf[1]) <= -(inradius - 0.08) + 1e-6


def test_surface_signed_distance_far_outside_the_grown_box(sphere):
    vertices, faces, _ = sphere
    # the box is [-0.15, 0.15]^3 with the default 5 cm reach
    points = torch.tensor(
        [[0.0, 0.0, 0.102], [0.14, 0.0, 0.0], [0.2, 0.0, 0.0], [0.0, -1.0, 0.0]],
        dtype=torch.float64,
    )
    sdf = surface_signed_distance(points, vertices, faces)
    assert sdf[2:].tolist() == [FAR, FAR]
    assert 0.002 - 1e-12 <= float(sdf[0]) < 0.003
    assert 0.04 <= float(sdf[1]) < 0.041  # out of reach of the surface, but inside the box
    # a wider reach queries the third point exactly
    wide = surface_signed_distance(points, vertices, faces, reach=0.2)
    assert 0.1 <= float(wide[2]) < 0.101
    assert float(wide[3]) == FAR


def test_surface_signed_distance_is_far_when_no_triangle_is_within_reach(sphere):
    vertices, faces, inradius = sphere
    centre = torch.zeros(1, 3, dtype=torch.float64)
    # alone, the centre (10 cm deep) is out of reach of every triangle: reported FAR
    assert surface_signed_distance(centre, vertices, faces).tolist() == [FAR]
    # with a point near the surface, both are queried: the centre is about 10 cm inside
    points = torch.cat([centre, torch.tensor([[0.0, 0.0, 0.101]], dtype=torch.float64)])
    sdf = surface_signed_distance(points, vertices, faces)
    assert -RADIUS <= float(sdf[0]) <= -inradius
    # far away entirely
    far = torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.1]], dtype=torch.float64)
    assert surface_signed_distance(far, vertices, faces).tolist() == [FAR, FAR]


def test_surface_signed_distance_of_no_points(sphere):
    vertices, faces, _ = sphere
    sdf = surface_signed_distance(torch.zeros(0, 3), vertices, faces)
    assert sdf.shape == (0,)


def test_surface_signed_distance_feeds_contact_labels(sphere):
    vertices, faces, _ = sphere
    points = torch.tensor(
        [[0.0, 0.0, 0.09], [0.0, 0.0, 0.104], [0.0, 0.0, 0.108], [0.0, 0.0, 0.5]],
        dtype=torch.float64,
    )
    labels = contact_labels(surface_signed_distance(points, vertices, faces))
    assert labels.tolist() == [1.0, 1.0, 0.0, 0.0]


# --- sizes --------------------------------------------------------------------------------------


def keypoints_with(wrist, knuckle, dim: int, dtype=torch.float64):
    keypoints = torch.rand(21, dim, generator=torch.Generator().manual_seed(1), dtype=dtype)
    keypoints[0] = torch.tensor(wrist, dtype=dtype)
    keypoints[9] = torch.tensor(knuckle, dtype=dtype)
    return keypoints


def test_hand_size_is_wrist_to_middle_knuckle():
    kp2d = keypoints_with([10.0, 20.0], [13.0, 24.0], 2)
    assert float(hand_size(kp2d)) == pytest.approx(5.0)
    kp3d = keypoints_with([0.0, 0.0, 0.5], [0.02, 0.03, 0.56], 3)
    assert float(hand_size(kp3d)) == pytest.approx(0.07)
    # the other keypoints do not matter
    kp3d[5] += 10.0
    assert float(hand_size(kp3d)) == pytest.approx(0.07)


def test_hand_size_batched_and_numpy():
    a = keypoints_with([0.0, 0.0], [3.0, 4.0], 2)
    b = keypoints_with([1.0, 1.0], [7.0, 9.0], 2)
    sizes = hand_size(torch.stack([a, b]))
    assert sizes.shape == (2,)
    torch.testing.assert_close(sizes, torch.tensor([5.0, 10.0], dtype=torch.float64))
    size = hand_size(a.numpy())
    assert isinstance(size, float) and size == pytest.approx(5.0)


def test_face_size_is_the_bounding_box_diagonal():
    landmarks = torch.tensor([[1.0, 1.0], [4.0, 2.0], [2.0, 5.0], [3.0, 3.0]])
    assert float(face_size(landmarks)) == pytest.approx(5.0)  # extent (3, 4)
    landmarks3d = torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.2, 0.2]], dtype=torch.float64)
    assert float(face_size(landmarks3d)) == pytest.approx(0.3)
    size = face_size(landmarks.numpy())
    assert isinstance(size, float) and size == pytest.approx(5.0)


def test_face_size_batched_and_invariant_to_translation():
    gen = torch.Generator().manual_seed(2)
    landmarks = torch.rand(3, 468, 2, generator=gen, dtype=torch.float64) * 100
    sizes = face_size(landmarks)
    assert sizes.shape == (3,)
    for i in range(3):
        torch.testing.assert_close(sizes[i], face_size(landmarks[i]))
        assert float(sizes[i]) == pytest.approx(face_size(landmarks[i].numpy()))
    shifted = face_size(landmarks + torch.tensor([50.0, -20.0], dtype=torch.float64))
    torch.testing.assert_close(shifted, sizes)
    torch.testing.assert_close(face_size(2.0 * landmarks), 2.0 * sizes)


def test_sizes_are_zero_for_degenerate_input():
    assert float(hand_size(torch.zeros(21, 2))) == 0.0
    assert float(face_size(np.ones((468, 2)))) == 0.0
