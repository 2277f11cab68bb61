"""The avatar's picture sheet: held-out frames against the truth, and its hand deformation.

``handface bench avatar --out DIR`` writes one per synthetic video (``DIR/avatar_sheet0.png``).
Rows of held-out frames show the photo, the avatar's re-render of the same frame (its pixels
never reached the texture or the poses) and the error; rows of contact frames show the true
deformation and the avatar's, as heat maps of ``|D|`` on the face seen from the camera.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from handface.render.overlay import colormap, to_uint8

CAPTION = 30


def avatar_sheet(
    rows: list[dict],
    size: int = 256,
) -> Image.Image:
    """Lay ``rows`` out: each a dict with ``"panels"`` (uint8 ``(H, W, 3)`` images, left to
    right, each resized to a ``size`` square), ``"caption"`` and optionally ``"crop"`` (a box
    ``(left, top, right, bottom)`` in pixels cut from every panel of the row first)."""
    columns = max(len(row["panels"]) for row in rows)
    sheet = Image.new("RGB", (columns * size, len(rows) * (size + CAPTION)), "white")
    draw = ImageDraw.Draw(sheet)
    for index, row in enumerate(rows):
        top = index * (size + CAPTION)
        for column, panel in enumerate(row["panels"]):
            image = Image.fromarray(panel)
            if row.get("crop") is not None:
                image = image.crop(tuple(int(round(v)) for v in row["crop"]))
            if image.size != (size, size):
                image = image.resize((size, size), Image.BILINEAR)
            sheet.paste(image, (column * size, top))
        draw.text((6, top + size + 4), row["caption"], fill=(0, 0, 0))
    return sheet


def error_panel(rendered: np.ndarray, photo: np.ndarray, region: np.ndarray, scale: float = 0.25
                ) -> np.ndarray:  # fmt: skip
    """Per-pixel colour error inside ``region`` (RGB distance from 0, black, to ``scale``,
    white: the "heat" colour map), grey outside."""
    error = np.linalg.norm(rendered.astype(np.float32) / 255.0 - photo.astype(np.float32) / 255.0,
                           axis=-1) / scale  # fmt: skip
    colours = colormap(torch.as_tensor(error).clamp(0, 1).reshape(-1), "heat").reshape(
        *error.shape, 3
    )
    image = to_uint8(colours)
    image[~region] = 200
    return image


def square_box(points: np.ndarray, margin: float = 1.4) -> tuple[float, float, float, float]:
    """The square around 2D ``points`` ((N, 2) pixels), ``margin`` times their extent."""
    low, high = points.min(0), points.max(0)
    centre, half = (low + high) / 2.0, margin * float((high - low).max()) / 2.0
    return (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half)
