"""Binary glTF (GLB) files: meshes with a texture or vertex colours, for Blender and three.js.

glTF is Y-up with the front along +Z, metres. handface keeps two frames: the camera frame of
captures and tracked frames (OpenCV: x right, y down, z forward) and the canonical frame of the
head model (Z up, the face towards -Y). :data:`FRAME_TO_GLTF` holds the rotation from each to
glTF's, so a file opens upright and facing the viewer.

Meshes may carry morph targets (blend shapes: per target, an offset per vertex) and the file may
hold :class:`GltfAnimation` clips that key their weights and the meshes' node scales over time;
Blender imports them as shape keys with an action, three.js as ``morphTargetInfluences`` driven
by an ``AnimationClip`` (``gltf.animations``).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    morph_targets: Float[np.ndarray, "T V 3"] | None = None
    """Morph targets (blend shapes), in the frame and units of ``vertices``: per target, each
    vertex's offset from ``vertices``. Their weights start at 0 (the mesh shows ``vertices``);
    a :class:`GltfAnimation` keys them."""
    morph_names: list[str] | None = None
    """One name per morph target (Blender's shape keys, three.js's ``morphTargetDictionary``);
    default ``target_000``, ``target_001``, ..."""


INTERPOLATIONS = ("STEP", "LINEAR")


@dataclass
class GltfAnimation:
    """One glTF animation (a Blender action, a three.js ``AnimationClip``): keyframed morph
    weights and node scales of the file's meshes, addressed by mesh name."""

    name: str
    times: Float[np.ndarray, " K"]
    """Keyframe times in seconds, strictly increasing."""
    weights: dict[str, Float[np.ndarray, "K T"]] = field(default_factory=dict)
    """Per mesh name: the weights of its ``T`` morph targets at each keyframe."""
    scales: dict[str, Float[np.ndarray, " K"]] = field(default_factory=dict)
    """Per mesh name: its node's uniform scale at each keyframe (0 hides the mesh)."""
    interpolation: str = "STEP"
    """``STEP`` holds each keyframe's values until the next one; ``LINEAR`` blends them."""


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


def write_glb(
    path: Path,
    meshes: list[GltfMesh],
    frame: str = "camera",
    animations: Sequence[GltfAnimation] = (),
) -> Path:
    """Write ``meshes`` to one GLB file at ``path`` (atomically), turned from ``frame`` to glTF's.

    ``frame`` is ``"camera"`` (captures, tracked frames) or ``"canonical"`` (the head model's
    rest frame); see :data:`FRAME_TO_GLTF`. Meshes with ``morph_targets`` get them as glTF
    targets (with the accessor bounds glTF requires) and ``animations`` are added as glTF
    animations; a mesh's node then carries translation/rotation/scale, never a matrix.
    """
    if frame not in FRAME_TO_GLTF:
        raise InputError(f"frame must be one of {sorted(FRAME_TO_GLTF)}, got {frame!r}")
    if not meshes:
        raise InputError("write_glb needs at least one mesh")
    names = [m.name for m in meshes]
    if len(set(names)) != len(names):
        raise InputError(f"mesh names must be distinct, got {names}")
    rotation = FRAME_TO_GLTF[frame]
    targets = {m.name: _morph_targets(m) for m in meshes if m.morph_targets is not None}
    for animation in animations:
        _check_animation(animation, {m.name: len(t) for m, t in _pairs(meshes, targets)}, names)
    scene = trimesh.Scene()
    for mesh in meshes:
        scene.add_geometry(_trimesh(mesh, rotation), node_name=mesh.name,
                           geom_name=mesh.name)  # fmt: skip
    data = trimesh.exchange.gltf.export_glb(scene)
    if targets or animations:
        data = _animated_glb(data, meshes, targets, list(animations), rotation)
    atomic_write_bytes(Path(path), data)
    return Path(path)


def _pairs(meshes: list[GltfMesh], targets: dict[str, np.ndarray]):
    return [(m, targets[m.name]) for m in meshes if m.name in targets]


