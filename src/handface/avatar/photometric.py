"""Photometric refinement of the tracked head poses, jointly with the texture and lighting.

Tracking places the head from landmarks; a pixel or two of error per frame is invisible in an
overlay but blurs a texture shared by every frame (each frame paints the same texel with a
slightly different part of the face). Here each frame's head pose gets a small correction (a
rotation about the head's centre and a translation, camera frame), optimised with the texture
and the lighting so that every frame agrees on the texture: the L1 photometric loss of
:mod:`handface.avatar.appearance` through the differentiable interpolation of the rasterizer,
plus a quadratic prior on the corrections.

Given a :class:`HeadGeometry`, the refinement also corrects each frame's expression (the head
model's expression moves the canonical vertices linearly, so its blend shapes are taken once as
a basis) and learns per-vertex offsets of the head's canonical surface shared by every frame
(detail the parametric shape lacks: where the eyes, brows and mouth corners sit), with a prior
on their size and on their Laplacian (smooth offsets, no spikes). Expressions stay within the
model's bounds.

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
    refine_expression: bool = True
    """With a :class:`HeadGeometry`: correct each frame's expression too."""
    expression_learning_rate: float = 0.01
    expression_sigma: float = 0.15
    """Scale of the prior on each expression coefficient's correction."""
    learn_offsets: bool = True
    """With a :class:`HeadGeometry`: learn per-vertex offsets of the canonical head."""
    offset_learning_rate: float = 2e-4
    """Adam's step for the offsets (metres)."""
    offset_sigma_mm: float = 3.0
    """Scale of the prior on each offset's length."""
    offset_laplacian_sigma_mm: float = 0.3
    """Scale of the prior on each offset's difference from its neighbours' mean."""


@dataclass
class HeadGeometry:
    """The head model's part in the refinement: what moves a frame's canonical vertices."""

    rotation: Float[Tensor, "T 3 3"]
    """Each frame's head rotation (canonical -> camera), so canonical changes reach the frame."""
    expression: Float[Tensor, "T E"]
    """Each frame's tracked expression."""
    expression_basis: Float[Tensor, "E V 3"]
    """Canonical displacement per unit of each expression coefficient (the model's blend
    shapes; the expression must act linearly, as Anny's does)."""
    bounds: tuple[float, float] | None
    """Range of the expression coefficients (``HeadModel.expression_bounds``)."""
    faces: Int[Tensor, "F 3"]

    @classmethod
    def of(
        cls, head_model, shape: Tensor | None, rotation: Tensor, expression: Tensor
    ) -> HeadGeometry:
        """Take the blend shapes of ``head_model`` for the person of ``shape`` ((S,); None:
        the model's average person)."""
        from handface.models import HeadParams

        count = len(head_model.expression_labels)
        codes = torch.cat([torch.zeros(1, count), torch.eye(count)])
        if shape is not None:
            shape = shape.float()[None].expand(count + 1, -1)
        with torch.no_grad():
            params = HeadParams(expression=codes, shape=shape)
            canonical = head_model(params).extras["canonical_vertices"]
        return cls(rotation.float(), expression.float(), (canonical[1:] - canonical[:1]).float(),
                   head_model.expression_bounds, head_model.faces.long())  # fmt: skip


