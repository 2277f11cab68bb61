"""Differentiable, perspective-correct interpolation: exact values and gradient checks."""

from __future__ import annotations

import pytest
import torch

from handface.errors import InputError
from handface.geometry.camera import intrinsics_from_fov
from handface.render import (
    interpolate_face_attributes,
    interpolate_vertex_attributes,
    pixel_barycentrics,
    rasterize,
)


def _tilted_plane(dtype=torch.float64):
    """Two triangles on the plane n . X = c covering a 16 x 12 image, strongly tilted in depth."""
    normal = torch.nn.functional.normalize(torch.tensor([0.5, 0.2, -1.0], dtype=dtype), dim=0)
    point = torch.tensor([0.0, 0.0, 1.0], dtype=dtype)
    e1 = torch.nn.functional.normalize(
        torch.linalg.cross(normal, torch.tensor([0.0, 1.0, 0.0], dtype=dtype)), dim=0
    )
    e2 = torch.linalg.cross(normal, e1)
    signs = ((-1, -1), (1, -1), (1, 1), (-1, 1))
    corners = torch.stack([point + 1.2 * (sx * e1 + sy * e2) for sx, sy in signs])
    return corners, torch.tensor([[0, 1, 2], [0, 2, 3]]), normal, point


def test_interpolated_z_reproduces_zbuf(icosphere):
    vertices, faces = icosphere(3, dtype=torch.float32)
    vertices = vertices * 0.1 + torch.tensor([0.02, 0.0, 0.45])
    K = intrinsics_from_fov(48, 40, 40.0)
    frags = rasterize(vertices, faces, K, 40, 48)
    depth = interpolate_vertex_attributes(
        frags, vertices, faces, K, vertices[:, 2:], background=-1.0
    )
    assert depth.shape == (40, 48, 1)
    torch.testing.assert_close(depth[..., 0][frags.mask], frags.zbuf[frags.mask])
    assert (depth[~frags.mask] == -1.0).all()


def test_perspective_correct_position_on_a_tilted_plane():
    # Interpolating camera-space x, y, z must give the exact ray-plane intersection, whose
    # x / z is (u - cx) / fx: true only with perspective correction, since depth varies a lot.
    vertices, faces, normal, point = _tilted_plane()
    H, W = 12, 16
    K = intrinsics_from_fov(W, H, 50.0, dtype=torch.float64)
    frags = rasterize(vertices, faces, K, H, W)
    assert frags.mask.all()
    xyz = interpolate_vertex_attributes(frags, vertices, faces, K, vertices)
    rows, cols = torch.meshgrid(
        torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij"
    )
    ray = torch.stack(
        [(cols - K[0, 2]) / K[0, 0], (rows - K[1, 2]) / K[1, 1], torch.ones_like(cols)], -1
    )
    expected = ray * ((normal @ point) / (ray @ normal)).unsqueeze(-1)
    torch.testing.assert_close(xyz, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(xyz[..., 0] / xyz[..., 2], (cols - K[0, 2]) / K[0, 0])
    # Screen-space (affine) barycentrics would be visibly wrong here: the test can fail.
    pb = pixel_barycentrics(frags, vertices, faces, K)
    affine = pb.bary * vertices[faces[pb.face], 2].reciprocal()
    affine = affine / affine.sum(-1, keepdim=True)  # l_i, the screen-space weights
    wrong = (affine.unsqueeze(-1) * vertices[faces[pb.face]]).sum(1)
    assert (wrong - expected.view(-1, 3)).abs().max() > 1e-2


def test_face_attributes_match_vertex_attributes_when_continuous(icosphere):
    vertices, faces = icosphere(2)
    vertices = vertices * 0.1 + torch.tensor([0.0, 0.0, 0.5], dtype=torch.float64)
    K = intrinsics_from_fov(24, 24, 40.0, dtype=torch.float64)
    frags = rasterize(vertices, faces, K, 24, 24)
    attrs = torch.randn(
        vertices.shape[0], 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    by_vertex = interpolate_vertex_attributes(frags, vertices, faces, K, attrs)
    by_corner = interpolate_face_attributes(frags, vertices, faces, K, attrs[faces])
    torch.testing.assert_close(by_vertex, by_corner)
    # Face-varying values really are per face: a constant per face comes back unchanged.
    per_face = torch.arange(faces.shape[0], dtype=torch.float64)[:, None, None].expand(-1, 3, 1)
    out = interpolate_face_attributes(frags, vertices, faces, K, per_face, background=-1.0)
    torch.testing.assert_close(
        out[..., 0], torch.where(frags.mask, frags.face_index.double(), -1.0)
    )


def test_gradcheck_wrt_vertices_and_attributes():
    vertices, faces, _, _ = _tilted_plane()
    vertices = vertices.clone()
    K = intrinsics_from_fov(6, 5, 50.0, dtype=torch.float64)
    frags = rasterize(vertices, faces, K, 5, 6)  # fixed visibility: a smooth function below
    assert frags.mask.all()
    attrs = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def f(v, a):
        return interpolate_vertex_attributes(frags, v, faces, K, a)

    assert torch.autograd.gradcheck(f, (vertices.requires_grad_(), attrs.requires_grad_()))
    corner = attrs.detach()[faces].clone().requires_grad_()

    def g(v, c):
        return interpolate_face_attributes(frags, v, faces, K, c)

    assert torch.autograd.gradcheck(g, (vertices, corner))


def test_depth_gradient_reaches_vertex_positions():
    # Scaling the whole scene about the camera centre by s leaves the image unchanged and
    # scales every depth by s, so (Euler) sum_v grad_v . v = sum of the depths.
    vertices, faces, _, _ = _tilted_plane()
    K = intrinsics_from_fov(8, 8, 50.0, dtype=torch.float64)
    v = vertices.clone().requires_grad_()
    frags = rasterize(v.detach(), faces, K, 8, 8)
    depth = interpolate_vertex_attributes(frags, v, faces, K, v[:, 2:])
    depth.sum().backward()
    assert float((v.grad * vertices).sum()) == pytest.approx(float(depth.detach().sum()), rel=1e-9)
    assert v.grad[:, :2].abs().sum() > 0  # the lateral position matters on a tilted plane


def test_batched_interpolation_matches_single(icosphere):
    vertices, faces = icosphere(2, dtype=torch.float32)
    verts = torch.stack(
        [
            vertices * 0.1 + torch.tensor([0.0, 0.0, 0.5]),
            vertices * 0.08 + torch.tensor([0.02, 0.0, 0.4]),
        ]
    )
    K = intrinsics_from_fov(20, 20, 40.0)
    attrs = verts[..., :2] * 10
    frags = rasterize(verts, faces, K, 20, 20)
    out = interpolate_vertex_attributes(frags, verts, faces, K, attrs)
    assert out.shape == (2, 20, 20, 2)
    for b in range(2):
        single = rasterize(verts[b], faces, K, 20, 20)
        torch.testing.assert_close(
            out[b], interpolate_vertex_attributes(single, verts[b], faces, K, attrs[b])
        )
    with pytest.raises(InputError):
        interpolate_vertex_attributes(frags, verts, faces, K, attrs[:, :5])
