"""Sampling hand-face interaction scenes and turning them into labelled frames.

A *plan* (:class:`InteractionPlan`) holds every random choice of one sample or sequence: head
shape, expressions, head poses, hand side, family, anchor, hand pose and shape, the hand's
placement against the face, press depth or clearance, camera, and the look of the render. It is
drawn from a ``numpy`` generator seeded per sample, so a sample depends only on
``(seed, index)``. :func:`realize_frame` then computes one frame from a plan: poses both models,
moves the hand along its trajectory, resolves the press with the soft-tissue solver, places
everything in the camera, and computes the labels (contact, landmarks, keypoints).

Frames: the hand is placed in the head's canonical frame (z up, face towards -y); the head's
rotation ``R_h`` and translation ``T_h`` then take both to the camera, which is the world frame
of the synthetic data (``R = I, t = 0``).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field

import numpy as np
import roma
import torch
from jaxtyping import Float
from torch import Tensor

from handface.geometry.camera import intrinsics_from_fov
from handface.geometry.contact import contact_labels, surface_signed_distance
from handface.geometry.distance import signed_distance
from handface.models.base import HandParams, HeadParams
from handface.models.scene import head_rotation
from handface.synth.appearance import RenderLook, sample_look
from handface.synth.interactions import (
    ANCHORS,
    FAMILIES,
    FEATURES,
    feature_vertices,
    hand_articulation,
    sample_hand_angles,
)
from handface.synth.placement import (
    HandPlacement,
    locate_anchor,
    outward_normals,
    place_hand,
    push_out,
)

EXPRESSIONS: dict[str, dict[str, tuple[float, float]]] = {
    "neutral": {},
    "smile": {
        "mouthSmileLeft": (0.3, 0.9),
        "mouthSmileRight": (0.3, 0.9),
        "cheekSquintLeft": (0.0, 0.3),
        "cheekSquintRight": (0.0, 0.3),
    },
    "open_mouth": {"jawOpen": (0.2, 0.6)},
    "surprise": {
        "browInnerUp": (0.4, 0.9),
        "eyeWideLeft": (0.2, 0.7),
        "eyeWideRight": (0.2, 0.7),
        "jawOpen": (0.1, 0.4),
    },
    "frown": {
        "browDownLeft": (0.3, 0.8),
        "browDownRight": (0.3, 0.8),
        "mouthFrownLeft": (0.2, 0.6),
        "mouthFrownRight": (0.2, 0.6),
    },
    "pucker": {"mouthPucker": (0.3, 0.8)},
    "squint": {
        "eyeSquintLeft": (0.3, 0.8),
        "eyeSquintRight": (0.3, 0.8),
        "noseSneerLeft": (0.0, 0.4),
        "noseSneerRight": (0.0, 0.4),
    },
    "blink": {"eyeBlinkLeft": (0.7, 1.0), "eyeBlinkRight": (0.7, 1.0)},
    "cheek_puff": {"cheekPuff": (0.3, 0.8)},
}
"""Expression presets: facial action -> intensity range."""
_EXPRESSION_WEIGHTS = {"neutral": 3.0, "smile": 2.0, "open_mouth": 1.5}

HEAD_YAW_DEG = 35.0
HEAD_PITCH_DEG = 20.0
HEAD_ROLL_DEG = 10.0
NON_CONTACT_SHARE = 0.25
"""Share of single samples in which no hand touches the face."""
TWO_HAND_SHARE = 0.25
"""Share of single samples with both hands."""
HAND_ROLES = ("contact", "near", "far", "occluder")
"""What a hand does: touches, hovers 8-25 mm off the skin (the hard negatives), stays 2.5-10 cm
away, or hovers 4-15 cm in front of the face, between it and the camera, hiding part of it."""
CLEARANCE_M = {"near": (0.008, 0.025), "far": (0.025, 0.10), "occluder": (0.04, 0.15)}
"""Gap between a non-contact hand and the head, metres, per role."""
NON_CONTACT_ROLES = {"near": 0.45, "far": 0.3, "occluder": 0.25}
"""Roles of the hands of non-contact samples (relative weights)."""
SECOND_HAND_ROLES = {"contact": 0.5, "near": 0.2, "far": 0.15, "occluder": 0.15}
"""Roles of the second hand of a contact sample."""
MIN_HAND_GAP = 0.01
"""Two hands of a sample keep at least this far apart (metres)."""

# Surface parts a hand may be anchored on (everything but eyeballs and the mouth's inside).
_ANCHOR_REGIONS = ("face_skin", "lips", "nose", "ears", "neck", "scalp")
# Regions framed by the camera (with the hand).
_FRAMED_REGIONS = ("face_skin", "lips", "nose", "eyes", "ears")
_MAX_ATTEMPTS = 12
_MAX_EXCESS_PENETRATION = 0.006
MAX_HAND_UNDER_SKIN = 0.0045
"""Samples whose hand ends up deeper than this (metres) under the deformed skin are fixed.

