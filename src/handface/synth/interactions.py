"""The interaction families of the synthetic data: hand poses, hand contact features, face anchors.

A family says *how* a hand touches a face: which hand pose (open palm, fist, pointing index,
pinch, cupped hand), which part of the hand makes contact (a *feature*: a direction in the hand's
canonical frame whose extreme point over a set of hand vertices is the contact point, so a plane
perpendicular to it touches the hand there), and where on the face (an *anchor*: a point derived
from the embedded MediaPipe landmarks, so it follows every head shape and expression). The hand
is then turned so the feature direction points into the face along the anchor's surface normal
(see :mod:`handface.synth.placement`).

Hand poses are given as joint angles in degrees for the 20 compact degrees of freedom of
:mod:`handface.models.hand_pose`, with per-joint jitter; they are clamped to the anatomical limits
before use, so every sampled pose is within them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Bool, Float
from torch import Tensor

from handface.models.hand_pose import COMPACT_DOFS, angles_to_latent, dof_limits

# Joint-angle presets (degrees) in the order of COMPACT_DOFS:
# thumb (CMC flexion, CMC abduction, MCP, IP), then index, middle, ring, little
# (MCP flexion, MCP abduction, PIP, DIP).
_OPEN = (5, 10, 5, 5) + (8, 4, 10, 5) + (10, 0, 12, 6) + (12, -4, 14, 6) + (14, -8, 16, 8)
_FIST = (30, 25, 45, 45) + (85, 0, 100, 60) + (88, 0, 100, 60) + (88, 0, 100, 60) + (85, 0, 100, 60)
_POINT = (30, 25, 40, 35) + (5, 0, 8, 4) + (85, 0, 100, 60) + (88, 0, 100, 60) + (85, 0, 100, 60)
_PINCH = (35, 30, 20, 25) + (40, 0, 55, 30) + (70, 0, 90, 50) + (75, 0, 95, 50) + (75, 0, 95, 50)
_CUPPED = (15, 15, 10, 10) + (25, 4, 35, 15) + (28, 0, 38, 15) + (30, -4, 38, 15) + (32, -8, 40, 15)

HAND_POSES: dict[str, tuple[float, ...]] = {
    "open": _OPEN,
    "fist": _FIST,
    "point": _POINT,
    "pinch": _PINCH,
    "cupped": _CUPPED,
}
"""Mean joint angles (degrees) of the hand poses the families use."""


@dataclass(frozen=True)
class HandFeature:
    """The part of the hand that makes contact.

    The contact point is the vertex of ``part`` that lies furthest along ``direction`` (hand
    canonical frame of the right hand: fingers +y, palm towards -x, thumb +z; mirrored in x
    for the left hand). ``forward`` is a hand direction that the placement keeps roughly along
    the anchor's preferred tangent (e.g. fingers up the cheek).
    """

    part: str
    """``palm``, ``fist_top``, ``index_tip``, ``pinch`` or ``fingers``: which vertices qualify."""
    direction: tuple[float, float, float]
    forward: tuple[float, float, float]


@dataclass(frozen=True)
class Anchor:
    """A point on the face defined from MediaPipe landmarks (478 layout) of the posed head.

    The target is the mean of ``landmarks`` plus ``offset`` (canonical head frame, metres); the
    anchor is the face vertex nearest to the target. ``lateral`` anchors are given for the
    subject's *right* side and mirrored for the left.
    """

    name: str
    landmarks: tuple[int, ...]
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    lateral: bool = False
    tangent: tuple[float, float, float] = (0.0, 0.0, 1.0)
    """Preferred direction of the hand's ``forward`` along the skin (canonical head frame)."""
    max_press_mm: float = 15.0


# Landmarks of the subject's right side; the left side uses the mirrored MediaPipe indices.
_MIRROR_478 = {205: 425, 50: 280, 234: 454, 159: 386, 129: 358, 187: 411, 123: 352}

ANCHORS: dict[str, Anchor] = {
    "cheek": Anchor("cheek", (205, 50), lateral=True),
    # A palm rests on the side of the cheek, fingers up and back towards the temple: laid on
    # the front of the cheek it would cover the eye, which people rarely do.
    "cheek_side": Anchor(
        "cheek_side",
        (205, 50),
        offset=(-0.016, 0.022, -0.004),
        lateral=True,
        tangent=(0.0, 0.6, 0.8),
    ),  # fmt: skip
    "chin_under": Anchor("chin_under", (152,), offset=(0.0, 0.016, -0.014), tangent=(0, -1, 0)),
    "chin": Anchor("chin", (152, 175), tangent=(0.0, 0.0, 1.0)),
    "lips": Anchor("lips", (0, 17, 13), max_press_mm=8.0),
    "nose": Anchor("nose", (129,), lateral=True, max_press_mm=6.0),
    "nose_tip": Anchor("nose_tip", (1,), max_press_mm=6.0),
    "eye": Anchor("eye", (159,), lateral=True, max_press_mm=4.0),
    "ear": Anchor("ear", (234,), offset=(-0.012, 0.012, -0.005), lateral=True, max_press_mm=6.0),
    "forehead": Anchor("forehead", (151, 9), offset=(0.0, 0.0, 0.006), tangent=(1, 0, 0)),
    "mouth": Anchor(
        "mouth", (13, 14), offset=(0.0, 0.0, -0.008), tangent=(1.0, 0.0, 0.0), max_press_mm=10.0
    ),
}
"""Face anchors by name."""

