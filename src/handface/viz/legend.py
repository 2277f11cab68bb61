"""The legend strip under the capture sheet and the video frames: what each colour means.

Items, left to right (wrapped onto more rows when the strip is narrow): the contact colour bar
(probability 0 to 1), the pressed-in colour bar (``|D|`` from 0 to the face map's scale), the
hand's own tint where it does not touch, and the dots of the detector (face landmarks, right
and left hand keypoints).

Example:
    >>> strip = legend_strip(1200, scale_mm=3.0)     # doctest: +SKIP
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from jaxtyping import UInt8

from handface.render.overlay import colormap
from handface.viz.capture_overlay import HAND_TINT, KEYPOINT_COLORS, LANDMARK_COLOR
from handface.viz.scene_views import PANEL_BACKGROUND, TITLE_COLOR

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _bar(name: str, n: int) -> np.ndarray:
    colours = colormap(torch.linspace(0.0, 1.0, n), name).numpy()
    return (255.0 * colours).round().astype(np.uint8)


def _items(scale_mm: float | None, dots: bool) -> list[tuple[str, object, str]]:
    """(left label, swatch, right label): swatch is a colour-map name or an RGB triple."""
    items: list[tuple[str, object, str]] = [("contact 0", "contact", "1")]
    if scale_mm is not None:
        items.append(("pressed in 0", "viridis", f"{scale_mm:g} mm"))
    items.append(("", tuple(int(255 * c) for c in HAND_TINT), "hand, no contact"))
    if dots:
        items += [
            ("", ("dot", LANDMARK_COLOR), "face landmarks"),
            ("", ("dot", KEYPOINT_COLORS["right"]), "right hand keypoints"),
            ("", ("dot", KEYPOINT_COLORS["left"]), "left hand keypoints"),
        ]
    return items


def legend_strip(
    width: int, scale_mm: float | None = None, *, dots: bool = True, text_height: int | None = None
) -> UInt8[np.ndarray, "H W 3"]:
    """A dark strip ``width`` pixels wide (height from its text size and the rows it needs).

    ``scale_mm``: the top of the pressed-in bar (``None`` leaves that bar out); ``dots``: add
    the detector's dot colours; ``text_height``: pixel height of the letters (default from
    the width).
    """
    text_height = text_height or max(10, min(22, width // 70))
    thickness = max(1, round(text_height / 11))  # strokes that read at any size
    scale = cv2.getFontScaleFromHeight(_FONT, text_height, thickness)
    gap = text_height
    bar_width, swatch = 6 * text_height, text_height
    row_height = 2 * text_height
    pieces = []  # (item width, draw function)
    for left, kind, right in _items(scale_mm, dots):
        left_w = cv2.getTextSize(left, _FONT, scale, thickness)[0][0] if left else 0
        right_w = cv2.getTextSize(right, _FONT, scale, thickness)[0][0]
        is_bar = isinstance(kind, str)
        body = bar_width if is_bar else swatch
        total = left_w + (gap // 2 if left else 0) + body + gap // 2 + right_w
        pieces.append((total, left, left_w, kind, body, right))
    rows, row, used = [], [], 0
    for piece in pieces:
        if row and used + piece[0] + gap > width - gap:
            rows.append(row)
            row, used = [], 0
        row.append(piece)
        used += piece[0] + gap
    rows.append(row)
    strip = np.empty((row_height * len(rows) + text_height // 2, width, 3), np.uint8)
    strip[:] = PANEL_BACKGROUND
    for r, row in enumerate(rows):
        x = gap
        base = r * row_height + text_height + text_height // 2  # text baseline
        top = base - text_height
        for _total, left, left_w, kind, body, right in row:
            if left:
                cv2.putText(strip, left, (x, base), _FONT, scale, TITLE_COLOR, thickness,
                            cv2.LINE_AA)  # fmt: skip
                x += left_w + gap // 2
            if isinstance(kind, str):
                strip[top : base + 1, x : x + body] = _bar(kind, body)[None]
            elif kind[0] == "dot":
                centre = (x + body // 2, top + text_height // 2)
                cv2.circle(strip, centre, body // 3 + 1, (0, 0, 0), -1, cv2.LINE_AA)
                cv2.circle(strip, centre, body // 3, tuple(int(c) for c in kind[1]), -1,
                           cv2.LINE_AA)  # fmt: skip
            else:
                strip[top : base + 1, x : x + body] = np.asarray(kind, np.uint8)
            x += body + gap // 2
            cv2.putText(strip, right, (x, base), _FONT, scale, TITLE_COLOR, thickness,
                        cv2.LINE_AA)  # fmt: skip
            x += cv2.getTextSize(right, _FONT, scale, thickness)[0][0] + gap
    return strip
