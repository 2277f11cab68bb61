"""Pinhole camera (OpenCV convention) and rigid transforms.

Camera frame: x right, y down, z forward (into the scene). ``K`` is the 3x3 intrinsic matrix;
world-to-camera is ``x_cam = R @ x_world + t``. Pixel coordinates: the centre of pixel
``(col, row)`` is at ``(u, v) = (col, row)``; the image covers ``[-0.5, W - 0.5]``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from handface.errors import InputError


def intrinsics_from_fov(
    width: int, height: int, fov_deg: float, *, dtype: torch.dtype = torch.float32
) -> Float[Tensor, "3 3"]:
    """Intrinsics of a camera whose horizontal field of view is ``fov_deg`` degrees.

    The principal point is the image centre ``((W-1)/2, (H-1)/2)``; pixels are square. The
    size must be positive and ``0 < fov_deg < 180`` (:class:`~handface.errors.InputError`).

    Example:
        >>> K = intrinsics_from_fov(256, 256, 60.0)
        >>> round(float(K[0, 0]), 2)
        221.7
    """
    if not (width > 0 and height > 0 and 0.0 < fov_deg < 180.0):
        raise InputError(
            f"a pinhole camera needs a positive image size and 0 < fov < 180 degrees, got "
            f"{width}x{height} px and fov {fov_deg}"
        )
    focal = 0.5 * width / math.tan(math.radians(fov_deg) / 2.0)
    return torch.tensor(
        [[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0], [0.0, 0.0, 1.0]],
        dtype=dtype,
    )


def transform_points(
    points: Float[Tensor, "*batch N 3"],
    rotation: Float[Tensor, "*batch 3 3"],
    translation: Float[Tensor, "*batch 3"],
) -> Float[Tensor, "*batch N 3"]:
    """Apply ``x -> R x + t`` to every point."""
    return points @ rotation.transpose(-1, -2) + translation.unsqueeze(-2)


def project_points(
    points_cam: Float[Tensor, "*batch N 3"], K: Float[Tensor, "*batch 3 3"]
) -> Float[Tensor, "*batch N 2"]:
    """Project camera-frame points to pixel coordinates with a pinhole ``K``.

    Differentiable in both arguments. Points at or behind the camera (z <= 1e-8) are clamped to
    z = 1e-8 so the result stays finite for finite input (up to ``|x| / 1e-8`` overflowing the
    dtype); callers cull them. NaN/inf coordinates give non-finite pixels for that point only.

    Example:
        >>> K = torch.tensor([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
        >>> project_points(torch.tensor([[0.1, -0.2, 2.0]]), K)
        tensor([[55., 30.]])
    """
    z = points_cam[..., 2:3].clamp_min(1e-8)
    xy1 = torch.cat([points_cam[..., :2] / z, torch.ones_like(z)], dim=-1)
    uvw = xy1 @ K.transpose(-1, -2)  # (*batch, N, 3) @ (*batch, 3, 3) broadcasts per item
    return uvw[..., :2]


def unproject_points(
    uv: Float[Tensor, "*batch N 2"], depth: Float[Tensor, "*batch N"], K: Float[Tensor, "3 3"]
) -> Float[Tensor, "*batch N 3"]:
    """Inverse of :func:`project_points`: pixel coordinates and metric z-depth to camera points.

    A ``K`` with a zero focal length raises :class:`~handface.errors.InputError`.

    Example:
        >>> K = torch.tensor([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
        >>> unproject_points(torch.tensor([[55.0, 30.0]]), torch.tensor([2.0]), K)
        tensor([[ 0.1000, -0.2000,  2.0000]])
    """
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if not bool(((fx != 0) & (fy != 0)).all()):
        raise InputError(f"K has a zero focal length (fx={float(fx)}, fy={float(fy)})")
    x = (uv[..., 0] - cx) / fx * depth
    y = (uv[..., 1] - cy) / fy * depth
    return torch.stack([x, y, depth], dim=-1)


def look_at(
    eye: Float[Tensor, "3"], target: Float[Tensor, "3"], up: Float[Tensor, "3"]
) -> tuple[Float[Tensor, "3 3"], Float[Tensor, "3"]]:
    """World-to-camera ``(R, t)`` of an OpenCV camera at ``eye`` looking at ``target``.

    ``up`` is the world direction that should appear upwards in the image (towards -y).
    ``eye == target`` and an ``up`` parallel to the viewing direction leave the camera
    undefined and raise :class:`~handface.errors.InputError` (instead of a NaN rotation).
    """
    forward = target - eye
    length, up_length = forward.norm(), up.norm()
    # Unit vectors first: a cross product of tiny vectors would underflow.
    right = torch.linalg.cross(forward / length, up / up_length)
    # sin(angle between forward and up) below 1e-6 (or a zero vector): no usable "right".
    if not bool((length > 0) & (up_length > 0) & (right.norm() > 1e-6)):
        raise InputError(
            "look_at needs eye != target and a nonzero up direction that is not parallel to "
            f"the viewing direction, got eye={eye.tolist()}, target={target.tolist()}, "
            f"up={up.tolist()}"
        )
    forward = forward / length
    right = right / right.norm()
    down = torch.linalg.cross(forward, right)
    R = torch.stack([right, down, forward], dim=0)
    t = -R @ eye
    return R, t


def resized_pixels(points, sx: float, sy: float):
    """Pixel coordinates ``(..., 2)`` of ``points`` in the image resized by ``(sx, sy)``.

    Pixel centres sit at integers, so a point moves as ``u' = sx * (u + 0.5) - 0.5``: the
    image's edge ``-0.5`` stays at ``-0.5``. Works on numpy arrays and tensors alike.

    Example:
        >>> resized_pixels(np.array([[-0.5, 0.0], [99.5, 49.5]]), 0.5, 0.5).tolist()
        [[-0.5, -0.25], [49.5, 24.5]]
    """
    u = sx * (points[..., 0] + 0.5) - 0.5
    v = sy * (points[..., 1] + 0.5) - 0.5
    stack = torch.stack if isinstance(points, Tensor) else np.stack
    return stack([u, v], -1)


def resized_intrinsics(K, sx: float, sy: float):
    """The intrinsics ``(3, 3)`` of the same camera for the image resized by ``(sx, sy)``: a
    point projects to :func:`resized_pixels` of where it projected before. Works on numpy arrays
    and tensors alike (a new array is returned).

    Example:
        >>> resized_intrinsics(np.array([[100.0, 0, 49.5], [0, 100.0, 24.5], [0, 0, 1]]),
        ...                    0.5, 0.5).tolist()
        [[50.0, 0.0, 24.5], [0.0, 50.0, 12.0], [0.0, 0.0, 1.0]]
    """
    K = K.clone() if isinstance(K, Tensor) else np.array(K, dtype=np.float64)
    K[0] *= sx
    K[1] *= sy
    K[0, 2] += 0.5 * sx - 0.5
    K[1, 2] += 0.5 * sy - 0.5
    return K
