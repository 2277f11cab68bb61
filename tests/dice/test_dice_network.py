"""The DICE network: presets, shapes, frames, gradients, masking, IK, discriminators, FLOPs."""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import json

import pytest
import torch
import trimesh

from handface.dice import DiceNet, count_flops, get_config, weak_perspective
from handface.dice.backbone import HRNet, SmallCNN, hrnet_num_parameters
from handface.dice.config import PRESETS, DiceConfig
from handface.dice.discriminator import (
    DiceDiscriminators,
    hand_param_vector,
    head_param_vector,
)
from handface.dice.iknet import IKMLP, FaceIKNet, HandIKNet, centroid_translation
from handface.errors import InputError
from handface.models.base import HandModel, HandParams, HeadModel, HeadParams, MeshOutput

SMALL_IMAGE = 224


@pytest.mark.parametrize(
    "name", ["config", "backbone", "meshnet", "interaction_net", "iknet", "discriminator", "flops"]
)
def test_doctests_of_dice_modules(name):
    module = importlib.import_module(f"handface.dice.{name}")
    result = doctest.testmod(module)
    assert result.attempted >= 1 and result.failed == 0


@pytest.fixture(scope="module")
def small_net(head_model, right_hand):
    torch.manual_seed(0)
    return DiceNet(get_config("dice-small"), head_model, right_hand).eval()


def images(batch: int, seed: int = 0, size: int = SMALL_IMAGE) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


# --- configs ----------------------------------------------------------------------------------


def test_dice_preset_is_the_paper_network():
    config = get_config("dice")
    assert (config.backbone, config.backbone_width, config.input_size) == ("hrnet", 64, 224)
    assert config.feature_dim == 2048
    assert config.meshnet_in == (2051, 512, 128)
    assert config.meshnet_hidden == (1024, 256, 128)
    assert config.meshnet_out == (512, 128, 3)
    assert (config.num_layers, config.num_heads) == (4, 4)
    assert config.interaction_in[0] == 2051 and config.interaction_hidden[0] == 512
    assert (config.iknet_hidden, config.iknet_blocks, config.mask_ratio) == (1024, 5, 0.3)
    assert config.num_tokens == 21 + 68 + 402 + 504
    small = get_config("dice-small")
    assert small.backbone == "mediapipe" and 280 <= small.num_tokens <= 400
    assert len(small.meshnet_hidden) == 3  # same structure
    # the same network on the from-scratch CNN
    cnn = get_config("dice-small-cnn")
    assert cnn.backbone == "cnn" and cnn.replace(name="dice-small", backbone="mediapipe",
                                                 backbone_freeze="stride8") == small  # fmt: skip


def test_unknown_config_and_inconsistent_widths_are_clear_errors():
    with pytest.raises(InputError, match="dice-small"):
        get_config("dice-large")
    small = get_config("dice-small")
    with pytest.raises(InputError, match="feature_dim"):
        small.replace(feature_dim=128)
    with pytest.raises(InputError, match="previous output"):
        small.replace(meshnet_in=(259, 100, 64))
    with pytest.raises(InputError, match="unknown"):
        small.replace(widht=3)


def test_config_round_trips_through_json():
    for config in PRESETS.values():
        back = DiceConfig.from_dict(json.loads(json.dumps(dataclasses.asdict(config))))
        assert back == config


# --- backbones --------------------------------------------------------------------------------


def test_backbones_give_a_7x7_token_grid_at_any_size():
    torch.manual_seed(0)
    hrnet = HRNet(width=8, out_channels=32).eval()
    cnn = SmallCNN(width=8, out_channels=16).eval()
    with torch.no_grad():
        for size in (96, 64):  # the native 224 px is checked with the paper's network below
            assert hrnet(torch.zeros(2, 3, size, size)).shape == (2, 49, 32)
        for size in (224, 160):
            assert cnn(torch.zeros(1, 3, size, size)).shape == (1, 49, 16)
    # tokens are the grid in row-major order: a bright top-right corner changes the tokens of
    # the first row's right end (index 6) and leaves the bottom-left one (index 42) alone
    corner = torch.nn.functional.pad(torch.ones(1, 3, 32, 32), (192, 0, 0, 192))
    with torch.no_grad():
        change = (cnn(corner) - cnn(torch.zeros(1, 3, 224, 224))).abs().sum(-1)[0]
    assert change[6] > 0 and change[42] == 0 and change[48] == 0


