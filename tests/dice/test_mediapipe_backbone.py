"""The MediaPipe-pretrained DICE backbone: tokens, gradients, checkpoints, input range, wiring."""

from __future__ import annotations

import doctest

import pytest
import torch

from handface.dice import mediapipe_backbone
from handface.dice.backbone import build_backbone
from handface.dice.config import get_config
from handface.dice.flops import count_flops
from handface.dice.mediapipe_backbone import FACE_LAYER, MediaPipeBackbone
from handface.dice.model import IMAGENET_MEAN, IMAGENET_STD
from handface.dice.tflite_graph import TFLiteConv2d
from handface.errors import InputError

pytestmark = pytest.mark.usefixtures("one_thread")


def _images(batch: int, size: int = 224, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_tokens_are_a_7x7_grid_with_and_without_the_face_trunk():
    torch.manual_seed(0)
    hand = MediaPipeBackbone(out_channels=32).eval()
    both = MediaPipeBackbone(out_channels=16, face_layer=FACE_LAYER).eval()
    assert hand.trunk_channels == 192 and both.trunk_channels == 192 + 128
    with torch.no_grad():
        assert hand(_images(2)).shape == (2, 49, 32)
        assert both(_images(1)).shape == (1, 49, 16)
        assert hand(_images(1, size=160)).shape == (1, 49, 32)  # 5 x 5, interpolated


def test_gradients_reach_the_trunks_and_the_projection():
    torch.manual_seed(0)
    net = MediaPipeBackbone(out_channels=16, face_layer=FACE_LAYER).train()
    net(_images(2)).square().mean().backward()
    hand_convs = [op for op in net.hand.ops.values() if isinstance(op, TFLiteConv2d)]
    face_convs = [op for op in net.face.ops.values() if isinstance(op, TFLiteConv2d)]
    first_and_last = (hand_convs[0], hand_convs[-1], face_convs[0], face_convs[-1])
    for layer in (*first_and_last, net.project[0], net.project[1]):
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    prelu = net.face.ops["prelu_4"]  # the face trunk's PReLU slopes are trained too
    assert prelu.alpha.grad is not None and prelu.alpha.grad.abs().sum() > 0


def test_freezing_the_early_layers_stops_only_their_gradients():
    net = MediaPipeBackbone(out_channels=16, freeze_until="stride8").train()
    net(_images(2)).square().mean().backward()
    ops = list(net.hand.ops.values())
    frozen = [op for op in ops if not any(p.requires_grad for p in op.parameters())]
    assert 0 < len(frozen) < len(ops) and ops[0] in frozen
    assert all(p.grad is None for op in frozen for p in op.parameters())
    last_conv = [op for op in ops if isinstance(op, TFLiteConv2d)][-1]
    assert last_conv not in frozen and last_conv.weight.grad.abs().sum() > 0
    with pytest.raises(InputError, match="freeze_until"):
        MediaPipeBackbone(freeze_until="Identity_1")  # a head output, beyond the cut


def test_state_dict_round_trip_keeps_fine_tuned_trunk_weights():
    torch.manual_seed(0)
    net = MediaPipeBackbone(out_channels=16)
    with torch.no_grad():  # stand-in for fine-tuning: move every weight
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    net(_images(4)).sum()  # update the projection's batch-norm statistics
    net.eval()
    state = net.state_dict()
    assert "hand.ops.conv_2d_2.weight" in state and "project.1.running_mean" in state
    torch.manual_seed(1)
    fresh = MediaPipeBackbone(out_channels=16).eval()
    x = _images(1, seed=3)
    with torch.no_grad():
        assert not torch.allclose(fresh(x), net(x))
        fresh.load_state_dict(state)
        assert torch.equal(fresh(x), net(x))


def test_the_trunks_see_rgb_in_unit_range():
    # the backbone repeats DiceNet's normalisation (it cannot import model.py: a cycle)
    assert mediapipe_backbone.DICE_PIXEL_MEAN == IMAGENET_MEAN
    assert mediapipe_backbone.DICE_PIXEL_STD == IMAGENET_STD
    net = MediaPipeBackbone(out_channels=8).eval()
    seen = []
    net.hand.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    x = _images(1)
    mean = torch.tensor(mediapipe_backbone.DICE_PIXEL_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(mediapipe_backbone.DICE_PIXEL_STD).view(1, 3, 1, 1)
    unit = MediaPipeBackbone(out_channels=8, input_mean=None, input_std=None).eval()
    unit.load_state_dict(net.state_dict())
    with torch.no_grad():
        normalised = net((x - mean) / std)
        assert torch.allclose(seen[0], x, atol=1e-6)
        assert torch.allclose(unit(x), normalised, rtol=1e-4, atol=1e-4)
    with pytest.raises(InputError, match="both"):
        MediaPipeBackbone(input_mean=None)


def test_flop_count_sees_the_rebuilt_layers():
    count = count_flops(MediaPipeBackbone(out_channels=256), _images(1))
    # the hand landmark network is 0.33 GMACs in all; the cut drops its last block and heads
    assert 0.25 < count.gmacs < 0.34 and set(count.by_kind) == {"conv"}
    assert 2.0e6 < count.params < 3.0e6


def test_config_builds_it_and_presets_are_unchanged(head_model, right_hand):
    config = get_config("dice-small").replace(backbone="mediapipe")
    backbone = build_backbone(config)
    assert isinstance(backbone, MediaPipeBackbone) and backbone.out_channels == 256
    assert get_config("dice-small-cnn").backbone == "cnn" and get_config("dice").backbone == "hrnet"
    assert get_config("dice-small").backbone == "mediapipe"
    from handface.dice import DiceNet

    torch.manual_seed(0)
    net = DiceNet(config, head_model, right_hand).eval()
    with torch.no_grad():
        out = net(_images(1), parametric=False)
    assert out.hand_keypoints_coarse.shape == (1, 21, 3)
    assert torch.isfinite(out.face_vertices_coarse).all()


def test_missing_mediapipe_model_is_an_actionable_error(monkeypatch):
    monkeypatch.setattr(mediapipe_backbone, "HAND_MODEL", "hand_landmark/removed.tflite")
    with pytest.raises(InputError, match=r"removed\.tflite not found.*pip install"):
        MediaPipeBackbone()


def test_doctests():
    result = doctest.testmod(mediapipe_backbone)
    assert result.attempted >= 1 and result.failed == 0
