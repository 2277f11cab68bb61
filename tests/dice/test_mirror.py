"""One hand branch with mirroring: predictions on a flipped crop are the mirrored predictions."""

from __future__ import annotations

import doctest

import pytest
import torch

from handface.dice import DiceNet, get_config, predict_both_hands
from handface.dice import mirror as mirror_module
from handface.dice.mirror import mirror_camera, mirror_hand

REFLECT = torch.tensor([-1.0, 1.0, 1.0])


def test_doctests_of_mirror_module():
    result = doctest.testmod(mirror_module)
    assert result.attempted >= 3 and result.failed == 0


def amplify(net: DiceNet) -> DiceNet:
    """Make an untrained network's outputs depend strongly on the image (so that a broken
    mirror shows): larger output layers everywhere."""
    with torch.no_grad():
        for layer in (
            net.meshnet.stages[-1].output,
            net.interaction.stages[-1].output,
            net.face_ik.mlp.final,
            net.hand_ik.mlp.final,
            net.camera.net[-1],
        ):
            layer.weight.mul_(300.0 / (layer.weight.abs().mean() * layer.in_features**0.5 + 1e-12))
            layer.weight.mul_(0.01)
    return net


@pytest.fixture(scope="module")
def net(head_model, right_hand):
    torch.manual_seed(0)
    return amplify(DiceNet(get_config("dice-small"), head_model, right_hand)).eval()


@pytest.fixture(scope="module")
def crops():
    gen = torch.Generator().manual_seed(1)
    # an asymmetric picture: smooth noise plus a bright patch on the left
    base = torch.nn.functional.interpolate(torch.rand(2, 3, 14, 14, generator=gen), size=224)
    base[:, :, 60:120, 20:80] += 0.5
    return base.clamp(0, 1)


@pytest.fixture(scope="module")
def predictions(net, crops):
    with torch.no_grad():
        return predict_both_hands(net, crops), predict_both_hands(net, crops.flip(-1))


def close(a, b, atol=2e-5):
    torch.testing.assert_close(a, b, atol=atol, rtol=1e-4)


def test_raw_network_is_not_mirror_symmetric(net, crops):
    # without the symmetrisation the property fails: this is what the module has to fix
    with torch.no_grad():
        out = net(torch.cat([crops, crops.flip(-1)]))
    mirror = net.sampling.mirror
    face, flipped = out.face_vertices[:2], out.face_vertices[2:]
    error = (flipped - face[:, mirror.head_vertices] * REFLECT).norm(dim=-1)
    assert error[:, mirror.head_matched].mean() > 1e-3
    hand, flipped_hand = out.hand_vertices[:2], out.hand_vertices[2:]
    assert (hand - flipped_hand * REFLECT).norm(dim=-1).mean() > 1e-3  # right != mirrored left


def test_face_of_the_flipped_crop_is_the_mirrored_face(net, predictions):
    direct, flipped = predictions
    mirror = net.sampling.mirror
    perm, matched = mirror.head_vertices, mirror.head_matched
    for name in ("vertices", "vertices_undeformed", "deformation", "vertices_upsampled"):
        a, b = getattr(direct.face, name), getattr(flipped.face, name)
        close(b[:, matched], (a[:, perm] * REFLECT)[:, matched])
    close(flipped.face.contact_logits[:, matched], direct.face.contact_logits[:, perm][:, matched])
    lm = mirror.landmarks68
    close(flipped.face.landmarks68, direct.face.landmarks68[:, lm] * REFLECT)
    close(flipped.face.keypoints_coarse, direct.face.keypoints_coarse[:, lm] * REFLECT)
    # parameters: expression by its left/right pairs, rotations conjugated by the mirror
    close(flipped.face.params.expression, direct.face.params.expression[:, mirror.expression])
    close(flipped.face.params.shape, direct.face.params.shape)
    close(flipped.face.params.jaw, direct.face.params.jaw * torch.tensor([1.0, -1.0, -1.0]))
    flip = torch.diag(REFLECT)
    close(flipped.face.rotation, flip @ direct.face.rotation @ flip)
    close(flipped.face.params.transl, direct.face.params.transl * REFLECT)
    # and the face is really there (not a symmetric blob): the two crops differ
    assert (direct.face.vertices[0] - direct.face.vertices[1]).abs().max() > 1e-3


def test_hands_of_the_flipped_crop_swap_sides(net, predictions):
    direct, flipped = predictions
    mirror = net.sampling.mirror
    to_left = mirror.hand_left_to_right  # left vertex k mirrors right vertex to_left[k]
    to_right = mirror.hand_right_to_left
    for new, old, index in (
        (flipped.right, direct.left, to_right),
        (flipped.left, direct.right, to_left),
    ):
        close(new.vertices, old.vertices[:, index] * REFLECT)
        close(new.vertices_upsampled, old.vertices_upsampled[:, index] * REFLECT)
        close(new.keypoints, old.keypoints * REFLECT)
        close(new.vertices_coarse, old.vertices_coarse * REFLECT)
        close(new.contact_logits, old.contact_logits[:, index])
        close(new.params.transl, old.params.transl * REFLECT)
        close(new.presence_logits, old.presence_logits)
    sign = mirror.hand_articulation_sign
    close(flipped.left.params.articulation, direct.right.params.articulation * sign)
    assert direct.left.side == "left" and direct.right.side == "right"
    # the left hand is a left hand: the Anny left model with its parameters gives its vertices
    assert (direct.left.vertices - direct.right.vertices).abs().max() > 1e-3


def test_left_hand_parameters_drive_the_left_model(net, predictions, left_hand):
    direct, _ = predictions
    with torch.no_grad():
        mesh = left_hand(direct.left.params)
    close(mesh.vertices, direct.left.vertices, atol=1e-4)


def test_camera_is_mirror_consistent(predictions):
    direct, flipped = predictions
    close(flipped.camera, direct.camera * torch.tensor([1.0, -1.0, 1.0]))  # (s, -tx, ty)
    close(mirror_camera(direct.camera), direct.camera * torch.tensor([1.0, -1.0, 1.0]))
    assert direct.camera[:, 1].abs().max() > 1e-4  # tx is not trivially zero


def test_mirroring_a_hand_twice_gives_it_back(net, predictions):
    direct, _ = predictions
    mirror = net.sampling.mirror
    back = mirror_hand(mirror_hand(direct.right, mirror), mirror)
    assert back.side == "right"
    close(back.vertices, direct.right.vertices, atol=0)
    close(back.params.articulation, direct.right.params.articulation, atol=0)
    close(back.rotation, direct.right.rotation, atol=1e-6)