The solver keeps the head's vertices out of the hand, but a knuckle or fingertip can still pass
between them where the mesh is coarse (under the jaw: 2 cm triangles), and a deep cheek press
brings the hand behind the mouth's lining (which the skin does not push). Such a sample would
be ground truth that the benchmark counts as a collision (> 5 mm), so :func:`sample_frames`
backs the hand out (or redraws the plan)."""


@dataclass
class SynthModels:
    """The models and per-vertex data a worker needs, loaded once."""

    head: object
    hands: dict[str, object]
    regions: object

    @classmethod
    @functools.lru_cache(maxsize=1)
    def load(cls) -> SynthModels:
        from handface.models.anny_backend import AnnyHandModel, AnnyHeadModel
        from handface.models.regions import load_face_regions

        return cls(
            head=AnnyHeadModel(),
            hands={side: AnnyHandModel(side) for side in ("left", "right")},
            regions=load_face_regions(),
        )


@dataclass
class CameraPlan:
    fov_deg: float
    frame_fraction: float
    """Share of the image half-size the framed points fill."""
    offset: tuple[float, float]
    """Where the framed points' centre sits, as a fraction of the image half-size."""


@dataclass
class HandPlan:
    """Every random choice of one hand of a sample or sequence."""

    side: str
    family: str
    anchor: str
    anchor_side: str | None
    role: str
    """One of :data:`HAND_ROLES`: touching, or which kind of non-contact."""
    press: float
    """How far (metres) the hand's contact point goes below the undeformed skin at full press."""
    clearance: float
    """Non-contact hands: the gap between hand and face (metres); 0 when touching."""
    angles: Float[Tensor, "20"]
    shape: Float[Tensor, "6"]
    placement: HandPlacement
    """Hand canonical -> head canonical at full press (or at the clearance)."""
    approach: Float[Tensor, "T 3"]
    """Per-frame offset of the hand from ``placement`` in the head frame (0 at full press)."""
    contact_normal: Float[Tensor, "3"]
    """Outward skin normal at the anchor (head canonical frame): the direction of the press."""

    @property
    def in_contact(self) -> bool:
        return self.role == "contact"

    @property
    def anchor_label(self) -> str:
        return self.anchor if self.anchor_side is None else f"{self.anchor_side}_{self.anchor}"


@dataclass
class InteractionPlan:
    """Every random choice of one sample (``frames == 1``) or one sequence."""

    hands: list[HandPlan]
    """One or two hands (distinct sides); the first is the primary one."""
    head_shape: Float[Tensor, "9"]
    expressions: Float[Tensor, "T 52"]
    expression_names: list[str]
    head_angles_deg: Float[Tensor, "T 3"]
    """Yaw, pitch, roll per frame."""
    camera: CameraPlan
    look: RenderLook
    head_translation: Float[Tensor, "3"] = field(default_factory=lambda: torch.zeros(3))
    """Camera-frame translation of the head (set by the framing)."""

    @property
    def frames(self) -> int:
        return int(self.expressions.shape[0])

    @property
    def in_contact(self) -> bool:
        """Whether any hand is planned to touch."""
        return any(hand.in_contact for hand in self.hands)

    def hand(self, side: str) -> HandPlan | None:
        return next((hand for hand in self.hands if hand.side == side), None)


