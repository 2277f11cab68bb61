"""The 3D scene of a capture seen from the side and from above, where depth shows at a glance.

A photo hides the one thing a hand-face capture is about: whether the hand is *on* the face or
a few centimetres in front of it. These panels look at the same meshes (face, hands, their
contact colours: :func:`~handface.viz.capture_overlay.mesh_layers`) with virtual cameras:

* ``"side"``: on the photo camera's ``+x`` side (the right of the picture, the person's left
  when they face the camera), looking along ``-x``. Its axes are ``(z, y, -x)`` of the photo
  camera: **depth grows to the right** (the photo camera is off the panel's left edge, so a
  hand in front of the face is drawn to the left of it) and down stays down.
* ``"top"``: above the head, looking down (``+y`` of the photo camera). Its axes are
  ``(x, -z, y)``: left and right as in the photo, **depth grows upwards** (the photo camera is
  below the panel, so a hand in front of the face is drawn below it).

The cameras are :data:`VIEW_DISTANCE_M` away with a long focal length, orthographic to within
1 % over a head: a panel shows a square-pixel window ``window_m`` metres tall around a centre
point, at ``anchor`` (fractions of the panel's width and height). Hands hidden behind the head
from that side show through it, half transparent. A scale bar sits at the bottom left.

Example:
    >>> camera = view_camera("top", centre, 256, 256, window_m=0.5)        # doctest: +SKIP
    >>> panel = view_panel(mesh_layers(capture), camera, 256, 256, "top view")  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch
from jaxtyping import Float, UInt8

from handface.render.overlay import composite
from handface.render.rasterizer import join_meshes, rasterize
from handface.render.shading import DirectionalLight, shade
from handface.viz.capture_overlay import draw_caption

View = Literal["side", "top"]
Layer = tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]
"""``(vertices (V, 3) camera frame, faces (F, 3), albedo (V, 3), opacity)`` of one mesh."""

VIEW_DISTANCE_M = 10.0
"""Distance of a view camera from its centre: far enough to be nearly orthographic."""
PANEL_BACKGROUND = (38, 40, 46)
HIDDEN_HAND_OPACITY = 0.5
"""Opacity of a hand seen through the head."""
VIEW_TITLES = {"side": "side view (camera: left)", "top": "top view (camera: below)"}
TITLE_COLOR = (200, 200, 200)

# Photo-camera offsets -> view-camera axes (rows: the view camera's x, y, z).
VIEW_ROTATIONS: dict[str, np.ndarray] = {
    "side": np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]),
    "top": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]),
}
# Light from above and behind the view camera, a little towards the photo camera.
_LIGHTS = {
    "side": DirectionalLight(direction=(0.3, 0.4, 1.0), ambient=0.45, diffuse=0.55),
    "top": DirectionalLight(direction=(0.2, 0.3, 1.0), ambient=0.45, diffuse=0.55),
}


@dataclass(frozen=True)
class ViewCamera:
    """A virtual pinhole camera looking at the photo camera's scene."""

    view: str
    rotation: Float[np.ndarray, "3 3"]
    """Photo-camera coordinates -> view-camera coordinates: ``x_view = rotation @ x + t``."""
    t: Float[np.ndarray, " 3"]
    K: Float[np.ndarray, "3 3"]
    """Intrinsics (pixel centres at integer coordinates)."""
    pixels_per_metre: float
    """Scale of the panel at the centre's depth (the same across and down)."""

    def project(self, points: Float[np.ndarray, "N 3"]) -> Float[np.ndarray, "N 2"]:
        """Pixel coordinates of photo-camera points in this view."""
        local = np.asarray(points, np.float64) @ self.rotation.T + self.t
        uv = local @ self.K.T
        return uv[:, :2] / uv[:, 2:3]


def view_camera(
    view: View,
    centre: Float[np.ndarray, " 3"],
    height: int,
    width: int,
    window_m: float,
    anchor: tuple[float, float] = (0.5, 0.5),
) -> ViewCamera:
    """The ``view`` camera for a ``height x width`` panel showing ``window_m`` metres of height
    around ``centre`` (photo-camera frame), the centre drawn at ``anchor`` (fractions of the
    panel's width and height from its top left).

    Example:
        >>> cam = view_camera("side", np.zeros(3), 100, 80, 0.5, anchor=(0.6, 0.5))
        >>> cam.project(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.1]])).round(1).tolist()
        [[47.5, 49.5], [67.5, 49.5]]
    """
    if view not in VIEW_ROTATIONS:
        raise ValueError(f"unknown view {view!r}; one of {sorted(VIEW_ROTATIONS)}")
    rotation = VIEW_ROTATIONS[view].copy()
    t = np.array([0.0, 0.0, VIEW_DISTANCE_M]) - rotation @ np.asarray(centre, np.float64)
    pixels_per_metre = height / window_m
    focal = VIEW_DISTANCE_M * pixels_per_metre
    K = np.array(
        [
            [focal, 0.0, anchor[0] * width - 0.5],
            [0.0, focal, anchor[1] * height - 0.5],
            [0.0, 0.0, 1.0],
        ]
    )
    return ViewCamera(view, rotation, t, K, pixels_per_metre)


