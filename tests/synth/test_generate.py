"""The synthetic dataset: labels agree with the models, images, determinism, sequences, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from handface.data import SynthDataset
from handface.errors import InputError, OutputExistsError
from handface.geometry import point_mesh_distance, project_points, signed_distance
from handface.models import MEDIAPIPE_INDEX_OF_68, HandParams, HeadParams
from handface.models.hand_pose import dof_limits


@pytest.fixture(scope="module")
def dataset(synth_dataset):
    return SynthDataset(synth_dataset)


def test_layout_and_meta(synth_dataset):
    meta = json.loads((synth_dataset / "meta.json").read_text())
    assert meta["format"] == "handface-synth" and meta["version"] == 1
    assert [item["key"] for item in meta["items"]] == [f"{i:06d}" for i in range(6)]
    for folder in ("images", "depth", "segmentation", "labels"):
        assert sorted(p.stem for p in (synth_dataset / folder).iterdir()) == [
            f"{i:06d}" for i in range(6)
        ]
    assert not list(synth_dataset.parent.glob(".*partial"))


def test_stored_params_reproduce_the_meshes(dataset, head_model, right_hand, left_hand):
    for sample in dataset:
        head = head_model(HeadParams(**{k: v[None] for k, v in sample.head_params.items()}))
        assert torch.allclose(head.vertices[0], sample.face_vertices, atol=1e-5)
        ((side, hand),) = sample.hands.items()
        model = right_hand if side == "right" else left_hand
        params = {k: v[None] for k, v in hand.params.items() if k != "finger_angles"}
        out = model(HandParams(**params))
        assert torch.allclose(out.vertices[0], hand.vertices, atol=1e-5)
        assert torch.allclose(out.keypoints[0], hand.keypoints3d, atol=1e-5)
        lower, upper = dof_limits()
        assert bool(((hand.params["finger_angles"] >= lower - 1e-5)
                     & (hand.params["finger_angles"] <= upper + 1e-5)).all())  # fmt: skip


def test_deformation_is_in_the_canonical_frame(dataset):
    for sample in dataset:
        rotated = sample.deformation @ sample.head_rotation.T
        assert torch.allclose(
            sample.face_vertices + rotated, sample.face_vertices_deformed, atol=1e-6
        )
        assert torch.allclose(
            sample.head_rotation @ sample.head_rotation.T, torch.eye(3), atol=1e-5
        )


def test_contact_labels_match_distances(dataset):
    for sample in dataset:
        (hand,) = sample.hands.values()
        distance = point_mesh_distance(
            sample.face_vertices_deformed, hand.vertices, hand.faces
        ).distance
        assert torch.equal(sample.face_contact.bool(), distance <= 0.005)
        hand_sdf = signed_distance(
            hand.vertices, sample.face_vertices_deformed, sample.face_faces
        ).sdf
        assert torch.equal(hand.contact.bool(), hand_sdf <= 0.005)
        assert sample.in_contact == bool(sample.info["in_contact"])


def test_contact_and_non_contact_samples(dataset):
    touching = [s for s in dataset if s.info["planned_contact"]]
    apart = [s for s in dataset if not s.info["planned_contact"]]
    assert touching and apart
    for sample in touching:
        assert sample.in_contact
        assert 0.0 <= sample.info["press_mm"] <= 15.0
        # the solver removed the press: no face vertex inside the hand by more than 0.5 mm
        assert sample.info["max_penetration_after_mm"] <= 0.5
    for sample in apart:
        (hand,) = sample.hands.values()
        gap = signed_distance(hand.vertices, sample.face_vertices, sample.face_faces).sdf.min()
        assert 0.009 <= float(gap) <= 0.101
        assert not sample.in_contact and float(sample.deformation.abs().max()) == 0.0


def test_keypoints_project_with_K(dataset):
    for sample in dataset:
        (hand,) = sample.hands.values()
        assert torch.allclose(
            project_points(hand.keypoints3d, sample.K), hand.keypoints2d, atol=1e-3
        )
        assert torch.allclose(
            project_points(sample.face_keypoints3d, sample.K), sample.face_keypoints2d, atol=1e-3
        )
        assert sample.face_keypoints3d.shape == (478, 3)
        expected = sample.face_keypoints3d[list(MEDIAPIPE_INDEX_OF_68)]
        assert torch.equal(sample.face_keypoints68_3d, expected)


def test_images_depth_and_segmentation(dataset):
    for sample in dataset:
        height, width = sample.image.shape[:2]
        assert (width, height) == sample.image_size == (160, 160)
        (side,) = sample.hands
        labels = set(sample.segmentation.unique().tolist())
        assert {0, 1} <= labels and labels <= {0, 1, 2 if side == "left" else 3}
        foreground = sample.segmentation > 0
        assert torch.equal(foreground, sample.depth > 0)
        # depth of head pixels lies within the head's depth range
        head_z = sample.face_vertices_deformed[:, 2]
        head_depth = sample.depth[sample.segmentation == 1]
        assert float(head_depth.min()) >= float(head_z.min()) - 1e-3
        assert float(head_depth.max()) <= float(head_z.max()) + 1e-3
        # the render is not flat: skin, background and shading differ
        assert float(sample.image.std()) > 0.05


def test_same_seed_same_data_regardless_of_workers(synth_dataset, tmp_path):
    from handface.synth import generate

    again = generate(tmp_path / "again", num=2, seed=3, size=160, workers=2, progress=False)
    for key in ("000000", "000001"):
        with (
            np.load(synth_dataset / "labels" / f"{key}.npz") as a,
            np.load(again / "labels" / f"{key}.npz") as b,
        ):
            assert a.files == b.files
            for name in a.files:
                assert np.array_equal(a[name], b[name]), name
        assert (synth_dataset / "images" / f"{key}.png").read_bytes() == (
            again / "images" / f"{key}.png"
        ).read_bytes()


def test_sequence_approach_press_hold_release(synth_sequence):
    data = SynthDataset(synth_sequence, load_images=False)
    assert data.keys == [f"000000_{t:04d}" for t in range(8)]
    approach = [item["approach_mm"] for item in data.items]
    contact = [item["in_contact"] for item in data.items]
    assert approach[0] > 50.0 and not contact[0]
    assert min(approach) == 0.0 and any(contact)
    hold = approach.index(0.0)
    assert all(a >= b for a, b in zip(approach[:hold], approach[1 : hold + 1], strict=True))
    assert approach[-1] > 0.0
    # the head moves smoothly: consecutive yaw changes are small
    yaw = np.array([item["head_yaw_pitch_roll_deg"][0] for item in data.items])
    assert np.abs(np.diff(yaw)).max() < 10.0


def test_bad_options_and_existing_output(tmp_path, synth_dataset):
    from handface.synth import generate

    with pytest.raises(InputError, match="--num"):
        generate(tmp_path / "x", num=0)
    with pytest.raises(InputError, match="--size"):
        generate(tmp_path / "x", num=1, size=8)
    with pytest.raises(OutputExistsError):
        generate(synth_dataset, num=1, progress=False)
    assert not (tmp_path / "x").exists()
