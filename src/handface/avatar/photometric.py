"""Photometric refinement of the tracked head poses, jointly with the texture and lighting.

Tracking places the head from landmarks; a pixel or two of error per frame is invisible in an
overlay but blurs a texture shared by every frame (each frame paints the same texel with a
slightly different part of the face). Here each frame's head pose gets a small correction (a
rotation about the head's centre and a translation, camera frame), optimised with the texture
and the lighting so that every frame agrees on the texture: the L1 photometric loss of
:mod:`handface.avatar.appearance` through the differentiable interpolation of the rasterizer,
plus a quadratic prior on the corrections.

The pixel-to-triangle assignment comes from the hard rasterizer and has no gradient; it is
refreshed every ``raster_every`` steps, and between refreshes each pixel's barycentrics follow
the moving triangle (:func:`handface.render.pixel_barycentrics`), which is where the pose
gradients come from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import roma
import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm import tqdm

from handface.avatar.appearance import (
    Appearance,
    AppearanceFrame,
    _coverage,
    _surface,
    _total_variation,
)
from handface.errors import InputError
from handface.render.interpolate import (
    interpolate_face_attributes_at_pixels,
    pixel_barycentrics,
)
from handface.render.rasterizer import rasterize
from handface.render.shading import pixel_surface, sample_texture
from handface.render.spherical_harmonics import sh_irradiance


@dataclass
class PhotometricConfig:
    """Settings of :func:`refine_photometric`."""

    iterations: int = 200
    frames_per_step: int = 8
    """Frames in each step's minibatch (all of them when there are fewer)."""
    learning_rate: float = 0.01
    """Adam's step for the texture and lighting."""
    pose_learning_rate: float = 1e-3
    """Adam's step for the pose corrections (radians, metres)."""
    rotation_sigma_deg: float = 2.0
    """Scale of the prior on each frame's rotation correction."""
    translation_sigma_mm: float = 5.0
    """Scale of the prior on each frame's translation correction."""
    smoothness_weight: float = 0.02
    """Weight of the texture's total variation (as in the appearance fit)."""
    raster_every: int = 10
    """Steps between re-rasterizations of a frame."""
    seed: int = 0
    progress: bool = False


@dataclass
class PoseCorrections:
    """Per frame: the head's vertices ``v`` become ``(v - c) @ R_d^T + c + t_d`` (camera
    frame, ``c`` the head's centroid in that frame)."""

    rotation: Float[Tensor, "T 3 3"]
    translation: Float[Tensor, "T 3"]

    def apply(self, t: int, vertices: Float[Tensor, "V 3"]) -> Float[Tensor, "V 3"]:
        return _about_centroid(vertices, self.rotation[t], self.translation[t])


@dataclass
class RefinedAppearance:
    appearance: Appearance
    poses: PoseCorrections
    history: list[float] = field(default_factory=list)


def refine_photometric(
    frames: Sequence[AppearanceFrame],
    faces: Int[Tensor, "F 3"],
    face_uvs: Float[Tensor, "F 3 2"],
    start: Appearance,
    config: PhotometricConfig | None = None,
) -> RefinedAppearance:
    """Refine the texture, lighting and per-frame head poses (method: module docstring),
    starting from ``start`` (:func:`~handface.avatar.appearance.fit_appearance`'s result)."""
    config = config or PhotometricConfig()
    if not frames:
        raise InputError("refine_photometric needs at least one frame")
    count = len(frames)
    texture = start.texture.clone().requires_grad_(True)
    higher = start.lighting[:, 1:].clone().requires_grad_(True)
    rotvec = torch.zeros(count, 3, requires_grad=True)
    translation = torch.zeros(count, 3, requires_grad=True)
    optimizer = torch.optim.Adam(
        [
            {"params": [texture, higher], "lr": config.learning_rate},
            {"params": [rotvec, translation], "lr": config.pose_learning_rate},
        ]
    )
    ones = torch.ones(3, 1)
    images = [torch.as_tensor(f.image, dtype=torch.float32).reshape(-1, 3) for f in frames]
    masks = [None if f.mask is None else torch.as_tensor(f.mask).reshape(-1) for f in frames]
    fragments: list = [None] * count
    age = [config.raster_every] * count
    generator = torch.Generator().manual_seed(config.seed)
    rotation_scale = torch.deg2rad(torch.tensor(config.rotation_sigma_deg))
    translation_scale = config.translation_sigma_mm / 1000.0
    faces = faces.long()
    uvs = face_uvs.float()
    history: list[float] = []
    steps = tqdm(range(config.iterations), desc="photometric", unit="step",
                 disable=not config.progress)  # fmt: skip
    for _ in steps:
        batch = torch.randperm(count, generator=generator)[: config.frames_per_step].tolist()
        optimizer.zero_grad()
        lighting = torch.cat([ones, higher], dim=1)
        errors = []
        for t in batch:
            vertices = _corrected(frames[t].vertices.float(), rotvec[t], translation[t])
            height, width = frames[t].image.shape[:2]
            if age[t] >= config.raster_every:
                fragments[t] = rasterize(vertices.detach(), faces, frames[t].K.float(),
                                         height, width)  # fmt: skip
                age[t] = 0
            age[t] += 1
            pb = pixel_barycentrics(fragments[t], vertices, faces, frames[t].K.float())
            _, n = pixel_surface(pb, vertices, faces)
            uv = interpolate_face_attributes_at_pixels(pb, uvs)
            keep = torch.ones(pb.pixel.shape[0], dtype=torch.bool)
            if masks[t] is not None:
                keep = masks[t][pb.pixel]
            predicted = sample_texture(texture, uv[keep]) * sh_irradiance(n[keep], lighting)
            errors.append((predicted - images[t][pb.pixel][keep]).abs())
        photometric = torch.cat(errors).mean()
        prior = (rotvec / rotation_scale).pow(2).mean() + (translation / translation_scale).pow(
            2
        ).mean()
        loss = photometric + config.smoothness_weight * _total_variation(texture) + 1e-3 * prior
        loss.backward()
        optimizer.step()
        history.append(float(photometric.detach()))
    with torch.no_grad():
        lighting = torch.cat([ones, higher], dim=1)
        uv_all = []
        for t in range(count):
            vertices = _corrected(frames[t].vertices.float(), rotvec[t], translation[t])
            height, width = frames[t].image.shape[:2]
            pb, uv, _ = _surface(vertices, faces, uvs, frames[t].K.float(), height, width)
            if masks[t] is not None:
                uv = uv[masks[t][pb.pixel]]
            uv_all.append(uv)
    appearance = Appearance(
        texture=texture.detach().clamp(0.0, 1.0),
        lighting=lighting,
        coverage=_coverage(torch.cat(uv_all), texture.shape[0]),
        history=start.history + history,
    )
    poses = PoseCorrections(roma.rotvec_to_rotmat(rotvec.detach()), translation.detach())
    return RefinedAppearance(appearance, poses, history)


def _corrected(vertices: Tensor, rotvec: Tensor, translation: Tensor) -> Tensor:
    return _about_centroid(vertices, roma.rotvec_to_rotmat(rotvec), translation)


def _about_centroid(vertices: Tensor, rotation: Tensor, translation: Tensor) -> Tensor:
    """``(v - c) @ R^T + c + t`` with ``c`` the vertices' centroid (held fixed for gradients)."""
    centre = vertices.detach().mean(0, keepdim=True)
    rotation, translation = rotation.to(vertices.dtype), translation.to(vertices.dtype)
    return (vertices - centre) @ rotation.T + centre + translation
