"""The look of a synthetic render: skin, hair, skin texture, lighting and background.

Everything is sampled from a ``numpy`` generator so a sample's look is part of its plan. Skin
tones interpolate between the presets of :mod:`handface.models.appearance` with a little colour
jitter; the skin gets a procedural texture (a sum of random low-frequency waves over the neutral
surface, so it is fixed to the skin and moves with it); the scalp is painted with hair in most
samples, most of which also get a shell of hair (:mod:`handface.synth.hair`); the neck and
shoulders wear clothes (:mod:`handface.synth.body`); light comes from a random direction in
front of the face with a warm or cool tint and some specular sheen; backgrounds are mostly
cluttered scenes of overlapping textured shapes, some out of focus (real photos are never
flat), else flat colours, gradients, smooth colour noise or blocky "rooms". Renders get mild
sensor noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from handface.models.appearance import SKIN_TONES, HeadLook, head_albedo
from handface.render.shading import DirectionalLight

HAIR_COLOURS: tuple[tuple[float, float, float], ...] = (
    (0.05, 0.04, 0.035),  # black
    (0.16, 0.10, 0.06),  # dark brown
    (0.32, 0.21, 0.12),  # brown
    (0.62, 0.48, 0.30),  # blond
    (0.45, 0.20, 0.10),  # auburn
    (0.55, 0.55, 0.55),  # grey
)


BACKGROUND_KINDS = ("flat", "gradient", "noise", "room", "clutter")
BACKGROUND_WEIGHTS = (0.08, 0.08, 0.12, 0.12, 0.6)


@dataclass
class RenderLook:
    """Appearance choices of one sample (constant over a sequence)."""

    skin: tuple[float, float, float]
    hand_skin: tuple[float, float, float]
    sleeve: tuple[float, float, float] | None
    """Colour of the sleeve over the forearm, or ``None`` for a bare arm."""
    hair: tuple[float, float, float]
    paint_scalp: bool
    iris: tuple[float, float, float]
    texture_seed: int
    texture_amplitude: float
    light_direction: tuple[float, float, float]
    light_color: tuple[float, float, float]
    ambient: float
    diffuse: float
    specular: float
    background_kind: str
    background_seed: int
    noise_sigma: float
    hair_thickness: float = 0.0
    """Thickness of the hair shell over the scalp (metres); 0 without one."""
    cloth: tuple[float, float, float] = (0.3, 0.3, 0.35)
    cloth_pattern: str = "plain"
    """``plain``, ``stripes`` or ``checks``."""
    collar_depth: float = 0.05
    """How far below the neck seam the clothes start (metres)."""
    torso_yaw_share: float = 0.5
    """Share of the head's yaw the torso follows."""

    def light(self) -> DirectionalLight:
        return DirectionalLight(
            direction=self.light_direction,
            color=self.light_color,
            ambient=self.ambient,
            diffuse=self.diffuse,
            specular=self.specular,
            shininess=20.0,
        )


def _tuple(values) -> tuple[float, float, float]:
    return tuple(float(v) for v in values)  # type: ignore[return-value]


