"""The avatar's appearance: a UV albedo texture and spherical-harmonics lighting, fitted to video.

With the head's geometry known per frame (from tracking), a pixel of the face shows
``albedo(uv) * irradiance(n)``: the texture looked up where the pixel's ray meets the surface,
times the lighting at the surface's normal (:mod:`handface.render.spherical_harmonics`). Both
factors are fitted photometrically through the rasterizer (METHOD.md §4's appearance stage):
an L1 loss over the pixels the mask keeps (the person's face, minus occluders such as the
hand), plus a total-variation prior on the texture so texels seen in few pixels stay smooth.
The lighting is one set of nine coefficients per channel for the whole video, with band 0 held
at 1 (albedo and light trade a common scale; the texture keeps it).

Geometry is fixed here, so each frame is rasterized once: the fit then only looks the texture
up at stored UVs, which is what makes it fast on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor
from tqdm import tqdm

from handface.errors import InputError
from handface.render.interpolate import (
    PixelBarycentrics,
    interpolate_face_attributes_at_pixels,
    pixel_barycentrics,
    scatter_to_image,
)
from handface.render.rasterizer import rasterize
from handface.render.shading import pixel_surface, sample_texture
from handface.render.spherical_harmonics import SH_COEFFICIENTS, sh_irradiance


@dataclass
class AppearanceConfig:
    """Settings of :func:`fit_appearance`."""

    texture_size: int = 256
    """Texture resolution (square, texels per side)."""
    iterations: int = 300
    """Adam steps over all kept pixels of all frames."""
    learning_rate: float = 0.03
    smoothness_weight: float = 0.02
    """Weight of the texture's total variation (mean absolute difference of neighbours)."""
    initial_albedo: tuple[float, float, float] = (0.7, 0.55, 0.45)
    """Colour the texture starts from (texels never seen keep a smooth fill of it)."""
    progress: bool = False
    """Show a progress bar."""


@dataclass
class AppearanceFrame:
    """One video frame for the appearance fit: the head's mesh in the camera frame and the
    photo, with the pixels that show the head's skin."""

    vertices: Float[Tensor, "V 3"]
    K: Float[Tensor, "3 3"]
    image: Float[Tensor, "H W 3"]
    """Colours in [0, 1]."""
    mask: Bool[Tensor, "H W"] | None = None
    """Pixels that may be compared (the person's head, not the hand over it); None: all the
    pixels the head covers."""


@dataclass
class Appearance:
    """A fitted texture and lighting (see the module docstring)."""

    texture: Float[Tensor, "T T 3"]
    lighting: Float[Tensor, "3 9"]
    """SH coefficients per colour channel (band 0 is 1)."""
    coverage: Bool[Tensor, "T T"]
    """Texels that some kept pixel looked up (the rest is the smoothness prior's fill)."""
    history: list[float] = field(default_factory=list)
    """The photometric loss (mean absolute error per channel) every step."""


@dataclass
class _Samples:
    uv: Float[Tensor, "N 2"]
    normals: Float[Tensor, "N 3"]
    target: Float[Tensor, "N 3"]


def _surface(
    vertices: Tensor, faces: Tensor, face_uvs: Tensor, K: Tensor, height: int, width: int
) -> tuple[PixelBarycentrics, Tensor, Tensor]:
    """Per covered pixel (``pb.pixel``): the texture coordinate and the unit normal (camera
    frame, facing the camera) of the surface it shows."""
    fragments = rasterize(vertices, faces, K, height, width)
    pb = pixel_barycentrics(fragments, vertices, faces, K)
    _, n = pixel_surface(pb, vertices, faces)
    uv = interpolate_face_attributes_at_pixels(pb, face_uvs.to(vertices.dtype))
    return pb, uv, n


def render_appearance(
    appearance: Appearance,
    vertices: Float[Tensor, "V 3"],
    faces: Int[Tensor, "F 3"],
    face_uvs: Float[Tensor, "F 3 2"],
    K: Float[Tensor, "3 3"],
    height: int,
    width: int,
    background: float = 0.0,
) -> tuple[Float[Tensor, "H W 3"], Bool[Tensor, "H W"]]:
    """The head rendered with its texture and lighting, and the pixels it covers.

    Example:
        >>> import trimesh
        >>> from handface.geometry.camera import intrinsics_from_fov
        >>> s = trimesh.creation.icosphere(subdivisions=2, radius=0.1)
        >>> v = torch.tensor(s.vertices).float() + torch.tensor([0.0, 0.0, 0.5])
        >>> f = torch.tensor(s.faces)
        >>> uvs = torch.full((len(f), 3, 2), 0.5)
        >>> light = torch.zeros(3, 9); light[:, 0] = 1.0
        >>> look = Appearance(torch.full((4, 4, 3), 0.5), light, torch.ones(4, 4, dtype=torch.bool))
        >>> K = intrinsics_from_fov(32, 32, 40.0)
        >>> rgb, mask = render_appearance(look, v, f, uvs, K, 32, 32)
        >>> round(float(rgb[16, 16, 0]), 3), bool(mask[0, 0])
        (0.5, False)
    """
    pb, uv, n = _surface(vertices, faces, face_uvs, K, height, width)
    rgb = sample_texture(appearance.texture, uv) * sh_irradiance(n, appearance.lighting)
    covered = torch.zeros(height * width, dtype=torch.bool)
    covered[pb.pixel] = True
    return scatter_to_image(pb, rgb, background), covered.view(height, width)


