"""`handface view`'s scenes without a browser: every kind of result folder gives the expected
named meshes (and the same geometry and colours as the folder holds), bad paths are one-line
InputErrors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from handface.data.synth import SynthDataset
from handface.errors import InputError
from handface.export.gltf import FRAME_TO_GLTF
from handface.io import save_capture
from handface.io.capture_folder import contact_colors
from handface.view.scene import (
    COLOR_MODES,
    SceneModels,
    heat_colors,
    load_scene,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from test_capture_folder import capture_from_sample  # noqa: E402

FACE_VERTICES, HAND_VERTICES = 4538, 1609


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """Two synthetic samples at 96 px (seed 8: the first touches the cheek, the second
    hovers over the mouth; one right hand each)."""
    from handface.synth import generate

    return generate(tmp_path_factory.mktemp("view") / "samples", num=2, seed=8, size=96,
                    progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory):
    """One synthetic sequence of three frames at 96 px."""
    from handface.synth import generate

    return generate(tmp_path_factory.mktemp("view") / "clip", num=1, seed=5, frames=3, size=96,
                    progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def capture_folder(samples, tmp_path_factory):
    dataset = SynthDataset(samples)
    # the photo stays where it was taken from: the viewer shows it in the camera frustum
    capture = replace(capture_from_sample(dataset[0], 0), source=str(dataset.image_path(0)))
    return save_capture(capture, tmp_path_factory.mktemp("view") / "capture"), capture


def test_a_capture_folder(capture_folder, samples):
    folder, capture = capture_folder
    scene = load_scene(folder)
    assert scene.kind == "capture" and scene.num_frames == 1
    assert scene.mesh_keys == ["prediction/face", "prediction/right_hand"]
    meshes = {mesh.key: mesh for mesh in scene.meshes(0)}
    assert list(meshes) == scene.mesh_keys
    face, hand = meshes["prediction/face"], meshes["prediction/right_hand"]
    assert face.vertices.shape == (FACE_VERTICES, 3) and hand.vertices.shape == (HAND_VERTICES, 3)
    np.testing.assert_allclose(face.vertices, capture.face.vertices_deformed, atol=1e-6)
    np.testing.assert_array_equal(face.faces, capture.face.faces)
    # contact colours are the folder's (grey, through orange, to red where it touches)
    contact = face.colors("contact", scene.deformation_scale_mm)
    np.testing.assert_array_equal(contact, contact_colors(capture.face.contact))
    assert (contact[capture.face.contact > 0.5] == (217, 20, 20)).all()
    np.testing.assert_array_equal(
        hand.colors("contact", 1.0), contact_colors(hand_contact(capture))
    )
    # |D| heat map: 0 is viridis' violet, the deepest press is the brightest vertex
    deformation_mm = 1000 * np.linalg.norm(capture.face.deformation, axis=1)
    assert face.deformation_mm.max() == pytest.approx(deformation_mm.max(), rel=1e-5)
    assert 2.0 < deformation_mm.max() <= scene.deformation_scale_mm <= 5.0  # 3 or 5 mm
    heat = face.colors("deformation", scene.deformation_scale_mm)
    assert (heat[deformation_mm == 0] == heat_colors(np.zeros(1), 1.0)[0]).all()
    assert heat[deformation_mm.argmax()].sum() == heat.astype(int).sum(axis=1).max()
    # plain: one colour per mesh, hands without |D| stay plain in the heat map
    for mesh in meshes.values():
        assert len(np.unique(mesh.colors("plain", 1.0), axis=0)) == 1
    assert (hand.colors("deformation", 5.0) == hand.colors("plain", 5.0)).all()
    # the camera and the photo it took
    np.testing.assert_allclose(scene.camera.K, capture.K)
    assert scene.camera.image_size == (96, 96)
    np.testing.assert_array_equal(scene.photo(0), capture.image)
    # the person is in front of the camera, where the viewer looks
    assert 0.2 < scene.centre(0)[2] < 2.0


def hand_contact(capture):
    return capture.hands["right"].contact


def test_a_capture_with_its_ground_truth(capture_folder, samples):
    folder, capture = capture_folder
    scene = load_scene(folder, gt=samples, index=0)
    assert scene.mesh_keys == ["prediction/face", "prediction/right_hand", "ground_truth/face",
                               "ground_truth/right_hand"]  # fmt: skip
    meshes = {mesh.key: mesh for mesh in scene.meshes(0)}
    # the capture states the sample's truth, so the two agree
    np.testing.assert_allclose(meshes["ground_truth/face"].vertices, capture.face.vertices_deformed)
    np.testing.assert_allclose(meshes["ground_truth/right_hand"].vertices,
                               capture.hands["right"].vertices)  # fmt: skip
    truth = meshes["ground_truth/face"]
    assert truth.plain_color != meshes["prediction/face"].plain_color
    with pytest.raises(InputError, match="--index 2 is outside the 2 samples"):
        load_scene(folder, gt=samples, index=2)


def _sequence_of(dataset: SynthDataset, drop_hand_at: int):
    """A Sequence that states a synthetic clip's truth (its hand lost in one frame)."""
    from handface.sequence import FrameHand, Sequence, SequenceFrame, SparseRows

    frames = []
    for t in range(len(dataset)):
        sample = dataset[t]
        hands = {
            side: FrameHand(
                status="detected",
                params={
                    name: hand.params[name].numpy()
                    for name in ("global_orient", "transl", "articulation")
                },  # fmt: skip
                touching=bool(hand.contact.max() > 0.5),
                min_distance_mm=1.0,
                regions=[],
                contact=SparseRows.from_dense(hand.contact.numpy(), 0.01),
            )
            for side, hand in sample.hands.items()
            if t != drop_hand_at
        }
        frames.append(
            SequenceFrame(
                index=t, time_s=t / 10, face_detected=True,
                head={name: sample.head_params[name].numpy()
                      for name in ("global_orient", "transl", "expression")},
                hands=hands,
                face_contact=SparseRows.from_dense(sample.face_contact.numpy(), 0.01),
                deformation=SparseRows.from_dense(sample.deformation.numpy(), 1e-6),
            )
        )  # fmt: skip
    first = dataset[0]
    return Sequence(
        image_size=tuple(first.image_size), K=first.K.numpy(), camera_source="given", fps=10.0,
        method="fit", head_shape=first.head_params["shape"].numpy(), frames=frames,
        hand_shapes={side: hand.params["shape"].numpy() for side, hand in first.hands.items()},
        source=str(dataset.root / "images"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def sequence_folder(short_clip, tmp_path_factory):
    """A Sequence folder stating the clip's truth, its hand lost in frame 1."""
    from handface.io.sequence_folder import write_sequence_files

    folder = tmp_path_factory.mktemp("view") / "sequence"
    folder.mkdir()
    write_sequence_files(_sequence_of(SynthDataset(short_clip), drop_hand_at=1), folder)
    return folder


@pytest.fixture(scope="module")
def models(head_model, left_hand, right_hand):
    return SceneModels(head=head_model, hands={"left": left_hand, "right": right_hand})


def test_a_sequence_folder_poses_every_frame(short_clip, sequence_folder, models):
    dataset = SynthDataset(short_clip)
    side = sorted(dataset[0].hands)[0]
    scene = load_scene(sequence_folder, models=models)
    assert scene.kind == "sequence" and scene.num_frames == 3 and scene.fps == 10.0
    assert scene.mesh_keys == ["prediction/face", f"prediction/{side}_hand"]
    assert scene.frame_labels == ["frame 0 (0.00 s)", "frame 1 (0.10 s)", "frame 2 (0.20 s)"]
    for t in range(3):
        sample = dataset[t]
        meshes = {mesh.key: mesh for mesh in scene.meshes(t)}
        assert sorted(meshes) == sorted(scene.mesh_keys if t != 1 else ["prediction/face"])
        face = meshes["prediction/face"]
        assert face.vertices.shape == (FACE_VERTICES, 3)
        # posed from the stored parameters, with the deformation: the clip's deformed face
        np.testing.assert_allclose(face.vertices, sample.face_vertices_deformed, atol=1e-5)
        np.testing.assert_array_equal(face.colors("contact", 1.0),
                                      contact_colors(sample.face_contact.numpy()))  # fmt: skip
        if t != 1:
            hand = meshes[f"prediction/{side}_hand"]
            assert hand.vertices.shape == (HAND_VERTICES, 3)
            np.testing.assert_allclose(hand.vertices, sample.hands[side].vertices, atol=1e-5)
        # the video frame (here: the image folder) for the camera frustum
        photo = scene.photo(t)
        expected = (sample.image.numpy() * 255 + 0.5).astype(np.uint8)
        assert np.abs(photo.astype(int) - expected).max() <= 1
    with pytest.raises(InputError, match="frame 3 is outside"):
        scene.meshes(3)
    # with the clip's ground truth, frame by frame
    scene = load_scene(sequence_folder, gt=short_clip, index=0, models=models)
    assert scene.mesh_keys[2:] == ["ground_truth/face", f"ground_truth/{side}_hand"]
    meshes = {mesh.key: mesh for mesh in scene.meshes(2)}
    np.testing.assert_allclose(meshes["ground_truth/face"].vertices,
                               meshes["prediction/face"].vertices, atol=1e-5)  # fmt: skip
    with pytest.raises(InputError, match="--index 1 is outside the 1 sequences"):
        load_scene(sequence_folder, gt=short_clip, index=1, models=models)


@pytest.fixture(scope="module")
def avatar_folder(head_model, tmp_path_factory):
    """A small avatar: three frames, a two-component basis, the deformation learned on frames
    1 and 2 only (frame 0 inactive)."""
    from handface.avatar.appearance import Appearance
    from handface.avatar.deformation_basis import DeformationBasis
    from handface.avatar.folder import save_avatar
    from handface.avatar.hand_deformation import CodeDecoder, HandDeformation
    from handface.avatar.model import Avatar

    generator = torch.Generator().manual_seed(0)
    components = torch.zeros(2, FACE_VERTICES, 3)
    components[0, :40, 1] = 1.0 / np.sqrt(40)  # a bump on the first 40 vertices
    components[1, 40:80, 0] = 1.0 / np.sqrt(40)
    basis = DeformationBasis(components, torch.ones(2), torch.tensor([0.9, 1.0]),
                             torch.full((2,), float("nan")), 3, 0)  # fmt: skip
    decoder = CodeDecoder(2, 4, 2, 0.01).double()
    deformation = HandDeformation(
        codes=torch.randn(3, 2, generator=generator).double(), decoder=decoder, basis=basis,
        active=torch.tensor([False, True, True]),
    )  # fmt: skip
    texture = torch.rand(32, 32, 3, generator=generator)
    appearance = Appearance(texture, torch.zeros(3, 9), torch.ones(32, 32, dtype=torch.bool))
    avatar = Avatar(
        image_size=(64, 48), K=np.array([[60.0, 0, 32], [0, 60, 24], [0, 0, 1]]), fps=5.0,
        head_shape=np.full(len(head_model.shape_labels), 0.5, np.float32),
        rotation=np.tile(np.eye(3, dtype=np.float32), (3, 1, 1)),
        transl=np.tile(np.array([0, 0, 0.5], np.float32), (3, 1)),
        expression=np.zeros((3, len(head_model.expression_labels)), np.float32),
        frame_index=np.array([0, 2, 4]), appearance=appearance, deformation=deformation,
    )  # fmt: skip
    folder = save_avatar(avatar, tmp_path_factory.mktemp("view") / "avatar", head_model)
    return folder, avatar


def test_an_avatar_folder_is_its_textured_head_upright(avatar_folder, head_model):
    folder, avatar = avatar_folder
    scene = load_scene(folder)
    assert scene.kind == "avatar" and scene.camera is None
    assert scene.mesh_keys == ["prediction/head"] and scene.num_frames == 3
    assert scene.frame_labels == ["frame 0 (0.00 s)", "frame 2 (0.40 s)", "frame 4 (0.80 s)"]
    (head,) = scene.meshes(0)
    assert head.vertices.shape == (FACE_VERTICES, 3) and head.texture.shape == (32, 32, 3)
    assert head.corner_uvs.shape == (len(head.faces), 3, 2)
    # textured in the contact and plain modes (no contact to show), |D| in the heat map
    assert head.colors("contact", 1.0) is None and head.colors("plain", 1.0) is None
    assert head.colors("deformation", 1.0).shape == (FACE_VERTICES, 3)
    # the rest head turned as head.glb turns it (upright, facing the viewer), then to the
    # camera's axes: the same shape up to where it is placed
    rest = avatar.rest_head(head_model).double().numpy()
    upright = rest @ FRAME_TO_GLTF["canonical"].T
    shown = head.vertices.astype(np.float64) @ FRAME_TO_GLTF["camera"].T
    np.testing.assert_allclose(shown - shown.mean(0), upright - upright.mean(0), atol=1e-5)
    top = np.argmax(rest[:, 2])  # the crown: highest in the head's canonical frame (z up)
    assert head.vertices[top, 1] == head.vertices[:, 1].min()  # y down: the top of the view
    assert 0.4 < scene.centre(0)[2] < 0.8
    # the hand deformation of each frame: none on the inactive frame 0
    assert head.deformation_mm.max() == 0.0
    (pressed,) = scene.meshes(1)
    expected = avatar.deformation.displacement(1).numpy()
    np.testing.assert_allclose(pressed.deformation_mm, 1000 * np.linalg.norm(expected, axis=1),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    moved = np.linalg.norm(pressed.vertices - head.vertices, axis=1)
    assert moved[:80].max() > 0 and moved[80:].max() < 1e-6
    assert scene.deformation_scale_mm >= pressed.deformation_mm.max()


def test_a_synthetic_dataset_shows_a_sample_or_its_sequence(samples, short_clip):
    dataset = SynthDataset(samples)
    scene = load_scene(samples, index=1)
    assert scene.kind == "synthetic" and scene.num_frames == 1
    assert scene.mesh_keys == ["ground_truth/face", "ground_truth/right_hand"]
    meshes = {mesh.key: mesh for mesh in scene.meshes(0)}
    assert list(meshes) == scene.mesh_keys
    np.testing.assert_allclose(meshes["ground_truth/face"].vertices,
                               dataset[1].face_vertices_deformed)  # fmt: skip
    assert meshes["ground_truth/right_hand"].vertices.shape == (HAND_VERTICES, 3)
    assert scene.photo(0).shape == (96, 96, 3)
    # a dataset of sequences: the sample's whole sequence, starting at the sample
    scene = load_scene(short_clip, index=1)
    assert scene.num_frames == 3 and scene.start == 1
    assert scene.frame_labels[1] == "sample 000000_0001 (frame 1)"
    with pytest.raises(InputError, match="--index 3 is outside the 3 samples"):
        load_scene(short_clip, index=3)
    with pytest.raises(InputError, match="--index must be 0 or more"):
        load_scene(short_clip, index=-1)
    with pytest.raises(InputError, match="colour mode must be one of"):
        meshes["ground_truth/face"].colors("rainbow", 1.0)
    assert COLOR_MODES == ("contact", "plain", "deformation")


def test_bad_paths_are_one_line_input_errors(capture_folder, avatar_folder, samples, tmp_path):
    folder, _ = capture_folder
    cases = [
        (tmp_path / "missing", "does not exist"),
        (folder / "result.json", "is a file"),
        (tmp_path, "is neither a Capture, Sequence, avatar nor synthetic dataset folder"),
    ]
    for path, message in cases:
        with pytest.raises(InputError, match=message) as error:
            load_scene(path)
        assert "\n" not in str(error.value)
    # `handface reconstruct --out DIR` puts each capture in a subfolder: name them
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "result.json").write_text("{}")
    with pytest.raises(InputError, match=r"holds Capture folders \(.*one\); give one of them"):
        load_scene(tmp_path)
    # broken folders of each kind
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "result.json").write_text("{not json")
    (broken / "params.npz").write_bytes(b"")
    with pytest.raises(InputError, match="is not valid JSON"):
        load_scene(broken)
    (broken / "result.json").unlink()
    (broken / "timeline.json").write_text("{}")
    with pytest.raises(InputError, match="is not a handface sequence"):
        load_scene(broken)
    (broken / "sequence.npz").write_bytes(b"garbage")
    with pytest.raises(InputError, match="cannot be read"):
        load_scene(broken)
    # --gt only with a Capture or Sequence, and only a synthetic dataset
    avatar, _ = avatar_folder
    with pytest.raises(InputError, match="--gt goes with a Capture or Sequence folder"):
        load_scene(avatar, gt=samples)
    with pytest.raises(InputError, match="is not a synthetic dataset"):
        load_scene(folder, gt=avatar)


def test_the_cli_refuses_a_bad_path_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "handface", "view", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"handface: error: {tmp_path} is neither a Capture, Sequence, avatar nor synthetic "
        f"dataset folder (it has none of result.json, timeline.json, sequence.npz, avatar.json, "
        f"meta.json)"
    ]
    assert result.stdout == ""


