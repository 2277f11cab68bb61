"""Property tests of the geometry functions on degenerate input (issue 14).

The rule every function follows: a clear error (:class:`~handface.errors.InputError` with a
message that says what is wrong) or a defined result — finite where the inputs are finite, NaN
only where the docstring says so — never a hang or a silent NaN/inf from finite input.

Inputs are zero-area and duplicate triangles, repeated vertices, collinear and coincident
points, NaN/inf coordinates, empty meshes and point sets, batches of 0, and scales from 1e-6
to 1e6. Example counts are kept small so that each test runs in a few seconds.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from hypothesis import assume, example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from handface.errors import InputError
from handface.geometry import (
    chamfer_distance,
    closest_point_on_triangles,
    face_normals,
    faces_near,
    intrinsics_from_fov,
    look_at,
    nearest_neighbors,
    point_mesh_distance,
    procrustes,
    project_points,
    signed_distance,
    surface_signed_distance,
    unproject_points,
    vertex_normals,
    winding_number,
)
from handface.geometry.contact import (
    CONTACT_DISTANCE,
    FAR,
    SPURIOUS_PENETRATION,
    collides,
    contact_probability,
    face_size,
    hand_size,
    penetration_depth,
    touching,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from property_strategies import BAD, FINITE, SCALES, UNIT, derandomized  # noqa: E402

FAST = derandomized(40)
QUICK = derandomized(25)


def coords(n: int) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, (n, 3), elements=UNIT)


@st.composite
def point_sets(draw, min_points: int = 1, max_points: int = 8) -> np.ndarray:
    """Unit-scale point sets that are often degenerate: collinear, coincident, repeated."""
    n = draw(st.integers(min_points, max_points))
    layout = draw(st.sampled_from(["general", "collinear", "coincident", "repeated", "planar"]))
    if n == 0:
        return np.zeros((0, 3))
    if layout == "general":
        return draw(coords(n))
    if layout == "collinear":
        t = draw(hnp.arrays(np.float64, (n,), elements=UNIT))
        origin, direction = draw(coords(2))
        return origin + t[:, None] * direction
    if layout == "coincident":
        return np.repeat(draw(coords(1)), n, axis=0)
    if layout == "planar":
        pts = draw(coords(n))
        pts[:, draw(st.integers(0, 2))] = draw(UNIT)
        return pts
    distinct = draw(coords(draw(st.integers(1, n))))
    pick = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, len(distinct) - 1)))
    return distinct[pick]


@st.composite
def meshes(draw, max_vertices: int = 7, max_faces: int = 8):
    """``(vertices, faces, scale)``: a small triangle soup with zero-area triangles (a repeated
    index or collinear corners), duplicate triangles and repeated vertex positions."""
    pos = draw(point_sets(1, max_vertices))
    nv = len(pos)
    nf = draw(st.integers(1, max_faces))
    faces = draw(hnp.arrays(np.int64, (nf, 3), elements=st.integers(0, nv - 1)))
    if draw(st.booleans()):
        faces = np.concatenate([faces, faces[:1], faces[:1, ::-1]])  # duplicate, reversed copy
    scale = draw(SCALES)
    return torch.tensor(pos * scale), torch.tensor(faces), scale


@st.composite
def mesh_and_points(draw, max_points: int = 6):
    vertices, faces, scale = draw(meshes())
    far = draw(point_sets(0, max_points)) * 2.0 * scale
    # Points exactly on mesh vertices are the hardest case for pruning and for the sign.
    on = vertices[draw(st.lists(st.integers(0, len(vertices) - 1), max_size=2))]
    points = torch.cat([torch.tensor(far), on.reshape(-1, 3)])
    return points, vertices, faces, scale


def all_finite(*tensors: torch.Tensor) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


_SPHERE = trimesh.creation.icosphere(subdivisions=1)
SPHERE_V = torch.tensor(_SPHERE.vertices)
SPHERE_F = torch.tensor(_SPHERE.faces)
SPHERE_EDGES = torch.tensor(_SPHERE.edges_unique)


# --------------------------------------------------------------------------------------------
# Closest point on a triangle
# --------------------------------------------------------------------------------------------


@FAST
@given(corners=point_sets(3, 3), points=coords(4), scale=SCALES)
def test_closest_point_on_degenerate_triangles_is_on_the_triangle_and_closest(
    corners, points, scale
):
    a, b, c = torch.tensor(corners * scale)
    p = torch.tensor(points * 2 * scale)
    q, bary = closest_point_on_triangles(p[:, None], a, b, c)
    q, bary = q[:, 0], bary[:, 0]
    assert all_finite(q, bary)
    assert bool((bary >= -1e-12).all())
    torch.testing.assert_close(bary.sum(-1), torch.ones(4, dtype=bary.dtype))
    # No point of the triangle (a barycentric grid, corners and edge points included) is
    # closer than the answer.
    grid = torch.tensor(
        [(i / 8, j / 8, 1 - (i + j) / 8) for i in range(9) for j in range(9 - i)],
        dtype=p.dtype,
    )
    samples = grid @ torch.stack([a, b, c])
    best = torch.cdist(p, samples).min(dim=1).values
    distance = torch.linalg.vector_norm(p - q, dim=-1)
    assert bool((distance <= best + 1e-9 * scale).all())


@QUICK
@given(corners=point_sets(3, 3), point=coords(1))
def test_closest_point_gradients_are_finite_for_degenerate_triangles(corners, point):
    # The documented range: squares of nonzero edge lengths must not underflow.
    corners = np.where(np.abs(corners) < 1e-100, 0.0, corners)
    a, b, c = (x.clone().requires_grad_(True) for x in torch.tensor(corners))
    p = torch.tensor(point[0] * 2).requires_grad_(True)
    q, _ = closest_point_on_triangles(p, a, b, c)
    (q.sum() + (p - q).square().sum()).backward()
    assert all_finite(p.grad, a.grad, b.grad, c.grad)


def test_closest_point_of_segment_and_point_triangles():
    a, b = torch.tensor([[0.0, 0, 0], [2.0, 0, 0]], dtype=torch.float64)
    q, bary = closest_point_on_triangles(torch.tensor([0.5, 1.0, 3.0], dtype=a.dtype), a, b, b)
    torch.testing.assert_close(q, torch.tensor([0.5, 0.0, 0.0], dtype=a.dtype))
    assert bool((bary >= 0).all()) and float(bary.sum()) == pytest.approx(1.0)
    # Beyond the end of the segment: the end point.
    q, _ = closest_point_on_triangles(torch.tensor([5.0, -1, 0], dtype=a.dtype), a, b, a)
    torch.testing.assert_close(q, b)
    # A triangle collapsed to a point: that point.
    q, bary = closest_point_on_triangles(torch.tensor([1.0, 1, 1], dtype=a.dtype), b, b, b)
    torch.testing.assert_close(q, b)
    assert float(bary.sum()) == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# Distances, winding numbers and signed distances to degenerate meshes
# --------------------------------------------------------------------------------------------


@FAST
@given(case=mesh_and_points())
def test_tree_distance_equals_brute_force_on_degenerate_meshes(case):
    points, vertices, faces, scale = case
    tree = point_mesh_distance(points, vertices, faces)
    brute = point_mesh_distance(points, vertices, faces, method="brute_force")
    assert all_finite(tree.distance, tree.closest_points, tree.barycentrics)
    assert bool(((tree.face_index >= 0) & (tree.face_index < len(faces))).all())
    torch.testing.assert_close(tree.distance, brute.distance, rtol=1e-9, atol=1e-12 * scale)
    torch.testing.assert_close(
        tree.distance,
        torch.linalg.vector_norm(points - tree.closest_points, dim=-1),
        rtol=1e-9,
        atol=1e-12 * scale,
    )


@FAST
@given(case=mesh_and_points(), exact=st.booleans())
def test_signed_distance_is_finite_and_consistent_on_degenerate_meshes(case, exact):
    points, vertices, faces, scale = case
    res = signed_distance(points, vertices, faces, exact_winding=exact)
    assert all_finite(res.sdf, res.distance, res.winding_number, res.closest_points)
    assert torch.equal(res.sdf.abs(), res.distance)
    assert torch.equal(res.inside, res.winding_number > 0.5)
    assert torch.equal(res.sdf < 0, res.inside & (res.distance > 0))


@QUICK
@given(case=mesh_and_points())
def test_signed_distance_is_finite_in_float32(case):
    points, vertices, faces, scale = case
    assume(scale <= 1e3)  # float32 squares of 1e6-scale coordinates lose all precision
    res = signed_distance(points.float(), vertices.float(), faces)
    assert all_finite(res.sdf, res.winding_number)


@FAST
@given(
    data=st.data(),
    points=hnp.arrays(np.float64, (6, 3), elements=st.floats(-2.0, 2.0, **FINITE)),
)
def test_degenerate_and_cancelling_triangles_do_not_change_the_sign(data, points):
    points = torch.tensor(points)
    base = signed_distance(points, SPHERE_V, SPHERE_F)
    assume(bool((base.distance > 0.05).all()))  # the sign is only asked off the surface
    vid = data.draw(st.lists(st.integers(0, len(SPHERE_V) - 1), min_size=1, max_size=3))
    eid = data.draw(st.lists(st.integers(0, len(SPHERE_EDGES) - 1), min_size=1, max_size=3))
    fid = data.draw(st.integers(0, len(SPHERE_F) - 1))
    extra = [
        torch.tensor([[i, i, i] for i in vid]),  # collapsed to a surface vertex
        torch.stack([SPHERE_EDGES[eid, 0], SPHERE_EDGES[eid, 1], SPHERE_EDGES[eid, 0]], dim=1),
        SPHERE_F[fid : fid + 1],  # a duplicate ...
        SPHERE_F[fid : fid + 1].flip(1),  # ... and its reversed copy cancel each other
    ]
    faces = torch.cat([SPHERE_F, *extra])
    for exact in (False, True):
        res = signed_distance(points, SPHERE_V, faces, exact_winding=exact)
        assert torch.equal(res.inside, base.inside)
        torch.testing.assert_close(res.distance, base.distance, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        winding_number(points, SPHERE_V, faces, exact=True),
        winding_number(points, SPHERE_V, SPHERE_F, exact=True),
        rtol=0,
        atol=1e-9,
    )


@QUICK
@given(
    finite=hnp.arrays(np.float64, (5, 3), elements=st.floats(-2.0, 2.0, **FINITE)),
    bad=BAD,
    where=st.tuples(st.integers(0, 5), st.integers(0, 2)),
)
def test_a_nan_or_inf_point_only_affects_itself(finite, bad, where):
    finite = torch.tensor(finite)
    row, col = where
    points = torch.cat([finite[:row], torch.zeros(1, 3, dtype=finite.dtype), finite[row:]])
    points[row, col] = bad
    keep = torch.arange(len(points)) != row
    ref = signed_distance(finite, SPHERE_V, SPHERE_F)
    for method in ("tree", "brute_force"):
        res = point_mesh_distance(points, SPHERE_V, SPHERE_F, method=method)
        assert not math.isfinite(float(res.distance[row]))
        torch.testing.assert_close(res.distance[keep], ref.distance)
    res = signed_distance(points, SPHERE_V, SPHERE_F)
    assert not math.isfinite(float(res.sdf[row])) and not bool(res.inside[row])
    torch.testing.assert_close(res.sdf[keep], ref.sdf)
    assert torch.equal(res.inside[keep], ref.inside)
    wn = winding_number(points, SPHERE_V, SPHERE_F)
    assert math.isnan(float(wn[row]))
    torch.testing.assert_close(wn[keep], ref.winding_number)


@QUICK
@given(bad=BAD, vertex=st.integers(0, len(SPHERE_V) - 1), col=st.integers(0, 2))
def test_a_mesh_with_a_nan_or_inf_vertex_raises(bad, vertex, col):
    vertices = SPHERE_V.clone()
    vertices[vertex, col] = bad
    points = torch.tensor([[0.0, 0, 0], [0, 0, 2]], dtype=vertices.dtype)
    calls = [
        lambda: point_mesh_distance(points, vertices, SPHERE_F),
        lambda: point_mesh_distance(points, vertices, SPHERE_F, method="brute_force"),
        lambda: signed_distance(points, vertices, SPHERE_F),
        lambda: signed_distance(points, vertices, SPHERE_F, exact_winding=True),
        lambda: winding_number(points, vertices, SPHERE_F),
        lambda: winding_number(points, vertices, SPHERE_F, exact=True),
        lambda: surface_signed_distance(points, vertices, SPHERE_F, reach=5.0),
        lambda: penetration_depth(points, vertices, SPHERE_F),
    ]
    for call in calls:
        with pytest.raises(InputError, match="finite"):
            call()


def test_winding_number_next_to_a_mesh_collapsed_to_a_point_is_not_nan():
    # The far-field expansion divides by |r|^3, which underflowed float32 (0/0 = NaN) for a
    # point 1e-22 away from a cluster of zero radius.
    vertices = torch.full((1, 3), 1.1102e-22, dtype=torch.float64)
    faces = torch.tensor([[0, 0, 0], [0, 0, 0]])
    res = signed_distance(torch.zeros(1, 3, dtype=torch.float64), vertices, faces)
    assert float(res.winding_number) == 0.0 and not bool(res.inside)
    assert float(res.sdf) == pytest.approx(1.1102e-22 * math.sqrt(3))


def test_a_nan_mesh_seen_first_does_not_poison_the_cached_grouping():
    # A topology never seen before: its first geometry is NaN.
    faces = torch.cat([SPHERE_F, SPHERE_F[:3, [0, 0, 1]]])
    with pytest.raises(InputError):
        signed_distance(torch.zeros(1, 3, dtype=SPHERE_V.dtype), SPHERE_V * math.nan, faces)
    points = torch.tensor([[0.0, 0, 0], [0.3, 0.9, 0.2], [3, 0, 0]], dtype=SPHERE_V.dtype)
    tree = point_mesh_distance(points, SPHERE_V, faces)
    brute = point_mesh_distance(points, SPHERE_V, faces, method="brute_force")
    torch.testing.assert_close(tree.distance, brute.distance)


def test_empty_inputs_give_empty_results_or_clear_errors():
    v, f = SPHERE_V, SPHERE_F
    none = torch.zeros(0, 3, dtype=v.dtype)
    for fn in (point_mesh_distance, signed_distance):
        assert fn(none, v, f).distance.shape == (0,)
        assert fn(torch.zeros(2, 0, 3, dtype=v.dtype), v, f).distance.shape == (2, 0)
        # A batch of 0, with a batched or a broadcast mesh.
        assert fn(torch.zeros(0, 4, 3, dtype=v.dtype), v[None][:0], f).distance.shape == (0, 4)
        assert fn(torch.zeros(0, 4, 3, dtype=v.dtype), v, f).distance.shape == (0, 4)
        with pytest.raises(InputError, match="F >= 1"):
            fn(v[:2], v, f[:0])
        with pytest.raises(InputError, match="faces index"):
            fn(v[:2], v[:0], f)
    assert winding_number(none, v, f).shape == (0,)
    assert winding_number(torch.zeros(0, 4, 3, dtype=v.dtype), v, f, exact=True).shape == (0, 4)
    assert penetration_depth(none, v, f).shape == (0,)
    assert surface_signed_distance(none, v, f).shape == (0,)
    # A mesh without faces is out of everyone's reach; faces without vertices are an error.
    assert torch.equal(
        surface_signed_distance(v[:2], v, f[:0]), torch.full((2,), FAR, dtype=v.dtype)
    )
    with pytest.raises(InputError, match="faces index"):
        surface_signed_distance(v[:2], v[:0], f)


# --------------------------------------------------------------------------------------------
# faces_near and surface_signed_distance
# --------------------------------------------------------------------------------------------


@FAST
@given(
    case=mesh_and_points(),
    reach=st.floats(0.0, 1.0),
    bad=st.lists(st.tuples(BAD, st.integers(0, 2)), max_size=2),
)
def test_faces_near_is_the_box_test_of_the_finite_points(case, reach, bad):
    points, vertices, faces, scale = case
    reach = reach * scale
    finite = points
    for value, col in bad:
        row = torch.zeros(1, 3, dtype=points.dtype)
        row[0, col] = value
        points = torch.cat([points, row])
    mask = faces_near(vertices, faces, points, reach)
    assert mask.shape == (len(faces),) and mask.dtype == torch.bool
    if len(finite) == 0:
        assert not bool(mask.any())
        return
    centroids = vertices[faces].mean(dim=1)
    low, high = finite.min(0).values - reach, finite.max(0).values + reach
    assert torch.equal(mask, ((centroids >= low) & (centroids <= high)).all(dim=1))


def test_faces_near_errors_and_empty_sets():
    v, f = SPHERE_V, SPHERE_F
    assert not bool(faces_near(v, f, torch.zeros(0, 3, dtype=v.dtype), 1.0).any())
    assert faces_near(v, f[:0], v, 1.0).shape == (0,)
    with pytest.raises(InputError, match="faces index past"):
        faces_near(v[:3], f, v, 1.0)
    with pytest.raises(InputError, match="points must have shape"):
        faces_near(v, f, v[None], 1.0)


@FAST
@given(case=mesh_and_points(), reach=st.sampled_from([0.0, 0.05, 0.5]))
def test_surface_signed_distance_is_far_or_the_signed_distance(case, reach):
    points, vertices, faces, scale = case
    sdf = surface_signed_distance(points, vertices, faces, reach=reach * scale)
    assert sdf.shape == (len(points),) and all_finite(sdf)
    if len(points):
        exact = signed_distance(points, vertices, faces).sdf
        assert bool(((sdf == FAR) | torch.isclose(sdf, exact, rtol=1e-9, atol=1e-12)).all())


def test_surface_signed_distance_of_nan_and_inf_points():
    v, f = SPHERE_V.float(), SPHERE_F
    points = torch.tensor([[0.0, 0, 1.002], [math.nan, 0, 0], [0.0, math.inf, 0], [0.0, 0, 0.998]])
    sdf = surface_signed_distance(points, v, f, reach=0.5)
    assert math.isnan(float(sdf[1])) and float(sdf[2]) == FAR
    torch.testing.assert_close(
        sdf[[0, 3]], surface_signed_distance(points[[0, 3]], v, f, reach=0.5)
    )
    assert sdf.dtype == torch.float32


# --------------------------------------------------------------------------------------------
# Contact
# --------------------------------------------------------------------------------------------


@FAST
@given(sdf=hnp.arrays(np.float64, st.integers(0, 20), elements=st.floats(**FINITE)))
def test_contact_probability_of_any_finite_distance_is_a_probability(sdf):
    sdf = torch.tensor(np.sort(sdf))
    prob = contact_probability(sdf)
    assert all_finite(prob)
    assert bool(((prob >= 0) & (prob <= 1)).all())
    assert bool((prob[1:] <= prob[:-1]).all())  # further away, never more contact


@QUICK
@given(softness=st.one_of(st.floats(max_value=0.0), st.just(math.nan)))
def test_contact_probability_needs_a_positive_softness(softness):
    with pytest.raises(InputError, match="softness"):
        contact_probability(torch.zeros(3), softness)


def test_contact_probability_of_nan_is_nan():
    prob = contact_probability(torch.tensor([math.nan, 0.0, -math.inf, math.inf]))
    assert math.isnan(float(prob[0]))
    assert prob[1:].tolist() == pytest.approx([0.9933071, 1.0, 0.0])


@QUICK
@given(case=mesh_and_points())
def test_penetration_depth_is_finite_and_below_the_spurious_limit(case):
    points, vertices, faces, scale = case
    depth = penetration_depth(points, vertices, faces)
    assert all_finite(depth)
    assert bool(((depth >= 0) & (depth < SPURIOUS_PENETRATION)).all())


@FAST
@given(
    sdf=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4),
        elements=st.floats(-0.1, 0.1) | st.sampled_from([math.nan, math.inf, -math.inf]),
    )
)
def test_touching_and_collides_ignore_nan_and_handle_empty_sets(sdf):
    with np.errstate(invalid="ignore"):
        expect_touch = np.any(sdf <= CONTACT_DISTANCE, axis=-1)
        expect_collide = np.any(sdf > CONTACT_DISTANCE, axis=-1)
    t = torch.tensor(sdf)
    assert np.array_equal(touching(t).numpy(), expect_touch)
    assert np.array_equal(collides(t).numpy(), expect_collide)


def test_touching_pins():
    assert bool(touching(torch.tensor([math.nan, 0.004])))  # NaN does not hide a contact
    assert not bool(touching(torch.tensor([math.nan, math.nan])))
    assert touching(torch.zeros(0, 0)).shape == (0,)
    assert touching(torch.zeros(3, 0)).tolist() == [False, False, False]


@FAST
@given(
    keypoints=hnp.arrays(
        np.float64,
        st.tuples(st.integers(0, 3), st.just(21), st.sampled_from([2, 3])),
        elements=st.floats(-1e6, 1e6, **FINITE),
    )
)
def test_hand_and_face_sizes_are_finite_and_agree_for_arrays_and_tensors(keypoints):
    for fn in (hand_size, face_size):
        expect = fn(torch.tensor(keypoints))
        assert all_finite(expect) and bool((expect >= 0).all())
        got = fn(keypoints)
        assert isinstance(got, np.ndarray) and got.shape == expect.shape
        np.testing.assert_allclose(got, expect.numpy(), rtol=1e-12)
        if len(keypoints):
            single = fn(keypoints[0])
            assert isinstance(single, float) and single == pytest.approx(float(expect[0]))


def test_hand_and_face_size_degenerate_pins():
    assert face_size(torch.ones(1, 2)).item() == 0.0  # a single landmark
    assert face_size(np.ones((1, 3))) == 0.0
    assert hand_size(torch.zeros(21, 3)).item() == 0.0  # coincident keypoints
    assert math.isnan(face_size(torch.tensor([[0.0, math.nan]])).item())
    for bad in (torch.zeros(9, 3), np.zeros((9, 3)), torch.zeros(3)):
        with pytest.raises(InputError, match="21 hand keypoints"):
            hand_size(bad)
    for bad in (torch.zeros(0, 2), np.zeros((4, 0, 3))):
        with pytest.raises(InputError, match="landmarks"):
            face_size(bad)


# --------------------------------------------------------------------------------------------
# Procrustes and Chamfer
# --------------------------------------------------------------------------------------------


def _sq(x: torch.Tensor) -> torch.Tensor:
    return x.square().sum()


@FAST
@given(
    src=point_sets(0, 8),
    data=st.data(),
    src_scale=SCALES,
    tgt_scale=SCALES,
    scale=st.booleans(),
)
def test_procrustes_is_finite_and_optimal_on_degenerate_sets(
    src, data, src_scale, tgt_scale, scale
):
    tgt = data.draw(point_sets(len(src), len(src)))
    source, target = torch.tensor(src * src_scale), torch.tensor(tgt * tgt_scale)
    res = procrustes(source, target, scale=scale)
    assert all_finite(res.aligned, res.scale, res.rotation, res.translation)
    eye = torch.eye(3, dtype=source.dtype)
    torch.testing.assert_close(res.rotation @ res.rotation.T, eye)
    assert float(torch.linalg.det(res.rotation)) == pytest.approx(1.0)
    assert float(res.scale) >= 0.0
    # Never worse than the best translation (nor than the identity, nor than a rigid fit).
    tol = 1e-9 * (_sq(source) + _sq(target)) + 1e-300
    residual = _sq(res.aligned - target)
    if len(src):
        shifted = source - source.mean(0) + target.mean(0)
        assert residual <= _sq(shifted - target) + tol
    assert residual <= _sq(source - target) + tol
    if scale:
        assert residual <= _sq(procrustes(source, target, scale=False).aligned - target) + tol


@QUICK
@given(pts=point_sets(1, 8), scale=SCALES, bad=BAD, which=st.integers(0, 2))
def test_procrustes_of_nan_or_inf_input_raises(pts, scale, bad, which):
    source = torch.tensor(pts * scale)
    target = source.flip(0).clone()
    weights = torch.ones(len(pts), dtype=source.dtype)
    [source, target, weights][which].view(-1)[0] = bad
    with pytest.raises(InputError, match="finite"):
        procrustes(source, target, weights)


def test_procrustes_degenerate_pins():
    one = torch.tensor([[1.0, 2.0, 3.0]])
    res = procrustes(one, torch.zeros(1, 3))  # a single point: scale 0, onto the target
    assert float(res.scale) == 0.0 and torch.equal(res.aligned, torch.zeros(1, 3))
    empty = procrustes(torch.zeros(0, 3), torch.zeros(0, 3))
    assert empty.aligned.shape == (0, 3) and all_finite(empty.rotation, empty.scale)
    batch0 = procrustes(torch.zeros(0, 5, 3), torch.zeros(0, 5, 3))
    assert batch0.scale.shape == (0,) and batch0.rotation.shape == (0, 3, 3)
    # Points that coincide up to a spread whose square underflows: scale 0 (it was 1e136,
    # the rounding noise of the covariance over the underflowed variance).
    src = torch.tensor([[1.0, 1e-170, 1e-170]] * 4 + [[1.0, 3e-170, 0]], dtype=torch.float64)
    tgt = torch.tensor([[0.2, 0.2, 0.2]] * 4 + [[0.2, 0.1, 0.3]], dtype=torch.float64)
    res = procrustes(src, tgt)
    assert float(res.scale) == 0.0
    torch.testing.assert_close(res.aligned, tgt.mean(0).expand(5, 3))
    line = torch.tensor([[0.0, 0, 0], [1, 0, 0], [3, 0, 0]])
    turned = torch.tensor([[1.0, 1, 1], [1, 3, 1], [1, 7, 1]])  # x-axis -> 2 * y-axis + 1
    res = procrustes(line, turned)
    torch.testing.assert_close(res.aligned, turned)
    assert float(res.scale) == pytest.approx(2.0)


@FAST
@given(a=point_sets(1, 6), data=st.data(), scale=SCALES, chunk=st.integers(1, 7))
def test_chamfer_is_finite_symmetric_and_zero_on_itself(a, data, scale, chunk):
    b = data.draw(point_sets(1, 6))
    a, b = torch.tensor(a * scale)[None], torch.tensor(b * scale)[None]
    ab, ba = chamfer_distance(a, b, chunk_size=chunk)
    assert all_finite(ab, ba) and float(ab) >= 0 and float(ba) >= 0
    ba2, ab2 = chamfer_distance(b, a)
    torch.testing.assert_close((ab, ba), (ab2, ba2))
    # Against itself with repeated and permuted points: 0.
    again = torch.cat([a, a.flip(1), a[:, :1]], dim=1)
    self_ab, self_ba = chamfer_distance(a, again, chunk_size=chunk)
    assert float(self_ab) == 0.0 and float(self_ba) == 0.0
    # The chunking never changes the answer.
    d_full, i_full = nearest_neighbors(a, b)
    d_chunk, i_chunk = nearest_neighbors(a, b, chunk_size=chunk)
    assert torch.equal(d_full, d_chunk) and torch.equal(i_full, i_chunk)


def test_chamfer_degenerate_pins():
    a = torch.tensor([[[0.0, 0, 0]]])
    b = torch.tensor([[[3.0, 4, 0], [3.0, 4, 0]]])  # a repeated point
    assert chamfer_distance(a, b) == (torch.tensor([5.0]), torch.tensor([5.0]))
    empty = torch.zeros(1, 0, 3)
    for x, y in ((empty, b), (b, empty), (empty, empty)):
        with pytest.raises(InputError, match="empty point set"):
            chamfer_distance(x, y)
    ab, ba = chamfer_distance(torch.zeros(0, 2, 3), torch.zeros(0, 4, 3))
    assert ab.shape == ba.shape == (0,)
    nan = torch.tensor([[[math.nan, 0, 0]]])
    assert all(math.isnan(float(x)) for x in chamfer_distance(torch.cat([a, nan], 1), b))
    with pytest.raises(InputError, match="chunk_size"):
        nearest_neighbors(a, b, chunk_size=0)


# --------------------------------------------------------------------------------------------
# Camera
# --------------------------------------------------------------------------------------------


@FAST
@given(
    points=hnp.arrays(np.float64, (5, 3), elements=UNIT),
    scale=SCALES,
    fov=st.floats(1.0, 179.0),
    size=st.integers(1, 4096),
)
def test_projection_is_finite_and_inverted_by_unprojection(points, scale, fov, size):
    K = intrinsics_from_fov(size, size, fov, dtype=torch.float64)
    assert all_finite(K) and float(K[0, 0]) > 0
    pts = torch.tensor(points * scale)
    uv = project_points(pts, K)  # includes points at and behind the camera
    assert all_finite(uv)
    in_front = pts.clone()
    in_front[:, 2] = in_front[:, 2].abs() + scale
    back = unproject_points(project_points(in_front, K), in_front[:, 2], K)
    torch.testing.assert_close(back, in_front, rtol=1e-9, atol=1e-9 * scale)


@QUICK
@given(
    fov=st.one_of(st.floats(max_value=0.0), st.floats(min_value=180.0), st.just(math.nan)),
    size=st.integers(-2, 100),
)
def test_intrinsics_need_a_positive_size_and_a_field_of_view_below_180(fov, size):
    with pytest.raises(InputError, match="0 < fov < 180"):
        intrinsics_from_fov(size, size, fov)
    if size <= 0:
        with pytest.raises(InputError):
            intrinsics_from_fov(size, 10, 60.0)


def test_unprojection_with_a_zero_focal_length_raises():
    with pytest.raises(InputError, match="zero focal length"):
        unproject_points(torch.zeros(1, 2), torch.ones(1), torch.zeros(3, 3))


@FAST
@given(eye=coords(1), target=coords(1), up=coords(1), scale=SCALES)
def test_look_at_is_a_rotation_or_a_clear_error(eye, target, up, scale):
    eye, target, up = (torch.tensor(x[0]) for x in (eye * scale, target * scale, up))
    try:
        R, t = look_at(eye, target, up)
    except InputError as error:
        assert "not parallel" in str(error)
        forward, length = target - eye, float((target - eye).norm())
        if length > 0 and float(up.norm()) > 0:  # else nothing to look along or up
            sine = torch.linalg.cross(forward / length, up / up.norm()).norm()
            assert float(sine) <= 1e-6
        return
    assert all_finite(R, t)
    torch.testing.assert_close(R @ R.T, torch.eye(3, dtype=R.dtype))
    assert float(torch.linalg.det(R)) == pytest.approx(1.0)
    cam = R @ target + t  # the target is straight ahead
    assert float(cam[2]) > 0
    torch.testing.assert_close(cam[:2], torch.zeros(2, dtype=R.dtype), rtol=0, atol=1e-6 * scale)


def test_look_at_degenerate_pins():
    up = torch.tensor([0.0, 1.0, 0.0])
    with pytest.raises(InputError):
        look_at(torch.ones(3), torch.ones(3), up)  # eye == target
    with pytest.raises(InputError):
        look_at(torch.zeros(3), 2 * up, up)  # up along the viewing direction
    with pytest.raises(InputError):
        look_at(torch.zeros(3), torch.tensor([math.nan, 0, 1]), up)


# --------------------------------------------------------------------------------------------
# Normals
# --------------------------------------------------------------------------------------------


_REVERSED_FACES = (  # found by hypothesis: faces and their reverses cancel at vertices 0 and 1
    torch.tensor([[0.0, -780.7242, -780.7242], [-780.7242] * 3, [-780.7242] * 3,
                  [-780.7242] * 3, [-780.7242, -500.0, -780.7242], [-780.7242, 0.0, -780.7242]],
                 dtype=torch.float64),
    torch.tensor([[0, 1, 4], [1, 1, 1], [1, 5, 0], [5, 1, 0], [1, 1, 1], [0, 4, 1]]),
    1000.0,
)  # fmt: skip


@FAST
@given(mesh=meshes())
@example(mesh=_REVERSED_FACES)
def test_normals_are_finite_unit_or_zero_on_degenerate_meshes(mesh):
    vertices, faces, scale = mesh
    vertices.requires_grad_(True)
    fn = face_normals(vertices, faces)
    vn = vertex_normals(vertices, faces)
    assert all_finite(fn, vn)
    (fn.sum() + vn.sum()).backward()
    assert all_finite(vertices.grad)
    vertices = vertices.detach()
    fn, vn = fn.detach(), vn.detach()
    # Unit length at any scale, or exactly zero for a degenerate triangle.
    length = fn.norm(dim=-1)
    assert bool(((length == 0) | ((length - 1).abs() < 1e-9)).all())
    assert bool((fn.norm(dim=-1) <= 1 + 1e-9).all()) and bool((vn.norm(dim=-1) <= 1 + 1e-9).all())
    # A face that repeats a vertex index has no area: its normal is exactly zero.
    repeated = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2])
    repeated |= faces[:, 0] == faces[:, 2]
    assert torch.equal(fn[repeated], torch.zeros_like(fn[repeated]))
    # Vertices in no face get zero normals; zero-area faces change nothing, duplicate faces
    # not the direction (the length only below the documented 1e-12 normalisation floor).
    unused = torch.ones(len(vertices), dtype=torch.bool)
    unused[faces.reshape(-1)] = False
    assert torch.equal(vn[unused], torch.zeros_like(vn[unused]))
    torch.testing.assert_close(
        vertex_normals(vertices, torch.cat([faces, faces[:, [0, 0, 1]]])), vn
    )
    doubled = vertex_normals(vertices, torch.cat([faces, faces]))
    unit = (vn.norm(dim=-1) - 1).abs() < 1e-9
    # where incident faces cancel (a face and its reverse), the sum is rounding noise whose
    # direction depends on the order of summation: no direction to keep
    v0, v1, v2 = (vertices[faces[:, i]] for i in range(3))
    cross = torch.linalg.cross(v1 - v0, v2 - v0, dim=-1)
    summed, incident = torch.zeros_like(vertices), torch.zeros(len(vertices), dtype=cross.dtype)
    for i in range(3):
        summed = summed.index_add(0, faces[:, i], cross)
        incident = incident.index_add(0, faces[:, i], cross.norm(dim=-1))
    unit &= summed.norm(dim=-1) > 1e-9 * incident
    torch.testing.assert_close(doubled[unit], vn[unit])


def test_normals_of_empty_meshes_and_bad_faces():
    assert face_normals(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long)).shape == (0, 3)
    assert vertex_normals(torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long)).shape == (0, 3)
    assert vertex_normals(torch.zeros(2, 4, 3), torch.zeros(0, 3, dtype=torch.long)).shape == (
        2,
        4,
        3,
    )
    for fn in (face_normals, vertex_normals):
        for vertices in (torch.zeros(0, 3), torch.zeros(2, 3)):
            with pytest.raises(InputError, match="must index"):
                fn(vertices, torch.tensor([[0, 1, 2]]))
    nan = face_normals(
        torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, math.nan, 0], [0, 1, 0]]),
        torch.tensor([[0, 1, 2], [0, 1, 3]]),
    )
    assert bool(torch.isnan(nan[0]).all()) and nan[1].tolist() == [0.0, 0.0, 1.0]
