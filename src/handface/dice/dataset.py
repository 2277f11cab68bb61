"""Training items for DICE: crops of synthetic samples with every target in the network's frame.

One item is one crop (:mod:`handface.dice.crops`) of one :class:`~handface.data.InteractionSample`
with its targets expressed as the network predicts them:

* 3D in the **head-centred camera-aligned frame**: camera-frame points minus the centre of the
  undeformed face (the mean of its vertices, the centre DICE's PVE uses), then turned about the
  optical axis by the crop's in-plane rotation and mirrored (x negated) when the crop is;
* 2D in normalised crop coordinates (``[-1, 1]``), the true perspective projections;
* the face's deformation ``D`` in the same frame (deformed minus undeformed face);
* per-vertex contact labels, parameters, and masks saying which targets exist.

The network has one hand branch, for the right hand (:mod:`handface.dice.mirror`): a sample
whose only hand is a left one is mirrored, so its left hand becomes the right hand of the
mirrored crop (vertices through the left/right correspondence); with both hands, the side is
drawn at random. A mirrored face is re-indexed by the head's left-right vertex map and its
facial actions by their left/right pairs (:class:`~handface.models.mesh_sampling.MirrorMaps`);
a mirrored hand's rotation is conjugated by the mirror and its articulation multiplied by the
map's sign flips (the Anny left hand is the right one with x negated); backends without those
signs give no hand-parameter target for mirrored crops (``hand_params_valid = 0``).

Augmentation (training only, deterministic per ``(seed, epoch, index)`` so that a resumed run
sees the same crops): crop scale and shift jitter, in-plane rotation, colour gains, blur,
sensor noise, JPEG re-encoding, and synthetic occluders (ellipses and boxes of random colour
that may cover part of the face or hand).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import roma
import torch
from jaxtyping import Float
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from handface.data.sample import InteractionSample
from handface.data.synth import SynthDataset
from handface.dice.crops import Crop, CropConfig, crop_box
from handface.errors import InputError
from handface.models.mesh_sampling import MirrorMaps, reflect_points, reflect_rotation


@dataclass(frozen=True)
class AugmentConfig:
    """Random changes applied to training crops (none at evaluation)."""

    scale_jitter: float = 0.15
    """Crop side multiplied by ``exp(U(-j, j))``."""
    shift_jitter: float = 0.08
    """Crop centre moved by up to this share of its side in x and y."""
    rotation_deg: float = 20.0
    """In-plane rotation drawn from ``U(-r, r)`` degrees."""
    colour_gain: float = 0.25
    """Per-channel gain ``1 + U(-g, g)`` and brightness offset ``U(-g/2, g/2)``."""
    blur_probability: float = 0.25
    """Chance of a Gaussian blur (sigma up to 1.5 px)."""
    noise_std: float = 0.03
    """Largest standard deviation of additive Gaussian noise (in [0, 1] intensity)."""
    jpeg_probability: float = 0.3
    """Chance of JPEG re-encoding at quality 30-90."""
    occluder_probability: float = 0.3
    """Chance of one or two synthetic occluders."""
    grayscale_probability: float = 0.1
    """Chance of turning the crop grey (old photos, night-mode webcams)."""


@dataclass
class DiceDataConfig:
    """What the training items contain."""

    crop: CropConfig = field(default_factory=CropConfig)
    augment: AugmentConfig | None = field(default_factory=AugmentConfig)
    """``None``: no augmentation (evaluation)."""
    seed: int = 0
    absent_hand_share: float = 0.2
    """Share of one-hand items cropped for the side *without* a hand (``has_hand = 0``), so the
    network learns to say when its hand is not there (with augmentation only)."""


def _turn(angle: float, dtype: torch.dtype) -> Tensor:
    """Rotation about the optical axis matching :class:`Crop`'s in-plane rotation."""
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]], dtype=dtype)


def training_crop(
    sample: InteractionSample, side: str, config: CropConfig, rng: np.random.Generator | None,
    augment: AugmentConfig | None,
) -> Crop:  # fmt: skip
    """The crop of ``sample`` for the hand ``side`` (mirrored when ``side`` is ``"left"``)."""
    points = [sample.face_keypoints2d.numpy()]
    points += [hand.keypoints2d.numpy() for hand in sample.hands.values()]
    return jittered_crop(crop_box(np.concatenate(points), config), side, rng, augment)


def jittered_crop(
    crop: Crop, side: str, rng: np.random.Generator | None, augment: AugmentConfig | None
) -> Crop:
    """``crop`` with the augmentation's scale, shift and rotation, mirrored for a left hand."""
    if augment is not None and rng is not None:
        side_len = crop.side * math.exp(rng.uniform(-augment.scale_jitter, augment.scale_jitter))
        shift = rng.uniform(-augment.shift_jitter, augment.shift_jitter, 2) * crop.side
        angle = math.radians(rng.uniform(-augment.rotation_deg, augment.rotation_deg))
        crop = replace(crop, centre=crop.centre + shift, side=side_len, angle=angle)
    return replace(crop, flipped=side == "left")