def layers_centre(layers: list[Layer], *, first_only: bool = True) -> np.ndarray | None:
    """Centre of the bounding box of the first mesh (the face when there is one), or of all
    meshes; ``None`` when there are no finite vertices."""
    chosen = layers[:1] if first_only else layers
    if not chosen:
        return None
    points = np.concatenate([layer[0].detach().double().numpy() for layer in chosen])
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) == 0:
        return None
    return 0.5 * (points.min(axis=0) + points.max(axis=0))


def fitted_window(
    layers: list[Layer], view: View, aspect: float = 1.0, margin: float = 0.12, least_m: float = 0.3
) -> tuple[np.ndarray, float] | None:
    """``(centre, window_m)`` that fits every mesh in a ``view`` panel of ``width / height =
    aspect`` with ``margin`` (fraction) around, never tighter than ``least_m`` metres."""
    if not layers:
        return None
    points = np.concatenate([layer[0].detach().double().numpy() for layer in layers])
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) == 0:
        return None
    local = points @ VIEW_ROTATIONS[view].T
    lo, hi = local.min(axis=0), local.max(axis=0)
    centre_local = 0.5 * (lo + hi)
    size = hi - lo
    window = max(size[1], size[0] / aspect, least_m) * (1.0 + 2.0 * margin)
    return VIEW_ROTATIONS[view].T @ centre_local, float(window)


def _render(layers: list[Layer], camera: ViewCamera, height: int, width: int):
    R = torch.as_tensor(camera.rotation, dtype=torch.float32)
    t = torch.as_tensor(camera.t, dtype=torch.float32)
    K = torch.as_tensor(camera.K, dtype=torch.float32)
    vertices, faces, object_id = join_meshes([(v.float() @ R.T + t, f) for v, f, _, _ in layers])
    fragments = rasterize(vertices, faces, K, height, width, face_object_id=object_id)
    out = shade(
        fragments,
        vertices,
        faces,
        K,
        vertex_colors=torch.cat([albedo for _, _, albedo, _ in layers]),
        light=_LIGHTS.get(camera.view, _LIGHTS["side"]),
        background=0.0,
    )
    return out.rgb, out.alpha, fragments.object_id


def view_panel(
    layers: list[Layer],
    camera: ViewCamera | None,
    height: int,
    width: int,
    title: str | list[str] | None = None,
    *,
    face_first: bool = True,
) -> UInt8[np.ndarray, "H W 3"]:
    """The meshes seen by ``camera`` on a dark panel, with a scale bar and a ``title``.

    ``face_first``: the first layer is the face; hands behind it from this view show through
    it, half transparent. ``camera=None`` (nothing to centre on) draws the empty panel.
    """
    panel = np.empty((height, width, 3), np.uint8)
    panel[:] = PANEL_BACKGROUND
    if camera is not None and layers:
        with torch.no_grad():
            rgb, alpha, object_id = _render(layers, camera, height, width)
            if face_first and len(layers) > 1:
                hand_rgb, hand_alpha, _ = _render(layers[1:], camera, height, width)
                hidden = ((hand_alpha > 0) & (object_id == 0))[..., None]
                blend = HIDDEN_HAND_OPACITY * hand_rgb + (1 - HIDDEN_HAND_OPACITY) * rgb
                rgb = torch.where(hidden, blend, rgb)
        panel = np.ascontiguousarray(composite(panel, rgb, alpha))
        draw_scale_bar(panel, camera.pixels_per_metre)
    if title:
        lines = [title] if isinstance(title, str) else list(title)
        draw_caption(panel, lines, [TITLE_COLOR] * len(lines))
    return panel


def draw_scale_bar(panel: np.ndarray, pixels_per_metre: float) -> None:
    """A labelled bar at the bottom left (in place): 10 cm, or 5 / 2 cm when the panel shows
    less than a quarter / a tenth of a metre."""
    height, width = panel.shape[:2]
    metres = next((m for m in (0.1, 0.05, 0.02, 0.01) if m * pixels_per_metre <= 0.45 * width),
                  0.01)  # fmt: skip
    length = int(round(metres * pixels_per_metre))
    margin = max(4, height // 40)
    x0, y = margin, height - margin
    thickness = max(1, height // 240)
    color = TITLE_COLOR
    cv2.line(panel, (x0, y), (x0 + length, y), color, thickness, cv2.LINE_AA)
    for x in (x0, x0 + length):
        cv2.line(panel, (x, y - 2 * thickness - 2), (x, y), color, thickness, cv2.LINE_AA)
    scale = max(0.3, height / 900.0)
    label = f"{round(metres * 100)} cm"
    cv2.putText(panel, label, (x0, y - 3 * thickness - 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                color, 1, cv2.LINE_AA)  # fmt: skip
