"""The face map: the captured face seen straight on, whatever way the head was turned.

Two square panels of the deformed face in its own canonical frame (DESIGN.md: z up, the face
looking towards ``-y``), seen from the front with a long-focal camera:

* **contact**: the per-vertex contact probability on the ``"contact"`` colour map (grey,
  orange, red), with the names of the touched areas written where they are;
* **pressed in**: ``|D|``, how far the hand pushed each vertex, on the ``"viridis"`` map from
  0 to a round number of millimetres (:func:`deformation_scale_mm`, printed on the panel).

A head turned away from the camera, a cheek hidden behind a hand: both still show here.

Example:
    >>> contact, pressed, scale_mm = face_map_panels(capture.face, 256)   # doctest: +SKIP
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from jaxtyping import Float, UInt8

from handface.capture import CapturedFace
from handface.models.face_areas import load_face_areas
from handface.render.overlay import colormap, deformation_colors, deformation_scale_top
from handface.viz.scene_views import ViewCamera, view_panel

FRONT_ROTATION = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""Head canonical frame -> the face map camera's axes (the person's left on the right)."""
_DISTANCE_M = 10.0
LABEL_COLOR = (255, 255, 255)


def deformation_scale_mm(deformation: Float[np.ndarray, "V 3"]) -> float:
    """The top of the ``|D|`` colour scale for a deformation (metres): the largest ``|D|`` in
    mm rounded up by :func:`~handface.render.overlay.deformation_scale_top`.

    Example:
        >>> deformation_scale_mm(np.array([[0.0, 0.0, 0.0021]]))
        3.0
    """
    largest = 1000.0 * float(np.nan_to_num(np.linalg.norm(np.asarray(deformation), axis=1)).max(
        initial=0.0))  # fmt: skip
    return deformation_scale_top(largest)


def front_camera(
    canonical: Float[np.ndarray, "V 3"], size: int, margin: float = 0.06
) -> ViewCamera:
    """The face map camera for a ``size`` square that fits ``canonical`` points (head axes)."""
    local = np.asarray(canonical, np.float64) @ FRONT_ROTATION.T
    lo, hi = local.min(axis=0), local.max(axis=0)
    window = max(hi[0] - lo[0], hi[1] - lo[1], 1e-6) * (1.0 + 2.0 * margin)
    pixels_per_metre = size / window
    focal = _DISTANCE_M * pixels_per_metre
    K = np.array([[focal, 0.0, size / 2 - 0.5], [0.0, focal, size / 2 - 0.5], [0.0, 0.0, 1.0]])
    t = np.array([0.0, 0.0, _DISTANCE_M]) - 0.5 * (lo + hi)
    return ViewCamera("front", FRONT_ROTATION.copy(), t, K, pixels_per_metre)


def canonical_vertices(face: CapturedFace) -> Float[np.ndarray, "V 3"]:
    """The deformed face in the head's canonical axes (camera rotation undone), centred."""
    vertices = np.asarray(face.vertices_deformed, np.float64)
    canonical = (vertices - vertices.mean(axis=0)) @ np.asarray(face.rotation, np.float64)
    return canonical


def _area_labels(
    face: CapturedFace, camera: ViewCamera, canonical: np.ndarray
) -> list[tuple[str, np.ndarray]]:
    """(area name, pixel) for each touched area: the centroid of its contact vertices."""
    contact = np.nan_to_num(np.asarray(face.contact, np.float64))
    areas = load_face_areas()
    labels = areas.labels.numpy()
    if len(labels) != len(contact):
        return []
    out = []
    for k, name in enumerate(areas.names):
        chosen = (labels == k) & (contact > 0.5)
        if chosen.sum() >= 3:
            out.append((name, camera.project(canonical[chosen].mean(axis=0, keepdims=True))[0]))
    return out


def _draw_labels(panel: np.ndarray, labels: list[tuple[str, np.ndarray]]) -> None:
    """Write each name centred on its pixel, moved down past the names already written."""
    size = panel.shape[0]
    scale = max(0.3, size / 700.0)
    thickness = max(1, int(round(1.4 * scale)))
    taken: list[tuple[int, int, int, int]] = []  # x0, y0, x1, y1 of written names
    for name, (u, v) in sorted(labels, key=lambda item: float(item[1][1])):
        if not (math.isfinite(u) and math.isfinite(v)):
            continue
        (w, h), baseline = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        x = int(np.clip(u - w / 2, 2, size - w - 2))
        y = int(np.clip(v + h / 2, h + 2, size - 2))
        for _ in range(len(taken) + 1):
            box = (x, y - h - 1, x + w, y + baseline)
            hit = [
                t
                for t in taken
                if box[0] < t[2] and t[0] < box[2] and box[1] < t[3] and t[1] < box[3]
            ]
            if not hit:
                break
            y = max(t[3] for t in hit) + h + 2
        taken.append((x, y - h - 1, x + w, y + baseline))
        for color, extra in (((0, 0, 0), 2), (LABEL_COLOR, 0)):
            cv2.putText(panel, name, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color,
                        thickness + extra, cv2.LINE_AA)  # fmt: skip


def _pressed_title(deformation: np.ndarray, scale_mm: float) -> str:
    largest_mm = 1000.0 * float(
        np.nan_to_num(np.linalg.norm(np.asarray(deformation), axis=1)).max(initial=0.0)
    )
    if largest_mm < 0.1:
        return "pressed in: nowhere"
    return f"pressed in: 0-{scale_mm:g} mm"


def face_map_panels(
    face: CapturedFace, size: int, scale_mm: float | None = None
) -> tuple[UInt8[np.ndarray, "S S 3"], UInt8[np.ndarray, "S S 3"], float]:
    """``(contact panel, pressed-in panel, scale_mm)``: the face seen from the front, coloured
    by contact probability (touched areas named) and by ``|D|`` from 0 to ``scale_mm``
    millimetres (default :func:`deformation_scale_mm`). Square, ``size`` pixels."""
    scale_mm = deformation_scale_mm(face.deformation) if scale_mm is None else float(scale_mm)
    canonical = canonical_vertices(face)
    camera = front_camera(canonical, size)
    vertices = torch.as_tensor(canonical, dtype=torch.float32)
    faces = torch.as_tensor(np.asarray(face.faces, np.int64))
    contact = torch.as_tensor(np.asarray(face.contact, np.float32))
    magnitude = torch.as_tensor(1000.0 * np.linalg.norm(np.asarray(face.deformation), axis=1))
    contact_panel = view_panel(
        [(vertices, faces, colormap(contact, "contact").float(), 1.0)], camera, size, size,
        "face map: contact", face_first=False)  # fmt: skip
    _draw_labels(contact_panel, _area_labels(face, camera, canonical))
    pressed_colors = deformation_colors(magnitude, scale_mm).float()
    title = _pressed_title(face.deformation, scale_mm)
    pressed_panel = view_panel(
        [(vertices, faces, pressed_colors, 1.0)], camera, size, size, title, face_first=False
    )
    return contact_panel, pressed_panel, scale_mm