def _morph_targets(mesh: GltfMesh) -> np.ndarray:
    offsets = _numpy(mesh.morph_targets).astype(np.float64)
    count = len(_numpy(mesh.vertices))
    if offsets.ndim != 3 or offsets.shape[1:] != (count, 3) or not len(offsets):
        raise InputError(
            f"mesh {mesh.name!r}: morph_targets must be (T, {count}, 3) with T >= 1, "
            f"got {offsets.shape}"
        )
    if not np.isfinite(offsets).all():
        raise InputError(f"mesh {mesh.name!r}: morph_targets must be finite")
    if mesh.morph_names is not None and len(mesh.morph_names) != len(offsets):
        raise InputError(
            f"mesh {mesh.name!r}: {len(mesh.morph_names)} morph_names for {len(offsets)} targets"
        )
    return offsets


def _check_animation(animation: GltfAnimation, target_counts: dict[str, int], names) -> None:
    label = f"animation {animation.name!r}"
    times = np.asarray(animation.times, np.float64)
    if times.ndim != 1 or not len(times) or not np.isfinite(times).all():
        raise InputError(f"{label}: times must be a non-empty 1-D array of finite seconds")
    if np.any(np.diff(times) <= 0) or np.any(np.diff(times.astype(np.float32)) <= 0):
        raise InputError(f"{label}: keyframe times must increase strictly")
    if animation.interpolation not in INTERPOLATIONS:
        raise InputError(f"{label}: interpolation must be one of {', '.join(INTERPOLATIONS)}")
    for name, weights in animation.weights.items():
        if name not in target_counts:
            raise InputError(f"{label}: mesh {name!r} has no morph targets to weigh")
        shape = np.shape(weights)
        expected = (len(times), target_counts[name])
        if shape != expected:
            raise InputError(
                f"{label}: weights of {name!r} must be {expected} (keyframes, targets), got {shape}"
            )
        if not np.isfinite(np.asarray(weights, np.float64)).all():
            raise InputError(f"{label}: weights of {name!r} must be finite")
    for name, scales in animation.scales.items():
        if name not in names:
            raise InputError(f"{label}: no mesh named {name!r}")
        scales = np.asarray(scales, np.float64)
        if scales.shape != times.shape or not np.isfinite(scales).all():
            raise InputError(f"{label}: scales of {name!r} must be {len(times)} finite values")


_FLOAT = 5126  # glTF componentType FLOAT
_JSON_CHUNK, _BIN_CHUNK = 0x4E4F534A, 0x004E4942


def read_glb(data: bytes) -> tuple[dict, bytes]:
    """The JSON document and the binary buffer of a GLB file's bytes (glTF 2.0, by the spec)."""
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    if magic != b"glTF" or version != 2 or length != len(data):
        raise InputError("not a glTF 2.0 binary file")
    json_length, json_type = struct.unpack_from("<II", data, 12)
    if json_type != _JSON_CHUNK:
        raise InputError("a GLB file's first chunk must be JSON")
    document = json.loads(data[20 : 20 + json_length])
    offset = 20 + json_length
    blob = b""
    if offset < len(data):
        bin_length, bin_type = struct.unpack_from("<II", data, offset)
        if bin_type != _BIN_CHUNK:
            raise InputError("a GLB file's second chunk must be BIN")
        blob = data[offset + 8 : offset + 8 + bin_length]
    return document, blob


