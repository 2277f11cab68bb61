"""`handface export` of a Sequence: one animated GLB, read back by the glTF spec with numpy.

Every exported frame t must show exactly that frame's meshes: base + morph target t (the one-hot
STEP weights at t) equals the frame's vertices posed by the models, turned to glTF's axes; a
mesh absent from a frame has scale 0 there.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import roma
import torch
import trimesh

from handface.errors import InputError
from handface.export.gltf import FRAME_TO_GLTF, GltfAnimation, GltfMesh, write_glb
from handface.export.sequence import export_sequence, select_frames
from handface.io.capture_folder import contact_colors
from handface.models.base import HandParams, HeadParams
from handface.sequence import Sequence, posed_meshes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synthetic_sequence import synthetic_sequence  # noqa: E402

ROTATION = FRAME_TO_GLTF["camera"]
# per frame: is the head there, which hands are there (frame 0: no face yet; frame 2: the
# right hand is lost, the left one appears)
PRESENT = [(False, {"right"}), (True, {"right"}), (True, {"left"}), (True, {"left", "right"}),
           (True, {"right"})]  # fmt: skip


def _sequence() -> Sequence:
    return synthetic_sequence(PRESENT)


@pytest.fixture(scope="module")
def sequence() -> Sequence:
    return _sequence()


@pytest.fixture(scope="module")
def models(head_model, left_hand, right_hand):
    return head_model, {"left": left_hand, "right": right_hand}


def _expected(sequence: Sequence, t: int, name: str, models) -> np.ndarray:
    """Frame ``t``'s vertices of mesh ``name`` (camera frame), one model call per frame."""
    head_model, hand_models = models
    frame = sequence.frames[t]
    tensor = lambda a: torch.as_tensor(np.asarray(a, np.float32)[None])  # noqa: E731
    with torch.no_grad():
        if name == "face":
            h = frame.head
            out = head_model(HeadParams(global_orient=tensor(h["global_orient"]),
                                        transl=tensor(h["transl"]),
                                        expression=tensor(h["expression"]),
                                        shape=tensor(sequence.head_shape)))  # fmt: skip
            vertices = out.vertices[0].double().numpy()
            R = roma.rotvec_to_rotmat(torch.as_tensor(h["global_orient"]).double()).numpy()
            return vertices + frame.deformation.to_dense(len(vertices)) @ R.T
        side = name.removesuffix("_hand")
        p = frame.hands[side].params
        out = hand_models[side](HandParams(global_orient=tensor(p["global_orient"]),
                                           transl=tensor(p["transl"]),
                                           articulation=tensor(p["articulation"]),
                                           shape=tensor(sequence.hand_shapes[side])))  # fmt: skip
        return out.vertices[0].double().numpy()


def _read_glb(path) -> tuple[dict, bytes]:
    """The JSON and BIN chunks of a GLB file, read by the spec (no library)."""
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert magic == b"glTF" and version == 2 and length == len(data)
    json_length, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == 0x4E4F534A and json_length % 4 == 0
    document = json.loads(data[20 : 20 + json_length])
    offset = 20 + json_length
    bin_length, bin_type = struct.unpack_from("<II", data, offset)
    assert bin_type == 0x004E4942 and bin_length % 4 == 0
    assert offset + 8 + bin_length == len(data)
    blob = data[offset + 8 :]
    assert document["buffers"][0]["byteLength"] <= len(blob)
    return document, blob


def _accessor(document: dict, blob: bytes, index: int) -> np.ndarray:
    """An accessor's values (count, width), after checking it lies inside its buffer view."""
    accessor = document["accessors"][index]
    view = document["bufferViews"][accessor["bufferView"]]
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}[accessor["type"]]
    dtype = {5126: np.float32, 5125: np.uint32, 5123: np.uint16, 5121: np.uint8}[
        accessor["componentType"]
    ]
    start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
    size = accessor["count"] * width * np.dtype(dtype).itemsize
    assert start % np.dtype(dtype).itemsize == 0
    assert accessor.get("byteOffset", 0) + size <= view["byteLength"]
    assert view["byteOffset"] + view["byteLength"] <= document["buffers"][0]["byteLength"]
    values = np.frombuffer(blob, dtype=dtype, count=accessor["count"] * width, offset=start)
    return values.reshape(-1, width)


