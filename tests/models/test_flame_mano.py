"""FLAME / MANO backends on synthetic model files written in the official layout."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import roma
import torch

from handface.errors import ModelFileError
from handface.models.base import HandParams, HeadParams
from handface.models.flame_backend import FlameHeadModel, load_flame_landmark_embedding
from handface.models.lbs import transl_about_origin
from handface.models.mano_backend import MANO_TO_MEDIAPIPE, ManoHandModel
from handface.models.safe_pickle import restricted_loads

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from decaf_fixture import (  # noqa: E402
    fake_flame_arrays,
    fake_mano_arrays,
    write_decaf_fixture,
    write_fake_flame,
    write_fake_mano,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    paths = {
        "flame_pkl": folder / "generic_model.pkl",
        "flame_npz": folder / "flame.npz",
        "mano_pkl": folder / "MANO_RIGHT.pkl",
        "mano_npz": folder / "mano_right.npz",
    }
    arrays = {
        "flame": write_fake_flame(paths["flame_pkl"]),
        "mano": write_fake_mano(paths["mano_pkl"]),
    }
    write_fake_flame(paths["flame_npz"])
    write_fake_mano(paths["mano_npz"])
    return paths, arrays


@pytest.fixture(scope="module")
def flame64(files):
    return FlameHeadModel(files[0]["flame_pkl"], dtype=torch.float64)


@pytest.fixture(scope="module")
def mano64(files):
    return ManoHandModel(files[0]["mano_pkl"], "right", dtype=torch.float64)


def test_fake_files_look_like_the_official_ones(files):
    data = files[0]["flame_pkl"].read_bytes()
    assert b"chumpy.ch" in data and b"Ch" in data and b"scipy.sparse" in data
    with pytest.raises(ModuleNotFoundError):  # a plain unpickler would need chumpy installed
        pickle.loads(data, encoding="latin1")


@pytest.mark.parametrize("protocol", [0, 4])
def test_other_pickle_protocols_load_the_same(tmp_path, files, flame64, protocol):
    path = tmp_path / f"flame_p{protocol}.pkl"
    write_fake_flame(path, protocol=protocol)
    if protocol == 0:
        assert b"copy_reg" in path.read_bytes() and b"__builtin__" in path.read_bytes()
    params = HeadParams(shape=torch.randn(1, 20, dtype=torch.float64))
    other = FlameHeadModel(path, dtype=torch.float64)(params).vertices
    assert torch.equal(other, flame64(params).vertices)


def test_flame_zero_params_give_the_template_exactly(files, flame64):
    arrays = files[1]["flame"]
    out = flame64(HeadParams())
    assert out.vertices.shape == (1, len(arrays["v_template"]), 3)
    np.testing.assert_allclose(out.vertices[0].numpy(), arrays["v_template"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(out.faces.numpy(), arrays["f"].astype(np.int64))
    joints = arrays["J_regressor"] @ arrays["v_template"]
    np.testing.assert_allclose(out.joints[0].numpy(), joints, atol=1e-12)
    assert flame64.joint_labels == ["global", "neck", "jaw", "eye_left", "eye_right"]
    assert len(flame64.shape_labels) == 300 and flame64.expression_labels[:2] == ["exp0", "exp1"]
    assert out.landmarks68 is None and flame64.num_vertices == len(arrays["v_template"])


def test_pickle_and_npz_versions_agree(files):
    paths, _ = files
    params = HeadParams(
        shape=torch.randn(2, 100), expression=torch.randn(2, 50), jaw=torch.rand(2, 3) * 0.3
    )
    a, b = FlameHeadModel(paths["flame_pkl"])(params), FlameHeadModel(paths["flame_npz"])(params)
    assert torch.allclose(a.vertices, b.vertices, atol=1e-6)
    hand = HandParams(finger_pose=torch.randn(1, 15, 3) * 0.2, shape=torch.randn(1, 10))
    a = ManoHandModel(paths["mano_pkl"])(hand)
    b = ManoHandModel(paths["mano_npz"])(hand)
    assert torch.allclose(a.vertices, b.vertices, atol=1e-6)


def test_flame_shape_and_expression_are_linear_blendshapes(files, flame64):
    arrays = files[1]["flame"]
    template = torch.from_numpy(arrays["v_template"])
    dirs = torch.from_numpy(arrays["shapedirs"])
    a, b = torch.randn(1, 100, dtype=torch.float64), torch.randn(1, 100, dtype=torch.float64)
    va = flame64(HeadParams(shape=a)).vertices[0] - template
    vb = flame64(HeadParams(shape=b)).vertices[0] - template
    vab = flame64(HeadParams(shape=a + b)).vertices[0] - template
    assert torch.allclose(vab, va + vb, atol=1e-12)
    assert torch.allclose(va, torch.einsum("k,vck->vc", a[0], dirs[..., :100]), atol=1e-12)
    e = torch.randn(1, 50, dtype=torch.float64)
    ve = flame64(HeadParams(expression=e)).vertices[0] - template
    assert torch.allclose(ve, torch.einsum("k,vck->vc", e[0], dirs[..., 300:350]), atol=1e-12)
    with pytest.raises(ValueError, match="expression has 120 values"):
        flame64(HeadParams(expression=torch.zeros(1, 120)))


def test_global_orient_rotates_about_the_origin_then_translates(flame64):
    local = HeadParams(jaw=torch.tensor([[0.2, 0.0, 0.0]], dtype=torch.float64))
    rotvec = torch.tensor([[0.3, -1.1, 0.4]], dtype=torch.float64)
    transl = torch.tensor([[0.1, -0.2, 0.5]], dtype=torch.float64)
    still = flame64(local)
    moved = flame64(HeadParams(jaw=local.jaw, global_orient=rotvec, transl=transl))
    R = roma.rotvec_to_rotmat(rotvec)
    assert torch.allclose(moved.vertices, still.vertices @ R.mT + transl[:, None], atol=1e-12)
    assert torch.allclose(moved.joints, still.joints @ R.mT + transl[:, None], atol=1e-12)
    # A point that does not move under the rotation alone: the origin (not the root joint).
    only_rot = flame64(HeadParams(global_orient=rotvec)).vertices
    norms = lambda v: v.norm(dim=-1)  # noqa: E731
    assert torch.allclose(norms(only_rot), norms(flame64(HeadParams()).vertices), atol=1e-12)


def test_skinning_and_pose_correctives_match_the_model_definition(tmp_path):
    """Hard skinning weights: a jaw-only vertex must rotate about the jaw joint exactly."""
    arrays = fake_flame_arrays()
    weights = np.zeros_like(arrays["weights"])
    weights[np.arange(len(weights)), arrays["weights"].argmax(1)] = 1.0
    arrays["weights"] = weights
    np.savez(tmp_path / "hard.npz", **arrays)
    model = FlameHeadModel(tmp_path / "hard.npz", dtype=torch.float64)
    neck = torch.tensor([[0.1, 0.2, -0.1]], dtype=torch.float64)
    jaw = torch.tensor([[0.3, 0.0, 0.05]], dtype=torch.float64)
    out = model(HeadParams(neck=neck, jaw=jaw)).vertices[0].numpy()
    R_neck, R_jaw = (roma.rotvec_to_rotmat(r[0]).numpy() for r in (neck, jaw))
    rotations = [np.eye(3), R_neck, R_jaw, np.eye(3), np.eye(3)]
    feature = np.concatenate([(R - np.eye(3)).reshape(-1) for R in rotations[1:]])
    v_posed = arrays["v_template"] + arrays["posedirs"] @ feature
    J = arrays["J_regressor"] @ arrays["v_template"]
    owner = weights.argmax(1)
    jaw_v, root_v = owner == 2, owner == 0
    assert jaw_v.any() and root_v.any()
    jaw_world = R_neck @ (J[2] - J[1]) + J[1]  # the jaw joint after the neck rotation
    expected = (v_posed[jaw_v] - J[2]) @ (R_neck @ R_jaw).T + jaw_world
    np.testing.assert_allclose(out[jaw_v], expected, atol=1e-12)
    np.testing.assert_allclose(out[root_v], v_posed[root_v], atol=1e-12)


def test_disallowed_global_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps({"v_template": Exploit()}, protocol=2))
    with pytest.raises(ModelFileError, match="refusing to load") as error:
        FlameHeadModel(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)
    assert not marker.exists()
    with pytest.raises(ModelFileError, match="builtins.eval"):
        restricted_loads(b"cbuiltins\neval\n(S'1+1'\ntR.")


def test_missing_or_wrong_files_raise_model_file_error(tmp_path, files):
    missing = tmp_path / "nowhere" / "generic_model.pkl"
    with pytest.raises(ModelFileError, match=str(missing)):
        FlameHeadModel(missing)
    with pytest.raises(ModelFileError, match=str(missing)):
        ManoHandModel(missing)
    arrays = fake_flame_arrays()
    del arrays["posedirs"]
    np.savez(tmp_path / "partial.npz", **arrays)
    with pytest.raises(ModelFileError, match="posedirs"):
        FlameHeadModel(tmp_path / "partial.npz")
    (tmp_path / "garbage.pkl").write_bytes(b"not a pickle at all")
    with pytest.raises(ModelFileError, match="not a readable pickle"):
        FlameHeadModel(tmp_path / "garbage.pkl")
    with pytest.raises(ModelFileError, match="left MANO"):
        ManoHandModel(tmp_path / "MANO_LEFT.pkl", "right")


def test_gradients_flow_to_every_head_and_hand_parameter(files):
    paths, _ = files
    head = FlameHeadModel(paths["flame_pkl"])
    fields = {
        "shape": torch.zeros(1, 100),
        "expression": torch.zeros(1, 50),
        "jaw": torch.full((1, 3), 0.1),
        "neck": torch.full((1, 3), 0.1),
        "eyes": torch.full((1, 2, 3), 0.1),
        "global_orient": torch.full((1, 3), 0.1),
        "transl": torch.zeros(1, 3),
    }
    for value in fields.values():
        value.requires_grad_(True)
    head(HeadParams(**fields)).vertices.square().sum().backward()
    for name, value in fields.items():
        assert value.grad is not None and value.grad.abs().sum() > 0, name
    hand = ManoHandModel(paths["mano_pkl"])
    hand_fields = {
        "finger_pose": torch.full((1, 15, 3), 0.1),
        "shape": torch.zeros(1, 10),
        "global_orient": torch.full((1, 3), 0.1),
        "transl": torch.zeros(1, 3),
    }
    for value in hand_fields.values():
        value.requires_grad_(True)
    out = hand(HandParams(**hand_fields))
    (out.vertices.square().sum() + out.keypoints.square().sum()).backward()
    for name, value in hand_fields.items():
        assert value.grad is not None and value.grad.abs().sum() > 0, name


def test_flame_landmarks_from_a_deca_style_embedding(tmp_path, files):
    paths, _ = files
    fixture = write_decaf_fixture(tmp_path / "decaf", paths["flame_pkl"], paths["mano_pkl"], 1)
    embedding = load_flame_landmark_embedding(fixture.files["landmark_embedding"])
    model = FlameHeadModel(paths["flame_pkl"], dtype=torch.float64, landmark_embedding=embedding)
    out = model(HeadParams(jaw=torch.tensor([[0.2, 0.0, 0.0]], dtype=torch.float64)))
    corners = out.vertices[0][model.faces[torch.from_numpy(fixture.landmark_faces)]]
    expected = (corners * torch.from_numpy(fixture.landmark_bary)[..., None]).sum(1)
    assert out.landmarks68.shape == (1, 68, 3)
    assert torch.allclose(out.landmarks68[0], expected, atol=1e-12)


def test_mano_template_keypoints_and_labels(files, mano64):
    arrays = files[1]["mano"]
    out = mano64(HandParams())
    np.testing.assert_allclose(out.vertices[0].numpy(), arrays["v_template"], atol=1e-12)
    joints = arrays["J_regressor"] @ arrays["v_template"]
    keypoints = out.keypoints[0].numpy()
    assert keypoints.shape == (21, 3) and len(mano64.pose_bone_labels) == 15
    np.testing.assert_allclose(keypoints[0], joints[0], atol=1e-12)  # wrist
    np.testing.assert_allclose(keypoints[1:4], joints[13:16], atol=1e-12)  # thumb CMC, MCP, IP
    np.testing.assert_allclose(keypoints[5:8], joints[1:4], atol=1e-12)  # index MCP, PIP, DIP
    np.testing.assert_allclose(keypoints[13:16], joints[10:13], atol=1e-12)  # ring
    np.testing.assert_allclose(keypoints[17:20], joints[7:10], atol=1e-12)  # little
    tips = arrays["v_template"][[745, 317, 444, 556, 673]]
    np.testing.assert_allclose(keypoints[[4, 8, 12, 16, 20]], tips, atol=1e-12)
    assert sorted(MANO_TO_MEDIAPIPE) == list(range(21))


def test_mano_pca_helper_and_pose(files, mano64):
    arrays = files[1]["mano"]
    coefficients = torch.randn(2, 12, dtype=torch.float64)
    flat = mano64.pca_to_finger_pose(coefficients)
    expected = coefficients.numpy() @ arrays["hands_components"][:12]
    np.testing.assert_allclose(flat.reshape(2, 45).numpy(), expected, atol=1e-12)
    relaxed = mano64.pca_to_finger_pose(coefficients, flat_hand_mean=False)
    np.testing.assert_allclose(
        relaxed.reshape(2, 45).numpy(), expected + arrays["hands_mean"], atol=1e-12
    )
    posed = mano64(HandParams(finger_pose=flat))
    rest = mano64(HandParams())
    assert (posed.vertices - rest.vertices).abs().max() > 1e-3  # fingers moved
    assert torch.allclose(posed.keypoints[:, 0], rest.keypoints[:, 0].expand(2, 3))  # wrist fixed
    # the pose latent: PCA coefficients with a flat mean, composed with finger_pose like Anny's
    assert mano64.num_articulation == 15
    latent = mano64(HandParams(articulation=coefficients))
    assert torch.allclose(latent.vertices, posed.vertices, atol=1e-12)
    twist = torch.full((1, 15, 3), 0.05, dtype=torch.float64)
    both = mano64(HandParams(articulation=coefficients, finger_pose=twist))
    composed = roma.rotmat_to_rotvec(roma.rotvec_to_rotmat(flat) @ roma.rotvec_to_rotmat(twist))
    assert torch.allclose(both.vertices, mano64(HandParams(finger_pose=composed)).vertices)
    with pytest.raises(ValueError, match="at most 45 PCA coefficients"):
        mano64(HandParams(articulation=torch.zeros(1, 46)))
    with pytest.raises(ValueError, match=r"\(B, 15, 3\)"):
        mano64(HandParams(finger_pose=torch.zeros(1, 20, 3)))


def test_mano_global_orient_and_wrist_pivot_conversion(mano64):
    pose = HandParams(finger_pose=torch.full((1, 15, 3), 0.1, dtype=torch.float64))
    rotvec = torch.tensor([[0.4, 0.2, -0.9]], dtype=torch.float64)
    transl = torch.tensor([[0.01, 0.02, 0.3]], dtype=torch.float64)
    still = mano64(pose)
    R = roma.rotvec_to_rotmat(rotvec)
    moved = mano64(HandParams(finger_pose=pose.finger_pose, global_orient=rotvec, transl=transl))
    assert torch.allclose(moved.vertices, still.vertices @ R.mT + transl[:, None], atol=1e-12)
    # smplx-style rotation about the wrist joint, expressed with transl_about_origin
    wrist = still.joints[:, 0]
    smplx_style = (still.vertices - wrist[:, None]) @ R.mT + wrist[:, None] + transl[:, None]
    converted = transl_about_origin(rotvec, wrist, transl)
    ours = mano64(HandParams(finger_pose=pose.finger_pose, global_orient=rotvec, transl=converted))
    assert torch.allclose(ours.vertices, smplx_style, atol=1e-12)
    assert torch.allclose(ours.joints[:, 0], wrist + transl, atol=1e-12)


def test_mano_without_pca_takes_45_axis_angles_as_articulation(tmp_path):
    arrays = fake_mano_arrays()
    del arrays["hands_components"], arrays["hands_mean"]
    np.savez(tmp_path / "mano_right.npz", **arrays)
    model = ManoHandModel(tmp_path / "mano_right.npz", dtype=torch.float64)
    assert not model.has_pca and model.num_articulation == 45
    pose = 0.3 * torch.randn(2, 15, 3, dtype=torch.float64)
    latent = model(HandParams(articulation=pose.reshape(2, 45)))
    assert torch.allclose(latent.vertices, model(HandParams(finger_pose=pose)).vertices)
    with pytest.raises(ValueError, match="must have 45 values"):
        model(HandParams(articulation=torch.zeros(1, 15)))


def test_the_default_keypoint_rig_is_the_forward_pass(mano64):
    generator = torch.Generator().manual_seed(4)
    articulation = torch.randn(3, mano64.num_articulation, generator=generator).double()
    orient = roma.random_rotvec(3, generator=generator).double()
    transl = torch.randn(3, 3, generator=generator).double()
    shape = torch.randn(1, 10, generator=generator).double()
    rig = mano64.keypoint_rig(shape)
    full = mano64(
        HandParams(articulation=articulation, global_orient=orient, transl=transl, shape=shape)
    )
    assert torch.equal(rig(articulation, orient, transl), full.keypoints)
    latent = articulation.clone().requires_grad_(True)
    rig(latent).sum().backward()
    assert latent.grad is not None and latent.grad.abs().max() > 0


def test_flame_and_mano_priors_and_landmark_layouts(tmp_path, files, flame64, mano64):
    for model in (flame64, mano64):
        assert model.neutral_shape == 0.0 and model.shape_prior_scale == 1.0
        assert model.shape_bounds is None
        assert torch.equal(model.neutral_shape_tensor(2), torch.zeros(2, len(model.shape_labels)))
    assert flame64.expression_bounds is None and flame64.landmark_layout is None
    assert flame64.surface_landmarks(flame64(HeadParams()).vertices) == (None, None)
    paths, _ = files
    fixture = write_decaf_fixture(tmp_path / "decaf", paths["flame_pkl"], paths["mano_pkl"], 1)
    model = FlameHeadModel(
        paths["flame_pkl"], landmark_embedding=fixture.files["landmark_embedding"]
    )
    assert model.landmark_layout == "ibug68"
    out = model(HeadParams(jaw=torch.tensor([[0.2, 0.0, 0.0]])))
    assert out.landmarks is None and out.landmarks68.shape == (1, 68, 3)
    moved = out.vertices + 0.01
    none, landmarks68 = model.surface_landmarks(moved)
    assert none is None and torch.allclose(landmarks68, out.landmarks68 + 0.01, atol=1e-6)
