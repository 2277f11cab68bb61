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
        assert set(sample.hands) == set(sample.info["hands"])
        for side, hand in sample.hands.items():
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
        nearest = torch.full((sample.face_vertices.shape[0],), float("inf"))
        for side, hand in sample.hands.items():
            distance = point_mesh_distance(
                sample.face_vertices_deformed, hand.vertices, hand.faces
            ).distance
            nearest = torch.minimum(nearest, distance)
            hand_sdf = signed_distance(
                hand.vertices, sample.face_vertices_deformed, sample.face_faces
            ).sdf
            assert torch.equal(hand.contact.bool(), hand_sdf <= 0.005)
            assert bool(hand.contact.any()) == sample.info["hands"][side]["in_contact"]
        # a face vertex touches when any hand is within 5 mm (both hands count)
        assert torch.equal(sample.face_contact.bool(), nearest <= 0.005)
        assert sample.in_contact == bool(sample.info["in_contact"])


def test_contact_and_non_contact_samples(dataset):
    from handface.synth.sampler import CLEARANCE_M

    touching = [s for s in dataset if s.info["planned_contact"]]
    apart = [s for s in dataset if not s.info["planned_contact"]]
    assert touching and apart
    for sample in touching:
        assert sample.in_contact
        assert 0.0 <= sample.info["press_mm"] <= 15.0
        # the solver removed the press: no face vertex inside the hand by more than 0.5 mm
        assert sample.info["max_penetration_after_mm"] <= 0.5
    for sample in apart:
        assert not sample.in_contact and float(sample.deformation.abs().max()) == 0.0
    for sample in dataset:
        for side, hand in sample.hands.items():
            role = sample.info["hands"][side]["role"]
            if role == "contact":
                continue
            low, high = CLEARANCE_M[role]
            gap = signed_distance(hand.vertices, sample.face_vertices, sample.face_faces).sdf
            assert low - 0.0015 <= float(gap.min()) <= high + 0.0015, (role, float(gap.min()))


def test_hard_negatives_two_hands_and_occluders(dataset):
    roles = [hand["role"] for s in dataset for hand in s.info["hands"].values()]
    assert {"contact", "near", "occluder"} <= set(roles)
    two = [s for s in dataset if len(s.hands) == 2]
    assert two and all(s.info["num_hands"] == 2 for s in two)
    for sample in two:
        left, right = sample.hands["left"], sample.hands["right"]
        assert float(torch.cdist(left.vertices, right.vertices).min()) >= 0.008
    for sample in dataset:
        for side, hand in sample.hands.items():
            if sample.info["hands"][side]["role"] != "occluder":
                continue
            # in front of the face, as seen by the camera: the hand covers part of the face
            face_2d = project_points(sample.face_vertices, sample.K)
            hand_2d = project_points(hand.vertices, sample.K)
            low, high = face_2d.min(0).values, face_2d.max(0).values
            over_face = ((hand_2d >= low) & (hand_2d <= high)).all(dim=1)
            assert bool(over_face.any())
            assert float(hand.vertices[over_face, 2].median()) < float(
                sample.face_vertices[:, 2].median()
            )


def test_keypoints_project_with_K(dataset):
    for sample in dataset:
        for hand in sample.hands.values():
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
        hand_labels = {2 if side == "left" else 3 for side in sample.hands}
        labels = set(sample.segmentation.unique().tolist())
        # head, body (neck, shoulders, clothes) and background are always in view
        assert {0, 1, 4} <= labels and labels <= {0, 1, 4} | hand_labels
        foreground = sample.segmentation > 0
        assert torch.equal(foreground, sample.depth > 0)
        # depth of head pixels lies within the head's depth range (the hair adds <= 2.5 cm)
        head_z = sample.face_vertices_deformed[:, 2]
        head_depth = sample.depth[sample.segmentation == 1]
        assert float(head_depth.min()) >= float(head_z.min()) - 0.026
        assert float(head_depth.max()) <= float(head_z.max()) + 1e-3
        # the body lies below the head in the picture (image y grows downwards)
        rows = torch.arange(height, dtype=torch.float32)[:, None].expand(height, width)
        assert float(rows[sample.segmentation == 4].mean()) > float(
            rows[sample.segmentation == 1].mean()
        )
        # the render is not flat: skin, background and shading differ
        assert float(sample.image.std()) > 0.05


def test_same_seed_same_data_regardless_of_workers(synth_dataset, tmp_path):
    from handface.synth import generate

    again = generate(tmp_path / "again", num=2, seed=8, size=160, workers=2, progress=False)
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


def test_shards_equal_one_run(tmp_path):
    from handface.synth import generate

    whole = generate(tmp_path / "whole", num=3, seed=8, size=64, progress=False)
    split = tmp_path / "split"
    generate(split, num=3, seed=8, size=64, progress=False, shard=(1, 2))
    with pytest.raises(InputError, match="0/2"):
        SynthDataset(split)
    with pytest.raises(OutputExistsError, match="shard 1/2"):
        generate(split, num=3, seed=8, size=64, progress=False, shard=(1, 2))
    with pytest.raises(InputError, match="other options"):
        generate(split, num=3, seed=9, size=64, progress=False, shard=(0, 2))
    generate(split, num=3, seed=8, size=64, progress=False, shard=(0, 2))
    assert (whole / "meta.json").read_bytes() == (split / "meta.json").read_bytes()
    for key in ("000000", "000001", "000002"):
        assert (whole / "images" / f"{key}.png").read_bytes() == (
            split / "images" / f"{key}.png"
        ).read_bytes()
        with (
            np.load(whole / "labels" / f"{key}.npz") as a,
            np.load(split / "labels" / f"{key}.npz") as b,
        ):
            assert all(np.array_equal(a[name], b[name]) for name in a.files)
    assert len(SynthDataset(split)) == 3
    assert not list(split.glob(".*partial"))
    with pytest.raises(OutputExistsError, match="complete"):
        generate(split, num=3, seed=8, size=64, progress=False, shard=(0, 2))


def test_parse_shard():
    from handface.synth.generate import parse_shard

    assert parse_shard("0/1") == (0, 1)
    for bad in ("2/2", "a/3", "1", "-1/3"):
        with pytest.raises(InputError, match="--shard"):
            parse_shard(bad)
