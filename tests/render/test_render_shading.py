"""Shading: normals, texture sampling, Lambert/specular lighting, depth/normal maps, background."""

from __future__ import annotations

import math

import pytest
import torch

from handface.errors import InputError
from handface.geometry.camera import intrinsics_from_fov
from handface.render import (
    DirectionalLight,
    rasterize,
    render,
    render_depth,
    render_mask,
    render_normals,
    sample_texture,
    shade,
    vertex_normals,
)

H, W = 12, 16


def _plane(angle_deg: float = 0.0, half: float = 2.0, z: float = 1.0, dtype=torch.float64):
    """A square rotated by ``angle_deg`` about the camera y axis, counter-clockwise as seen from
    the camera (outward normal towards it), large enough to cover the whole image."""
    a = math.radians(angle_deg)
    e1 = torch.tensor([math.cos(a), 0.0, math.sin(a)], dtype=dtype)  # image right
    e2 = torch.tensor([0.0, 1.0, 0.0], dtype=dtype)  # image down
    centre = torch.tensor([0.0, 0.0, z], dtype=dtype)
    corners = torch.stack(
        [centre + half * (sx * e1 + sy * e2) for sx, sy in ((-1, -1), (-1, 1), (1, 1), (1, -1))]
    )
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    return corners, faces, e1, e2


def test_vertex_normals_of_a_sphere_are_radial(icosphere):
    vertices, faces = icosphere(3)
    normals = vertex_normals(vertices * 0.3 + 1.0, faces)
    cos = (normals * vertices).sum(-1)
    assert cos.min() > 0.995
    torch.testing.assert_close(
        normals.norm(dim=-1), torch.ones(vertices.shape[0], dtype=torch.float64)
    )
    batched = vertex_normals(torch.stack([vertices, -vertices]), faces)
    torch.testing.assert_close(batched[0], normals)
    torch.testing.assert_close(batched[1], normals)  # point reflection: inward, same vectors


def test_flat_quad_normal_points_to_the_camera():
    corners, faces, _, _ = _plane()
    torch.testing.assert_close(
        vertex_normals(corners, faces),
        torch.tensor([[0.0, 0.0, -1.0]], dtype=torch.float64).expand(4, 3),
    )


def test_sample_texture_constant_and_linear():
    Ht, Wt = 5, 8
    rows, cols = torch.meshgrid(
        torch.arange(Ht, dtype=torch.float64), torch.arange(Wt, dtype=torch.float64), indexing="ij"
    )
    # Channel 0 holds the texel's u at its centre, channel 1 its v, channel 2 a constant.
    tex = torch.stack([(cols + 0.5) / Wt, 1.0 - (rows + 0.5) / Ht, torch.full_like(cols, 0.3)], -1)
    g = torch.Generator().manual_seed(3)
    uv = torch.rand(50, 2, generator=g, dtype=torch.float64)
    uv[:, 0] = 0.5 / Wt + uv[:, 0] * (1 - 1 / Wt)  # between the outermost texel centres
    uv[:, 1] = 0.5 / Ht + uv[:, 1] * (1 - 1 / Ht)
    out = sample_texture(tex, uv.view(5, 10, 2))
    assert out.shape == (5, 10, 3)
    torch.testing.assert_close(out.view(-1, 3)[:, :2], uv)  # bilinear reproduces linear data
    torch.testing.assert_close(out[..., 2], torch.full((5, 10), 0.3, dtype=torch.float64))
    # (0, 0) is the bottom-left corner: the border texel there is row Ht - 1, column 0.
    corner = sample_texture(tex, torch.tensor([[0.0, 0.0], [-0.5, 2.0]], dtype=torch.float64))
    torch.testing.assert_close(corner[0, :2], tex[Ht - 1, 0, :2])
    torch.testing.assert_close(corner[1, :2], tex[0, 0, :2])  # clamped to the border