def sample_look(generator: np.random.Generator) -> RenderLook:
    """Draw a look."""
    tones = np.array(list(SKIN_TONES.values()))
    position = generator.uniform(0, len(tones) - 1)
    low = int(np.floor(position))
    high = min(low + 1, len(tones) - 1)
    skin = tones[low] + (position - low) * (tones[high] - tones[low])
    skin = np.clip(skin * generator.uniform(0.95, 1.05, 3), 0, 1)
    hand_skin = np.clip(
        skin * generator.uniform(0.96, 1.04, 3) * np.array([1.02, 0.99, 0.98]), 0, 1
    )
    direction = np.array(
        [generator.uniform(-0.8, 0.8), generator.uniform(-0.7, 0.5), generator.uniform(0.5, 1.0)]
    )
    direction /= np.linalg.norm(direction)
    tint = generator.uniform(-0.08, 0.08)
    ambient = float(generator.uniform(0.25, 0.5))
    return RenderLook(
        skin=_tuple(skin),
        hand_skin=_tuple(hand_skin),
        sleeve=_tuple(generator.uniform(0.05, 0.9, 3)) if generator.uniform() < 0.5 else None,
        hair=HAIR_COLOURS[int(generator.integers(len(HAIR_COLOURS)))],
        paint_scalp=bool(generator.uniform() < 0.75),
        iris=_tuple(generator.uniform([0.15, 0.08, 0.03], [0.45, 0.40, 0.35])),
        texture_seed=int(generator.integers(2**31)),
        texture_amplitude=float(generator.uniform(0.02, 0.07)),
        light_direction=_tuple(direction),
        light_color=_tuple(np.array([1.0 + tint, 1.0, 1.0 - tint])),
        ambient=ambient,
        diffuse=float(generator.uniform(0.55, 0.8)),
        specular=float(generator.uniform(0.0, 0.15)),
        background_kind=str(
            generator.choice(
                BACKGROUND_KINDS, p=np.array(BACKGROUND_WEIGHTS) / sum(BACKGROUND_WEIGHTS)
            )
        ),
        background_seed=int(generator.integers(2**31)),
        noise_sigma=float(generator.uniform(0.0, 0.015)),
        hair_thickness=float(generator.uniform(0.004, 0.025))
        if generator.uniform() < 0.85
        else 0.0,
        cloth=_tuple(generator.uniform(0.03, 0.95, 3)),
        cloth_pattern=str(generator.choice(["plain", "stripes", "checks"], p=[0.6, 0.25, 0.15])),
        collar_depth=float(generator.uniform(0.02, 0.09)),
        torso_yaw_share=float(generator.uniform(0.2, 0.8)),
    )


def skin_texture(points: Float[Tensor, "V 3"], seed: int, amplitude: float) -> Float[Tensor, "V 1"]:
    """Multiplicative albedo variation: random waves of 1-4 cm over the surface points."""
    generator = torch.Generator().manual_seed(seed)
    directions = torch.nn.functional.normalize(torch.randn(12, 3, generator=generator), dim=1)
    frequencies = 2 * torch.pi / (0.01 + 0.03 * torch.rand(12, generator=generator))
    phases = 2 * torch.pi * torch.rand(12, generator=generator)
    waves = torch.sin(points.float() @ (directions * frequencies[:, None]).T + phases)
    return 1.0 + amplitude * waves.mean(dim=1, keepdim=True) * 2.0


def head_colours(
    head_model, regions, neutral_vertices: Float[Tensor, "V 3"], look: RenderLook
) -> Float[Tensor, "V 3"]:
    """Head albedo for ``look``; ``neutral_vertices``: canonical, without expression."""
    albedo = head_albedo(
        head_model, neutral_vertices, HeadLook(skin=look.skin, hair=look.hair, iris=look.iris)
    )
    skin_like = regions.mask("face_skin", "nose", "ears", "neck", "scalp", "lips")
    texture = skin_texture(neutral_vertices, look.texture_seed, look.texture_amplitude)
    albedo = torch.where(skin_like[:, None], albedo * texture, albedo)
    if look.paint_scalp:
        albedo[regions.mask("scalp")] = torch.tensor(look.hair)
    return albedo.clamp(0, 1)


def hand_colours(
    canonical_vertices: Float[Tensor, "Vh 3"], side: str, look: RenderLook
) -> Float[Tensor, "Vh 3"]:
    """Per-vertex albedo of a hand: skin with a lighter palm and the same procedural texture."""
    skin = torch.tensor(look.hand_skin).expand(canonical_vertices.shape[0], 3).clone()
    palm_sign = -1.0 if side == "right" else 1.0  # palm faces -x (right) / +x (left)
    centre = canonical_vertices.mean(0)
    palm = (canonical_vertices[:, 0] - centre[0]) * palm_sign > 0.004
    skin[palm] = (skin[palm] * 1.08 + 0.02).clamp(0, 1)
    texture = skin_texture(canonical_vertices, look.texture_seed + 1, look.texture_amplitude)
    return (skin * texture).clamp(0, 1)