FEATURES: dict[str, HandFeature] = {
    "palm": HandFeature("palm", (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "fist_top": HandFeature("fist_top", (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
    "index_tip": HandFeature("index_tip", (-0.5, 0.87, 0.0), (0.0, 1.0, 0.0)),
    "pinch": HandFeature("pinch", (-0.3, 0.95, 0.2), (0.0, 1.0, 0.0)),
    "fingers": HandFeature("fingers", (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
}


@dataclass(frozen=True)
class Family:
    """One interaction family: a hand pose, the contact feature and the face anchors it uses."""

    name: str
    pose: str
    feature: str
    anchors: tuple[str, ...]
    weight: float = 1.0
    """Relative frequency in the sampler."""
    roll_deg: float = 45.0
    """Spread of the hand's roll about the contact normal around the preferred tangent."""
    same_side: float = 0.85
    """Probability that a lateral anchor is on the same side as the hand."""


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("palm_on_cheek", "open", "palm", ("cheek_side",), weight=1.5, roll_deg=30.0),
        Family("fist_under_chin", "fist", "fist_top", ("chin_under",), roll_deg=50.0),
        Family("chin_on_hand", "cupped", "fingers", ("chin_under",), roll_deg=60.0),
        Family("fingertip_on_cheek", "point", "index_tip", ("cheek",), roll_deg=70.0),
        Family("fingertip_on_lips", "point", "index_tip", ("lips",), roll_deg=50.0),
        Family("fingertip_on_nose", "point", "index_tip", ("nose", "nose_tip"), roll_deg=60.0),
        Family("fingertip_on_eye", "point", "index_tip", ("eye",), roll_deg=60.0),
        Family("fingertip_on_ear", "point", "index_tip", ("ear",), roll_deg=70.0, same_side=1.0),
        Family("palm_on_forehead", "open", "palm", ("forehead",), roll_deg=35.0),
        Family("hand_over_mouth", "open", "palm", ("mouth",), roll_deg=35.0),
        Family("pinch_on_cheek", "pinch", "pinch", ("cheek",), roll_deg=60.0),
    )
}
"""The interaction families of the issue, by name."""


def mirror_landmark(index: int) -> int:
    """The MediaPipe index of the same landmark on the other side of the face (lateral anchors)."""
    inverse = {v: k for k, v in _MIRROR_478.items()}
    return _MIRROR_478.get(index, inverse.get(index, index))


def sample_hand_angles(
    pose: str, generator: np.random.Generator, jitter_deg: float = 8.0
) -> Float[Tensor, "20"]:
    """Joint angles (radians) of ``pose`` with Gaussian jitter, clamped inside the joint limits."""
    mean = torch.tensor(HAND_POSES[pose], dtype=torch.float64)
    noise = torch.from_numpy(generator.normal(0.0, jitter_deg, size=len(COMPACT_DOFS)))
    lower, upper = dof_limits(torch.float64)
    angles = torch.deg2rad(mean + noise)
    margin = math.radians(1.0)
    return torch.maximum(torch.minimum(angles, upper - margin), lower + margin).float()


def hand_articulation(angles: Float[Tensor, "20"]) -> Float[Tensor, "1 20"]:
    """The compact latent (``HandParams.articulation``) of joint angles inside the limits."""
    return angles_to_latent(angles.double()).float()[None]


@functools.lru_cache(maxsize=2)
def dominant_bones(hand_model) -> Tensor:
    """Index (into ``hand_model.joint_labels``) of the bone that moves each vertex the most."""
    return hand_model._anny.dense_vertex_bone_weights.argmax(dim=1)


def feature_vertices(hand_model, part: str) -> Bool[Tensor, " V"]:
    """Vertices eligible as the contact point of a feature ``part``."""
    labels = [label.rsplit(".", 1)[0] for label in hand_model.joint_labels]
    bones = dominant_bones(hand_model)

    def on(*names: str) -> Tensor:
        wanted = torch.tensor([labels.index(name) for name in names])
        return torch.isin(bones, wanted)

    if part == "palm":
        return on("wrist", "metacarpal1", "metacarpal2", "metacarpal3", "metacarpal4")
    if part == "fist_top":
        return on("finger2-1", "finger2-2", "finger3-1", "finger3-2", "finger4-1", "finger4-2")
    if part == "index_tip":
        return on("finger2-3")
    if part == "pinch":
        return on("finger1-3", "finger2-3")
    if part == "fingers":
        return on(*(f"finger{n}-{k}" for n in (2, 3, 4, 5) for k in (1, 2)))
    raise ValueError(f"unknown hand feature part {part!r}")


def side_sign(side: str) -> float:
    """+1 for the right hand, -1 for the left: the left hand's canonical frame is mirrored in x."""
    return 1.0 if side == "right" else -1.0