def test_hrnet_parameter_count_matches_its_layout():
    assert hrnet_num_parameters(8, 64) == sum(p.numel() for p in HRNet(8, 64).parameters())
    # HRNet-W64-C has 128.1 M parameters with its 2048 -> 1000 classifier (2.05 M)
    assert abs(hrnet_num_parameters(64) / 1e6 - (128.1 - 2.05)) < 0.2


# --- the small network ------------------------------------------------------------------------


def test_output_shapes_and_frames(small_net):
    with torch.no_grad():
        out = small_net(images(2))
    nh, nf = small_net.config.hand_levels[-1], small_net.config.face_levels[-1]
    assert out.hand_keypoints_coarse.shape == (2, 21, 3)
    assert out.face_keypoints_coarse.shape == (2, 68, 3)
    assert out.hand_vertices_coarse.shape == (2, nh, 3)
    assert out.face_vertices_coarse.shape == (2, nf, 3)
    assert out.hand_vertices_upsampled.shape == out.hand_vertices.shape == (2, 1609, 3)
    assert out.face_vertices_upsampled.shape == out.face_vertices.shape == (2, 4538, 3)
    assert out.face_contact_logits.shape == (2, 4538)
    assert out.hand_contact_logits.shape == (2, 1609)
    assert out.face_deformation.shape == (2, 4538, 3)
    assert out.face_landmarks68.shape == out.face_landmarks68_upsampled.shape == (2, 68, 3)
    assert out.hand_keypoints.shape == (2, 21, 3) and out.camera.shape == (2, 3)
    assert out.head_params.expression.shape == (2, 52) and out.head_params.shape.shape == (2, 9)
    assert out.hand_params.articulation.shape == (2, 20)
    assert out.hand_params.shape.shape == (2, 6)
    # V_F = V*_F + D
    torch.testing.assert_close(
        out.face_vertices, out.face_vertices_undeformed + out.face_deformation
    )
    # upsampled values are the coarse ones at the selected vertices
    chosen = small_net.sampling.head.vertex_index(small_net.face_level)
    torch.testing.assert_close(out.face_vertices_upsampled[:, chosen], out.face_vertices_coarse)
    # the closed-form translation puts the parametric mesh's centroid on the coarse mesh's
    sampling, level = small_net.sampling.head, small_net.config.face_ik_level
    coarse = sampling.upsample(out.face_vertices_coarse, small_net.face_level, level)
    parametric = out.face_vertices_undeformed[:, sampling.vertex_index(level)]
    torch.testing.assert_close(parametric.mean(1), coarse.mean(1), atol=1e-6, rtol=0)
    # the parameters reproduce the parametric meshes
    with torch.no_grad():
        head = small_net.head_model(out.head_params)
        hand = small_net.hand_model(out.hand_params)
    torch.testing.assert_close(head.vertices, out.face_vertices_undeformed, atol=1e-5, rtol=0)
    torch.testing.assert_close(hand.vertices, out.hand_vertices, atol=1e-5, rtol=0)
    # deformation in the canonical frame rotates back
    torch.testing.assert_close(
        out.deformation_canonical() @ out.head_rotation.transpose(1, 2), out.face_deformation
    )


def test_untrained_network_starts_at_the_templates(small_net):
    t = small_net.templates
    with torch.no_grad():
        out = small_net(images(1, seed=3))
    # the face is centred and faces the camera: nose tip nearest, eyes above the mouth,
    # the person's right eye (36) on the image's left
    assert t.face_vertices.mean(0).abs().max() < 1e-6
    kp = t.face_keypoints
    assert int(kp[:, 2].argmin()) in (30, 33)
    assert kp[36, 1] < kp[48, 1] and kp[36, 0] < 0 < kp[45, 0]
    # the right hand rests beside the right cheek, fingers up
    assert t.hand_vertices[:, 0].mean() < -0.02
    assert t.hand_keypoints[12, 1] < t.hand_keypoints[0, 1] - 0.1
    assert (out.face_keypoints_coarse[0] - kp).norm(dim=-1).max() < 0.03
    assert (out.hand_vertices_coarse[0] - small_net.token_template[89 : 89 + 101]).norm(
        dim=-1
    ).max() < 0.03
    expression = out.head_params.expression
    assert expression.max() < 0.05  # neutral
    torch.testing.assert_close(out.head_params.shape, torch.full((1, 9), 0.5), atol=0.05, rtol=0)
    torch.testing.assert_close(out.face_contact, torch.sigmoid(out.face_contact_logits))
    assert out.face_contact.max() < 0.5 and out.face_deformation.abs().max() < 0.01


