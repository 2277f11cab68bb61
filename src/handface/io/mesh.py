"""Triangle meshes as PLY files (binary little-endian), with optional per-vertex colours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import trimesh
from jaxtyping import Float, Int, UInt8

from handface.errors import InputError
from handface.io.files import atomic_write_bytes


def _numpy(array: torch.Tensor | np.ndarray) -> np.ndarray:
    return array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)


def save_ply(
    path: Path,
    vertices: Float[np.ndarray, "V 3"] | torch.Tensor,
    faces: Int[np.ndarray, "F 3"] | torch.Tensor,
    colors: UInt8[np.ndarray, "V 3"] | Float[np.ndarray, "V 3"] | torch.Tensor | None = None,
) -> Path:
    """Write a mesh to ``path`` atomically; float colours in [0, 1] are converted to bytes."""
    vertex_colors = None
    if colors is not None:
        vertex_colors = _numpy(colors)
        if vertex_colors.dtype != np.uint8:
            vertex_colors = (np.clip(vertex_colors, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    mesh = trimesh.Trimesh(
        vertices=_numpy(vertices).astype(np.float64),
        faces=_numpy(faces).astype(np.int64),
        vertex_colors=vertex_colors,
        process=False,
    )
    atomic_write_bytes(Path(path), trimesh.exchange.ply.export_ply(mesh, encoding="binary"))
    return Path(path)


def load_ply(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read ``(vertices (V,3) float64, faces (F,3) int64, colours (V,3) uint8 or None)``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"mesh file {path} does not exist")
    mesh = trimesh.load(path, process=False, force="mesh")
    colors = None
    if mesh.visual.kind == "vertex":
        colors = np.asarray(mesh.visual.vertex_colors)[:, :3].astype(np.uint8)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces, dtype=np.int64), colors