@dataclass
class FrameHand:
    """One hand of a frame in the camera frame."""

    side: str
    params: HandParams
    vertices: Float[Tensor, "Vh 3"]
    keypoints: Float[Tensor, "21 3"]
    contact: Float[Tensor, " Vh"]
    min_distance: float
    """Smallest signed distance of its vertices to the deformed head (metres; < 0 inside)."""


@dataclass
class Frame:
    """One labelled frame in the camera frame (metres)."""

    plan: InteractionPlan
    index: int
    K: Float[Tensor, "3 3"]
    image_size: int
    head_params: HeadParams
    head_rotation: Float[Tensor, "3 3"]
    face_vertices: Float[Tensor, "V 3"]
    deformation: Float[Tensor, "V 3"]
    face_vertices_deformed: Float[Tensor, "V 3"]
    face_landmarks: Float[Tensor, "478 3"]
    face_contact: Float[Tensor, " V"]
    hands: dict[str, FrameHand]
    """The hands by side, in the plan's order (the primary hand first)."""
    info: dict
    physics_seconds: float = 0.0
    """Wall time of the soft-tissue solve (kept out of ``info`` so labels stay deterministic)."""

    @property
    def primary(self) -> FrameHand:
        """The plan's first hand (the one that touches in contact samples)."""
        return self.hands[self.plan.hands[0].side]


def _choose(generator: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=np.float64)
    return names[int(generator.choice(len(names), p=p / p.sum()))]


def sample_expression(
    labels: list[str], generator: np.random.Generator
) -> tuple[str, Float[Tensor, "52"]]:
    """A named expression preset with sampled intensities (52 facial actions)."""
    name = _choose(generator, {n: _EXPRESSION_WEIGHTS.get(n, 1.0) for n in EXPRESSIONS})
    values = torch.zeros(len(labels))
    for action, (low, high) in EXPRESSIONS[name].items():
        values[labels.index(action)] = float(generator.uniform(low, high))
    return name, values


def sample_head_shape(generator: np.random.Generator) -> Float[Tensor, "9"]:
    """Phenotypes in [0.1, 0.9] with the three ethnicity weights summing to one."""
    values = generator.uniform(0.1, 0.9, 9)
    mix = generator.uniform(0.05, 1.0, 3)
    values[6:] = mix / mix.sum()
    return torch.tensor(values, dtype=torch.float32)


def _smooth_path(generator: np.random.Generator, frames: int, amplitude: float) -> np.ndarray:
    """A smooth random wobble over ``frames`` (two low-frequency sines)."""
    t = np.linspace(0.0, 1.0, frames)
    path = np.zeros(frames)
    for cycles in (0.5, 1.0):
        path += generator.uniform(-1, 1) * np.sin(2 * np.pi * (cycles * t + generator.uniform()))
    return amplitude * path / 2.0


def _ease(x: np.ndarray) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def approach_profile(frames: int, press: float, far: float) -> np.ndarray:
    """Distance of the hand from full press along the face normal, per frame.

    Approach (first 30%): ``far`` -> touching (``press``); press (20%): -> 0; hold (25%): 0;
    release (25%): -> 60% of ``far``. Eased, so velocities are continuous.
    """
    t = np.linspace(0.0, 1.0, frames) if frames > 1 else np.array([0.55])
    s = np.empty(frames)
    for i, x in enumerate(t):
        if x < 0.3:
            s[i] = far + (press - far) * _ease(x / 0.3)
        elif x < 0.5:
            s[i] = press * (1 - _ease((x - 0.3) / 0.2))
        elif x < 0.75:
            s[i] = 0.0
        else:
            s[i] = 0.6 * far * _ease((x - 0.75) / 0.25)
    return s