@dataclass
class FrameCorrections:
    """Per frame: the head's vertices ``v`` become ``(v - c) @ R_d^T + c + t_d`` (camera
    frame, ``c`` the head's centroid in that frame), and its expression moves by
    ``expression`` (when refined)."""

    rotation: Float[Tensor, "T 3 3"]
    translation: Float[Tensor, "T 3"]
    expression: Float[Tensor, "T E"] | None = None

    def apply(self, t: int, vertices: Float[Tensor, "V 3"]) -> Float[Tensor, "V 3"]:
        return _about_centroid(vertices, self.rotation[t], self.translation[t])

    def interpolated(self, times: Float[Tensor, " T"], at: Float[Tensor, " N"]) -> FrameCorrections:
        """The corrections at times ``at``, from these ones at ``times`` (increasing):
        piecewise linear in time (rotations through their rotation vectors), held constant
        before the first and after the last. Frames held out of the refinement get their
        neighbours' correction: tracking's error changes slowly from frame to frame.

        Example:
            >>> poses = FrameCorrections(torch.eye(3).expand(2, 3, 3),
            ...                         torch.tensor([[0.0, 0, 0], [0.002, 0, 0]]))
            >>> poses.interpolated(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 2.0])).translation
            tensor([[0.0000, 0.0000, 0.0000],
                    [0.0010, 0.0000, 0.0000]])
        """
        times, at = times.double(), at.double()
        if len(times) == 0:
            raise InputError("no corrections to interpolate from")
        after = torch.searchsorted(times, at).clamp(1, max(len(times) - 1, 1))
        before = after - 1
        if len(times) == 1:
            after = before = torch.zeros_like(after)
        span = (times[after] - times[before]).clamp_min(1e-12)
        weight = ((at - times[before]) / span).clamp(0.0, 1.0)[:, None]
        rotvec = roma.rotmat_to_rotvec(self.rotation.double())
        mixed = (1 - weight) * rotvec[before] + weight * rotvec[after]

        def blend(values: Tensor) -> Tensor:
            values = values.double()
            return ((1 - weight) * values[before] + weight * values[after]).to(values.dtype)

        return FrameCorrections(
            roma.rotvec_to_rotmat(mixed).to(self.rotation.dtype),
            blend(self.translation).to(self.translation.dtype),
            None if self.expression is None else blend(self.expression).float(),
        )


@dataclass
class RefinedAppearance:
    appearance: Appearance
    poses: FrameCorrections
    history: list[float] = field(default_factory=list)
    offsets: Float[Tensor, "V 3"] | None = None
    """The learned per-vertex offsets of the canonical head (with a :class:`HeadGeometry`)."""