def fit_appearance(
    frames: Sequence[AppearanceFrame],
    faces: Int[Tensor, "F 3"],
    face_uvs: Float[Tensor, "F 3 2"],
    config: AppearanceConfig | None = None,
) -> Appearance:
    """Fit a texture and lighting to ``frames`` (method: module docstring).

    Raises:
        InputError: no frames, or no frame has a kept pixel on the head.
    """
    config = config or AppearanceConfig()
    if not frames:
        raise InputError("fit_appearance needs at least one frame")
    samples = _collect(frames, faces, face_uvs)
    size = config.texture_size
    texture = torch.tensor(config.initial_albedo, dtype=torch.float32).expand(size, size, 3)
    texture = texture.clone().requires_grad_(True)
    higher = torch.zeros(3, SH_COEFFICIENTS - 1, requires_grad=True)
    optimizer = torch.optim.Adam([texture, higher], lr=config.learning_rate)
    irradiance_basis_ones = torch.ones(3, 1)
    history: list[float] = []
    steps = tqdm(range(config.iterations), desc="appearance", unit="step",
                 disable=not config.progress)  # fmt: skip
    for _ in steps:
        optimizer.zero_grad()
        lighting = torch.cat([irradiance_basis_ones, higher], dim=1)
        predicted = sample_texture(texture, samples.uv) * sh_irradiance(samples.normals, lighting)
        photometric = (predicted - samples.target).abs().mean()
        loss = photometric + config.smoothness_weight * _total_variation(texture)
        loss.backward()
        optimizer.step()
        history.append(float(photometric.detach()))
    lighting = torch.cat([irradiance_basis_ones, higher.detach()], dim=1)
    return Appearance(
        texture=texture.detach().clamp(0.0, 1.0),
        lighting=lighting,
        coverage=_coverage(samples.uv, size),
        history=history,
    )


def _collect(frames: Sequence[AppearanceFrame], faces: Tensor, face_uvs: Tensor) -> _Samples:
    uvs, normals, targets = [], [], []
    for index, frame in enumerate(frames):
        image = torch.as_tensor(frame.image, dtype=torch.float32)
        if image.dim() != 3 or image.shape[-1] != 3:
            raise InputError(f"frame {index}: image must be (H, W, 3), got {tuple(image.shape)}")
        height, width = image.shape[:2]
        with torch.no_grad():
            pb, uv, n = _surface(
                frame.vertices.float(), faces, face_uvs, frame.K.float(), height, width
            )
        keep = torch.ones(pb.pixel.shape[0], dtype=torch.bool)
        if frame.mask is not None:
            mask = torch.as_tensor(frame.mask, dtype=torch.bool)
            if mask.shape != (height, width):
                raise InputError(
                    f"frame {index}: mask must be {(height, width)}, got {tuple(mask.shape)}"
                )
            keep = mask.reshape(-1)[pb.pixel]
        uvs.append(uv[keep])
        normals.append(n[keep])
        targets.append(image.reshape(-1, 3)[pb.pixel][keep])
    if not sum(len(u) for u in uvs):
        raise InputError("no frame shows a kept pixel of the head (check the masks and poses)")
    return _Samples(torch.cat(uvs), torch.cat(normals), torch.cat(targets))


def _total_variation(texture: Tensor) -> Tensor:
    return (texture[1:] - texture[:-1]).abs().mean() + (
        texture[:, 1:] - texture[:, :-1]
    ).abs().mean()


def _coverage(uv: Tensor, size: int) -> Tensor:
    cols = (uv[:, 0] * size).floor().long().clamp(0, size - 1)
    rows = ((1.0 - uv[:, 1]) * size).floor().long().clamp(0, size - 1)
    seen = np.zeros((size, size), dtype=bool)
    seen[rows.numpy(), cols.numpy()] = True
    return torch.from_numpy(seen)
