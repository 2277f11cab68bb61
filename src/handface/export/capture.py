"""A Capture's meshes as one file for Blender, three.js or MeshLab: GLB, OBJ or PLY.

The face is exported deformed, every mesh coloured by its contact probability (the ``contact``
colour map of the capture folder's PLY files: grey, orange, red), in the camera's frame turned to
each format's convention (glTF: Y up; OBJ and PLY keep handface's camera frame, as the capture
folder's PLY files do).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh

from handface.capture import Capture
from handface.errors import InputError
from handface.export.gltf import GltfMesh, write_glb
from handface.io.capture_folder import contact_colors
from handface.io.files import atomic_write_bytes

FORMATS = ("glb", "obj", "ply")


def capture_meshes(capture: Capture) -> list[GltfMesh]:
    """The face (deformed) and each hand, named ``face``, ``left_hand``, ``right_hand``, coloured
    by contact (camera frame)."""
    meshes = []
    if capture.face is not None:
        face = capture.face
        meshes.append(GltfMesh("face", np.asarray(face.vertices_deformed), np.asarray(face.faces),
                               vertex_colors=contact_colors(face.contact)))  # fmt: skip
    for side, hand in sorted(capture.hands.items()):
        meshes.append(GltfMesh(f"{side}_hand", np.asarray(hand.vertices), np.asarray(hand.faces),
                               vertex_colors=contact_colors(hand.contact)))  # fmt: skip
    return meshes


def export_capture(capture: Capture, path: Path, file_format: str) -> Path:
    """Write ``capture``'s meshes to ``path`` (atomically) as ``glb``, ``obj`` (one object per
    mesh, colours as the ``v x y z r g b`` extension Blender and MeshLab read) or ``ply`` (one
    mesh with colours).

    Raises:
        InputError: an unknown format, or a capture without any mesh.
    """
    if file_format not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}, got {file_format!r}")
    meshes = capture_meshes(capture)
    if not meshes:
        raise InputError("the capture has no face or hand mesh to export")
    path = Path(path)
    if file_format == "glb":
        return write_glb(path, meshes, frame="camera")
    parts = [
        trimesh.Trimesh(np.asarray(m.vertices, np.float64), np.asarray(m.faces, np.int64),
                        vertex_colors=m.vertex_colors, process=False)
        for m in meshes
    ]  # fmt: skip
    if file_format == "ply":
        data = trimesh.exchange.ply.export_ply(trimesh.util.concatenate(parts), encoding="binary")
        atomic_write_bytes(path, data)
        return path
    scene = trimesh.Scene()
    for mesh, part in zip(meshes, parts, strict=True):
        scene.add_geometry(part, node_name=mesh.name, geom_name=mesh.name)
    text = trimesh.exchange.obj.export_obj(scene, include_color=True, include_normals=False)
    atomic_write_bytes(path, text.encode())
    return path
