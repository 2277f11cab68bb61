"""The top-level API: handface.reconstruct(image) as `handface reconstruct` does it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import handface
from handface.errors import InputError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hand_touching_ear.jpg"


@pytest.fixture(scope="module")
def capture():
    return handface.reconstruct(EXAMPLE)


def test_reconstruct_a_path_and_the_same_pixels_as_an_array(capture):
    from_path = capture
    assert from_path.face is not None and from_path.source == str(EXAMPLE)
    rgb = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    from_array = handface.reconstruct(rgb, focal=float(from_path.K[0, 0]))
    # same pixels and focal length: the same face (the array has no EXIF, so the focal is given)
    assert np.allclose(from_array.face.vertices_deformed, from_path.face.vertices_deformed,
                       atol=1e-4)  # fmt: skip
    assert sorted(from_array.hands) == sorted(from_path.hands)


def test_bad_options_are_refused():
    with pytest.raises(InputError, match="method must be one of"):
        handface.make_reconstructor("magic")
    with pytest.raises(InputError, match="checkpoint goes with"):
        handface.make_reconstructor("fit", checkpoint="model.pt")
    with pytest.raises(InputError, match="DICE takes RGB"):
        handface.reconstruct(EXAMPLE, "dice", depth=np.zeros((4, 4)))


def test_capture_export_shortcut_round_trips(capture, tmp_path):
    import trimesh

    path = capture.export(tmp_path / "ear.glb")
    assert path == tmp_path / "ear.glb"
    scene = trimesh.load(path, force="scene")
    assert len(scene.geometry) == 1 + len(capture.hands)
    ply = capture.export(tmp_path / "ear.data", "ply")  # the format given, whatever the suffix
    mesh = trimesh.load(ply, file_type="ply")
    assert len(mesh.vertices) == len(capture.face.vertices) + sum(
        len(hand.vertices) for hand in capture.hands.values()
    )
    with pytest.raises(InputError, match=r"give a \.glb, \.obj or \.ply"):
        capture.export(tmp_path / "ear.fbx")
    assert not (tmp_path / "ear.fbx").exists()


def test_capture_show_serves_this_capture(capture, monkeypatch):
    served = {}

    def serve_scene(scene, *, host, port):  # the real server is tested in tests/view
        served.update(scene=scene, host=host, port=port)

    monkeypatch.setattr("handface.view.server.serve_scene", serve_scene)
    capture.show(port=8123)
    scene = served["scene"]
    assert served["host"] == "127.0.0.1" and served["port"] == 8123
    assert scene.title.startswith("hand_touching_ear: capture")
    assert sorted(scene.mesh_keys) == sorted(
        ["prediction/face", *(f"prediction/{side}_hand" for side in capture.hands)]
    )
    face = next(mesh for mesh in scene.meshes(0) if mesh.key == "prediction/face")
    assert np.allclose(face.vertices, capture.face.vertices_deformed, atol=1e-6)
