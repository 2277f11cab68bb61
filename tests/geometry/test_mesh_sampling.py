"""Mesh down/up-sampling and mirror maps on icospheres with known answers."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import trimesh
from scipy.sparse import csgraph

from handface.errors import InputError
from handface.geometry import mesh_sampling as mesh_sampling_module
from handface.geometry.mesh_sampling import (
    MeshSampling,
    compute_mesh_sampling,
    farthest_point_sampling,
    mirror_correspondence,
    mirror_label_permutation,
)


def test_doctests_of_mesh_sampling_module():
    result = doctest.testmod(mesh_sampling_module)
    assert result.attempted >= 6 and result.failed == 0


def icosphere(subdivisions: int = 3, radius: float = 1.0):
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return torch.tensor(mesh.vertices), torch.tensor(mesh.faces, dtype=torch.int64)


@pytest.fixture(scope="module")
def sphere():
    v, f = icosphere(3)  # 642 vertices
    return v, f, compute_mesh_sampling(v, f, (214, 71))


def test_levels_are_nested_selections_of_the_requested_sizes(sphere):
    v, _, s = sphere
    assert s.sizes == (642, 214, 71) and s.num_levels == 2
    for k in (1, 2):
        down = s.down_index[k - 1]
        assert len(torch.unique(down)) == s.sizes[k]  # distinct vertices
        assert int(down.max()) < s.sizes[k - 1]
        # D is a selection: one 1 per row
        matrix = s.down_matrix(k, dense=True)
        assert torch.equal(matrix.sum(1), torch.ones(s.sizes[k], dtype=torch.float64))
        assert torch.equal(matrix.count_nonzero(dim=1), torch.ones(s.sizes[k], dtype=torch.int64))
    # coarse vertices are vertices of the full mesh
    coarse = s.downsample(v[None], 2)[0]
    assert torch.equal(coarse, v[s.vertex_index(2)])


def test_upsampling_rows_are_convex_combinations_of_at_most_three(sphere):
    _, _, s = sphere
    for k in (1, 2):
        weight = s.up_weight[k - 1]
        assert (weight >= 0).all()
        torch.testing.assert_close(weight.sum(1), torch.ones(s.sizes[k - 1], dtype=torch.float64))
        dense = s.up_matrix(k, dense=True)
        torch.testing.assert_close(dense.sum(1), torch.ones(s.sizes[k - 1], dtype=torch.float64))
        assert int(dense.count_nonzero(dim=1).max()) <= 3
        # most vertices really interpolate (inside a coarse triangle or on an edge)
        assert (dense.count_nonzero(dim=1) >= 2).float().mean() > 0.5


def test_selected_vertices_round_trip_exactly(sphere):
    _, _, s = sphere
    gen = torch.Generator().manual_seed(0)
    for k in (1, 2):
        coarse = torch.randn(2, s.sizes[k], 4, generator=gen, dtype=torch.float64)
        fine = s.up(coarse, k)
        assert torch.equal(fine[:, s.down_index[k - 1]], coarse)  # U reproduces coarse values
        assert torch.equal(s.down(fine, k), coarse)  # D U = I


def test_up_then_down_reproduces_an_affine_field(sphere):
    v, _, s = sphere
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(3, generator=gen, dtype=torch.float64)
    field = v @ a.T + b
    norm_a = float(torch.linalg.matrix_norm(a, ord=2))
    for level, bound in ((1, 0.04), (2, 0.12)):
        rebuilt = s.upsample(s.downsample(field[None], level), level)[0]
        error = (rebuilt - field).norm(dim=1)
        # the error is |A (v - p)| with p on the coarse surface: a fraction of the radius
        assert error.max() < bound * norm_a
        # piecewise-constant upsampling (nearest coarse vertex) is far worse
        chosen = v[s.vertex_index(level)]
        nearest = torch.cdist(v, chosen).argmin(dim=1)
        constant = (field[s.vertex_index(level)][nearest] - field).norm(dim=1)
        assert error.mean() < 0.25 * constant.mean()
    # constants are reproduced exactly (rows sum to one)
    ones = torch.ones(1, 71, 1, dtype=torch.float64)
    torch.testing.assert_close(s.upsample(ones, 2), torch.ones(1, 642, 1, dtype=torch.float64))


def test_sparse_matrices_match_the_operators(sphere):
    _, _, s = sphere
    x = torch.randn(214, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close(s.up_matrix(1) @ x, s.up(x[None], 1)[0])
    fine = torch.randn(642, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(s.down_matrix(1) @ fine, s.down(fine[None], 1)[0])


def test_construction_is_deterministic(sphere):
    v, f, s = sphere
    again = compute_mesh_sampling(v, f, (214, 71))
    for k in range(2):
        assert torch.equal(again.down_index[k], s.down_index[k])
        assert torch.equal(again.up_index[k], s.up_index[k])
        assert torch.equal(again.up_weight[k], s.up_weight[k])


def test_operators_are_batched_differentiable_and_keep_dtype(sphere):
    _, _, s = sphere
    x = torch.randn(3, 71, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: s.upsample(t, 2), (x,), fast_mode=True)
    single = torch.cat([s.upsample(x[i : i + 1], 2) for i in range(3)])
    torch.testing.assert_close(s.upsample(x, 2), single)
    assert s.up(torch.zeros(1, 71, 3, dtype=torch.float32), 2).dtype == torch.float32


def test_operators_reject_wrong_sizes_and_levels(sphere):
    _, _, s = sphere
    with pytest.raises(InputError):
        s.up(torch.zeros(1, 70, 3), 2)
    with pytest.raises(InputError):
        s.down(torch.zeros(1, 642, 3), 3)
    with pytest.raises(InputError):
        s.upsample(torch.zeros(1, 214, 3), 1, to_level=2)
    v, f = icosphere(1)
    with pytest.raises(InputError):
        compute_mesh_sampling(v, f, (30, 30))
    with pytest.raises(InputError):
        compute_mesh_sampling(v, f, (50,))


def test_truncate_and_arrays_round_trip(sphere):
    _, _, s = sphere
    first = s.truncate(1)
    assert first.sizes == (642, 214) and torch.equal(first.up_index[0], s.up_index[0])
    back = MeshSampling.from_arrays(s.to_arrays("x_"), "x_")
    assert back.sizes == s.sizes
    for k in range(2):
        assert torch.equal(back.down_index[k], s.down_index[k])
        torch.testing.assert_close(back.up_weight[k], s.up_weight[k], atol=1e-7, rtol=0)


def _graph_distances(v: torch.Tensor, f: torch.Tensor) -> np.ndarray:
    faces = f.numpy()
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    length = np.linalg.norm(v.numpy()[edges[:, 0]] - v.numpy()[edges[:, 1]], axis=1)
    graph = sp.coo_matrix((length, (edges[:, 0], edges[:, 1])), shape=(len(v), len(v)))
    return csgraph.dijkstra(graph.tocsr(), directed=False)


def test_farthest_point_sampling_covers_the_surface_evenly():
    v, f = icosphere(2)
    chosen = farthest_point_sampling(v, f, 20)
    assert len(torch.unique(chosen)) == 20
    distances = _graph_distances(v, f)
    to_chosen = distances[:, chosen.numpy()]
    covering = to_chosen.min(axis=1).max()
    between = distances[np.ix_(chosen.numpy(), chosen.numpy())]
    separation = between[~np.eye(20, dtype=bool)].min()
    # the defining property of farthest-point sampling: nothing is farther from the chosen
    # vertices than the chosen vertices are from each other
    assert covering <= separation + 1e-12
    # the first vertex is the one nearest the centroid
    first = np.linalg.norm(v.numpy() - v.numpy().mean(0), axis=1)
    assert int(chosen[0]) == int(np.argmin(first))
    # restricted to candidates
    candidates = torch.arange(0, len(v), 2)
    assert set(farthest_point_sampling(v, f, 10, candidates).tolist()) <= set(candidates.tolist())


def test_components_are_sampled_and_upsampled_separately():
    v, f = icosphere(2)  # 162 vertices
    other = v * 0.5 + torch.tensor([5.0, 0.0, 0.0], dtype=v.dtype)
    vertices = torch.cat([v, other])
    faces = torch.cat([f, f + len(v)])
    s = compute_mesh_sampling(vertices, faces, (40,))
    chosen = s.vertex_index(1)
    first_component = chosen < len(v)
    assert 0 < int(first_component.sum()) < 40
    # every fine vertex interpolates only coarse vertices of its own component
    index, weight = s.up_index[0], s.up_weight[0]
    used_component = first_component[index] | (weight == 0)
    assert used_component[: len(v)].all()
    assert (~first_component[index] | (weight == 0))[len(v) :].all()


def test_mirror_correspondence_of_a_symmetric_mesh_is_an_exact_involution():
    v, _ = icosphere(2)  # symmetric under x -> -x
    perm, distance = mirror_correspondence(v)
    assert torch.equal(perm[perm], torch.arange(len(v)))
    assert distance.max() < 1e-12
    reflected = v * torch.tensor([-1.0, 1.0, 1.0], dtype=v.dtype)
    torch.testing.assert_close(v[perm], reflected, atol=1e-12, rtol=0)
    on_plane = v[:, 0].abs() < 1e-12
    assert torch.equal(perm[on_plane], torch.nonzero(on_plane)[:, 0])


def test_mirror_correspondence_between_two_meshes_recovers_a_shuffle():
    v, _ = icosphere(2)
    shuffle = torch.randperm(len(v), generator=torch.Generator().manual_seed(4))
    other = (v * torch.tensor([-1.0, 1.0, 1.0], dtype=v.dtype))[shuffle]  # other[i] = refl(v[s[i]])
    perm, distance = mirror_correspondence(v, other)
    assert torch.equal(torch.sort(perm).values, torch.arange(len(v)))  # a bijection
    assert torch.equal(shuffle[perm], torch.arange(len(v)))
    assert distance.max() < 1e-12


def test_mirror_correspondence_leaves_unpartnered_vertices_alone():
    v = torch.tensor([[-1.0, 0, 0], [1.0, 0, 0], [0.3, 1.0, 0], [-0.3, 1.0, 0], [0.5, -1, 0]])
    perm, distance = mirror_correspondence(v, max_distance=0.01)
    assert perm.tolist() == [1, 0, 3, 2, 4]
    assert distance[:4].max() == 0 and distance[4] == pytest.approx(1.0)
    # without a limit the greedy pass still returns an involution
    perm, _ = mirror_correspondence(v)
    assert torch.equal(perm[perm], torch.arange(5))


def test_mirror_label_permutation_swaps_sides_and_keeps_the_rest():
    labels = ["browDownLeft", "browDownRight", "jawOpen", "eyeLookInLeft", "eyeLookInRight", "x"]
    perm = mirror_label_permutation(labels)
    assert perm.tolist() == [1, 0, 2, 4, 3, 5]
    assert torch.equal(perm[perm], torch.arange(len(labels)))
    assert mirror_label_permutation(["thumb.L", "thumb.R"], pairs=((".L", ".R"),)).tolist() == [
        1,
        0,
    ]
