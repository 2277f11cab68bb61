"""The first picture of a capture: the photo with the fitted meshes drawn over it.

Drawn from a :class:`~handface.capture.Capture` that holds its photo:

* the deformed face, semi-transparent so the photo shows through, coloured by its contact
  probability (the ``"contact"`` colour map: grey, orange, red);
* each hand, more opaque, in a blue tint that turns red where it touches;
* the detected 2D hand keypoints (yellow for the person's right hand, cyan for the left) and
  68 of the detected face landmarks (green) as small dots, so a wrong fit shows as dots off
  the mesh;
* one line of text at the top left, e.g. ``"right hand touching: left cheek"`` or
  ``"no contact"`` (:func:`overlay_caption`).

Large photos are drawn at most :data:`MAX_SIDE` pixels on the long side (the photo is
downscaled and the intrinsics with it), so the overlay of a 24 MP photo may be smaller than the
photo; font, dots and line widths scale with the picture, so it reads the same at any size.

Example:
    >>> from handface.render.overlay import save_png
    >>> save_png("overlay.png", capture_overlay(capture))      # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import torch
from jaxtyping import UInt8

from handface.capture import Capture
from handface.errors import InputError
from handface.geometry.camera import resized_intrinsics, resized_pixels
from handface.models.landmarks import MEDIAPIPE_INDEX_OF_68
from handface.render.overlay import colormap, composite
from handface.render.rasterizer import join_meshes, rasterize
from handface.render.shading import DirectionalLight, shade

MAX_SIDE = 1600
"""Longest side (pixels) the overlay is drawn at."""
FACE_OPACITY = 0.55
HAND_OPACITY = 0.85
HAND_TINT = (0.45, 0.62, 0.90)
"""Albedo of a hand where it is not in contact."""
KEYPOINT_COLORS = {"right": (255, 220, 40), "left": (40, 220, 255)}
LANDMARK_COLOR = (60, 230, 90)

# Light from above and a little left of the camera, strong enough that the face's shape and
# expression read through its transparency, soft enough to keep the contact colours.
_LIGHT = DirectionalLight(direction=(-0.3, 0.5, 1.0), ambient=0.3, diffuse=0.75)


def overlay_caption(capture: Capture) -> str:
    """The one-line summary written on the overlay.

    Example:
        >>> overlay_caption(Capture((64, 64), np.eye(3), "given", face=None))
        'no face or hand found'
    """
    if capture.face is None and not capture.hands:
        return "no face or hand found"
    if capture.face is None:
        return "no face found"
    if not capture.hands:
        return "no hand found"
    touching = [
        side for side in ("right", "left") if side in capture.hands and capture.hands[side].touching
    ]
    if not touching:
        return "no contact"
    who = "both hands" if len(touching) == 2 else f"{touching[0]} hand"
    where = ", ".join(capture.touched_regions) if capture.touched_regions else "the face"
    return f"{who} touching: {where}"


def drawing_scale(image_size: tuple[int, int], max_side: int = MAX_SIDE) -> float:
    """Factor (<= 1) that brings an image of ``(width, height)`` to at most ``max_side`` px.

    Example:
        >>> drawing_scale((4000, 3000)), drawing_scale((640, 480))
        (0.4, 1.0)
    """
    return min(1.0, max_side / max(image_size))


def _hand_colors(contact: np.ndarray) -> torch.Tensor:
    """Blue tint blended into the contact red by the contact probability."""
    c = torch.from_numpy(np.nan_to_num(np.asarray(contact, np.float32), nan=0.0)).clamp(0, 1)
    red = colormap(torch.ones(1), "contact")
    return torch.tensor(HAND_TINT) * (1.0 - c[:, None]) + red * c[:, None]


def mesh_layers(capture: Capture) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]]:
    """The meshes the overlay draws: ``(vertices, faces, albedo, opacity)`` per mesh.

    The deformed face first (albedo: the ``"contact"`` colour map of its contact probability),
    then each hand by side name (the blue tint turning red where it touches); vertices in the
    camera frame (float32), faces int64, albedo ``(V, 3)`` in ``[0, 1]``.
    """
    layers = []
    if capture.face is not None:
        face = capture.face
        contact = torch.as_tensor(np.asarray(face.contact, np.float32))
        layers.append(
            (
                torch.as_tensor(face.vertices_deformed).float(),
                torch.as_tensor(face.faces).long(),
                colormap(contact, "contact").float(),
                FACE_OPACITY,
            )
        )
    for side in sorted(capture.hands):
        hand = capture.hands[side]
        layers.append(
            (
                torch.as_tensor(hand.vertices).float(),
                torch.as_tensor(hand.faces).long(),
                _hand_colors(hand.contact).float(),
                HAND_OPACITY,
            )
        )
    return layers


def _draw_meshes(photo: np.ndarray, capture: Capture, K: np.ndarray) -> np.ndarray:
    layers = mesh_layers(capture)
    if not layers:
        return photo.copy()
    vertices, faces, object_id = join_meshes([(v, f) for v, f, _, _ in layers])
    height, width = photo.shape[:2]
    K_t = torch.as_tensor(K, dtype=torch.float32)
    with torch.no_grad():
        fragments = rasterize(vertices, faces, K_t, height, width, face_object_id=object_id)
        out = shade(
            fragments,
            vertices,
            faces,
            K_t,
            vertex_colors=torch.cat([albedo for _, _, albedo, _ in layers]),
            light=_LIGHT,
            background=0.0,
        )
    # One opacity per object: the face lets the photo through, the hands less so.
    per_object = torch.tensor([0.0, *(opacity for *_, opacity in layers)])  # 0: background
    alpha = per_object[fragments.object_id + 1] * out.alpha
    return composite(photo, out.rgb, alpha)


def _draw_dots(image: np.ndarray, capture: Capture, sx: float, sy: float, radius: int) -> None:
    def dots(points: np.ndarray, color: tuple[int, int, int]) -> None:
        for u, v in resized_pixels(np.asarray(points, np.float64), sx, sy):
            if math.isfinite(u) and math.isfinite(v):
                center = (int(round(u)), int(round(v)))
                cv2.circle(image, center, radius + 1, (0, 0, 0), -1, cv2.LINE_AA)
                cv2.circle(image, center, radius, color, -1, cv2.LINE_AA)

    if capture.face is not None:
        dots(
            np.asarray(capture.face.detected_landmarks2d)[list(MEDIAPIPE_INDEX_OF_68)],
            LANDMARK_COLOR,
        )
    for side in sorted(capture.hands):
        color = KEYPOINT_COLORS.get(side, (255, 255, 255))
        dots(np.asarray(capture.hands[side].detected_keypoints2d), color)


def draw_caption(
    image: UInt8[np.ndarray, "H W 3"],
    lines: str | Sequence[str],
    colors: Sequence[tuple[int, int, int]] | None = None,
) -> None:
    """Draw text lines at the top left of ``image`` (in place), each on a darkened band.

    The font is sized to the picture (and shrunk so the longest line fits its width); text is
    white unless ``colors`` gives one RGB colour per line. Darkening (not hiding) the picture
    behind the text keeps it readable on bright and busy photos.
    """
    lines = [lines] if isinstance(lines, str) else list(lines)
    if not lines:
        return
    colors = list(colors) if colors is not None else [(255, 255, 255)] * len(lines)
    if len(colors) != len(lines):
        raise ValueError(f"{len(lines)} caption lines but {len(colors)} colours")
    height, width = image.shape[:2]
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(0.35, min(height, width) / 700.0)
    margin = max(3, int(round(8 * scale)))
    text_width = max(cv2.getTextSize(line, font, scale, 1)[0][0] for line in lines)
    if text_width > width - 2 * margin:  # shrink a long line to fit the width
        scale = max(0.25, scale * (width - 2 * margin) / text_width)
    thickness = max(1, int(round(1.6 * scale)))
    top = 0
    for line, color in zip(lines, colors, strict=True):
        (text_width, text_height), baseline = cv2.getTextSize(line, font, scale, thickness)
        pad_top = margin if top == 0 else 0  # lines below the first sit closer together
        bottom = top + pad_top + text_height + baseline + margin
        box = image[top:bottom, : text_width + 2 * margin]
        box[:] = (box.astype(np.float32) * 0.4).astype(np.uint8)
        origin = (margin, top + pad_top + text_height)
        cv2.putText(image, line, origin, font, scale, tuple(color), thickness, cv2.LINE_AA)
        top = bottom


def capture_overlay(
    capture: Capture,
    *,
    max_side: int = MAX_SIDE,
    caption: str | Sequence[str] | None = None,
) -> UInt8[np.ndarray, "H W 3"]:
    """The photo with the capture's meshes, detections and a caption drawn over it (RGB).

    ``caption``: the text lines drawn at the top left; ``None`` (default) draws
    :func:`overlay_caption`, an empty sequence draws none.

    The result is the photo's size, or smaller with its long side ``max_side`` when the photo
    is larger (aspect ratio kept). Where nothing is drawn, the pixels are the photo's own
    (downscaled with area averaging when the photo was larger). Raises
    :class:`~handface.errors.InputError` when the capture holds no photo.
    """
    if capture.image is None:
        raise InputError("this capture holds no photo to draw on; pass the image it came from")
    photo = np.asarray(capture.image)
    if photo.ndim != 3 or photo.shape[-1] != 3 or photo.dtype != np.uint8:
        raise InputError(
            f"the capture's image must be (H, W, 3) uint8, got {photo.shape} {photo.dtype}"
        )
    height, width = photo.shape[:2]
    scale = drawing_scale((width, height), max_side)
    out_width, out_height = max(1, round(width * scale)), max(1, round(height * scale))
    if (out_width, out_height) != (width, height):
        photo = cv2.resize(photo, (out_width, out_height), interpolation=cv2.INTER_AREA)
    # The fit's K belongs to capture.image_size, which may differ from the photo given here.
    fit_width, fit_height = capture.image_size
    sx, sy = out_width / fit_width, out_height / fit_height
    image = _draw_meshes(photo, capture, resized_intrinsics(capture.K, sx, sy))
    image = np.ascontiguousarray(image)
    radius = max(1, int(round(max(out_width, out_height) / 400)))
    _draw_dots(image, capture, sx, sy, radius)
    draw_caption(image, overlay_caption(capture) if caption is None else caption)
    return image