def test_sample_texture_gradcheck():
    g = torch.Generator().manual_seed(4)
    tex = torch.rand(4, 5, 2, generator=g, dtype=torch.float64, requires_grad=True)
    uv = (torch.rand(6, 2, generator=g, dtype=torch.float64) * 0.6 + 0.2).requires_grad_()
    assert torch.autograd.gradcheck(sample_texture, (tex, uv))


def test_textured_tilted_plane_shows_the_perspective_correct_uv():
    # UVs are the plane's own coordinates, the texture stores (u, v), and the light is ambient
    # only, so each pixel's colour is the (u, v) of the point the pixel ray hits.
    corners, faces, e1, e2 = _plane(angle_deg=35.0, half=3.0, z=2.0)  # z from 0.28 to 3.7
    K = intrinsics_from_fov(W, H, 60.0, dtype=torch.float64)
    rel = corners - corners[0]
    span = 6.0
    uv_vert = torch.stack([(rel @ e1) / span, 1.0 - (rel @ e2) / span], -1)  # v grows upwards
    Ht, Wt = 64, 64
    rows, cols = torch.meshgrid(
        torch.arange(Ht, dtype=torch.float64), torch.arange(Wt, dtype=torch.float64), indexing="ij"
    )
    tex = torch.stack([(cols + 0.5) / Wt, 1.0 - (rows + 0.5) / Ht, torch.zeros_like(cols)], -1)
    frags = rasterize(corners, faces, K, H, W)
    assert frags.mask.all()
    light = DirectionalLight(ambient=1.0, diffuse=0.0)
    out = shade(frags, corners, faces, K, texture=tex, face_uvs=uv_vert[faces], light=light)
    r, c = torch.meshgrid(
        torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij"
    )
    ray = torch.stack([(c - K[0, 2]) / K[0, 0], (r - K[1, 2]) / K[1, 1], torch.ones_like(c)], -1)
    normal = torch.linalg.cross(e2, e1)
    hit = ray * ((normal @ corners[0]) / (ray @ normal)).unsqueeze(-1)
    expected_u = ((hit - corners[0]) @ e1) / span
    expected_v = 1.0 - ((hit - corners[0]) @ e2) / span
    assert 0.1 < float(expected_u.min()) and float(expected_u.max()) < 0.9  # interior texels
    torch.testing.assert_close(out.rgb[..., 0], expected_u)
    torch.testing.assert_close(out.rgb[..., 1], expected_v)
    with pytest.raises(InputError):
        shade(frags, corners, faces, K, texture=tex)


@pytest.mark.parametrize("angle", [0.0, 30.0, 60.0])
def test_lambert_follows_the_cosine_of_the_tilt(angle):
    corners, faces, _, _ = _plane(angle_deg=angle, half=2.0, z=3.0)
    K = intrinsics_from_fov(W, H, 40.0, dtype=torch.float64)
    color = torch.tensor([0.8, 0.5, 0.2], dtype=torch.float64)
    light = DirectionalLight(direction=(0.0, 0.0, 1.0), ambient=0.2, diffuse=0.7)
    out = render(corners, faces, K, H, W, vertex_colors=color.expand(4, 3), light=light)
    mask = out.fragments.mask
    assert mask.sum() > 60
    expected = color * (0.2 + 0.7 * math.cos(math.radians(angle)))
    torch.testing.assert_close(out.rgb[mask], expected.expand(int(mask.sum()), 3))


