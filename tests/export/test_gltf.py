"""GLB files: round trips through trimesh, glTF's own conventions read from the raw file."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import trimesh

from handface.errors import InputError
from handface.export.gltf import FRAME_TO_GLTF, GltfMesh, split_uv_seams, write_glb

FACES = np.array([[0, 1, 2], [0, 2, 3]])
VERTICES = np.array([[0.0, 0, 0], [0.1, 0, 0], [0.1, 0.1, 0], [0, 0.1, 0]])
# vertex 0 sits on a seam: two different UVs
UVS = np.array([[[0.1, 0.2], [0.9, 0.2], [0.9, 0.8]], [[0.5, 0.2], [0.9, 0.8], [0.1, 0.8]]])


def _texture() -> np.ndarray:
    texture = np.zeros((8, 8, 3), np.uint8)
    texture[:4] = (255, 0, 0)  # top half red
    texture[4:] = (0, 0, 255)  # bottom half blue
    return texture


def _read_glb(path) -> tuple[dict, bytes]:
    """The JSON and BIN chunks of a GLB file, read by the spec (no library)."""
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert magic == b"glTF" and version == 2 and length == len(data)
    json_length, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == 0x4E4F534A  # "JSON"
    document = json.loads(data[20 : 20 + json_length])
    offset = 20 + json_length
    bin_length, bin_type = struct.unpack_from("<II", data, offset)
    assert bin_type == 0x004E4942  # "BIN"
    return document, data[offset + 8 : offset + 8 + bin_length]


def _accessor(document: dict, blob: bytes, index: int) -> np.ndarray:
    accessor = document["accessors"][index]
    view = document["bufferViews"][accessor["bufferView"]]
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}[accessor["type"]]
    dtype = {5126: np.float32, 5125: np.uint32, 5123: np.uint16, 5121: np.uint8}[
        accessor["componentType"]
    ]
    start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
    count = accessor["count"] * width
    return np.frombuffer(blob, dtype=dtype, count=count, offset=start).reshape(-1, width)


def test_split_uv_seams_copies_only_seam_vertices():
    source, faces, uvs = split_uv_seams(FACES, UVS)
    assert sorted(source.tolist()) == [0, 0, 1, 2, 3]
    # every corner keeps its vertex and its UV
    assert np.array_equal(source[faces], FACES)
    assert np.allclose(uvs[faces], UVS)


def test_textured_mesh_round_trip_through_trimesh(tmp_path):
    head = GltfMesh("head", VERTICES, FACES, corner_uvs=UVS, texture=_texture())
    path = write_glb(tmp_path / "a.glb", [head], frame="camera")
    scene = trimesh.load(path, process=False)
    mesh = scene.geometry["head"]
    source, faces, uvs = split_uv_seams(FACES, UVS)
    assert np.allclose(mesh.vertices, VERTICES[source] @ FRAME_TO_GLTF["camera"].T, atol=1e-7)
    assert np.array_equal(mesh.faces, faces)
    assert np.allclose(mesh.visual.uv, uvs, atol=1e-6)
    assert np.array_equal(np.asarray(mesh.visual.material.baseColorTexture.convert("RGB")),
                          _texture())  # fmt: skip


def test_texture_coordinates_follow_gltf_convention(tmp_path):
    """glTF's v runs down the image: the corner at OBJ v = 0.8 (upper, red) reads 0.2."""
    path = write_glb(tmp_path / "a.glb", [GltfMesh("head", VERTICES, FACES, corner_uvs=UVS,
                                                   texture=_texture())])  # fmt: skip
    document, blob = _read_glb(path)
    primitive = document["meshes"][0]["primitives"][0]
    texcoord = _accessor(document, blob, primitive["attributes"]["TEXCOORD_0"])
    _, _, uvs = split_uv_seams(FACES, UVS)
    assert np.allclose(texcoord[:, 0], uvs[:, 0], atol=1e-6)
    assert np.allclose(texcoord[:, 1], 1.0 - uvs[:, 1], atol=1e-6)
    texture = _texture()
    for (u, v), (obj_u, obj_v) in zip(texcoord, uvs, strict=True):
        row_gltf = min(int(v * 8), 7)
        row_obj = min(int((1.0 - obj_v) * 8), 7)
        assert np.array_equal(texture[row_gltf, int(u * 8)], texture[row_obj, int(obj_u * 8)])


def test_vertex_colours_and_two_meshes(tmp_path):
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], np.uint8)
    path = write_glb(tmp_path / "b.glb", [
        GltfMesh("face", VERTICES, FACES, vertex_colors=colours),
        GltfMesh("hand", VERTICES + 1.0, FACES, vertex_colors=np.full((4, 3), 0.5)),
    ])  # fmt: skip
    scene = trimesh.load(path, process=False)
    assert set(scene.geometry) == {"face", "hand"}
    assert np.array_equal(np.asarray(scene.geometry["face"].visual.vertex_colors)[:, :3], colours)
    assert np.all(np.asarray(scene.geometry["hand"].visual.vertex_colors)[:, :3] == 128)


def test_frames_turn_to_y_up_facing_plus_z():
    # the head model's rest frame: up is +Z, the face looks along -Y
    canonical = FRAME_TO_GLTF["canonical"]
    assert np.allclose(canonical @ [0, 0, 1], [0, 1, 0])
    assert np.allclose(canonical @ [0, -1, 0], [0, 0, 1])
    # OpenCV camera: y down -> glTF up is -y; the camera looks along +z -> glTF's -z
    camera = FRAME_TO_GLTF["camera"]
    assert np.allclose(camera @ [0, -1, 0], [0, 1, 0])
    assert np.allclose(camera @ [0, 0, 1], [0, 0, -1])
    for rotation in FRAME_TO_GLTF.values():  # proper rotations: no mirrored meshes
        assert np.allclose(rotation @ rotation.T, np.eye(3)) and np.isclose(
            np.linalg.det(rotation), 1.0
        )


@pytest.mark.parametrize(
    "meshes, frame, message",
    [
        ([GltfMesh("a", VERTICES, FACES, texture=_texture())], "camera", "corner_uvs"),
        ([GltfMesh("a", VERTICES, FACES), GltfMesh("a", VERTICES, FACES)], "camera", "distinct"),
        ([GltfMesh("a", VERTICES * np.nan, FACES)], "camera", "finite"),
        ([GltfMesh("a", VERTICES, FACES + 4)], "camera", "indices"),
        ([GltfMesh("a", VERTICES, FACES)], "world", "frame must be"),
        ([], "camera", "at least one"),
    ],
)
def test_bad_meshes_are_refused_and_nothing_is_written(tmp_path, meshes, frame, message):
    with pytest.raises(InputError, match=message):
        write_glb(tmp_path / "x.glb", meshes, frame=frame)
    assert not list(tmp_path.iterdir())
