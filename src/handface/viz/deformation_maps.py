"""Deformation heat maps: how far the hand pressed the face in, as a picture.

``python -m handface.viz.deformation_maps --data DIR --out docs/synth_samples.png`` writes a
contact sheet of samples of a synthetic dataset: the render, the face coloured by ``|D|``
(millimetres, "viridis", scale in the caption) seen from the sample's camera with the hand
drawn in grey, and a close-up from straight along the press with the hand removed, so the dent
itself is visible.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from PIL import Image, ImageDraw
from torch import Tensor

from handface.data.sample import InteractionSample
from handface.data.synth import SynthDataset
from handface.geometry.camera import intrinsics_from_fov
from handface.render import DirectionalLight, Scene, shade
from handface.render.overlay import colormap, to_uint8

HAND_GREY = (0.62, 0.62, 0.66)


def deformation_colours(deformation: Float[Tensor, "V 3"], scale_mm: float) -> Float[Tensor, "V 3"]:
    """Per-vertex colour of ``|D|`` on a viridis scale from 0 to ``scale_mm`` millimetres."""
    return colormap(deformation.norm(dim=1) * 1000.0 / scale_mm, "viridis")


def render_heatmap(
    sample: InteractionSample, scale_mm: float, size: int, with_hand: bool = True
) -> np.ndarray:
    """The deformed face coloured by ``|D|`` from the sample's camera (hand in grey)."""
    hands = [(h.vertices, h.faces) for h in sample.hands.values()] if with_hand else []
    K = sample.K.clone()
    K[:2] *= size / sample.image_size[0]
    return heatmap_view(sample.face_vertices_deformed, sample.face_faces, sample.deformation,
                        hands, K, size, scale_mm)  # fmt: skip


def heatmap_view(
    face_vertices: Float[Tensor, "V 3"],
    face_faces: Tensor,
    deformation: Float[Tensor, "V 3"],
    hands: list[tuple[Tensor, Tensor]],
    K: Float[Tensor, "3 3"],
    size: int,
    scale_mm: float,
) -> np.ndarray:
    """A face (camera frame) coloured by ``|deformation|`` and the hands in grey, seen through
    ``K`` into a ``size`` square (uint8)."""
    meshes = [(face_vertices.float(), face_faces)]
    colours = [deformation_colours(deformation.float(), scale_mm)]
    for vertices, faces in hands:
        meshes.append((vertices.float(), faces))
        colours.append(torch.tensor(HAND_GREY).expand(vertices.shape[0], 3))
    scene = Scene.from_meshes(meshes)
    K = K.float()
    fragments = scene.rasterize(K, size, size)
    out = shade(
        fragments, scene.vertices, scene.faces, K, vertex_colors=torch.cat(colours),
        light=DirectionalLight(ambient=0.55, diffuse=0.45), background=1.0,
    )  # fmt: skip
    return to_uint8(out.rgb)


def render_closeup(sample: InteractionSample, scale_mm: float, size: int) -> np.ndarray:
    """The dent seen from 25 cm in front of the most displaced vertex, hand removed."""
    magnitude = sample.deformation.norm(dim=1)
    centre = sample.face_vertices_deformed[int(magnitude.argmax())]
    head_centre = sample.face_vertices.mean(0)
    direction = torch.nn.functional.normalize(centre - head_centre, dim=0)
    eye = centre + 0.25 * direction
    forward = -direction
    up_hint = torch.tensor([0.0, -1.0, 0.0])
    right = torch.nn.functional.normalize(torch.linalg.cross(up_hint, forward), dim=0)
    down = torch.linalg.cross(forward, right)
    rotation = torch.stack([right, down, forward])
    vertices = (sample.face_vertices_deformed - eye) @ rotation.T
    K = intrinsics_from_fov(size, size, 30.0)
    scene = Scene.from_meshes([(vertices, sample.face_faces)])
    fragments = scene.rasterize(K, size, size)
    out = shade(
        fragments, scene.vertices, scene.faces, K,
        vertex_colors=deformation_colours(sample.deformation, scale_mm),
        light=DirectionalLight(ambient=0.5, diffuse=0.5), background=1.0,
    )  # fmt: skip
    return to_uint8(out.rgb)


def contact_sheet(data: SynthDataset, indices: list[int], size: int = 256) -> Image.Image:
    """Rows of (render, heat map with hand, close-up of the dent) with captions."""
    caption = 34
    sheet = Image.new("RGB", (3 * size, len(indices) * (size + caption)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, index in enumerate(indices):
        sample = data[index]
        scale = max(1.0, float(sample.deformation.norm(dim=1).max()) * 1000.0)
        top = row * (size + caption)
        render = Image.fromarray(to_uint8(sample.image)).resize((size, size))
        sheet.paste(render, (0, top))
        sheet.paste(Image.fromarray(render_heatmap(sample, scale, size)), (size, top))
        sheet.paste(Image.fromarray(render_closeup(sample, scale, size)), (2 * size, top))
        text = (
            f"{sample.key}: {sample.info['family']} ({sample.info['hand_side']} hand), "
            f"press {sample.info['press_mm']:.1f} mm; |D| 0 (purple) to {scale:.1f} mm (yellow)"
        )
        draw.text((6, top + size + 6), text, fill=(0, 0, 0))
    return sheet


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="synthetic dataset folder")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument(
        "--count", type=int, default=4, help="number of samples shown (one per family)"
    )
    args = parser.parse_args(argv)
    data = SynthDataset(args.data)
    chosen = [i for i, item in enumerate(data.items) if item["max_deformation_mm"] > 1.0][
        : args.count
    ]
    contact_sheet(data, chosen).save(args.out)
    print(f"wrote {args.out} ({len(chosen)} samples)")


if __name__ == "__main__":
    main()