def test_side_light_two_sided_and_specular():
    corners, faces, _, _ = _plane()
    K = intrinsics_from_fov(W, H, 40.0, dtype=torch.float64)
    white = torch.ones(4, 3, dtype=torch.float64)
    side = DirectionalLight(direction=(1.0, 0.0, 0.0), ambient=0.25, diffuse=0.75)
    out = render(corners, faces, K, H, W, vertex_colors=white, light=side)
    torch.testing.assert_close(out.rgb, torch.full((H, W, 3), 0.25, dtype=torch.float64))

    head = DirectionalLight(ambient=0.25, diffuse=0.75)
    flipped = faces[:, [0, 2, 1]]  # normals now point away from the camera
    lit = render(corners, flipped, K, H, W, vertex_colors=white, light=head)
    torch.testing.assert_close(lit.rgb, torch.ones(H, W, 3, dtype=torch.float64))
    one_sided = render(corners, flipped, K, H, W, vertex_colors=white, light=head, two_sided=False)
    torch.testing.assert_close(one_sided.rgb, torch.full((H, W, 3), 0.25, dtype=torch.float64))

    # Blinn-Phong with a headlight: the half vector is the view direction, so n.h = cos of the
    # angle between the pixel ray and the optical axis.
    shiny = DirectionalLight(ambient=0.25, diffuse=0.75, specular=0.5, shininess=8.0)
    spec = render(corners, faces, K, H, W, vertex_colors=white, light=shiny)
    r, c = torch.meshgrid(
        torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij"
    )
    ray = torch.stack([(c - K[0, 2]) / K[0, 0], (r - K[1, 2]) / K[1, 1], torch.ones_like(c)], -1)
    cos_view = 1.0 / ray.norm(dim=-1)
    half = torch.nn.functional.normalize(
        ray.new_tensor([0.0, 0.0, -1.0]) - ray / ray.norm(dim=-1, keepdim=True), dim=-1
    )
    n_dot_h = -half[..., 2]
    assert (cos_view < 1).all()
    torch.testing.assert_close(spec.rgb[..., 0], 1.0 + 0.5 * n_dot_h**8)


def test_depth_normals_mask_and_background():
    corners, faces, _, _ = _plane(angle_deg=40.0, half=0.3, z=2.0)
    K = intrinsics_from_fov(W, H, 40.0, dtype=torch.float64)
    frags = rasterize(corners, faces, K, H, W)
    mask = frags.mask
    assert mask.any() and not mask.all()
    depth = render_depth(frags, corners, faces, K)
    torch.testing.assert_close(depth[mask], frags.zbuf[mask])
    assert (depth[~mask] == 0).all()
    normals = render_normals(frags, corners, faces, K)
    expected_n = torch.tensor(
        [math.sin(math.radians(40.0)), 0.0, -math.cos(math.radians(40.0))], dtype=torch.float64
    )
    torch.testing.assert_close(normals[mask], expected_n.expand(int(mask.sum()), 3))
    assert (normals[~mask] == 0).all()
    torch.testing.assert_close(render_mask(frags), mask.double())

    bg_color = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    out = shade(frags, corners, faces, K, background=bg_color)
    torch.testing.assert_close(out.rgb[~mask], bg_color.expand(int((~mask).sum()), 3))
    bg_image = torch.rand(H, W, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    out = shade(frags, corners, faces, K, background=bg_image)
    torch.testing.assert_close(out.rgb[~mask], bg_image[~mask])
    assert not torch.allclose(out.rgb[mask], bg_image[mask])
    torch.testing.assert_close(out.depth, depth)
    torch.testing.assert_close(out.alpha, mask.double())


def test_shaded_image_gradients_reach_colors_vertices_and_texture():
    corners, faces, _, _ = _plane(angle_deg=20.0)
    K = intrinsics_from_fov(6, 5, 40.0, dtype=torch.float64)
    frags = rasterize(corners, faces, K, 5, 6)
    colors = torch.rand(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    light = DirectionalLight(direction=(0.3, -0.2, 1.0), specular=0.3)

    def f(v, c):
        return shade(frags, v, faces, K, vertex_colors=c, light=light).rgb

    assert torch.autograd.gradcheck(f, (corners.clone().requires_grad_(), colors.requires_grad_()))
    tex = torch.rand(3, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    # Irregular UVs: no pixel may sample exactly on a texel centre row/column, where bilinear
    # interpolation has a kink and finite differences disagree with any one-sided derivative.
    uv = torch.tensor([[0.13, 0.21], [0.17, 0.77], [0.83, 0.71], [0.79, 0.24]], dtype=torch.float64)

    def g(t, u):
        return shade(frags, corners, faces, K, texture=t, face_uvs=u[faces], light=light).rgb

    assert torch.autograd.gradcheck(g, (tex.requires_grad_(), uv.requires_grad_()))