def _bounded(document: dict, blob: bytes, index: int) -> np.ndarray:
    """A float accessor's values, after checking its min/max are exactly theirs (glTF requires
    them on POSITION, morph target and animation input accessors)."""
    values = _accessor(document, blob, index)
    accessor = document["accessors"][index]
    assert accessor["componentType"] == 5126
    assert np.array_equal(np.float32(accessor["min"]), values.min(0))
    assert np.array_equal(np.float32(accessor["max"]), values.max(0))
    return values


def _animation(document: dict, blob: bytes) -> dict[tuple[str, str], tuple[np.ndarray, ...]]:
    """(node name, path) -> (times, values) of the file's one animation; checks STEP."""
    [animation] = document["animations"]
    out = {}
    for channel in animation["channels"]:
        sampler = animation["samplers"][channel["sampler"]]
        assert sampler["interpolation"] == "STEP"
        node = document["nodes"][channel["target"]["node"]]
        times = _bounded(document, blob, sampler["input"])[:, 0]
        out[node["name"], channel["target"]["path"]] = (
            times,
            _accessor(document, blob, sampler["output"]),
        )
    return out


def _check_plays(path, sequence: Sequence, frames: list[int], models) -> dict:
    """Every keyframe shows exactly its frame's meshes; returns the document."""
    document, blob = _read_glb(path)
    animation = _animation(document, blob)
    expected_times = np.float32([sequence.frames[t].time_s for t in frames])
    names = {"face"} | {f"{s}_hand" for t in frames for s in sequence.frames[t].hands}
    assert {n["name"] for n in document["nodes"] if "mesh" in n} == names
    for node in document["nodes"]:
        if "mesh" not in node:
            continue
        name = node["name"]
        assert "matrix" not in node
        primitive = document["meshes"][node["mesh"]]["primitives"][0]
        base = _bounded(document, blob, primitive["attributes"]["POSITION"])
        targets = [_bounded(document, blob, t["POSITION"]) for t in primitive["targets"]]
        present = [
            k for k, t in enumerate(frames)
            if (sequence.frames[t].head is not None if name == "face"
                else name.removesuffix("_hand") in sequence.frames[t].hands)
        ]  # fmt: skip
        assert len(targets) == len(present) and all(len(t) == len(base) for t in targets)
        times, weights = animation[name, "weights"]
        assert np.array_equal(times, expected_times)  # one keyframe per frame
        weights = weights.reshape(len(frames), len(targets))
        for j, k in enumerate(present):
            assert np.array_equal(weights[k], np.eye(len(targets))[j])  # one-hot
            shown = base + np.einsum("t,tvc->vc", weights[k], np.stack(targets))
            truth = _expected(sequence, frames[k], name, models) @ ROTATION.T
            assert np.abs(shown - truth).max() < 2e-7  # float32 precision (metres)
        # hidden where absent, shown where present
        scale = np.ones((len(frames), 3), np.float32)
        absent = sorted(set(range(len(frames))) - set(present))
        scale[absent] = 0.0
        if absent:
            scale_times, values = animation[name, "scale"]
            assert np.array_equal(scale_times, expected_times)
            assert np.array_equal(values, scale)
        else:
            assert (name, "scale") not in animation
        names.discard(name)
    assert not names
    return document


