"""``handface demo`` / ``make demo``: the Anny head with a right hand resting on its cheek.

Writes a shaded render, a contact picture (skin within 5 mm of the other mesh in red) and both
meshes as PLY files with per-vertex colours. Later issues turn the demo into reconstruction of
the bundled example photos.
"""

from __future__ import annotations

from pathlib import Path

import torch

from handface.errors import InputError
from handface.io import atomic_output_dir, save_ply


def run_demo(out: Path, size: int = 512, overwrite: bool = False) -> list[Path]:
    """Render the hand-on-cheek scene into ``out``; returns the written files."""
    from handface.geometry.contact import contact_labels, surface_signed_distance
    from handface.models import AnnyHeadModel, HeadParams
    from handface.models.appearance import hand_albedo, head_albedo
    from handface.models.scene import hand_on_cheek_scene
    from handface.render import Scene, render
    from handface.render.overlay import colormap, save_png

    if not 64 <= size <= 4096:
        raise InputError(f"--size must be between 64 and 4096 pixels, got {size}")
    scene = hand_on_cheek_scene()
    head = AnnyHeadModel(with_landmarks=False)
    with torch.no_grad():
        neutral = head(HeadParams()).extras["canonical_vertices"][0]
    head_colors = head_albedo(head, neutral)
    hand_colors = hand_albedo(scene.hand_vertices.shape[0])
    joined = Scene.from_meshes(
        [(scene.head_vertices, scene.head_faces), (scene.hand_vertices, scene.hand_faces)]
    )
    K = scene.intrinsics(size)
    background = torch.tensor([0.42, 0.46, 0.52])
    with torch.no_grad():
        shaded = render(
            joined.vertices, joined.faces, K, size, size,
            face_object_id=joined.face_object_id,
            vertex_colors=torch.cat([head_colors, hand_colors]), background=background,
        )  # fmt: skip
        face_contact = contact_labels(
            surface_signed_distance(scene.head_vertices, scene.hand_vertices, scene.hand_faces)
        )
        hand_contact = contact_labels(
            surface_signed_distance(scene.hand_vertices, scene.head_vertices, scene.head_faces)
        )
    contact_colors = torch.cat(
        [
            torch.where(face_contact[:, None] > 0, colormap(face_contact), head_colors),
            torch.where(hand_contact[:, None] > 0, colormap(hand_contact), hand_colors),
        ]
    )
    with torch.no_grad():
        contact = render(
            joined.vertices, joined.faces, K, size, size,
            face_object_id=joined.face_object_id,
            vertex_colors=contact_colors, background=background,
        )  # fmt: skip
    with atomic_output_dir(out, overwrite=overwrite) as staging:
        save_png(staging / "render.png", shaded.rgb.clamp(0, 1))
        save_png(staging / "contact.png", contact.rgb.clamp(0, 1))
        save_ply(
            staging / "face.ply",
            scene.head_vertices,
            scene.head_faces,
            contact_colors[: len(head_colors)],
        )
        save_ply(
            staging / "hand_right.ply",
            scene.hand_vertices,
            scene.hand_faces,
            contact_colors[len(head_colors) :],
        )
        names = sorted(path.name for path in staging.iterdir())
    return [Path(out) / name for name in names]