def test_a_capture_without_hands_or_photo(capture_folder, tmp_path):
    _, capture = capture_folder
    folder = save_capture(replace(capture, hands={}, image=None, source="gone.png"),
                          tmp_path / "face_only")  # fmt: skip
    scene = load_scene(folder)
    assert scene.mesh_keys == ["prediction/face"] and scene.photo(0) is None
    summary = json.loads((folder / "result.json").read_text())
    assert summary["hands"] == {}


def test_the_viewer_follows_the_timeline_and_the_toggles(short_clip, sequence_folder, models):
    """The server side of the viewer, without a browser: the frame slider, Play, the colour
    modes, prediction vs ground truth and the mesh checkboxes act on the scene nodes."""
    from handface.view.server import Viewer

    side = sorted(SynthDataset(short_clip)[0].hands)[0]
    scene = load_scene(sequence_folder, gt=short_clip, models=models)
    viewer = Viewer(scene, port=0)
    try:
        hand, truth = f"prediction/{side}_hand", f"ground_truth/{side}_hand"
        assert sorted(viewer.handles) == sorted(scene.mesh_keys)
        # prediction first; ground truth when asked for, or both
        shown = {key for key, handle in viewer.handles.items() if handle.visible}
        assert shown == {"prediction/face", hand}
        viewer.show_menu.value = "ground truth"
        assert {k for k, h in viewer.handles.items() if h.visible} == {"ground_truth/face", truth}
        viewer.show_menu.value = "both"
        viewer.set_visible("ground_truth/face", False)
        assert {k for k, h in viewer.handles.items() if h.visible} == {"prediction/face", hand,
                                                                       truth}  # fmt: skip
        # frame 1 lost the hand: its node goes, and comes back on frame 2
        viewer.set_frame(1)
        assert viewer.frame == 1 and hand not in viewer.handles and truth in viewer.handles
        assert viewer.caption.content == "frame 1 (0.10 s)"
        viewer.set_frame(2)
        assert hand in viewer.handles and viewer.handles[hand].visible
        face = viewer.handles["prediction/face"]
        viewer.set_color_mode("deformation")
        assert viewer.handles["prediction/face"] is not face  # redrawn in the heat map
        # Play steps through the frames at the clip's rate, round and round
        seen = set()
        viewer.play_box.value = True
        deadline = time.monotonic() + 20
        while len(seen) < 3 and time.monotonic() < deadline:
            seen.add(viewer.frame)
            time.sleep(0.02)
        viewer.play_box.value = False
        assert seen == {0, 1, 2}
    finally:
        viewer.stop()