def background_image(look: RenderLook, size: int) -> Float[Tensor, "H W 3"]:
    """A background picture of ``size`` x ``size`` pixels for ``look``."""
    generator = np.random.default_rng(look.background_seed)
    base = generator.uniform(0.05, 0.95, 3)
    if look.background_kind == "flat":
        image = np.broadcast_to(base, (size, size, 3)).copy()
    elif look.background_kind == "gradient":
        other = generator.uniform(0.05, 0.95, 3)
        angle = generator.uniform(0, 2 * np.pi)
        y, x = np.mgrid[0:size, 0:size] / max(size - 1, 1)
        t = np.clip((np.cos(angle) * (x - 0.5) + np.sin(angle) * (y - 0.5)) + 0.5, 0, 1)
        image = base * (1 - t[..., None]) + other * t[..., None]
    elif look.background_kind == "noise":
        cells = int(generator.integers(3, 9))
        grid = torch.tensor(
            generator.uniform(0.05, 0.95, (1, 3, cells, cells)), dtype=torch.float32
        )
        image = (
            torch.nn.functional.interpolate(
                grid, size=(size, size), mode="bicubic", align_corners=True
            )[0]
            .permute(1, 2, 0)
            .clamp(0, 1)
            .numpy()
        )
    elif look.background_kind == "clutter":
        image = clutter(generator, size)
    else:  # a room: a wall gradient and a few furniture-like blocks
        y = np.linspace(0, 1, size)[:, None, None]
        image = base * (0.8 + 0.3 * y) * np.ones((size, size, 3))
        for _ in range(int(generator.integers(2, 6))):
            x0, y0 = generator.uniform(0, 1, 2)
            w, h = generator.uniform(0.1, 0.6, 2)
            c = generator.uniform(0.05, 0.95, 3)
            r0, r1 = int(y0 * size), int(min(1.0, y0 + h) * size)
            c0, c1 = int(x0 * size), int(min(1.0, x0 + w) * size)
            image[r0:r1, c0:c1] = c
    return torch.tensor(np.clip(image, 0, 1), dtype=torch.float32)


def clutter(generator: np.random.Generator, size: int) -> np.ndarray:
    """A cluttered scene: overlapping shapes ("dead leaves") with flat, striped, checked or noisy
    fills, sizes from a power law, then an optional defocus blur. ``(size, size, 3)`` in [0, 1].
    """
    import cv2

    image = np.broadcast_to(generator.uniform(0.05, 0.95, 3), (size, size, 3)).copy()
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for _ in range(int(generator.integers(30, 80))):
        radius = min(0.05 / (1.0 - 0.95 * generator.uniform()) ** 0.7, 0.8)
        cx, cy = generator.uniform(-0.1, 1.1, 2)
        angle = generator.uniform(0, np.pi)
        u = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
        v = -(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)
        aspect = generator.uniform(0.3, 1.0)
        if generator.uniform() < 0.5:
            inside = (u / radius) ** 2 + (v / (radius * aspect)) ** 2 < 1.0
        else:
            inside = (np.abs(u) < radius) & (np.abs(v) < radius * aspect)
        if not inside.any():
            continue
        colour = generator.uniform(0.02, 0.98, 3)
        fill = generator.uniform()
        if fill < 0.45:
            patch = np.broadcast_to(colour, (size, size, 3))
        else:
            other = generator.uniform(0.02, 0.98, 3)
            period = generator.uniform(0.005, 0.06)
            if fill < 0.7:
                on = np.sin(2 * np.pi * u / period) > 0
            elif fill < 0.85:
                on = (np.sin(2 * np.pi * u / period) > 0) ^ (np.sin(2 * np.pi * v / period) > 0)
            else:
                on = generator.uniform(size=(size, size)) < 0.5
                on = cv2.GaussianBlur(on.astype(np.float32), (0, 0), 1.5) > 0.5
            patch = np.where(on[..., None], colour, other)
        shade = 0.75 + 0.5 * (v / max(radius, 1e-3)).clip(-0.5, 0.5)[..., None]
        image[inside] = (patch * shade)[inside]
    if generator.uniform() < 0.6:
        sigma = generator.uniform(0.5, 4.0) * size / 256
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    return np.clip(image, 0, 1)
