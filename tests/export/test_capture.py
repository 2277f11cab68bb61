"""`handface export` of a Capture: GLB, OBJ and PLY re-read with trimesh give the same meshes
and contact colours."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from handface.data.synth import SynthDataset
from handface.errors import InputError
from handface.export.capture import export_capture
from handface.export.gltf import FRAME_TO_GLTF
from handface.io import save_capture
from handface.io.capture_folder import contact_colors

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from test_capture_folder import capture_from_sample  # noqa: E402


@pytest.fixture(scope="module")
def capture(synth_dataset):
    dataset = SynthDataset(synth_dataset)
    index = next(i for i, item in enumerate(dataset.items) if item["in_contact"])
    return capture_from_sample(dataset[index], index)


def _expected(capture):
    meshes = {"face": (capture.face.vertices_deformed, capture.face.faces, capture.face.contact)}
    for side, hand in capture.hands.items():
        meshes[f"{side}_hand"] = (hand.vertices, hand.faces, hand.contact)
    return meshes


def test_glb_round_trip(capture, tmp_path):
    scene = trimesh.load(export_capture(capture, tmp_path / "c.glb", "glb"), process=False)
    expected = _expected(capture)
    assert set(scene.geometry) == set(expected)
    for name, (vertices, faces, contact) in expected.items():
        mesh = scene.geometry[name]
        assert np.allclose(mesh.vertices, vertices @ FRAME_TO_GLTF["camera"].T, atol=1e-6)
        assert np.array_equal(mesh.faces, faces)
        colours = np.asarray(mesh.visual.vertex_colors)[:, :3]
        assert np.array_equal(colours, contact_colors(contact))
    # a touching capture shows red where it touches
    assert float(capture.face.contact.max()) > 0.5


@pytest.mark.parametrize("file_format", ["ply", "obj"])
def test_ply_and_obj_round_trip(capture, tmp_path, file_format):
    path = export_capture(capture, tmp_path / f"c.{file_format}", file_format)
    mesh = trimesh.load(path, process=False, force="mesh")
    expected = _expected(capture)
    vertices = np.concatenate([v for v, _, _ in expected.values()])
    colours = np.concatenate([contact_colors(c) for _, _, c in expected.values()])
    assert np.allclose(mesh.vertices, vertices, atol=1e-6)
    # OBJ writes colours as floats with 8 decimals: within one byte
    got = np.asarray(mesh.visual.vertex_colors)[:, :3].astype(int)
    assert np.abs(got - colours.astype(int)).max() <= (0 if file_format == "ply" else 1)


def test_refusals(capture, tmp_path):
    with pytest.raises(InputError, match="format must be one of"):
        export_capture(capture, tmp_path / "c.stl", "stl")
    from dataclasses import replace

    with pytest.raises(InputError, match="no face or hand mesh"):
        export_capture(replace(capture, face=None, hands={}), tmp_path / "c.glb", "glb")
    assert not list(tmp_path.iterdir())


def test_cli_exports_a_capture_folder_and_refuses_bad_requests(capture, tmp_path):
    folder = save_capture(capture, tmp_path / "capture")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "handface", "export", *args],
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    result = run(str(folder), "--out", str(tmp_path / "c.glb"))
    assert result.returncode == 0, result.stderr
    assert set(trimesh.load(tmp_path / "c.glb").geometry) == set(_expected(capture))
    for args, message in (
        ([str(folder), "--out", str(tmp_path / "c.glb")], "already exists"),
        ([str(folder), "--out", str(tmp_path / "c.stl")], "--format glb|obj|ply"),
        ([str(folder), "--out", str(tmp_path / "c.ply"), "--format", "obj"], "should end in"),
        ([str(tmp_path / "nothing"), "--out", str(tmp_path / "d.glb")], "not a folder"),
    ):
        result = run(*args)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.glb", "capture"]
