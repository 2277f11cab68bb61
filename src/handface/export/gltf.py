"""Binary glTF (GLB) files: meshes with a texture or vertex colours, for Blender and three.js.

glTF is Y-up with the front along +Z, metres. handface keeps two frames: the camera frame of
captures and tracked frames (OpenCV: x right, y down, z forward) and the canonical frame of the
head model (Z up, the face towards -Y). :data:`FRAME_TO_GLTF` holds the rotation from each to
glTF's, so a file opens upright and facing the viewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import trimesh
from jaxtyping import Float, Int, UInt8
from PIL import Image

from handface.errors import InputError
from handface.io.files import atomic_write_bytes

FRAME_TO_GLTF: dict[str, np.ndarray] = {
    # a 180 degree turn about x: y down -> up, looking along +z -> the viewer looks along -z
    "camera": np.diag([1.0, -1.0, -1.0]),
    # (x, y, z) -> (x, z, -y): z up -> y up, the face's -y -> +z
    "canonical": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),
}


@dataclass
class GltfMesh:
    """One named mesh of a GLB file: geometry plus either a texture or vertex colours."""

    name: str
    """Node name shown by Blender's outliner and three.js (``object.name``)."""
    vertices: Float[np.ndarray, "V 3"]
    """Positions in metres, in the frame given to :func:`write_glb`."""
    faces: Int[np.ndarray, "F 3"]
    """Triangles, counter-clockwise seen from outside."""
    vertex_colors: UInt8[np.ndarray, "V 3"] | None = None
    """Per-vertex RGB (ignored when ``texture`` is given)."""
    corner_uvs: Float[np.ndarray, "F 3 2"] | None = None
    """Texture coordinates of each triangle corner, OBJ convention (v = 0 at the image bottom)."""
    texture: UInt8[np.ndarray, "H W 3"] | None = None
    """The base-colour image that ``corner_uvs`` address."""


def _numpy(array) -> np.ndarray:
    return array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)


def split_uv_seams(
    faces: Int[np.ndarray, "F 3"], corner_uvs: Float[np.ndarray, "F 3 2"]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One vertex per distinct (vertex, uv) pair, as glTF needs a single UV per vertex.

    Returns ``(source (V',) int64, new_faces (F, 3) int64, uvs (V', 2))``: ``source[i]`` is the
    original vertex of new vertex ``i``. Vertices away from seams keep one copy.

    Example:
        >>> f = np.array([[0, 1, 2], [0, 2, 3]])
        >>> uv = np.array([[[0, 0], [1, 0], [1, 1]], [[0.5, 0], [1, 1], [0, 1]]], float)
        >>> source, new_faces, uvs = split_uv_seams(f, uv)
        >>> len(source)  # vertex 0 has two UVs
        5
    """
    faces = np.asarray(faces, dtype=np.int64)
    corner_uvs = np.asarray(corner_uvs, dtype=np.float64)
    if corner_uvs.shape != (*faces.shape, 2):
        raise InputError(f"corner_uvs must be {(*faces.shape, 2)}, got {corner_uvs.shape}")
    keys = np.concatenate([faces.reshape(-1, 1), corner_uvs.reshape(-1, 2).round(7)], axis=1)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    return unique[:, 0].astype(np.int64), inverse.reshape(faces.shape), unique[:, 1:]


def _trimesh(mesh: GltfMesh, rotation: np.ndarray) -> trimesh.Trimesh:
    vertices = _numpy(mesh.vertices).astype(np.float64)
    faces = _numpy(mesh.faces).astype(np.int64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or not np.isfinite(vertices).all():
        raise InputError(f"mesh {mesh.name!r}: vertices must be finite (V, 3)")
    if faces.ndim != 2 or faces.shape[1] != 3 or (faces.size and faces.max() >= len(vertices)):
        raise InputError(f"mesh {mesh.name!r}: faces must be (F, 3) indices of its vertices")
    vertices = vertices @ rotation.T
    if mesh.texture is not None:
        if mesh.corner_uvs is None:
            raise InputError(f"mesh {mesh.name!r}: a texture needs corner_uvs")
        source, faces, uvs = split_uv_seams(faces, _numpy(mesh.corner_uvs))
        image = Image.fromarray(np.ascontiguousarray(_numpy(mesh.texture).astype(np.uint8)))
        material = trimesh.visual.material.PBRMaterial(
            baseColorTexture=image, metallicFactor=0.0, roughnessFactor=1.0, name=mesh.name
        )
        visual = trimesh.visual.TextureVisuals(uv=uvs, material=material)
        return trimesh.Trimesh(vertices[source], faces, visual=visual, process=False)
    colors = None
    if mesh.vertex_colors is not None:
        colors = _numpy(mesh.vertex_colors)
        if colors.dtype != np.uint8:
            colors = (np.clip(colors, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return trimesh.Trimesh(vertices, faces, vertex_colors=colors, process=False)


def write_glb(path: Path, meshes: list[GltfMesh], frame: str = "camera") -> Path:
    """Write ``meshes`` to one GLB file at ``path`` (atomically), turned from ``frame`` to glTF's.

    ``frame`` is ``"camera"`` (captures, tracked frames) or ``"canonical"`` (the head model's
    rest frame); see :data:`FRAME_TO_GLTF`.
    """
    if frame not in FRAME_TO_GLTF:
        raise InputError(f"frame must be one of {sorted(FRAME_TO_GLTF)}, got {frame!r}")
    if not meshes:
        raise InputError("write_glb needs at least one mesh")
    names = [m.name for m in meshes]
    if len(set(names)) != len(names):
        raise InputError(f"mesh names must be distinct, got {names}")
    scene = trimesh.Scene()
    for mesh in meshes:
        scene.add_geometry(_trimesh(mesh, FRAME_TO_GLTF[frame]), node_name=mesh.name,
                           geom_name=mesh.name)  # fmt: skip
    atomic_write_bytes(Path(path), trimesh.exchange.gltf.export_glb(scene))
    return Path(path)