def test_parameters_stay_in_range_for_any_input(head_model, right_hand):
    torch.manual_seed(1)
    net = DiceNet(get_config("dice-small"), head_model, right_hand).eval()
    with torch.no_grad():  # push the IK outputs far out
        for ik in (net.face_ik, net.hand_ik):
            ik.mlp.final.weight.normal_(0.0, 5.0)
        out = net(images(2, seed=4), parametric=True)
    for values in (out.head_params.expression, out.head_params.shape, out.hand_params.shape):
        assert values.min() >= 0.0 and values.max() <= 1.0
        assert values.std() > 0.1  # really spread over the range
    rotation = out.head_rotation
    torch.testing.assert_close(rotation @ rotation.transpose(1, 2), torch.eye(3).expand(2, 3, 3))
    torch.testing.assert_close(torch.linalg.det(rotation), torch.ones(2))


def test_parametric_false_skips_the_models(small_net):
    with torch.no_grad():
        out = small_net(images(1), parametric=False)
    assert out.face_vertices is None and out.head_params is None and out.hand_vertices is None
    assert out.face_vertices_upsampled.shape == (1, 4538, 3)


def test_gradients_reach_every_trainable_parameter(head_model, right_hand):
    torch.manual_seed(2)
    net = DiceNet(get_config("dice-small"), head_model, right_hand).train()
    out = net(images(2, seed=5))
    total = out.camera.sum()
    for value in vars(out).values():
        if isinstance(value, torch.Tensor):
            total = total + value.sum()
        elif isinstance(value, (HeadParams, HandParams)):
            total = total + sum(v.sum() for v in vars(value).values() if v is not None)
    total.backward()
    missing = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    # the MediaPipe trunk's high-resolution layers stay as MediaPipe trained them
    frozen = [n for n, p in net.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith("backbone.hand.") for n in frozen)
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(torch.isfinite(g).all() for g in grads)
    nonzero = sum(int(g.abs().sum() > 0) for g in grads)
    assert nonzero >= 0.9 * len(grads)
    assert net.tokens.mask_token.grad.abs().sum() > 0  # masked tokens were used


def test_masking_changes_outputs_only_in_training(head_model, right_hand):
    config = get_config("dice-small").replace(mask_ratio=0.3, dropout=0.0)
    torch.manual_seed(3)
    net = DiceNet(config, head_model, right_hand)
    x = images(2, seed=6)

    def run(seed: int):
        torch.manual_seed(seed)
        with torch.no_grad():
            return net(x, parametric=False).face_vertices_coarse

    net.train()
    assert (run(0) - run(1)).abs().max() > 1e-6  # different tokens masked
    torch.testing.assert_close(run(0), run(0), atol=0, rtol=0)
    net.tokens.mask_ratio = 0.0
    torch.testing.assert_close(run(0), run(1), atol=0, rtol=0)  # nothing else is random
    net.tokens.mask_ratio = 0.3
    net.eval()
    torch.testing.assert_close(run(0), run(1), atol=0, rtol=0)


def test_state_dict_holds_only_learned_weights(small_net, head_model, right_hand):
    state = small_net.state_dict()
    assert not any(k.startswith(("_body", "head_model", "hand_model")) for k in state)
    assert "token_template" not in state and "face_ik_index" not in state
    learned = sum(p.numel() for p in small_net.parameters())
    stored = sum(v.numel() for k, v in state.items() if "running" not in k and "tracked" not in k)
    assert stored == learned
    torch.manual_seed(9)
    other = DiceNet(get_config("dice-small"), head_model, right_hand).eval()
    x = images(1, seed=7)
    with torch.no_grad():
        before = other(x).face_vertices
        other.load_state_dict(state)
        after = other(x).face_vertices
        expected = small_net(x).face_vertices
    assert (before - expected).abs().max() > 1e-6
    torch.testing.assert_close(after, expected, atol=0, rtol=0)


# --- the paper-sized network ------------------------------------------------------------------


