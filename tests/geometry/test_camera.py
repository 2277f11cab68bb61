"""Pinhole projection (OpenCV convention) and look-at cameras."""

from __future__ import annotations

import doctest
import math

import torch

from handface.geometry import camera
from handface.geometry.camera import (
    intrinsics_from_fov,
    look_at,
    project_points,
    transform_points,
    unproject_points,
)


def test_doctests_of_camera_module():
    result = doctest.testmod(camera)
    assert result.attempted >= 3 and result.failed == 0


def test_intrinsics_from_fov_values():
    K = intrinsics_from_fov(640, 480, 90.0, dtype=torch.float64)
    # tan(45 deg) = 1: the focal length is half the width; principal point at the centre.
    expected = torch.tensor([[320.0, 0, 319.5], [0, 320.0, 239.5], [0, 0, 1]], dtype=torch.float64)
    torch.testing.assert_close(K, expected, atol=1e-12, rtol=0)
    # The image border (u = -0.5) is seen at exactly half the field of view.
    edge = unproject_points(
        torch.tensor([[-0.5, 239.5]], dtype=torch.float64), torch.ones(1, dtype=torch.float64), K
    )
    assert math.isclose(math.degrees(math.atan2(-float(edge[0, 0]), 1.0)), 45.0, rel_tol=1e-12)


def test_project_unproject_round_trip_batched():
    gen = torch.Generator().manual_seed(0)
    K = intrinsics_from_fov(256, 192, 50.0, dtype=torch.float64)
    points = torch.randn(2, 40, 3, generator=gen, dtype=torch.float64)
    points[..., 2] = points[..., 2].abs() + 0.5  # in front of the camera
    uv = project_points(points, K)
    assert uv.shape == (2, 40, 2)
    back = unproject_points(uv, points[..., 2], K)
    torch.testing.assert_close(back, points, atol=1e-12, rtol=0)


def test_project_with_batched_intrinsics():
    K = intrinsics_from_fov(256, 192, 50.0, dtype=torch.float64)
    points = torch.rand(2, 40, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    points[..., 2] += 0.5
    # A batch of identical intrinsics gives the same answer as the shared one.
    uv_batched_K = project_points(points, K.expand(2, 3, 3))
    torch.testing.assert_close(uv_batched_K, project_points(points, K), atol=0, rtol=0)


def test_projection_is_differentiable():
    K = intrinsics_from_fov(64, 64, 60.0, dtype=torch.float64).requires_grad_(True)
    points = torch.tensor(
        [[0.1, -0.2, 1.5], [0.3, 0.1, 2.0]], dtype=torch.float64, requires_grad=True
    )
    assert torch.autograd.gradcheck(project_points, (points, K))


def test_look_at_puts_target_on_the_optical_axis():
    eye = torch.tensor([0.3, -1.0, 0.5], dtype=torch.float64)
    target = torch.tensor([0.0, 0.1, 0.2], dtype=torch.float64)
    up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    R, t = look_at(eye, target, up)
    torch.testing.assert_close(R @ R.T, torch.eye(3, dtype=torch.float64), atol=1e-12, rtol=0)
    assert math.isclose(float(torch.linalg.det(R)), 1.0, abs_tol=1e-12)
    in_camera = transform_points(target[None], R, t)[0]
    distance = float((target - eye).norm())
    torch.testing.assert_close(
        in_camera, torch.tensor([0.0, 0.0, distance], dtype=torch.float64), atol=1e-12, rtol=0
    )
    torch.testing.assert_close(
        transform_points(eye[None], R, t)[0],
        torch.zeros(3, dtype=torch.float64),
        atol=1e-12,
        rtol=0,
    )
    # The target projects to the principal point; a point above it projects above (v smaller).
    K = intrinsics_from_fov(100, 100, 40.0, dtype=torch.float64)
    uv = project_points(transform_points(torch.stack([target, target + 0.1 * up]), R, t), K)
    torch.testing.assert_close(uv[0], K[:2, 2], atol=1e-9, rtol=0)
    assert uv[1, 1] < uv[0, 1] - 1.0
    assert abs(float(uv[1, 0] - uv[0, 0])) < 1e-6
