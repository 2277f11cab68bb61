"""Images from fragments: mask, depth, normals, and shaded RGB (vertex colours or a UV texture).

Everything here is differentiable w.r.t. vertex positions, colours, texture and UVs (through
:mod:`handface.render.interpolate`), except the visibility decided by the rasterizer.

Lighting model, in the camera frame: ``rgb = albedo * (ambient + diffuse * max(0, n.l)) +
specular * max(0, n.h)^shininess`` for one directional light (Lambert + ambient + optional
Blinn-Phong), with ``l`` pointing towards the light and ``h`` the half vector between ``l`` and
the direction towards the camera. Values are not clamped (use
:func:`handface.render.overlay.to_uint8` for display), so gradients never vanish at saturation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as nnf
from jaxtyping import Float, Int
from torch import Tensor

from handface.errors import InputError
from handface.geometry.normals import vertex_normals
from handface.render.interpolate import (
    PixelBarycentrics,
    interpolate_at_pixels,
    interpolate_face_attributes_at_pixels,
    pixel_barycentrics,
    scatter_to_image,
)
from handface.render.rasterizer import Fragments, rasterize


@dataclass
class DirectionalLight:
    """A directional light in the camera frame, plus ambient light.

    ``direction`` is the direction the light travels (from the light into the scene), so the
    default ``(0, 0, 1)`` is a headlight shining along the viewing direction: surfaces facing
    the camera are fully lit.
    """

    direction: tuple[float, float, float] = (0.0, 0.0, 1.0)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.35
    diffuse: float = 0.65
    specular: float = 0.0
    shininess: float = 32.0


@dataclass
class RenderOutput:
    """Images from :func:`render`; leading batch dimension only when the input had one.

    Attributes:
        rgb: shaded colour over the background, ``(H, W, 3)``.
        alpha: 1 on covered pixels, 0 elsewhere (float, no gradient).
        depth: differentiable camera z, ``0`` on background.
        normals: unit camera-frame normals facing the camera, ``0`` on background.
        fragments: the hard rasterization result (``object_id`` for joined scenes).
    """

    rgb: Float[Tensor, "*batch H W 3"]
    alpha: Float[Tensor, "*batch H W"]
    depth: Float[Tensor, "*batch H W"]
    normals: Float[Tensor, "*batch H W 3"]
    fragments: Fragments = field(repr=False)


def sample_texture(
    texture: Float[Tensor, "Ht Wt C"], uv: Float[Tensor, "*shape 2"]
) -> Float[Tensor, "*shape C"]:
    """Bilinear texture lookup, differentiable w.r.t. ``texture`` and ``uv``.

    UV convention (OBJ/OpenGL): ``u`` runs left to right and ``v`` bottom to top over the whole
    image, so ``(0, 0)`` is the bottom-left corner of the texture's bottom-left texel and texel
    ``(row, col)`` has its centre at ``u = (col + 0.5) / Wt``, ``v = 1 - (row + 0.5) / Ht``.
    Outside ``[0, 1]`` the border texels are repeated.

    Example:
        >>> tex = torch.arange(4.0).view(1, 4, 1)  # one row: 0, 1, 2, 3
        >>> sample_texture(tex, torch.tensor([[0.5, 0.5]])).tolist()  # halfway texels 1 and 2
        [[1.5]]
    """
    if texture.dim() != 3:
        raise InputError(f"texture must be (Ht, Wt, C), got {tuple(texture.shape)}")
    shape = uv.shape[:-1]
    grid = uv.reshape(1, 1, -1, 2).to(texture.dtype)
    # grid_sample's (-1, -1) is the top-left image corner with align_corners=False.
    grid = torch.stack([grid[..., 0] * 2.0 - 1.0, 1.0 - grid[..., 1] * 2.0], dim=-1)
    out = nnf.grid_sample(
        texture.permute(2, 0, 1).unsqueeze(0),
        grid,
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )  # (1, C, 1, N)
    return out[0, :, 0].transpose(0, 1).reshape(*shape, texture.shape[-1])


def render_mask(fragments: Fragments) -> Float[Tensor, "*batch H W"]:
    """Coverage mask as float (1 covered, 0 background)."""
    return fragments.mask.to(fragments.zbuf.dtype)


def render_depth(
    fragments: Fragments,
    vertices_cam: Float[Tensor, "*batch V 3"],
    faces: Int[Tensor, "F 3"],
    K: Float[Tensor, "*batch 3 3"],
    *,
    background: float = 0.0,
) -> Float[Tensor, "*batch H W"]:
    """Differentiable z-depth map (equals ``fragments.zbuf`` on covered pixels)."""
    pb = pixel_barycentrics(fragments, vertices_cam, faces, K)
    z = interpolate_at_pixels(pb, faces, vertices_cam[..., 2:3])
    return scatter_to_image(pb, z, background)[..., 0]


def render_normals(
    fragments: Fragments,
    vertices_cam: Float[Tensor, "*batch V 3"],
    faces: Int[Tensor, "F 3"],
    K: Float[Tensor, "*batch 3 3"],
    *,
    normals: Float[Tensor, "*batch V 3"] | None = None,
    two_sided: bool = True,
) -> Float[Tensor, "*batch H W 3"]:
    """Unit camera-frame normals per pixel (zero on background), from per-vertex normals.

    ``normals`` defaults to :func:`vertex_normals`. With ``two_sided`` normals are flipped to
    face the camera (back faces of open meshes such as the neck shade like front faces).
    """
    pb = pixel_barycentrics(fragments, vertices_cam, faces, K)
    _, n = pixel_surface(pb, vertices_cam, faces, normals=normals, two_sided=two_sided)
    return scatter_to_image(pb, n, 0.0)


def pixel_surface(
    pb: PixelBarycentrics,
    vertices_cam: Float[Tensor, "*batch V 3"],
    faces: Int[Tensor, "F 3"],
    *,
    normals: Float[Tensor, "*batch V 3"] | None = None,
    two_sided: bool = True,
) -> tuple[Float[Tensor, "N 3"], Float[Tensor, "N 3"]]:
    """The camera-frame point and unit normal each covered pixel (``pb.pixel``) shows;
    differentiable in the vertices. ``normals`` and ``two_sided`` as :func:`render_normals`."""
    if normals is None:
        normals = vertex_normals(vertices_cam, faces)
    attrs = torch.cat([vertices_cam, normals.to(vertices_cam.dtype)], dim=-1)
    values = interpolate_at_pixels(pb, faces, attrs)
    return values[:, :3], _facing_normals(values[:, :3], values[:, 3:], two_sided)


def _facing_normals(points: Tensor, normals: Tensor, two_sided: bool) -> Tensor:
    n = normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    if two_sided:
        # The camera is at the origin: a normal faces it when n . p < 0.
        facing = (n * points).sum(-1, keepdim=True) <= 0
        n = torch.where(facing, n, -n)
    return n


def _lambert(
    albedo: Tensor, points: Tensor, n: Tensor, light: DirectionalLight
) -> Float[Tensor, "N 3"]:
    dtype, device = albedo.dtype, albedo.device
    to_light = -torch.tensor(light.direction, dtype=dtype, device=device)
    to_light = to_light / to_light.norm().clamp_min(1e-12)
    color = torch.tensor(light.color, dtype=dtype, device=device)
    n_dot_l = (n * to_light).sum(-1, keepdim=True).clamp_min(0.0)
    rgb = albedo * (light.ambient + light.diffuse * n_dot_l * color)
    if light.specular > 0:
        to_eye = -points / points.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        half = to_light + to_eye
        half = half / half.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        n_dot_h = (n * half).sum(-1, keepdim=True).clamp_min(0.0)
        rgb = rgb + light.specular * n_dot_h.pow(light.shininess) * color
    return rgb


def shade(
    fragments: Fragments,
    vertices_cam: Float[Tensor, "*batch V 3"],
    faces: Int[Tensor, "F 3"],
    K: Float[Tensor, "*batch 3 3"],
    *,
    vertex_colors: Float[Tensor, "*batch V 3"] | None = None,
    texture: Float[Tensor, "Ht Wt 3"] | None = None,
    face_uvs: Float[Tensor, "F 3 2"] | None = None,
    normals: Float[Tensor, "*batch V 3"] | None = None,
    light: DirectionalLight | None = None,
    background: float | Float[Tensor, "3"] | Float[Tensor, "*batch H W 3"] = 1.0,
    two_sided: bool = True,
) -> RenderOutput:
    """Shade rasterized meshes: RGB plus differentiable depth and normal maps.

    Albedo comes from ``vertex_colors`` (per vertex), or from ``texture`` sampled at the
    face-varying ``face_uvs`` (see :func:`sample_texture` for the UV convention), or is a
    uniform light grey. Camera-space position, normal and colour are interpolated in a single
    call, so the geometric work is shared.

    Args:
        fragments: from :func:`handface.render.rasterize` with the same vertices/faces/K.
        background: colour (scalar or ``(3,)``) or image ``(H, W, 3)`` / ``(B, H, W, 3)`` in
            the same value range as the albedo.
    """
    light = light or DirectionalLight()
    if texture is not None and face_uvs is None:
        raise InputError("a texture needs face_uvs (F, 3, 2) to be sampled")
    pb = pixel_barycentrics(fragments, vertices_cam, faces, K)
    dtype = vertices_cam.dtype
    if normals is None:
        normals = vertex_normals(vertices_cam, faces)
    parts = [vertices_cam, normals.to(dtype)]
    if vertex_colors is not None and texture is None:
        if vertex_colors.shape[-1] != 3:
            raise InputError(f"vertex_colors must be (..., V, 3), got {tuple(vertex_colors.shape)}")
        colors = vertex_colors.to(dtype)
        if colors.dim() < vertices_cam.dim():
            colors = colors.expand(*vertices_cam.shape[:-2], -1, -1)
        parts.append(colors)
    values = interpolate_at_pixels(pb, faces, torch.cat(parts, dim=-1))
    points, n = values[:, :3], _facing_normals(values[:, :3], values[:, 3:6], two_sided)

    if texture is not None:
        uv = interpolate_face_attributes_at_pixels(pb, face_uvs)
        albedo = sample_texture(texture.to(dtype), uv).to(dtype)
    elif vertex_colors is not None:
        albedo = values[:, 6:9]
    else:
        albedo = torch.full_like(points, 0.75)

    rgb = _lambert(albedo, points, n, light)
    zero = torch.zeros((), dtype=dtype, device=points.device)
    return RenderOutput(
        rgb=scatter_to_image(pb, rgb, background),
        alpha=render_mask(fragments),
        depth=scatter_to_image(pb, points[:, 2:3], zero)[..., 0],
        normals=scatter_to_image(pb, n, zero),
        fragments=fragments,
    )


def render(
    vertices_cam: Float[Tensor, "*batch V 3"],
    faces: Int[Tensor, "F 3"],
    K: Float[Tensor, "*batch 3 3"],
    height: int,
    width: int,
    *,
    face_object_id: Int[Tensor, " F"] | None = None,
    **shade_kwargs,
) -> RenderOutput:
    """Rasterize and shade in one call: ``shade(rasterize(...), ...)``.

    Example:
        >>> from handface.geometry.camera import intrinsics_from_fov
        >>> v = torch.tensor([[-1.0, -1.0, 2.0], [1.0, -1.0, 2.0], [0.0, 1.0, 2.0]])
        >>> out = render(v, torch.tensor([[0, 1, 2]]), intrinsics_from_fov(8, 8, 90.0), 8, 8)
        >>> out.rgb.shape, float(out.depth[4, 4])
        (torch.Size([8, 8, 3]), 2.0)
    """
    fragments = rasterize(
        vertices_cam.detach(), faces, K.detach(), height, width, face_object_id=face_object_id
    )
    return shade(fragments, vertices_cam, faces, K, **shade_kwargs)
