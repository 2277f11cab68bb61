"""A DICE backbone pretrained on real photos: MediaPipe's landmark networks, cut mid-way.

DICE trains on synthetic renders; a backbone that has already seen real hands and faces
narrows the gap to photos. The ``mediapipe==0.10.21`` wheel bundles such networks
(Apache-2.0), which :class:`~handface.dice.tflite_graph.TFLiteGraph` rebuilds exactly as
trainable PyTorch modules:

* the hand landmark network (``hand_landmark_full.tflite``: a MobileNetV2-like trunk on
  224 x 224 crops, 7 x 7 x 1152 before its pooled heads), cut by default at the end of its
  last residual stage (7 x 7 x 192, :data:`HAND_LAYER`);
* optionally the face landmark network (``face_landmark.tflite``: 192 x 192, PReLU residual
  blocks), cut at the end of its 1/32 stage (6 x 6 x 128, :data:`FACE_LAYER`) on a copy of
  the crop resized to 192 px, its grid interpolated to 7 x 7.

A trainable 1 x 1 convolution + batch norm + ReLU projects the (concatenated) trunk features
to ``out_channels``; the output is the same 49 tokens as :class:`~handface.dice.backbone
.SmallCNN`'s.

MediaPipe's networks take RGB in ``[0, 1]``, while :class:`~handface.dice.model.DiceNet`
hands backbones ImageNet-normalised crops; the backbone undoes that normalisation
(``input_mean`` / ``input_std``, DiceNet's values by default; pass None for both when the
caller gives ``[0, 1]`` images). Undoing it exactly matters: the trunks pad with zeros, which
is black in ``[0, 1]`` but not in normalised units, so it cannot be folded into the first
convolution.

Cost, measured on a shared 2-core machine with one thread (224 px crops, ``out_channels``
256; timings approximate, load varied): the default cut has 2.38 M parameters and 0.32 GMACs
(SmallCNN(16, 256): 0.34 M, 0.056 GMACs); forward at batch 1 in 14 ms (SmallCNN 2.6 ms),
forward + backward at batch 16 in 0.85 s (0.13 s). In ``dice-small`` that makes the network
(without the parametric models) 0.67 GMACs, 30 ms per crop and 11 crops/s in training,
against 0.41 GMACs, 19 ms and 21 crops/s with SmallCNN. Other cuts: 1/16 (14 x 14 x 112,
pooled) 0.23 GMACs, 10 ms, 0.8 s; the head map (7 x 7 x 1152) 0.35 GMACs, 14.5 ms, 0.84 s
and 0.5 M more parameters in the projection; adding the face trunk +0.035 GMACs but +3.5 ms
(its 96 x 96 layers are memory-bound). Freezing the hand trunk up to 1/8
(``freeze_until="stride8"``) leaves inference alone and cuts the backbone's training step to
0.5 s. Most of the time goes to the 1 x 1 convolutions of the 56 x 56 and 28 x 28 stages.

Example:
    >>> net = MediaPipeBackbone(out_channels=32)
    >>> net(torch.zeros(2, 3, 224, 224)).shape
    torch.Size([2, 49, 32])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from handface.dice.backbone import GRID, _conv_bn, _init_weights, _tokens
from handface.dice.tflite_graph import TFLiteGraph, mediapipe_model_path
from handface.errors import InputError

HAND_MODEL = "hand_landmark/hand_landmark_full.tflite"
"""The hand landmark network in the mediapipe wheel (input 224 x 224 RGB in [0, 1])."""
FACE_MODEL = "face_landmark/face_landmark.tflite"
"""The face mesh network in the mediapipe wheel (input 192 x 192 RGB in [0, 1])."""
FACE_INPUT = 192
"""Side the face network runs at (its training resolution)."""

HAND_LAYERS = {
    "stride4": "model_1/model/add/add",
    "stride8": "model_1/model/add_1/add",
    "stride16": "model_1/model/add_5/add",
    "stride32": "model_1/model/add_8/add",
    "head": "model_1/model/re_lu_31/Relu6;model_1/model/batch_normalization_46/"
    "FusedBatchNormV3;model_1/model/depthwise_conv2d_15/depthwise",
}
"""Named tensors of the hand network: the last residual output at 1/4, 1/8, 1/16 (14 x 14 x
112 at 224 px) and 1/32 (7 x 7 x 192), and the 7 x 7 x 1152 map its heads average-pool."""
HAND_LAYER = HAND_LAYERS["stride32"]
"""Default cut of the hand network: every residual stage, a native 7 x 7 grid; the 1152
channels after it are a pointwise expansion of these 192 that the projection can learn."""
FACE_LAYER = "p_re_lu_15"
"""Cut of the face network: the last block at 1/32 (6 x 6 x 128 at 192 px)."""

DICE_PIXEL_MEAN = (0.485, 0.456, 0.406)
"""The ImageNet normalisation DiceNet applies before its backbone (``model.IMAGENET_MEAN``;
repeated here because ``model`` imports this module's callers)."""
DICE_PIXEL_STD = (0.229, 0.224, 0.225)
"""``model.IMAGENET_STD``."""


class MediaPipeBackbone(nn.Module):
    """MediaPipe's hand (and optionally face) landmark trunks + a 1 x 1 projection -> 49 tokens.

    Args:
        out_channels: channels of each token.
        hand_layer: tensor (name, index or a key of :data:`HAND_LAYERS`) the hand trunk ends at.
        face_layer: tensor the face trunk ends at; None leaves the face trunk out.
        freeze_until: hand tensor (as ``hand_layer``) up to which the hand trunk's weights stay
            fixed; None trains them all. Freezing the high-resolution layers skips most of the
            backward pass (to 1/8: about a third of a training step's backbone time).
        input_mean, input_std: the normalisation the caller applied to ``[0, 1]`` RGB, undone
            before the trunks; None for both when images arrive in ``[0, 1]``.

    Raises:
        InputError: mediapipe's wheel (and so the ``.tflite`` files) is missing.
    """

    def __init__(
        self,
        out_channels: int = 256,
        hand_layer: str | int = HAND_LAYER,
        face_layer: str | int | None = None,
        freeze_until: str | int | None = None,
        input_mean: Sequence[float] | None = DICE_PIXEL_MEAN,
        input_std: Sequence[float] | None = DICE_PIXEL_STD,
    ) -> None:
        super().__init__()
        if (input_mean is None) != (input_std is None):
            raise InputError("give both input_mean and input_std, or neither")
        self.hand = TFLiteGraph.from_file(
            mediapipe_model_path(HAND_MODEL), outputs=[_hand_tensor(hand_layer)]
        )
        if freeze_until is not None:
            _freeze(self.hand, self.hand.tensor_index(_hand_tensor(freeze_until)))
        channels = _channels(self.hand)
        self.face = None
        if face_layer is not None:
            self.face = TFLiteGraph.from_file(
                mediapipe_model_path(FACE_MODEL), outputs=[face_layer]
            )
            channels += _channels(self.face)
        self.normalized = input_mean is not None
        mean = torch.tensor(input_mean or (0.0, 0.0, 0.0)).view(1, 3, 1, 1)
        std = torch.tensor(input_std or (1.0, 1.0, 1.0)).view(1, 3, 1, 1)
        self.register_buffer("input_mean", mean, persistent=False)
        self.register_buffer("input_std", std, persistent=False)
        self.project = _conv_bn(channels, out_channels, 1)
        _init_weights(self.project)
        self.trunk_channels = channels
        self.channels_last = True
        """Run the trunks on channels-last tensors (a quarter faster here; same values)."""
        self.out_channels = out_channels

    def forward(self, images: Float[Tensor, "B 3 H W"]) -> Float[Tensor, "B 49 C"]:
        """Tokens of crops normalised with ``input_mean`` / ``input_std`` (row-major 7 x 7)."""
        rgb = images * self.input_std + self.input_mean if self.normalized else images
        if self.channels_last:
            rgb = rgb.contiguous(memory_format=torch.channels_last)
        grids = [_to_grid(self.hand(rgb)[0])]
        if self.face is not None:
            size = [round(s * FACE_INPUT / 224) for s in rgb.shape[-2:]]
            small = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False)
            grids.append(_to_grid(self.face(small)[0]))
        return _tokens(self.project(torch.cat(grids, dim=1)))


def _hand_tensor(layer: str | int) -> str | int:
    return HAND_LAYERS.get(layer, layer) if isinstance(layer, str) else layer


def _freeze(graph: TFLiteGraph, until: int) -> None:
    """Fix the weights of the operators up to the one writing tensor ``until``."""
    ops = list(graph.ops.values())
    last = next((k for k, op in enumerate(ops) if op.output == until), None)
    if last is None:
        raise InputError(f"freeze_until: tensor {until} is not computed by the hand trunk")
    for op in ops[: last + 1]:
        op.requires_grad_(False)


def _channels(graph: TFLiteGraph) -> int:
    return graph.shapes[graph.output_indices[0]][-1]  # stored NHWC


def _to_grid(features: Float[Tensor, "B C h w"]) -> Float[Tensor, "B C 7 7"]:
    """Average-pool larger maps, interpolate smaller ones (the face trunk's 6 x 6)."""
    if features.shape[-2:] == (GRID, GRID):
        return features
    if min(features.shape[-2:]) >= GRID:
        return F.adaptive_avg_pool2d(features, GRID)
    return F.interpolate(features, size=(GRID, GRID), mode="bilinear", align_corners=False)