def test_video_frames_are_read_forward_and_reopened_to_go_back(short_clip):
    from handface.view.scene import VideoFrames

    dataset = SynthDataset(short_clip)
    frames = VideoFrames(str(short_clip / "images"))
    for index in (1, 2, 0, 2, 1):
        expected = (dataset[index].image.numpy() * 255 + 0.5).astype(np.uint8)
        assert np.abs(frames(index).astype(int) - expected).max() <= 1
    assert frames(3) is None  # past the end
    frames.close()
    assert VideoFrames(str(short_clip / "gone"))(0) is None


def test_the_cli_prints_one_line_serves_and_stops_on_ctrl_c(capture_folder):
    import signal
    import urllib.request

    folder, _ = capture_folder
    process = subprocess.Popen(
        [sys.executable, "-m", "handface", "view", str(folder), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = process.stdout.readline()
        assert line.startswith(f"handface view: {folder.name}: capture"), line
        url = line.split(" at ", 1)[1].split(";", 1)[0]
        assert url.startswith("http://127.0.0.1:") and line.rstrip().endswith("Ctrl-C stops")
        with urllib.request.urlopen(url, timeout=30) as response:  # the viewer's page
            assert response.status == 200 and b"<html" in response.read(2000).lower()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert out == "" and len(err.strip().splitlines()) == 1, err