def canonical_head(models: SynthModels, shape: Tensor, expression: Tensor):
    """The head at identity global pose (its canonical frame) with landmarks."""
    with torch.no_grad():
        return models.head(HeadParams(shape=shape[None], expression=expression[None]))


def canonical_hand(models: SynthModels, side: str, angles: Tensor, shape: Tensor):
    with torch.no_grad():
        return models.hands[side](
            HandParams(articulation=hand_articulation(angles), shape=shape[None])
        )


def sample_plan(
    models: SynthModels,
    generator: np.random.Generator,
    frames: int = 1,
    in_contact: bool | None = None,
) -> InteractionPlan:
    """Draw every random choice of one sample or sequence (retrying implausible placements).

    Single samples: a quarter keep every hand off the face (:data:`NON_CONTACT_SHARE`, roles
    :data:`NON_CONTACT_ROLES`); :data:`TWO_HAND_SHARE` of them have a second hand, which touches
    too or stays near, far or in front (:data:`SECOND_HAND_ROLES`). Sequences have one hand that
    approaches, presses, holds and releases.
    """
    if in_contact is None:
        in_contact = frames > 1 or generator.uniform() >= NON_CONTACT_SHARE
    two_hands = frames == 1 and generator.uniform() < TWO_HAND_SHARE
    primary_side = "right" if generator.uniform() < 0.6 else "left"
    roles = ["contact" if in_contact else _choose(generator, NON_CONTACT_ROLES)]
    if two_hands:
        roles.append(_choose(generator, SECOND_HAND_ROLES if in_contact else NON_CONTACT_ROLES))
    labels = models.head.expression_labels
    head_shape = sample_head_shape(generator)
    names, values = zip(*(sample_expression(labels, generator) for _ in range(2)), strict=True)
    if frames == 1:
        values, names = values[:1], names[:1]
    weights = _ease(np.linspace(0.0, 1.0, frames))[:, None] if frames > 1 else np.zeros((1, 1))
    weights_t = torch.tensor(weights, dtype=torch.float32)
    expressions = (1 - weights_t) * values[0] + weights_t * values[-1]

    # Hands are placed against the head of the frame at full press (the middle of a sequence).
    head = canonical_head(models, head_shape, expressions[frames // 2 if frames > 1 else 0])
    hands: list[HandPlan] = []
    hand_meshes: list[Tensor] = []
    for number, role in enumerate(roles):
        side = primary_side if number == 0 else _other(primary_side)
        for _attempt in range(_MAX_ATTEMPTS):
            hand, vertices = _plan_hand(models, generator, head, side, role, frames)
            if hand is not None and all(_apart(vertices, other, models) for other in hand_meshes):
                hands.append(hand)
                hand_meshes.append(vertices)
                break
        else:
            if number == 0:
                raise RuntimeError(
                    "no plausible hand placement found; this is a bug in the sampler"
                )

    angles = np.stack(
        [
            np.full(frames, generator.uniform(-HEAD_YAW_DEG, HEAD_YAW_DEG)),
            np.full(frames, generator.uniform(-HEAD_PITCH_DEG, HEAD_PITCH_DEG)),
            np.full(frames, generator.uniform(-HEAD_ROLL_DEG, HEAD_ROLL_DEG)),
        ],
        axis=1,
    )
    if frames > 1:
        for axis, amplitude in enumerate((10.0, 6.0, 3.0)):
            angles[:, axis] += _smooth_path(generator, frames, amplitude)
        angles[:, 0] = np.clip(angles[:, 0], -HEAD_YAW_DEG, HEAD_YAW_DEG)
        angles[:, 1] = np.clip(angles[:, 1], -HEAD_PITCH_DEG, HEAD_PITCH_DEG)
    fraction = generator.uniform(0.55, 0.8) if frames == 1 else generator.uniform(0.45, 0.6)
    camera = CameraPlan(
        fov_deg=float(generator.uniform(28.0, 45.0)),
        frame_fraction=float(fraction),
        offset=(float(generator.uniform(-1, 1)), float(generator.uniform(-1, 1))),
    )
    plan = InteractionPlan(
        hands=hands,
        head_shape=head_shape,
        expressions=expressions,
        expression_names=list(names),
        head_angles_deg=torch.tensor(angles, dtype=torch.float32),
        camera=camera,
        look=sample_look(generator),
    )
    plan.head_translation = frame_camera(models, plan, head, hand_meshes)
    return plan


def _other(side: str) -> str:
    return "left" if side == "right" else "right"


def _apart(vertices: Tensor, other: Tensor, models: SynthModels) -> bool:
    """Whether two placed hands keep :data:`MIN_HAND_GAP` between them (a coarse check)."""
    gap = torch.cdist(vertices[::4], other[::4]).min()
    return float(gap) >= MIN_HAND_GAP


def _plan_hand(
    models: SynthModels,
    generator: np.random.Generator,
    head,
    side: str,
    role: str,
    frames: int,
) -> tuple[HandPlan | None, Tensor]:
    """One hand of ``role`` on ``side`` against ``head`` (canonical); ``None`` if implausible.

    Also returns the placed hand's vertices (head canonical frame, at full press).
    """
    family = FAMILIES[_choose(generator, {n: f.weight for n, f in FAMILIES.items()})]
    anchor = ANCHORS[family.anchors[int(generator.integers(len(family.anchors)))]]
    anchor_side = None
    if anchor.lateral:
        same = generator.uniform() < family.same_side
        anchor_side = side if same else _other(side)
    angles = sample_hand_angles(family.pose, generator)
    shape = torch.tensor(generator.uniform(0.2, 0.8, 6), dtype=torch.float32)
    vertices = head.vertices[0]
    normals = outward_normals(vertices, models.head.faces)
    allowed = models.regions.mask(*_ANCHOR_REGIONS)
    anchor_point = locate_anchor(
        anchor, anchor_side, head.landmarks[0], vertices, normals, allowed, generator
    )
    touching = role == "contact"
    press = float(generator.uniform(0.0, anchor.max_press_mm)) / 1000.0 if touching else 0.0
    hand = canonical_hand(models, side, angles, shape)
    eligible = feature_vertices(models.hands[side], FEATURES[family.feature].part)
    placement = place_hand(
        hand.vertices[0], eligible, FEATURES[family.feature], side, anchor_point,
        press, family.roll_deg, vertices, models.head.faces, generator,
    )  # fmt: skip
    if placement.excess_penetration > _MAX_EXCESS_PENETRATION:
        return None, hand.vertices[0]
    clearance = 0.0
    if not touching:
        low, high = CLEARANCE_M[role]
        clearance = float(generator.uniform(low, high))
        # An occluding hand hovers between the camera and the face; the others back off the skin.
        direction = anchor_point.normal
        if role == "occluder":
            direction = torch.nn.functional.normalize(
                anchor_point.normal + 2.0 * torch.tensor([0.0, -1.0, 0.0]), dim=0
            )
        placement = push_out(
            placement, hand.vertices[0], direction, clearance, vertices, models.head.faces
        )

    far = float(generator.uniform(0.06, 0.12))
    profile = approach_profile(frames, press, far) if frames > 1 else np.zeros(1)
    arm_side = placement.translation - anchor_point.point
    arm_side = arm_side - (arm_side @ anchor_point.normal) * anchor_point.normal
    arm_side = torch.nn.functional.normalize(arm_side, dim=0)
    profile_t = torch.tensor(profile, dtype=torch.float32)[:, None]
    approach = profile_t * anchor_point.normal + (profile_t / max(far, 1e-6)) * 0.03 * arm_side
    plan = HandPlan(
        side=side,
        family=family.name,
        anchor=anchor.name,
        anchor_side=anchor_side,
        role=role,
        press=press,
        clearance=clearance,
        angles=angles,
        shape=shape,
        placement=placement,
        approach=approach,
        contact_normal=anchor_point.normal,
    )
    return plan, placement.apply(hand.vertices[0])


def frame_camera(
    models: SynthModels, plan: InteractionPlan, head, hand_vertices: list[Tensor]
) -> Tensor:
    """Head translation in the camera so the face and the hands fill the planned image share.

    ``hand_vertices``: each hand placed in the head's canonical frame (without the approach).
    """
    key = plan.frames // 2
    rotation = head_rotation(*plan.head_angles_deg[key].tolist())
    face = head.vertices[0][models.regions.mask(*_FRAMED_REGIONS)]
    hands = [v + hand.approach[key] for v, hand in zip(hand_vertices, plan.hands, strict=True)]
    points = torch.cat([face, *hands]) @ rotation.T
    low, high = points.min(0).values, points.max(0).values
    centre = (low + high) / 2
    half = float(((high - low)[:2] / 2).max())
    tan_half = math.tan(math.radians(plan.camera.fov_deg) / 2)
    depth = half / (plan.camera.frame_fraction * tan_half) + float(high[2] - low[2]) / 2
    depth = max(depth, 0.3)
    slack = (1.0 - plan.camera.frame_fraction) * tan_half * depth * 0.8
    target = torch.tensor(
        [plan.camera.offset[0] * slack, plan.camera.offset[1] * slack, depth], dtype=points.dtype
    )
    return target - centre


def realize_frame(
    models: SynthModels, plan: InteractionPlan, index: int = 0, image_size: int = 512
) -> Frame:
    """Pose, deform, place in the camera and label frame ``index`` of ``plan``."""
    from handface.physics import Collider, deform

    head_faces = models.head.faces
    head = canonical_head(models, plan.head_shape, plan.expressions[index])
    canonical = head.vertices[0]
    posed = {}
    for hand in plan.hands:
        mesh = canonical_hand(models, hand.side, hand.angles, hand.shape)
        offset = hand.approach[index]
        posed[hand.side] = (
            hand.placement.apply(mesh.vertices[0]) + offset,
            hand.placement.apply(mesh.keypoints[0]) + offset,
        )
    start = time.perf_counter()
    result = deform(
        canonical, head_faces, models.regions.stiffness,
        [Collider(posed[h.side][0], models.hands[h.side].faces) for h in plan.hands],
        contact_mask=models.regions.outer_surface,
    )  # fmt: skip
    physics_seconds = time.perf_counter() - start
    deformation = result.displacement.to(canonical.dtype)

    rotation = head_rotation(*plan.head_angles_deg[index].tolist())
    translation = plan.head_translation
    face_cam = canonical @ rotation.T + translation
    deformed_cam = (canonical + deformation) @ rotation.T + translation
    landmarks = models.head.landmark_embedding.apply(deformed_cam, head_faces)

    hands: dict[str, FrameHand] = {}
    face_sdf = torch.full((canonical.shape[0],), math.inf)
    for hand in plan.hands:
        faces = models.hands[hand.side].faces
        vertices_cam = posed[hand.side][0] @ rotation.T + translation
        keypoints_cam = posed[hand.side][1] @ rotation.T + translation
        face_sdf = torch.minimum(
            face_sdf, surface_signed_distance(deformed_cam, vertices_cam, faces)
        )
        hand_sdf = signed_distance(vertices_cam, deformed_cam, head_faces).sdf
        hand_rotation = rotation @ hand.placement.rotation
        hand_translation = (
            rotation @ (hand.placement.translation + hand.approach[index]) + translation
        )
        hands[hand.side] = FrameHand(
            side=hand.side,
            params=HandParams(
                global_orient=roma.rotmat_to_rotvec(hand_rotation)[None],
                transl=hand_translation[None],
                articulation=hand_articulation(hand.angles),
                shape=hand.shape[None].clone(),
            ),
            vertices=vertices_cam,
            keypoints=keypoints_cam,
            contact=contact_labels(hand_sdf),
            min_distance=float(hand_sdf.min()),
        )
    face_contact = contact_labels(face_sdf)
    head_params = HeadParams(
        global_orient=roma.rotmat_to_rotvec(rotation)[None],
        transl=translation[None].clone(),
        expression=plan.expressions[index][None].clone(),
        shape=plan.head_shape[None].clone(),
    )
    primary = plan.hands[0]
    info = {
        "family": primary.family,
        "anchor": primary.anchor_label,
        "hand_side": primary.side,
        "hand_role": primary.role,
        "num_hands": len(plan.hands),
        "hands": {
            hand.side: {
                "family": hand.family,
                "anchor": hand.anchor_label,
                "role": hand.role,
                "in_contact": bool(hands[hand.side].contact.any()),
                "press_mm": round(1000 * hand.press, 3),
                "clearance_mm": round(1000 * hand.clearance, 3),
                "min_hand_face_distance_mm": round(1000 * hands[hand.side].min_distance, 3),
            }
            for hand in plan.hands
        },
        "planned_contact": plan.in_contact,
        "in_contact": bool(face_contact.any()),
        "press_mm": round(1000 * primary.press, 3),
        "clearance_mm": round(1000 * primary.clearance, 3),
        "approach_mm": round(1000 * float(primary.approach[index].norm()), 3),
        "expression": plan.expression_names[0 if index < plan.frames / 2 else -1],
        "head_yaw_pitch_roll_deg": [round(a, 3) for a in plan.head_angles_deg[index].tolist()],
        "max_deformation_mm": round(1000 * float(deformation.norm(dim=1).max()), 3),
        "max_penetration_before_mm": round(1000 * result.max_penetration_before, 3),
        "max_penetration_after_mm": round(1000 * result.max_penetration_after, 3),
        "min_hand_face_distance_mm": round(
            1000 * min(hand.min_distance for hand in hands.values()), 3
        ),
    }
    return Frame(
        plan=plan,
        index=index,
        K=intrinsics_from_fov(image_size, image_size, plan.camera.fov_deg),
        image_size=image_size,
        head_params=head_params,
        head_rotation=rotation,
        face_vertices=face_cam,
        deformation=deformation,
        face_vertices_deformed=deformed_cam,
        face_landmarks=landmarks,
        face_contact=face_contact,
        hands=hands,
        info=info,
        physics_seconds=physics_seconds,
    )


def sample_frames(
    models: SynthModels,
    generator: np.random.Generator,
    frames: int = 1,
    image_size: int = 512,
    in_contact: bool | None = None,
) -> list[Frame]:
    """Plan and realise a sample (or sequence) whose hands stay out of the deformed skin.

    Where a touching hand ends up more than :data:`MAX_HAND_UNDER_SKIN` under the skin, it is
    backed out along the press direction by the excess (the press gets shallower; ``press_mm``
    records the depth used) and the frame is solved again; a plan that still fails is redrawn.
    """
    for _attempt in range(_MAX_ATTEMPTS):
        plan = sample_plan(models, generator, frames=frames, in_contact=in_contact)
        for _backoff in range(4):
            realized = [realize_frame(models, plan, t, image_size) for t in range(plan.frames)]
            worst = {
                hand.side: max(-frame.hands[hand.side].min_distance for frame in realized)
                for hand in plan.hands
            }
            if max(worst.values()) <= MAX_HAND_UNDER_SKIN:
                return realized
            backed = False
            for hand in plan.hands:
                back = min(worst[hand.side] - MAX_HAND_UNDER_SKIN + 0.001, hand.press)
                if worst[hand.side] > MAX_HAND_UNDER_SKIN and back > 0:
                    hand.placement = hand.placement.shifted(hand.contact_normal * back)
                    hand.press -= back
                    backed = True
            if not backed:
                break
    raise RuntimeError("no plausible sample found; this is a bug in the sampler")
