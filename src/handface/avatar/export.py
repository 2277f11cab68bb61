"""An avatar as a GLB file: the textured head at rest, or one frame with its hands and deformation.

::

    from handface.avatar.export import export_avatar_glb
    export_avatar_glb(avatar, head_model, hand_models, "frame12.glb", frame=12)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from handface.avatar.model import Avatar
from handface.export.gltf import GltfMesh, write_glb


def export_avatar_glb(
    avatar: Avatar, head_model, hand_models, path: Path, frame: int | None = None
) -> Path:
    """Write ``avatar`` to the GLB file ``path``.

    Without ``frame``: the head at rest (the tracked shape, no expression, no deformation) with
    its texture, in the head's canonical frame turned upright. With ``frame``: that frame's head
    (expression and hand deformation) and its hands in their fitted colours, in the camera's
    frame, so the scene looks as the video did from a camera at the origin.
    """
    texture = (avatar.appearance.texture.clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8)
    uvs = head_model.face_uvs.numpy()
    faces = head_model.faces.numpy()
    if frame is None:
        rest = avatar.rest_head(head_model).numpy()
        head = GltfMesh("head", rest, faces, corner_uvs=uvs, texture=texture)
        return write_glb(path, [head], frame="canonical")
    meshes = [GltfMesh("head", avatar.head_vertices(head_model, frame).numpy(), faces,
                       corner_uvs=uvs, texture=texture)]  # fmt: skip
    for side, vertices, hand_faces in avatar.hand_meshes(hand_models, frame):
        color = np.tile(np.asarray(avatar.hand_color(side), dtype=np.float64), (len(vertices), 1))
        meshes.append(GltfMesh(f"{side}_hand", vertices.numpy(), hand_faces.numpy(),
                               vertex_colors=color))  # fmt: skip
    return write_glb(path, meshes, frame="camera")