def crop_targets(crop: Crop, K: Tensor) -> dict[str, Tensor]:
    """The crop and its camera, so the 2D terms can project through it
    (:mod:`handface.dice.projection`)."""
    return {
        "crop_K": K.float(),
        "crop_centre": torch.tensor(crop.centre, dtype=torch.float32),
        "crop_side": torch.tensor(crop.side, dtype=torch.float32),
        "crop_angle": torch.tensor(crop.angle, dtype=torch.float32),
        "crop_flipped": torch.tensor(float(crop.flipped)),
    }


def photometric(image: np.ndarray, rng: np.random.Generator, augment: AugmentConfig) -> np.ndarray:
    """Colour, blur, noise, JPEG, occluders and greyscale on a uint8 RGB crop."""
    out = image.astype(np.float32) / 255.0
    size = out.shape[0]
    if rng.uniform() < augment.occluder_probability:
        for _ in range(rng.integers(1, 3)):
            colour = tuple(float(c) for c in rng.uniform(0, 1, 3))
            centre = tuple(int(c) for c in rng.uniform(0.1, 0.9, 2) * size)
            axes = tuple(int(a) for a in rng.uniform(0.05, 0.2, 2) * size)
            if rng.uniform() < 0.5:
                cv2.ellipse(out, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
            else:
                corner = (centre[0] + axes[0], centre[1] + axes[1])
                cv2.rectangle(out, centre, corner, colour, -1)
    gain = 1.0 + rng.uniform(-augment.colour_gain, augment.colour_gain, 3)
    offset = rng.uniform(-augment.colour_gain / 2, augment.colour_gain / 2)
    out = out * gain[None, None, :] + offset
    if rng.uniform() < augment.grayscale_probability:
        out = np.repeat(out.mean(axis=2, keepdims=True), 3, axis=2)
    if rng.uniform() < augment.blur_probability:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.3, 1.5)))
    out = out + rng.normal(0.0, rng.uniform(0, augment.noise_std), out.shape)
    out = (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if rng.uniform() < augment.jpeg_probability:
        quality = int(rng.integers(30, 91))
        ok, encoded = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            out = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    return out


def item_targets(
    sample: InteractionSample, side: str, crop: Crop, mirror: MirrorMaps
) -> dict[str, Tensor]:
    """Every target of one crop (see the module docstring), float32 tensors."""
    face = sample.face_vertices.float()
    centre = face.mean(0)
    turn = _turn(crop.angle, torch.float32)
    flipped = crop.flipped

    def frame(points: Tensor) -> Tensor:
        local = (points.float() - centre) @ turn.T
        return reflect_points(local) if flipped else local

    def image_plane(points: Tensor) -> Tensor:
        return torch.from_numpy(crop.to_normalised(points.numpy())).float()

    head_vertex = mirror.head_vertices if flipped else slice(None)
    lm68 = mirror.landmarks68 if flipped else slice(None)
    undeformed = frame(face)[head_vertex]
    deformed = frame(sample.face_vertices_deformed)[head_vertex]
    head_rotation = turn @ sample.head_rotation.float()
    if flipped:
        head_rotation = reflect_rotation(head_rotation)
    expression = sample.head_params.get("expression")
    shape = sample.head_params.get("shape")
    targets = {
        "face_vertices": undeformed,
        "face_vertices_deformed": deformed,
        "deformation": deformed - undeformed,
        "face_contact": sample.face_contact.float()[head_vertex],
        "face_keypoints3d": frame(sample.face_keypoints68_3d)[lm68],
        "face_keypoints2d": image_plane(sample.face_keypoints68_2d)[lm68],
        "head_rotation": head_rotation,
        "face_params_valid": torch.tensor(float(expression is not None and shape is not None)),
        "head_expression": torch.zeros(mirror.expression.shape[0]),
        "head_shape": torch.zeros(0) if shape is None else shape.float(),
        **crop_targets(crop, sample.K),
    }
    if expression is not None:
        targets["head_expression"] = expression.float()[mirror.expression if flipped else ...]
    hand = sample.hands.get(side)
    targets["has_hand"] = torch.tensor(float(hand is not None))
    if hand is not None:
        hand_index = mirror.hand_right_to_left if flipped else slice(None)
        rotation = sample.hand(side).params.get("global_orient")
        targets.update(
            hand_vertices=frame(hand.vertices)[hand_index],
            hand_contact=hand.contact.float()[hand_index],
            hand_keypoints3d=frame(hand.keypoints3d),
            hand_keypoints2d=image_plane(hand.keypoints2d),
        )
        articulation = hand.params.get("articulation")
        hand_shape = hand.params.get("shape")
        sign = mirror.hand_articulation_sign
        valid = None not in (rotation, articulation, hand_shape) and (
            not flipped or sign is not None
        )
        targets["hand_params_valid"] = torch.tensor(float(valid))
        targets.update(empty_hand_params())
        if valid:
            hand_rotation = turn @ roma.rotvec_to_rotmat(rotation.float())
            articulation = articulation.float()
            if flipped:
                hand_rotation = reflect_rotation(hand_rotation)
                articulation = articulation * sign.float()
            targets.update(
                hand_rotation=hand_rotation,
                hand_articulation=articulation,
                hand_shape=hand_shape.float(),
            )
    return targets


def empty_hand_params() -> dict[str, Tensor]:
    """Placeholder hand parameters (masked by ``hand_params_valid``)."""
    return {
        "hand_rotation": torch.eye(3),
        "hand_articulation": torch.zeros(20),
        "hand_shape": torch.zeros(6),
    }


def empty_hand_targets(num_vertices: int) -> dict[str, Tensor]:
    """Placeholders for a crop without a hand on the network's side (masked by ``has_hand``)."""
    return {
        "hand_vertices": torch.zeros(num_vertices, 3),
        "hand_contact": torch.zeros(num_vertices),
        "hand_keypoints3d": torch.zeros(21, 3),
        "hand_keypoints2d": torch.zeros(21, 2),
        "hand_params_valid": torch.tensor(0.0),
        **empty_hand_params(),
    }


class DiceTrainingSet(Dataset):
    """Crops of a synthetic dataset as dicts of tensors (batch them with the default collate).

    Each item has ``image`` ``(3, S, S)`` in [0, 1] plus the targets of :func:`item_targets`.
    Call :meth:`set_epoch` before each epoch so the augmentation changes between epochs and
    stays reproducible.
    """

    def __init__(
        self,
        root: str | Path | Sequence[str | Path],
        mirror: MirrorMaps,
        num_hand_vertices: int,
        config: DiceDataConfig | None = None,
    ) -> None:
        roots = [root] if isinstance(root, str | Path) else list(root)
        # labels only: the RGB is read as bytes below; depth and segmentation are not used
        self.parts = [SynthDataset(path, load_images=False) for path in roots]
        self.offsets = np.cumsum([0] + [len(part) for part in self.parts])
        if self.offsets[-1] == 0:
            raise InputError(
                f"{', '.join(map(str, roots))} hold no samples; create some with `handface synth`"
            )
        self.mirror = mirror
        self.num_hand_vertices = num_hand_vertices
        self.config = config or DiceDataConfig()
        self.epoch = 0

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _locate(self, index: int) -> tuple[SynthDataset, int]:
        part = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return self.parts[part], index - int(self.offsets[part])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        data, local = self._locate(index)
        sample = data[local]
        config = self.config
        rng = np.random.default_rng([config.seed, self.epoch, index])
        side = item_side(sorted(sample.hands), rng, config)
        crop = training_crop(sample, side, config.crop, rng, config.augment)
        path = data.image_path(local)
        try:
            with Image.open(path) as image:
                rgb = np.asarray(image.convert("RGB"))
        except (OSError, ValueError, SyntaxError) as error:  # a file broken since the run began
            raise InputError(f"cannot read {path} as an image: {error}") from None
        pixels = crop.apply(rgb)
        if config.augment is not None:
            pixels = photometric(pixels, rng, config.augment)
        targets = item_targets(sample, side, crop, self.mirror)
        if targets["has_hand"] == 0:
            targets.update(empty_hand_targets(self.num_hand_vertices))
        return {
            "image": image_tensor(pixels),
            "has_3d": torch.tensor(1.0),
            "keypoint_depth": torch.zeros(21 + 68),
            "keypoint_depth_valid": torch.zeros(21 + 68),
            **targets,
        }


def item_side(sides: list[str], rng: np.random.Generator, config: DiceDataConfig) -> str:
    """The hand side a training item is cropped for (``"left"``: the mirrored crop).

    Two hands: either (right without augmentation). One: its side, or with augmentation and
    probability ``absent_hand_share`` the other side, an item without the network's hand.
    """
    if not sides:
        return "right"
    if len(sides) == 2:
        return sides[int(rng.integers(0, 2))] if config.augment is not None else "right"
    if config.augment is not None and rng.uniform() < config.absent_hand_share:
        return "left" if sides[0] == "right" else "right"
    return sides[0]


def image_tensor(pixels: np.ndarray) -> Float[Tensor, "3 S S"]:
    """A uint8 RGB crop as the network's input tensor in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float() / 255.0