def refine_photometric(
    frames: Sequence[AppearanceFrame],
    faces: Int[Tensor, "F 3"],
    face_uvs: Float[Tensor, "F 3 2"],
    start: Appearance,
    config: PhotometricConfig | None = None,
    geometry: HeadGeometry | None = None,
) -> RefinedAppearance:
    """Refine the texture, lighting and per-frame head poses (method: module docstring),
    starting from ``start`` (:func:`~handface.avatar.appearance.fit_appearance`'s result);
    with ``geometry``, also the frames' expressions and the head's per-vertex offsets."""
    config = config or PhotometricConfig()
    if not frames:
        raise InputError("refine_photometric needs at least one frame")
    count = len(frames)
    if geometry is not None and len(geometry.rotation) != count:
        raise InputError(f"the geometry has {len(geometry.rotation)} frames, not {count}")
    shape_change = _ShapeChange(geometry, config, count)
    texture = start.texture.clone().requires_grad_(True)
    higher = start.lighting[:, 1:].clone().requires_grad_(True)
    rotvec = torch.zeros(count, 3, requires_grad=True)
    translation = torch.zeros(count, 3, requires_grad=True)
    optimizer = torch.optim.Adam(
        [
            {"params": [texture, higher], "lr": config.learning_rate},
            {"params": [rotvec, translation], "lr": config.pose_learning_rate},
            *shape_change.parameter_groups(),
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
            vertices = shape_change.moved(t, frames[t].vertices.float())
            vertices = _corrected(vertices, rotvec[t], translation[t])
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
        loss = loss + 1e-3 * shape_change.prior()
        loss.backward()
        optimizer.step()
        shape_change.project()
        history.append(float(photometric.detach()))
    with torch.no_grad():
        lighting = torch.cat([ones, higher], dim=1)
        uv_all = []
        for t in range(count):
            vertices = shape_change.moved(t, frames[t].vertices.float())
            vertices = _corrected(vertices, rotvec[t], translation[t])
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
    poses = FrameCorrections(roma.rotvec_to_rotmat(rotvec.detach()), translation.detach(),
                             shape_change.expression_corrections())  # fmt: skip
    return RefinedAppearance(appearance, poses, history, shape_change.learned_offsets())


class _ShapeChange:
    """The expression corrections and vertex offsets of the refinement (none without a
    :class:`HeadGeometry`), their priors, and their effect on a frame's camera-frame head."""

    def __init__(self, geometry: HeadGeometry | None, config: PhotometricConfig, count: int):
        self.geometry, self.config = geometry, config
        self.delta = self.offsets = self.laplacian = None
        if geometry is None:
            return
        if config.refine_expression:
            self.delta = torch.zeros(count, geometry.expression.shape[1], requires_grad=True)
        if config.learn_offsets:
            num = geometry.expression_basis.shape[1]
            self.offsets = torch.zeros(num, 3, requires_grad=True)
            self.laplacian = _UniformLaplacian(geometry.faces, num)

    def parameter_groups(self) -> list[dict]:
        groups = []
        if self.delta is not None:
            groups.append({"params": [self.delta], "lr": self.config.expression_learning_rate})
        if self.offsets is not None:
            groups.append({"params": [self.offsets], "lr": self.config.offset_learning_rate})
        return groups

    def moved(self, t: int, vertices: Tensor) -> Tensor:
        if self.geometry is None:
            return vertices
        change = vertices.new_zeros(vertices.shape)
        if self.delta is not None:
            change = change + torch.einsum("e,evc->vc", self.delta[t],
                                           self.geometry.expression_basis)  # fmt: skip
        if self.offsets is not None:
            change = change + self.offsets
        return vertices + change @ self.geometry.rotation[t].T

    def prior(self) -> Tensor:
        total = torch.zeros(())
        if self.delta is not None:
            total = total + (self.delta / self.config.expression_sigma).pow(2).mean()
        if self.offsets is not None:
            size = self.config.offset_sigma_mm / 1000.0
            bumps = self.config.offset_laplacian_sigma_mm / 1000.0
            total = total + (self.offsets / size).pow(2).sum(-1).mean()
            rough = self.laplacian(self.offsets) / bumps
            total = total + rough.pow(2).sum(-1).mean()
        return total

    def project(self) -> None:
        """Keep the corrected expressions inside the model's bounds."""
        if self.delta is None or self.geometry.bounds is None:
            return
        low, high = self.geometry.bounds
        with torch.no_grad():
            tracked = self.geometry.expression
            self.delta.copy_((tracked + self.delta).clamp(low, high) - tracked)

    def expression_corrections(self) -> Tensor | None:
        return None if self.delta is None else self.delta.detach().clone()

    def learned_offsets(self) -> Tensor | None:
        return None if self.offsets is None else self.offsets.detach().clone()


class _UniformLaplacian:
    """Each vertex's value minus the mean of its mesh neighbours' values."""

    def __init__(self, faces: Tensor, num: int) -> None:
        edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        self.edges = torch.cat([edges, edges.flip(1)]).unique(dim=0)
        self.degree = torch.bincount(self.edges[:, 0], minlength=num).clamp_min(1)[:, None]

    def __call__(self, values: Float[Tensor, "V C"]) -> Float[Tensor, "V C"]:
        total = torch.zeros_like(values).index_add(0, self.edges[:, 0], values[self.edges[:, 1]])
        return values - total / self.degree


def _corrected(vertices: Tensor, rotvec: Tensor, translation: Tensor) -> Tensor:
    return _about_centroid(vertices, roma.rotvec_to_rotmat(rotvec), translation)


def _about_centroid(vertices: Tensor, rotation: Tensor, translation: Tensor) -> Tensor:
    """``(v - c) @ R^T + c + t`` with ``c`` the vertices' centroid (held fixed for gradients)."""
    centre = vertices.detach().mean(0, keepdim=True)
    rotation, translation = rotation.to(vertices.dtype), translation.to(vertices.dtype)
    return (vertices - centre) @ rotation.T + centre + translation
