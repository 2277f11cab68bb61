"""Procrustes / similarity transforms and Chamfer distance against exact answers."""

from __future__ import annotations

import doctest
import math

import pytest
import roma
import torch

from handface.errors import InputError
from handface.geometry import alignment as alignment_module
from handface.geometry import (
    apply_similarity,
    chamfer_distance,
    invert_similarity,
    nearest_neighbors,
    procrustes,
)


def test_doctests_of_alignment_module():
    result = doctest.testmod(alignment_module)
    assert result.attempted >= 4 and result.failed == 0


def random_similarity(batch: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    rotation = roma.rotvec_to_rotmat(torch.randn(batch, 3, generator=gen, dtype=torch.float64))
    scale = 0.5 + torch.rand(batch, generator=gen, dtype=torch.float64) * 2
    translation = torch.randn(batch, 3, generator=gen, dtype=torch.float64)
    return scale, rotation, translation


def test_procrustes_recovers_known_similarity_exactly():
    scale, rotation, translation = random_similarity(4, seed=0)
    source = torch.randn(4, 30, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    target = apply_similarity(source, scale, rotation, translation)
    res = procrustes(source, target)
    torch.testing.assert_close(res.scale, scale, atol=1e-12, rtol=0)
    torch.testing.assert_close(res.rotation, rotation, atol=1e-12, rtol=0)
    torch.testing.assert_close(res.translation, translation, atol=1e-12, rtol=0)
    torch.testing.assert_close(res.aligned, target, atol=1e-12, rtol=0)
    torch.testing.assert_close(res.apply(source[:, :5]), target[:, :5], atol=1e-12, rtol=0)


def test_procrustes_rigid_ignores_scale():
    _, rotation, translation = random_similarity(2, seed=2)
    source = torch.randn(2, 10, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    target = apply_similarity(
        source, torch.full((2,), 3.0, dtype=torch.float64), rotation, translation
    )
    res = procrustes(source, target, scale=False)
    assert torch.equal(res.scale, torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(res.rotation, rotation, atol=1e-12, rtol=0)
    # The best rigid fit of a 3x larger copy leaves a residual.
    assert (res.aligned - target).norm(dim=-1).mean() > 0.1


def test_procrustes_returns_rotation_for_reflected_target():
    source = torch.randn(1, 20, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    mirrored = source * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    res = procrustes(source, mirrored)
    assert math.isclose(float(torch.linalg.det(res.rotation[0])), 1.0, abs_tol=1e-12)
    eye = torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(res.rotation[0].T @ res.rotation[0], eye, atol=1e-12, rtol=0)
    # A reflection cannot be matched by a rotation: the fit is imperfect.
    assert (res.aligned - mirrored).norm(dim=-1).mean() > 1e-3


def test_procrustes_weights_ignore_outliers_and_unbatched_input():
    scale, rotation, translation = random_similarity(1, seed=5)
    source = torch.randn(25, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    target = apply_similarity(source, scale[0], rotation[0], translation[0])
    target[:5] += 10.0  # outliers
    weights = torch.ones(25, dtype=torch.float64)
    weights[:5] = 0.0
    res = procrustes(source, target, weights=weights)
    torch.testing.assert_close(res.rotation, rotation[0], atol=1e-12, rtol=0)
    torch.testing.assert_close(res.scale, scale[0], atol=1e-12, rtol=0)
    unweighted = procrustes(source, target)
    assert (unweighted.rotation - rotation[0]).abs().max() > 1e-3


def test_procrustes_is_differentiable():
    source = torch.randn(1, 12, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    scale, rotation, translation = random_similarity(1, seed=8)
    target = (apply_similarity(source, scale, rotation, translation) + 0.01).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: procrustes(source, t).aligned, (target,))


def test_invert_similarity_round_trip():
    scale, rotation, translation = random_similarity(3, seed=9)
    points = torch.randn(3, 7, 3, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    moved = apply_similarity(points, scale, rotation, translation)
    back = apply_similarity(moved, *invert_similarity(scale, rotation, translation))
    torch.testing.assert_close(back, points, atol=1e-12, rtol=0)


def test_procrustes_rejects_mismatched_shapes():
    with pytest.raises(InputError):
        procrustes(torch.zeros(1, 5, 3), torch.zeros(1, 6, 3))
    with pytest.raises(InputError):
        procrustes(torch.zeros(1, 5, 3), torch.zeros(1, 5, 3), weights=torch.ones(1, 4))


def test_chamfer_of_a_set_with_itself_is_zero():
    points = torch.randn(2, 50, 3, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    shuffled = points[:, torch.randperm(50, generator=torch.Generator().manual_seed(12))]
    a_to_b, b_to_a = chamfer_distance(points, shuffled)
    assert torch.equal(a_to_b, torch.zeros(2, dtype=torch.float64))
    assert torch.equal(b_to_a, torch.zeros(2, dtype=torch.float64))


def test_chamfer_known_small_case_plain_and_squared():
    a = torch.tensor([[[0.0, 0, 0], [3, 0, 0]]], dtype=torch.float64)
    b = torch.tensor([[[1.0, 0, 0], [0, 2, 0], [3, 0, 4]]], dtype=torch.float64)
    # a -> b: 1 (to (1,0,0)) and 2 (from (3,0,0) to (1,0,0)); b -> a: 1, 2, 4.
    a_to_b, b_to_a = chamfer_distance(a, b)
    torch.testing.assert_close(a_to_b, torch.tensor([1.5], dtype=torch.float64))
    torch.testing.assert_close(b_to_a, torch.tensor([7.0 / 3.0], dtype=torch.float64))
    a_to_b2, b_to_a2 = chamfer_distance(a, b, squared=True)
    torch.testing.assert_close(a_to_b2, torch.tensor([2.5], dtype=torch.float64))
    torch.testing.assert_close(b_to_a2, torch.tensor([7.0], dtype=torch.float64))


def test_chamfer_chunking_does_not_change_the_answer_and_gradients_flow():
    gen = torch.Generator().manual_seed(13)
    a = torch.randn(2, 37, 3, generator=gen, dtype=torch.float64).requires_grad_(True)
    b = torch.randn(2, 23, 3, generator=gen, dtype=torch.float64)
    full = chamfer_distance(a, b)
    chunked = chamfer_distance(a, b, chunk_size=4)
    torch.testing.assert_close(torch.stack(full), torch.stack(chunked), atol=0, rtol=0)
    full[0].sum().backward()
    # d mean|a_i - b_nn(i)| / d a_i is the unit vector away from the neighbour, over N.
    _, idx = nearest_neighbors(a.detach(), b)
    direction = a.detach() - torch.gather(b, 1, idx[..., None].expand(-1, -1, 3))
    expected = direction / direction.norm(dim=-1, keepdim=True) / 37
    torch.testing.assert_close(a.grad, expected, atol=1e-12, rtol=0)