def _glb_bytes(document: dict, blob: bytes) -> bytes:
    text = json.dumps(document, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    blob += b"\0" * (-len(blob) % 4)
    length = 12 + 8 + len(text) + (8 + len(blob) if blob else 0)
    out = struct.pack("<4sII", b"glTF", 2, length) + struct.pack("<II", len(text), _JSON_CHUNK)
    out += text
    if blob:
        out += struct.pack("<II", len(blob), _BIN_CHUNK) + blob
    return out


class _Buffer:
    """Appends float accessors (one buffer view each, 4-byte aligned) to a parsed GLB."""

    def __init__(self, document: dict, blob: bytes) -> None:
        self.document, self.blob = document, bytearray(blob)

    def accessor(self, values: np.ndarray, kind: str) -> int:
        values = np.ascontiguousarray(values, dtype="<f4")
        self.blob += b"\0" * (-len(self.blob) % 4)
        views = self.document.setdefault("bufferViews", [])
        views.append({"buffer": 0, "byteOffset": len(self.blob), "byteLength": values.nbytes})
        self.blob += values.tobytes()
        width = {"SCALAR": 1, "VEC3": 3}[kind]
        flat = values.reshape(-1, width)
        accessors = self.document.setdefault("accessors", [])
        accessors.append({
            "bufferView": len(views) - 1, "componentType": _FLOAT, "count": len(flat),
            "type": kind, "min": flat.min(0).tolist(), "max": flat.max(0).tolist(),
        })  # fmt: skip
        return len(accessors) - 1

    def finish(self) -> bytes:
        self.blob += b"\0" * (-len(self.blob) % 4)
        self.document["buffers"] = [{"byteLength": len(self.blob)}]
        return _glb_bytes(self.document, bytes(self.blob))


def _animated_glb(
    data: bytes,
    meshes: list[GltfMesh],
    targets: dict[str, np.ndarray],
    animations: list[GltfAnimation],
    rotation: np.ndarray,
) -> bytes:
    """trimesh's GLB with the morph targets and animations added."""
    document, blob = read_glb(data)
    if len(document.get("buffers", [])) > 1:
        raise RuntimeError("trimesh wrote a GLB with more than one buffer")
    buffer = _Buffer(document, blob)
    nodes = {node.get("name"): i for i, node in enumerate(document["nodes"])}
    morphed: set[int] = set()
    for mesh, offsets in _pairs(meshes, targets):
        node = document["nodes"][nodes[mesh.name]]
        if node["mesh"] in morphed:
            raise RuntimeError(f"mesh {mesh.name!r} shares its glTF mesh with another one")
        morphed.add(node["mesh"])
        entry = document["meshes"][node["mesh"]]
        base = _numpy(mesh.vertices).astype(np.float64) @ rotation.T
        moved = base[None] + offsets @ rotation.T
        if mesh.texture is not None:  # the vertices glTF holds: one per (vertex, uv)
            source, _, _ = split_uv_seams(_numpy(mesh.faces), _numpy(mesh.corner_uvs))
            base, moved = base[source], moved[:, source]
        # offsets from the float32 positions the file holds, so base + target is each target's
        # position to float32 precision
        stored = base.astype(np.float32).astype(np.float64)
        accessors = [buffer.accessor(m - stored, "VEC3") for m in moved]
        for primitive in entry["primitives"]:
            count = document["accessors"][primitive["attributes"]["POSITION"]]["count"]
            if count != len(base):
                raise RuntimeError(f"mesh {mesh.name!r}: trimesh wrote {count} vertices, "
                                   f"expected {len(base)}")  # fmt: skip
            primitive["targets"] = [{"POSITION": a} for a in accessors]
        entry["weights"] = [0.0] * len(offsets)
        names = mesh.morph_names or [f"target_{i:03d}" for i in range(len(offsets))]
        entry.setdefault("extras", {})["targetNames"] = list(names)
    for animation in animations:
        if not animation.weights and not animation.scales:
            continue
        times = buffer.accessor(np.asarray(animation.times, np.float64), "SCALAR")
        keyed = [
            (name, "weights", buffer.accessor(np.asarray(w, np.float64).reshape(-1), "SCALAR"))
            for name, w in animation.weights.items()
        ] + [
            (name, "scale", buffer.accessor(np.repeat(np.asarray(s, np.float64)[:, None], 3, 1),
                                            "VEC3"))
            for name, s in animation.scales.items()
        ]  # fmt: skip
        samplers = [{"input": times, "output": output, "interpolation": animation.interpolation}
                    for _, _, output in keyed]  # fmt: skip
        channels = [{"sampler": i, "target": {"node": nodes[name], "path": path}}
                    for i, (name, path, _) in enumerate(keyed)]  # fmt: skip
        document.setdefault("animations", []).append(
            {"name": animation.name, "samplers": samplers, "channels": channels}
        )
    for name in {n for a in animations for n in (*a.weights, *a.scales)}:
        node = document["nodes"][nodes[name]]  # animated nodes must not carry a matrix
        matrix = node.pop("matrix", None)
        if matrix is not None and not np.allclose(matrix, np.eye(4).reshape(-1)):
            raise RuntimeError(f"node {name!r} has a transform; write_glb writes none")
    return buffer.finish()
