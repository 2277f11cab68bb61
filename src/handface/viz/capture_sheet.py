"""``overlay.png``: the picture of a capture that answers "is the hand on the face?".

Layout (the photo's height ``H`` sets the size; panels are squares of ``S = max(H/2, 240)``)::

    +---------------------------+----------------+----------------+
    | the photo, shaded meshes  |   side view    |    top view    |
    | drawn over it, detections |                |                |
    | and the verdict per hand  +----------------+----------------+
    | ("right hand touching:    | face map:      | face map:      |
    |  left cheek")             | contact        | pressed in |D| |
    +---------------------------+----------------+----------------+
    | legend: contact 0-1, pressed in 0-X mm, hand tint, detector dots |
    +--------------------------------------------------------------+

* the photo panel is :func:`~handface.viz.capture_overlay.capture_overlay` with the verdict
  lines of :func:`~handface.viz.verdict.verdict_lines` and, when the face was pressed in, how
  deep;
* the side and top views (:mod:`handface.viz.scene_views`) show the same meshes from the
  person's left and from above, framed to hold every mesh, so a hand on the face and a hand a
  few centimetres in front of it look different at a glance;
* the face maps (:mod:`handface.viz.face_map`) show the face straight on, coloured by contact
  (touched areas named) and by how far it was pressed in.

Example:
    >>> from handface.render.overlay import save_png
    >>> save_png("overlay.png", capture_sheet(capture))      # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
from jaxtyping import UInt8

from handface.capture import Capture
from handface.viz.capture_overlay import MAX_SIDE, capture_overlay, draw_caption, mesh_layers
from handface.viz.face_map import face_map_panels
from handface.viz.legend import legend_strip
from handface.viz.scene_views import (
    PANEL_BACKGROUND,
    VIEW_TITLES,
    fitted_window,
    view_camera,
    view_panel,
)
from handface.viz.verdict import verdict_lines

MIN_PANEL = 240
"""Smallest side (pixels) of the view and face-map panels, whatever the photo's size."""
PRESSED_COLOR = (200, 200, 200)


def sheet_lines(capture: Capture) -> list[tuple[str, tuple[int, int, int]]]:
    """The photo panel's caption: the verdict per hand, then how deep the face was pressed.

    Example:
        >>> [text for text, _ in sheet_lines(capture)]               # doctest: +SKIP
        ['right hand touching: left cheek', 'face pressed in up to 2.1 mm']
    """
    lines = verdict_lines(capture)
    if capture.face is not None:
        depth_mm = 1000.0 * float(
            np.nan_to_num(np.linalg.norm(np.asarray(capture.face.deformation), axis=1)).max(
                initial=0.0
            )
        )
        if depth_mm >= 0.1:
            lines.append((f"face pressed in up to {depth_mm:.1f} mm", PRESSED_COLOR))
    return lines


def _empty_panel(size: int, title: str) -> np.ndarray:
    panel = np.empty((size, size, 3), np.uint8)
    panel[:] = PANEL_BACKGROUND
    draw_caption(panel, [title], [(200, 200, 200)])
    return panel


def view_panels(capture: Capture, size: int) -> list[np.ndarray]:
    """The side and top views of the capture's meshes, each framed to hold them all."""
    layers = mesh_layers(capture)
    panels = []
    for view in ("side", "top"):
        fit = fitted_window(layers, view)
        camera = view_camera(view, fit[0], size, size, fit[1]) if fit is not None else None
        title = VIEW_TITLES[view] if layers else f"{VIEW_TITLES[view]}: nothing found"
        panels.append(view_panel(layers, camera, size, size, title))
    return panels


def capture_sheet(capture: Capture, *, max_side: int = MAX_SIDE) -> UInt8[np.ndarray, "H W 3"]:
    """The capture sheet (module docstring) as an RGB image.

    The photo panel is drawn at most ``max_side`` pixels on its long side. A capture without a
    face draws placeholder face maps; one with nothing found still draws every panel. Raises
    :class:`~handface.errors.InputError` when the capture holds no photo.
    """
    lines = sheet_lines(capture)
    capture = _enlarged(capture, 2 * MIN_PANEL)
    photo = capture_overlay(capture, max_side=max_side, caption=())
    draw_caption(photo, [text for text, _ in lines], [color for _, color in lines])
    height = photo.shape[0]
    size = max(height // 2, MIN_PANEL)
    side, top = view_panels(capture, size)
    scale_mm = None
    if capture.face is not None:
        contact_map, pressed_map, scale_mm = face_map_panels(capture.face, size)
    else:
        contact_map = _empty_panel(size, "face map: no face found")
        pressed_map = _empty_panel(size, "pressed in: no face found")
    grid = np.concatenate(
        [np.concatenate([side, top], axis=1), np.concatenate([contact_map, pressed_map], axis=1)],
        axis=0,
    )
    body_height = max(height, grid.shape[0])
    photo = _pad_to(photo, body_height)
    grid = _pad_to(grid, body_height)
    body = np.concatenate([photo, grid], axis=1)
    legend = legend_strip(body.shape[1], scale_mm, text_height=max(10, min(32, size // 18)))
    return np.ascontiguousarray(np.concatenate([body, legend], axis=0))


def _enlarged(capture: Capture, least_height: int) -> Capture:
    """The capture with its photo enlarged (aspect kept) to at least ``least_height`` rows, so
    small photos draw at the size of the panels beside them; large ones are left as they are."""
    if capture.image is None or capture.image.shape[0] >= least_height:
        return capture
    height, width = capture.image.shape[:2]
    factor = least_height / height
    size = (max(1, round(width * factor)), least_height)
    return replace(capture, image=cv2.resize(capture.image, size, interpolation=cv2.INTER_CUBIC))


def _pad_to(image: np.ndarray, height: int) -> np.ndarray:
    if image.shape[0] >= height:
        return image
    pad = np.empty((height - image.shape[0], image.shape[1], 3), np.uint8)
    pad[:] = PANEL_BACKGROUND
    return np.concatenate([image, pad], axis=0)
