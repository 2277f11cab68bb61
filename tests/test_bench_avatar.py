"""The per-frame figures of ``handface bench avatar`` on a constructed avatar and truth."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from handface.bench import _avatar_frame_scores
from handface.geometry.camera import intrinsics_from_fov
from handface.models import HeadParams


@pytest.fixture(scope="module")
def scene(head_model):
    """Frames 0-1 of a head 0.5 m in front of the camera with a 2 mm dent on the right cheek
    (frame 1 only), and no hands."""
    with torch.no_grad():
        out = head_model(HeadParams(transl=torch.tensor([[0.0, 0.0, 0.5]])))
    rest = out.vertices[0].double()
    canonical = out.extras["canonical_vertices"][0].double()
    dent = torch.zeros_like(rest)
    cheek = (canonical[:, 0] + 0.047).abs() < 0.01
    dent[cheek, 2] = -0.002
    K = intrinsics_from_fov(64, 64, 30.0)
    truths = [
        SimpleNamespace(face_vertices_deformed=rest + d, deformation=d, hands={}, K=K,
                        face_faces=head_model.faces, image=torch.zeros(64, 64, 3))
        for d in (torch.zeros_like(rest), dent)
    ]  # fmt: skip
    return truths, dent


class _Avatar:
    """Poses the truth's rest head with whatever displacement it is given."""

    def __init__(self, truths):
        self.truths = truths
        self.frame_index = np.array([1, 2])  # source frames 1, 2: neither is held out (% 5)

    def __len__(self):
        return 2

    def head_vertices(self, head_model, t, displacement=None):
        rest = self.truths[t].face_vertices_deformed - self.truths[t].deformation
        return rest + (0 if displacement is None else displacement.double())

    def hand_meshes(self, hand_models, t):
        return []


class _Dataset:
    def __init__(self, truths):
        self.truths = {"a": None, "b": truths[0], "c": truths[1]}

    def index_of(self, key):
        return key  # keys are looked up directly

    def __getitem__(self, key):
        return self.truths[key]


def test_the_true_deformation_scores_zero_error_and_none_scores_the_dent(head_model, scene):
    truths, dent = scene
    avatar, dataset = _Avatar(truths), _Dataset(truths)
    keys = ["a", "b", "c"]
    exact = _avatar_frame_scores(
        avatar, torch.stack([torch.zeros_like(dent), dent]).float(), dataset, keys, head_model, {}
    )
    assert exact["face_err_mm"] == pytest.approx([0.0, 0.0], abs=1e-4)
    assert exact["deform_err_mm"] == pytest.approx([0.0], abs=1e-4)  # only frame 1 is deformed
    none = _avatar_frame_scores(avatar, torch.zeros(2, *dent.shape), dataset, keys, head_model, {})
    assert none["deform_err_mm"] == pytest.approx([2.0], abs=1e-3)
    assert 0.0 < none["face_err_mm"][1] < 2.0  # the dent covers part of the face
    assert exact["psnr"] == [] and exact["col_dist_mm"] == []  # no held-out frame, no hands


def test_held_out_frames_are_scored_in_the_true_face_region_beside_a_hand(head_model, scene):
    import trimesh

    truths, dent = scene
    ball = trimesh.creation.icosphere(subdivisions=2, radius=0.02)
    # a "hand" in front of the face, its triangles after the face's in the joined scene
    hand = SimpleNamespace(vertices=torch.tensor(ball.vertices) + torch.tensor([0.0, 0, 0.4]),
                           faces=torch.tensor(ball.faces))  # fmt: skip
    truths = [truths[0], SimpleNamespace(**{**vars(truths[1]), "hands": {"right": hand}})]
    avatar = _Avatar(truths)
    avatar.frame_index = np.array([1, 5])  # source frame 5 is held out
    avatar.render = lambda head_model, hand_models, t, displacement=None: np.zeros(
        (64, 64, 3), np.uint8
    )
    scores = _avatar_frame_scores(
        avatar, torch.stack([torch.zeros_like(dent), dent]).float(), _Dataset(truths),
        ["a", "b", "a", "a", "a", "c"], head_model, {},  # source frame 1 -> b, 5 -> c
    )  # fmt: skip
    assert scores["psnr"] == [float("inf")] and scores["ssim"] == pytest.approx([1.0])
