"""The Decaf reader on a tiny dataset written in Decaf's exact layout (synthetic models)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import roma
import torch
from decaf_fixture import write_decaf_fixture, write_fake_flame, write_fake_mano

from handface.data.decaf import DecafDataset, consecutive_segments
from handface.data.sample import InteractionSample
from handface.errors import InputError
from handface.geometry.camera import project_points
from handface.models.base import HandParams, HeadParams
from handface.models.flame_backend import FlameHeadModel
from handface.models.mano_backend import ManoHandModel


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    flame_path, mano_path = folder / "generic_model.pkl", folder / "MANO_RIGHT.pkl"
    write_fake_flame(flame_path)
    write_fake_mano(mano_path)
    return flame_path, mano_path


@pytest.fixture(scope="module")
def fixture(models, tmp_path_factory):
    return write_decaf_fixture(tmp_path_factory.mktemp("decaf") / "DecafDataset", *models)


@pytest.fixture(scope="module")
def dataset(fixture):
    return DecafDataset(fixture.root, split="test", camera="108")


def _rot(v) -> torch.Tensor:
    return roma.rotvec_to_rotmat(torch.as_tensor(np.asarray(v), dtype=torch.float64))


def _expected_head_world(flame: FlameHeadModel, head: dict) -> torch.Tensor:
    """Decaf's recipe, written out: FLAME with root rotation about J0, then rotation about the
    vertex centroid, then translation."""
    f64 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)[None]  # noqa: E731
    pose = np.asarray(head["pose_params"])
    out = flame(
        HeadParams(
            shape=f64(head["shape_params"]),
            expression=f64(head["expression_params"]),
            jaw=f64(pose[3:6]),
        )
    )
    v, j0 = out.vertices[0], out.joints[0, 0]
    v = (v - j0) @ _rot(pose[:3]).T + j0
    centroid = v.mean(0)
    return (v - centroid) @ _rot(head["global_orient"]).T + centroid + f64(head["transl"])[0]


def _expected_hand_world(mano: ManoHandModel, hand: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """otaheri/MANO with 45 components: axis-angle pose, rotation about the wrist, + transl."""
    f64 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)[None]  # noqa: E731
    out = mano(
        HandParams(shape=f64(hand["betas"]), finger_pose=f64(hand["hand_pose"]).reshape(1, 15, 3))
    )
    wrist = out.joints[0, 0]
    R = _rot(hand["global_orient"])
    move = lambda x: (x - wrist) @ R.T + wrist + f64(hand["transl"])[0]  # noqa: E731
    return move(out.vertices[0]), move(out.keypoints[0])


def test_samples_have_decaf_keys_shapes_and_camera(dataset, fixture):
    assert len(dataset) == 3
    sample = dataset[2]
    assert isinstance(sample, InteractionSample)
    assert sample.key == "S1_108_000002" and dataset.keys[0] == "S1_108_000000"
    assert sample.image_size == fixture.image_size and sample.image is None
    assert torch.allclose(sample.K.double(), torch.from_numpy(fixture.intrinsic))
    assert torch.allclose(sample.R.double(), torch.from_numpy(fixture.extrinsic[:3, :3]), atol=1e-7)
    assert torch.allclose(sample.t.double(), torch.from_numpy(fixture.extrinsic[:3, 3]), atol=1e-7)
    assert sample.face_vertices.shape == (dataset.flame.num_vertices, 3)
    assert sample.hands["right"].vertices.shape == (778, 3) and "left" not in sample.hands
    assert sample.info["subject"] == "S1" and sample.info["frame"] == 2


def test_vertices_equal_the_model_forward_in_the_camera_frame(dataset, fixture, models):
    flame = FlameHeadModel(models[0], dtype=torch.float64)
    mano = ManoHandModel(models[1], dtype=torch.float64)
    R = torch.from_numpy(fixture.extrinsic[:3, :3])
    t = torch.from_numpy(fixture.extrinsic[:3, 3])
    for frame in range(3):
        sample = dataset[frame]
        params = fixture.params[frame]
        head_world = _expected_head_world(flame, params["head"])
        assert torch.allclose(sample.face_vertices.double(), head_world @ R.T + t, atol=2e-5)
        hand_world, keypoints_world = _expected_hand_world(mano, params["right_hand"])
        hand = sample.hands["right"]
        assert torch.allclose(hand.vertices.double(), hand_world @ R.T + t, atol=2e-5)
        assert torch.allclose(hand.keypoints3d.double(), keypoints_world @ R.T + t, atol=2e-5)
        assert torch.allclose(hand.keypoints2d, project_points(hand.keypoints3d, sample.K))
        # The stored handface parameters rebuild the same meshes (world frame, then R, t).
        rebuilt = dataset.flame(HeadParams(**{k: v[None] for k, v in sample.head_params.items()}))
        assert torch.allclose(
            rebuilt.vertices[0] @ sample.R.T + sample.t, sample.face_vertices, atol=1e-5
        )
        rebuilt_hand = dataset.mano(HandParams(**{k: v[None] for k, v in hand.params.items()}))
        assert torch.allclose(
            rebuilt_hand.vertices[0] @ sample.R.T + sample.t, hand.vertices, atol=1e-5
        )
        expected_rotation = (
            R @ _rot(params["head"]["global_orient"]) @ _rot(params["head"]["pose_params"][:3])
        )
        assert torch.allclose(sample.head_rotation.double(), expected_rotation, atol=1e-5)


def test_deformation_sign_and_frame_are_converted(dataset, fixture):
    R_cam = torch.from_numpy(fixture.extrinsic[:3, :3])
    for frame in range(3):
        sample = dataset[frame]
        decaf = torch.from_numpy(fixture.deforms[frame]).double()
        decaf[torch.from_numpy(fixture.neck_ids)] = 0.0  # Decaf's scripts zero the neck
        head = fixture.params[frame]["head"]
        # Decaf's own rule: deformed = posed − R_cam R(global_orient) D
        expected = sample.face_vertices.double() - decaf @ (R_cam @ _rot(head["global_orient"])).T
        assert torch.allclose(sample.face_vertices_deformed.double(), expected, atol=2e-6)
        if frame == 0:  # zero root rotation: handface's D is exactly Decaf's negated
            assert torch.equal(sample.deformation, -decaf.float())
        assert sample.deformation[fixture.neck_ids].abs().max() == 0
    assert dataset[1].info["neck_cleaned"]


def test_contacts_keypoints_boxes_and_segments_round_trip(dataset, fixture):
    for frame in range(3):
        sample = dataset[frame]
        assert torch.equal(sample.face_contact, torch.from_numpy(fixture.contacts_head[frame]))
        assert torch.equal(
            sample.hands["right"].contact, torch.from_numpy(fixture.contacts_rh[frame])
        )
        assert torch.equal(sample.face_keypoints2d, torch.from_numpy(fixture.head_keys[frame]))
        assert torch.equal(sample.face_keypoints68_2d, sample.face_keypoints2d)
        detected = sample.info["right_hand_keypoints2d_detected"]
        assert torch.equal(detected, torch.from_numpy(fixture.hand_keys[frame, :, :2]))
        assert sample.info["head_bbox"].tolist() == fixture.head_bbs[frame].tolist()
    assert [dataset[i].info["segment"] for i in range(3)] == [0, 1, 1]
    assert dataset.segments("S1") == [[0], [1, 2]]
    labels = consecutive_segments([(1619, 1620), (2989, 2990)], 3000)
    assert labels[[0, 1619, 1620, 2989, 2990, 2999]].tolist() == [0, 0, 1, 1, 2, 2]
    assert consecutive_segments([(1, 3)], 5).tolist() == [0, 0, -1, 1, 1]


def test_face_keypoints_3d_from_the_landmark_embedding(dataset, fixture):
    sample = dataset[1]
    assert sample.info["face_keypoints3d_valid"]
    corners = sample.face_vertices[sample.face_faces[torch.from_numpy(fixture.landmark_faces)]]
    expected = (corners * torch.from_numpy(fixture.landmark_bary).float()[..., None]).sum(1)
    assert torch.allclose(sample.face_keypoints3d, expected, atol=1e-6)
    assert torch.equal(sample.face_keypoints68_3d, sample.face_keypoints3d)


def test_without_embedding_3d_keypoints_are_flagged(dataset, fixture):
    plain = DecafDataset(
        fixture.root, flame=dataset.flame, mano=dataset.mano, landmark_embedding=None
    )
    sample = plain[0]
    assert not sample.info["face_keypoints3d_valid"]
    assert torch.isfinite(sample.face_keypoints3d).all() and sample.face_keypoints3d.shape == (
        68,
        3,
    )


def test_missing_files_raise_input_error_naming_them(models, tmp_path):
    fixture = write_decaf_fixture(tmp_path / "DecafDataset", *models, num_frames=2)
    path = fixture.files["contacts_head"]
    path.unlink()
    with pytest.raises(InputError, match="contacts_head.npy"):
        DecafDataset(fixture.root)
    with pytest.raises(InputError, match="train"):
        DecafDataset(fixture.root, split="train")
    with pytest.raises(InputError, match="no camera '999'"):
        DecafDataset(fixture.root, camera="999")
    np.save(path, np.zeros((5, 10), dtype=np.float32))  # wrong shape
    with pytest.raises(InputError, match=r"contacts_head.npy has shape \(5, 10\)"):
        DecafDataset(fixture.root)


def test_refuses_pickles_with_code(models, tmp_path):
    fixture = write_decaf_fixture(tmp_path / "DecafDataset", *models, num_frames=1)
    fixture.files["cameras"].write_bytes(b"cos\nsystem\n(S'echo no'\ntR.")
    with pytest.raises(InputError, match="refusing to load 'os.system'"):
        DecafDataset(fixture.root)


def test_load_images_returns_frames_and_masks(dataset, fixture):
    with_images = DecafDataset(
        fixture.root, flame=dataset.flame, mano=dataset.mano, load_images=True
    )
    for frame in (0, 2):
        sample = with_images[frame]
        width, height = fixture.image_size
        assert sample.image.shape == (height, width, 3) and sample.image.dtype == torch.float32
        colour = sample.image.reshape(-1, 3).mean(0) * 255
        assert torch.allclose(colour, torch.tensor(fixture.colours[frame]).float(), atol=12)
        foreground = sample.info["foreground"]
        assert foreground.shape == (height, width)
        assert foreground[25, 35] and not foreground[2, 2]


def test_load_images_needs_the_video(models, tmp_path):
    fixture = write_decaf_fixture(
        tmp_path / "DecafDataset", *models, num_frames=1, with_landmarks=False
    )
    shutil.rmtree(fixture.root / "test" / "videos")
    assert DecafDataset(fixture.root)[0].image_size == (1920, 1080)  # Decaf's size by default
    with pytest.raises(InputError, match=r"videos.*108\.mp4"):
        DecafDataset(fixture.root, load_images=True)
