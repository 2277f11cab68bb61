"""Deformation heat maps: how far the hand pressed the face in, as a picture.

``python -m handface.viz.deformation_maps --data DIR --out docs/synth_samples.png`` writes a
contact sheet of samples of a synthetic dataset, in the style of a capture's ``overlay.png``
(:mod:`handface.viz.capture_sheet`), one row per sample: the render, the ground truth drawn
over it (shaded meshes, contact colours, the verdict per hand), the side view, the face maps
of contact and of ``|D|`` (millimetres, "viridis", scale in the panel's title), and a close-up
from straight along the press with the hand removed, so the dent itself is visible.
:func:`heatmap_view` (the face coloured by ``|D|`` through any camera) serves the benchmarks'
pictures.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
from jaxtyping import Float
from PIL import Image
from torch import Tensor

from handface.capture_parts import ground_truth_capture
from handface.data.sample import InteractionSample
from handface.data.synth import SynthDataset
from handface.errors import InputError
from handface.geometry.camera import intrinsics_from_fov
from handface.render import DirectionalLight, Scene, shade
from handface.render.overlay import deformation_colors, to_uint8
from handface.viz.capture_overlay import capture_overlay, draw_caption
from handface.viz.capture_sheet import view_panels
from handface.viz.face_map import face_map_panels
from handface.viz.legend import legend_strip
from handface.viz.scene_views import PANEL_BACKGROUND, TITLE_COLOR
from handface.viz.verdict import verdict_lines

HAND_GREY = (0.62, 0.62, 0.66)


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
    colours = [deformation_colors(1000.0 * deformation.float().norm(dim=1), scale_mm)]
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
        vertex_colors=deformation_colors(1000.0 * sample.deformation.norm(dim=1), scale_mm),
        light=DirectionalLight(ambient=0.5, diffuse=0.5),
        background=torch.tensor(PANEL_BACKGROUND) / 255.0,
    )  # fmt: skip
    return to_uint8(out.rgb)


def sample_row(sample: InteractionSample, size: int = 256) -> np.ndarray:
    """One row of the contact sheet: the render, the ground truth drawn over it like a
    capture's overlay (verdict per hand), the side view, the face maps of contact and of
    ``|D|``, and the close-up of the dent; a caption line below (uint8)."""
    truth = ground_truth_capture(sample)
    if truth.image is None:
        raise InputError(f"sample {sample.key} has no render to draw on")
    render = cv2.resize(truth.image, (size, size), interpolation=cv2.INTER_AREA)
    drawn = capture_overlay(replace(truth, image=render), caption=())
    lines = verdict_lines(truth)
    draw_caption(drawn, [text for text, _ in lines], [color for _, color in lines])
    side, _top = view_panels(truth, size)
    contact_map, pressed_map, scale = face_map_panels(truth.face, size)
    closeup = render_closeup(sample, scale, size)
    draw_caption(closeup, ["close-up of the dent"], [TITLE_COLOR])
    cells = np.concatenate([render, drawn, side, contact_map, pressed_map, closeup], axis=1)
    caption = np.empty((max(18, size // 9), cells.shape[1], 3), np.uint8)
    caption[:] = PANEL_BACKGROUND
    info = sample.info
    text = (
        f"{sample.key}: {info.get('family', '?')} ({info.get('hand_side', '?')} hand), "
        f"press {float(info.get('press_mm', 0.0)):.1f} mm"
    )
    draw_caption(caption, [text], [TITLE_COLOR])
    return np.concatenate([cells, caption], axis=0)


def contact_sheet(data: SynthDataset, indices: list[int], size: int = 256) -> Image.Image:
    """Rows of :func:`sample_row`, in the style of the capture sheet, and its legend below."""
    rows = [sample_row(data[index], size) for index in indices]
    width = rows[0].shape[1] if rows else 6 * size
    legend = legend_strip(width, dots=False, text_height=max(10, size // 16))
    return Image.fromarray(np.concatenate([*rows, legend], axis=0))


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