def test_dice_preset_output_shapes_and_size(head_model, right_hand):
    torch.manual_seed(0)
    net = DiceNet(get_config("dice"), head_model, right_hand).eval()
    assert net.token_template.shape == (995, 3)
    backbone = sum(p.numel() for p in net.backbone.parameters())
    assert backbone == hrnet_num_parameters(64)
    count = count_flops(net, images(1, size=224), parametric=False)
    # HRNet-W64-C at 224 px: 28.97 GFLOPs (multiply-adds) in its paper, with the classifier
    assert 28.0 < count.by_kind["conv"] / 1e9 < 29.5
    assert count.params == sum(p.numel() for p in net.parameters())
    with torch.no_grad():
        out = net(images(1, size=224))
    assert out.face_vertices.shape == (1, 4538, 3) and out.hand_vertices.shape == (1, 1609, 3)
    assert out.hand_vertices_coarse.shape == (1, 402, 3)
    assert out.face_vertices_coarse.shape == (1, 504, 3)
    assert torch.isfinite(out.face_vertices).all()


# --- parts ------------------------------------------------------------------------------------


def test_iknet_outputs_and_invariance_to_translation():
    config = get_config("dice-small")
    torch.manual_seed(4)
    base = torch.tensor([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    face = FaceIKNet(40, 52, 9, config, base_rotation=base).eval()
    vertices = torch.randn(3, 40, 3)
    out = face(vertices)
    assert out.expression.shape == (3, 52) and out.shape.shape == (3, 9)
    assert out.jaw.shape == out.neck.shape == (3, 3) and out.rotation.shape == (3, 3, 3)
    moved = face(vertices + torch.tensor([0.3, -1.0, 2.0]))  # IK reads centred vertices
    torch.testing.assert_close(moved.expression, out.expression)
    torch.testing.assert_close(moved.rotation, out.rotation)
    # untrained: the template rotation, neutral expression (2 % of its range), average shape
    torch.testing.assert_close(out.rotation, base.expand(3, 3, 3), atol=0.05, rtol=0)
    torch.testing.assert_close(out.expression, torch.full((3, 52), 0.02), atol=0.01, rtol=0)
    hand = HandIKNet(30, 20, 6, config, shape_bounds=None, neutral_shape=0.0).eval()
    out = hand(torch.randn(2, 30, 3))
    assert out.pose.shape == (2, 20) and out.shape.shape == (2, 6)
    assert out.shape.abs().max() < 0.05  # unbounded shapes start at their neutral 0
    mlp = IKMLP(6, 4, hidden=8, blocks=5)
    assert mlp(torch.randn(5, 6)).shape == (5, 4) and len(mlp.blocks) == 5
    translation = centroid_translation(torch.zeros(2, 5, 3), torch.randn(2, 5, 3))
    assert translation.shape == (2, 3)


def test_face_ik_holds_unused_joints_at_rest(head_model, small_net):
    """A free jaw or neck rotation no training head uses drifts to any angle (the shipped
    network's reached 30-150 rad and folded the head): only a jaw the model's expressions cannot
    open is predicted."""
    config = get_config("dice-small")
    torch.manual_seed(5)
    for jaw_pose in (False, True):
        face = FaceIKNet(40, 52, 9, config, jaw_pose=jaw_pose).eval()
        with torch.no_grad():  # an output layer that asks for wild jaw and neck rotations
            face.mlp.final.bias[61:67] = 30.0
        out = face(torch.randn(2, 40, 3))
        assert torch.equal(out.neck, torch.zeros(2, 3))
        assert bool((out.jaw == 0).all()) != jaw_pose
    # Anny opens the mouth with its jawOpen expression; FLAME-like models need the jaw pose
    assert "jawOpen" in head_model.expression_labels
    assert not small_net.face_ik.jaw_pose


def test_weak_perspective_and_its_mirror():
    points = torch.tensor([[[0.02, -0.01, 0.3], [-0.05, 0.04, 0.1]]])
    camera = torch.tensor([[8.0, 0.1, -0.2]])
    uv = weak_perspective(points, camera)
    torch.testing.assert_close(uv, torch.tensor([[[0.26, -0.28], [-0.3, 0.12]]]))
    mirrored = weak_perspective(
        points * torch.tensor([-1.0, 1, 1]), camera * torch.tensor([1.0, -1, 1])
    )
    torch.testing.assert_close(mirrored, uv * torch.tensor([-1.0, 1.0]))


def test_discriminators_score_parameter_vectors(small_net, head_model, right_hand):
    disc = DiceDiscriminators(head_model, right_hand, hidden=(32, 32))
    with torch.no_grad():
        out = small_net(images(2))
    face_logits, hand_logits = disc(out.head_params, out.hand_params)
    assert face_logits.shape == hand_logits.shape == (2,)
    assert head_param_vector(out.head_params).shape == (2, 52 + 9 + 6)
    assert hand_param_vector(out.hand_params).shape == (2, 26)
    loss = face_logits.sum() + hand_logits.sum()
    loss.backward()
    assert all(p.grad is not None for p in disc.parameters())


def test_count_flops_is_the_same_on_the_fused_and_the_training_path():
    layer = torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    x = torch.zeros(3, 10, 32)
    expected = 2 * 3 * (4 * 10 * 32 * 32 + 2 * 10 * 10 * 32 + 2 * 10 * 32 * 64)
    assert count_flops(encoder.eval(), x).macs == expected
    assert count_flops(encoder.train(), x).macs == expected
    conv = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
    assert count_flops(conv, torch.zeros(1, 3, 8, 8)).macs == 8 * 4 * 4 * 3 * 9


def test_dice_small_is_a_fraction_of_the_paper_network(small_net):
    count = count_flops(small_net, images(1), parametric=False)
    assert set(count.by_kind) == {"conv", "linear", "transformer"}
    assert count.gmacs < 1.0 and count.gflops == pytest.approx(2 * count.gmacs)
    assert count.params < 5e6


# --- another backend --------------------------------------------------------------------------


class SphereHead(HeadModel):
    """A user-supplied head model stand-in: unbounded expressions and shapes, 68 landmarks."""

    neutral_shape = 0.0

    def __init__(self) -> None:
        super().__init__()
        mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
        self.register_buffer("template_vertices", torch.tensor(mesh.vertices).float())
        self.register_buffer("faces", torch.tensor(mesh.faces))
        self.expression_labels = ["e0", "e1", "e2"]
        self.shape_labels = ["s0", "s1"]
        self.joint_labels = ["root"]

    def forward(self, params: HeadParams) -> MeshOutput:
        batch = params.batch_size
        scale = 1.0 if params.shape is None else 1.0 + 0.1 * params.shape[:, :1, None]
        vertices = self.template_vertices * scale
        vertices = vertices.expand(batch, -1, -1)
        return MeshOutput(
            vertices, self.faces, vertices[:, :1], landmarks68=vertices[:, ::9][:, :68]
        )


class SphereHand(HandModel):
    neutral_shape = 0.0
    side = "right"

    def __init__(self) -> None:
        super().__init__()
        mesh = trimesh.creation.icosphere(subdivisions=2, radius=0.04)
        self.register_buffer("template_vertices", torch.tensor(mesh.vertices).float())
        self.register_buffer("faces", torch.tensor(mesh.faces))
        self.shape_labels = ["s0"]
        self.joint_labels = ["wrist"]
        self.pose_bone_labels = ["finger"]

    @property
    def num_articulation(self) -> int:
        return 6

    def forward(self, params: HandParams) -> MeshOutput:
        batch = params.batch_size
        vertices = self.template_vertices.expand(batch, -1, -1)
        if params.articulation is not None:
            vertices = vertices + 0.01 * params.articulation[:, None, :3]
        return MeshOutput(vertices, self.faces, vertices[:, :1], keypoints=vertices[:, :21])


def test_other_backends_work_with_their_own_parameter_counts():
    torch.manual_seed(5)
    net = DiceNet(get_config("dice-small"), SphereHead(), SphereHand()).eval()
    # levels scale with the vertex counts (FLAME-style 5023 -> 1675 -> 559 on the paper's mesh)
    assert net.sampling.head.sizes[0] == 642 and net.sampling.hand.sizes[0] == 162
    with torch.no_grad():
        out = net(images(1))
    assert out.head_params.expression.shape == (1, 3) and out.hand_params.articulation.shape == (
        1,
        6,
    )
    assert out.face_vertices.shape == (1, 642, 3) and out.hand_vertices.shape == (1, 162, 3)
    assert out.face_landmarks68_upsampled is None  # no landmark embedding
    assert out.head_params.shape.abs().max() < 0.05  # unbounded, neutral 0