def test_every_frame_shows_its_meshes(sequence, models, tmp_path):
    path = export_sequence(sequence, tmp_path / "s.glb", head_model=models[0],
                           hand_models=models[1])  # fmt: skip
    document = _check_plays(path, sequence, list(range(len(sequence))), models)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.glb"]  # no temporary left
    # colours: each mesh's maximum contact over the exported frames
    _, blob = _read_glb(path)
    tracks = {t.name: t for t in posed_meshes(sequence, None, *models)}
    for node in document["nodes"]:
        primitive = document["meshes"][node["mesh"]]["primitives"][0]
        colours = _accessor(document, blob, primitive["attributes"]["COLOR_0"])[:, :3]
        track = tracks[node["name"]]
        assert np.array_equal(colours, contact_colors(track.contact[track.present].max(0)))
    # the face touched at vertex 100 in the last frame (0.8): red there, grey where never
    face = tracks["face"]
    assert face.contact[:, 100].max() == pytest.approx(0.8) and face.contact[:, 0].max() == 0
    # trimesh reads the file: three meshes, the base shapes
    scene = trimesh.load(path, process=False)
    assert set(scene.geometry) == {"face", "left_hand", "right_hand"}
    assert np.allclose(
        scene.geometry["right_hand"].vertices,
        _expected(sequence, 0, "right_hand", models) @ ROTATION.T,
        atol=1e-6,
    )
    assert len(scene.geometry["face"].faces) == len(models[0].faces)


def test_stride_and_span(sequence, models, tmp_path):
    # video frames 10, 12, 14, 16, 18: [12, 19) every 2nd -> 12 and 16
    frames = select_frames(sequence, start=12, end=19, stride=2)
    assert frames == [1, 3]
    path = export_sequence(sequence, tmp_path / "s.glb", start=12, end=19, stride=2,
                           head_model=models[0], hand_models=models[1])  # fmt: skip
    document = _check_plays(path, sequence, frames, models)
    face = next(m for m in document["meshes"] if m["name"] == "face")
    assert face["extras"]["targetNames"] == ["frame_000012", "frame_000016"]
    with pytest.raises(InputError, match="no tracked frame"):
        select_frames(sequence, start=100)
    with pytest.raises(InputError, match="stride"):
        select_frames(sequence, stride=0)


def test_write_glb_refuses_bad_morphs_and_animations(tmp_path):
    vertices = np.array([[0.0, 0, 0], [0.1, 0, 0], [0, 0.1, 0]])
    faces = np.array([[0, 1, 2]])
    good = np.zeros((2, 3, 3))
    for meshes, animation, message in [
        ([GltfMesh("a", vertices, faces, morph_targets=np.zeros((2, 4, 3)))], None, "morph"),
        ([GltfMesh("a", vertices, faces, morph_targets=good)],
         GltfAnimation("x", np.array([0.0, 0.0]), {"a": np.eye(2)}), "increase"),
        ([GltfMesh("a", vertices, faces, morph_targets=good)],
         GltfAnimation("x", np.array([0.0, 1.0]), {"a": np.eye(3)}), "keyframes, targets"),
        ([GltfMesh("a", vertices, faces)],
         GltfAnimation("x", np.array([0.0, 1.0]), {"a": np.eye(2)}), "no morph targets"),
        ([GltfMesh("a", vertices, faces)],
         GltfAnimation("x", np.array([0.0]), scales={"b": np.ones(1)}), "no mesh named"),
    ]:  # fmt: skip
        with pytest.raises(InputError, match=message):
            write_glb(tmp_path / "x.glb", meshes, animations=[animation] if animation else [])
    assert not list(tmp_path.iterdir())


def test_cli_exports_a_sequence_folder_and_refuses_obj(sequence, tmp_path):
    from handface.io.sequence_folder import write_sequence_files

    folder = tmp_path / "track"
    folder.mkdir()
    write_sequence_files(sequence, folder)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "handface", "export", *args],
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    result = run(str(folder), "--out", str(tmp_path / "s.obj"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and ".glb" in lines[0] and "sequence" in lines[0], lines
    result = run(str(folder), "--out", str(tmp_path / "s.glb"), "--stride", "2")
    assert result.returncode == 0, result.stderr
    document, blob = _read_glb(tmp_path / "s.glb")
    animation = _animation(document, blob)
    assert np.allclose(animation["face", "weights"][0], [0, 2 / 15, 4 / 15])  # frames 0, 2, 4
    assert len(trimesh.load(tmp_path / "s.glb").geometry) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.glb", "track"]
