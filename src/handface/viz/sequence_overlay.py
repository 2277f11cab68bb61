"""Pictures of a tracked video: the frames of ``overlay.mp4`` and ``contact_timeline.png``.

``handface track`` writes both into its output folder:

* :func:`sequence_overlay_frame` draws one frame of ``overlay.mp4``: on the left the video
  frame with the meshes, detections and contact heat map drawn over it (the drawing of
  :func:`~handface.viz.capture_overlay.capture_overlay`), with one caption line per hand
  (verdict and detector status, e.g. ``"right hand (bridged) touching: left cheek"``); on the
  right a **side view** of the same 3D scene, so the depth between hand and face shows.
* :class:`OverlayVideoWriter` streams such frames to an H.264 MP4, atomically.
* :func:`contact_timeline` plots who touches where over time.

Side view convention (:data:`SIDE_VIEW_HEIGHT_M`, :data:`SIDE_ASPECT`, :data:`SIDE_HEAD_AT`):
a virtual camera on the photo camera's ``+x`` side (the right of the picture, i.e. the
person's left when they face the camera) looks along ``-x`` at the centre of the head's
bounding box. Its axes are ``(z, y, -x)`` of the photo camera: **depth grows to the right**
(the photo camera is off the panel's left edge, so a hand in front of the face is drawn to the
left of it) and down stays down. The camera is :data:`SIDE_DISTANCE_M` away with a long focal
length, which is orthographic to within 1 % over a head: the panel shows a fixed window
:data:`SIDE_VIEW_HEIGHT_M` tall at a fixed scale (``height / SIDE_VIEW_HEIGHT_M`` pixels per
metre, horizontally and vertically), with the head's centre at :data:`SIDE_HEAD_AT` of the
panel's width and half its height. A 10 cm scale bar sits at the bottom left. Hands hidden
behind the head (the right hand on the right cheek) show through it, half transparent. The
view is centred on the hands when there is no face.

Frame size: the video frame is drawn at most ``max_side`` pixels on its long side (like
``capture_overlay``), padded by one black row / column to even sizes (H.264 with ``yuv420p``
needs them), and the side panel has the frame's height and ``SIDE_ASPECT`` times its width
(rounded to even). The layout depends only on the video's size, so every frame of a video has
the same size.

Example:
    >>> with OverlayVideoWriter(out / "overlay.mp4", fps=30.0) as video:  # doctest: +SKIP
    ...     for capture, status in zip(captures, statuses):
    ...         video.write(sequence_overlay_frame(capture, status))
    >>> contact_timeline(timeline, 30.0, out / "contact_timeline.png")     # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import cv2
import numpy as np
import torch
from jaxtyping import UInt8

from handface.capture import Capture
from handface.render.overlay import composite, save_png
from handface.render.rasterizer import join_meshes, rasterize
from handface.render.shading import DirectionalLight, shade
from handface.viz.capture_overlay import capture_overlay, draw_caption, mesh_layers

MAX_SIDE = 960
"""Longest side (pixels) the video frame is drawn at (the side panel is added to it)."""
SIDE_VIEW_HEIGHT_M = 0.5
"""Height (metres) of the window the side panel shows."""
SIDE_ASPECT = 0.8
"""Side panel width / height."""
SIDE_HEAD_AT = 0.6
"""Where the head's centre sits across the side panel (fraction of its width from the left):
more room on the camera side, where the hands are."""
SIDE_DISTANCE_M = 10.0
"""Distance of the side camera from the head's centre: far enough to be nearly orthographic."""
SIDE_BACKGROUND = (38, 40, 46)
HIDDEN_HAND_OPACITY = 0.5
"""Opacity of a hand seen through the head in the side view."""
STATUS_COLORS = {
    "detected": (255, 255, 255),
    "network": (140, 215, 255),
    "bridged": (255, 190, 50),
    "missing": (165, 165, 165),
}
"""Caption colour of a hand's line by its detector status."""
HAND_SIDES = ("right", "left")

# Light from above the side camera, a little towards the photo camera.
_SIDE_LIGHT = DirectionalLight(direction=(0.3, 0.4, 1.0), ambient=0.45, diffuse=0.55)
# Photo-camera offsets -> side-camera axes: x_side = z (depth), y_side = y, z_side = -x.
_SIDE_ROTATION = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])


def _even(n: float) -> int:
    """The nearest even integer >= 2."""
    return max(2, 2 * int(round(n / 2.0)))


def _hand_status(capture: Capture, status: Mapping[str, str] | None, side: str) -> str | None:
    if status is not None and side in status:
        return str(status[side])
    hand = capture.hands.get(side)
    if hand is None:
        return None
    return "network" if hand.found_by == "network" else "detected"


def _caption(
    capture: Capture, status: Mapping[str, str] | None
) -> list[tuple[str, tuple[int, int, int]]]:
    """(text, colour) of each caption line."""
    white = STATUS_COLORS["detected"]
    sides = [*HAND_SIDES, *sorted(set(capture.hands) - set(HAND_SIDES))]
    shown = [side for side in sides if _hand_status(capture, status, side) is not None]
    lines: list[tuple[str, tuple[int, int, int]]] = []
    if capture.face is None:
        lines.append(("no face found" if shown else "no face or hand found", white))
    elif not shown:
        lines.append(("no hand found", white))
    touching = [side for side in shown if side in capture.hands and capture.hands[side].touching]
    by_hand = capture.extras.get("touched_regions_by_hand")
    by_hand = by_hand if isinstance(by_hand, Mapping) else None
    for side in shown:
        kind = _hand_status(capture, status, side)
        name = f"{side} hand" if kind == "detected" else f"{side} hand ({kind})"
        color = STATUS_COLORS.get(kind, white)
        hand = capture.hands.get(side)
        if hand is None:
            text = f"{side} hand missing" if kind == "missing" else f"{name}: not fitted"
        elif hand.touching:
            if by_hand is not None and by_hand.get(side):
                regions = list(by_hand[side])
            elif len(touching) == 1:
                regions = list(capture.touched_regions)
            else:  # both hands touch: the regions go on a line of their own
                regions = []
            where = ", ".join(regions) if regions else ("" if len(touching) > 1 else "the face")
            text = f"{name} touching: {where}" if where else f"{name} touching"
        else:
            text = f"{name} not touching"
            distance = hand.min_distance_mm
            if distance is not None and math.isfinite(distance) and distance > 0:
                text += f" ({distance:.0f} mm away)"
        lines.append((text, color))
    if len(touching) > 1 and by_hand is None:
        where = ", ".join(capture.touched_regions) or "the face"
        lines.append((f"touched: {where}", white))
    return lines


def frame_caption(capture: Capture, status: Mapping[str, str] | None = None) -> list[str]:
    """The caption lines of a frame of ``overlay.mp4``: one per hand, plus notes.

    ``status`` maps a hand side to its detector status (``"detected"``, ``"bridged"``,
    ``"network"``, ``"missing"``); without it a hand's status comes from
    ``CapturedHand.found_by``. A detected hand's line carries no status. A touching hand's
    line names the regions it touches: from ``capture.extras["touched_regions_by_hand"]``
    (side -> list of region names) when given, else ``capture.touched_regions`` (when both
    hands touch, those go on a line of their own).

    Example:
        >>> frame_caption(capture, {"right": "bridged"})  # doctest: +SKIP
        ['right hand (bridged) touching: left cheek']
    """
    return [text for text, _ in _caption(capture, status)]


def _view_centre(capture: Capture) -> np.ndarray | None:
    """Centre of the head's bounding box (camera frame), or of the hands' when no face."""
    if capture.face is not None:
        points = np.asarray(capture.face.vertices_deformed, np.float64)
    elif capture.hands:
        points = np.concatenate(
            [np.asarray(hand.vertices, np.float64) for hand in capture.hands.values()]
        )
    else:
        return None
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) == 0:
        return None
    return 0.5 * (points.min(axis=0) + points.max(axis=0))


def side_view_camera(
    centre: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(R, t, K)`` of the side camera (module docstring) for a panel of ``height x width``.

    ``R, t`` map photo-camera coordinates to side-camera coordinates (``x_side = R x + t``);
    ``K`` is its pinhole intrinsics (pixel centres at integer coordinates).
    """
    rotation = _SIDE_ROTATION.copy()
    t = np.array([0.0, 0.0, SIDE_DISTANCE_M]) - rotation @ np.asarray(centre, np.float64)
    focal = SIDE_DISTANCE_M * height / SIDE_VIEW_HEIGHT_M
    K = np.array(
        [
            [focal, 0.0, SIDE_HEAD_AT * width - 0.5],
            [0.0, focal, (height - 1) / 2.0],
            [0.0, 0.0, 1.0],
        ]
    )
    return rotation, t, K


def _render_side(
    layers: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]],
    K: torch.Tensor,
    height: int,
    width: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shaded rgb, alpha and per-pixel object id of meshes already in the side camera frame."""
    vertices, faces, object_id = join_meshes([(v, f) for v, f, _, _ in layers])
    fragments = rasterize(vertices, faces, K, height, width, face_object_id=object_id)
    out = shade(
        fragments,
        vertices,
        faces,
        K,
        vertex_colors=torch.cat([albedo for _, _, albedo, _ in layers]),
        light=_SIDE_LIGHT,
        background=0.0,
    )
    return out.rgb, out.alpha, fragments.object_id


def _side_panel(capture: Capture, height: int, width: int) -> np.ndarray:
    panel = np.empty((height, width, 3), np.uint8)
    panel[:] = SIDE_BACKGROUND
    centre = _view_centre(capture)
    notes = ["side view (camera: left)"]
    if capture.face is None:
        notes.append("no face found" if centre is not None else "no face or hand found")
    elif not capture.hands:
        notes.append("no hand found")
    if centre is not None:
        rotation, t, K = side_view_camera(centre, height, width)
        R_t = torch.as_tensor(rotation, dtype=torch.float32)
        t_t = torch.as_tensor(t, dtype=torch.float32)
        K_t = torch.as_tensor(K, dtype=torch.float32)
        layers = [
            (vertices @ R_t.T + t_t, faces, albedo, opacity)
            for vertices, faces, albedo, opacity in mesh_layers(capture)
        ]
        with torch.no_grad():
            rgb, alpha, object_id = _render_side(layers, K_t, height, width)
            if capture.face is not None and len(layers) > 1:
                # Hands behind the head (seen from this side) show through it.
                hand_rgb, hand_alpha, _ = _render_side(layers[1:], K_t, height, width)
                hidden = ((hand_alpha > 0) & (object_id == 0))[..., None]
                blend = HIDDEN_HAND_OPACITY * hand_rgb + (1 - HIDDEN_HAND_OPACITY) * rgb
                rgb = torch.where(hidden, blend, rgb)
        panel = composite(panel, rgb, alpha)
        panel = np.ascontiguousarray(panel)
        _draw_scale_bar(panel, height / SIDE_VIEW_HEIGHT_M)
    draw_caption(panel, notes, [(200, 200, 200)] * len(notes))
    return panel


def _draw_scale_bar(panel: np.ndarray, pixels_per_metre: float) -> None:
    """A 10 cm bar at the bottom left, labelled."""
    height = panel.shape[0]
    length = int(round(0.1 * pixels_per_metre))
    margin = max(4, height // 40)
    x0, y = margin, height - margin
    thickness = max(1, height // 240)
    color = (200, 200, 200)
    cv2.line(panel, (x0, y), (x0 + length, y), color, thickness, cv2.LINE_AA)
    for x in (x0, x0 + length):
        cv2.line(panel, (x, y - 2 * thickness - 2), (x, y), color, thickness, cv2.LINE_AA)
    scale = max(0.3, height / 900.0)
    cv2.putText(
        panel, "10 cm", (x0, y - 3 * thickness - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1
    )


def sequence_overlay_frame(
    capture: Capture,
    status: dict[str, str] | None = None,
    *,
    max_side: int = MAX_SIDE,
) -> UInt8[np.ndarray, "H W 3"]:
    """One frame of ``overlay.mp4``: the drawn video frame and the side view (RGB, even size).

    The left part is :func:`~handface.viz.capture_overlay.capture_overlay` at ``max_side``
    with :func:`frame_caption` as its caption (lines coloured by detector status: bridged
    amber, network light blue, missing grey), padded with black to even sizes; the right part
    is the side view (module docstring). ``status`` maps a hand side to ``"detected"``,
    ``"bridged"``, ``"network"`` or ``"missing"``. A capture without face or hands still
    draws (the side panel then holds a note). Raises
    :class:`~handface.errors.InputError` when the capture holds no photo.
    """
    lines = _caption(capture, status)
    left = capture_overlay(capture, max_side=max_side, caption=())
    draw_caption(left, [text for text, _ in lines], [color for _, color in lines])
    height, width = left.shape[:2]
    left = np.pad(left, ((0, height % 2), (0, width % 2), (0, 0)))
    height = left.shape[0]
    panel = _side_panel(capture, height, _even(SIDE_ASPECT * height))
    return np.ascontiguousarray(np.concatenate([left, panel], axis=1))


class OverlayVideoWriter:
    """Stream RGB frames to an H.264 MP4 (``yuv420p``), written atomically.

    Frames go to a temporary file next to ``path``, renamed into place by a clean
    :meth:`close` (or the end of a ``with`` block); an exception inside the ``with`` removes
    the partial file and leaves ``path`` as it was. Every frame must be ``(H, W, 3)`` uint8
    with the size of the first, ``H`` and ``W`` even (``ValueError`` otherwise). A writer
    closed before any frame writes nothing. ``crf`` is x264's quality (lower: better, larger).

    Example:
        >>> with OverlayVideoWriter("overlay.mp4", fps=30.0) as video:  # doctest: +SKIP
        ...     video.write(np.zeros((480, 640, 3), np.uint8))
    """

    def __init__(
        self, path: str | os.PathLike, fps: float, *, crf: int = 20, preset: str = "veryfast"
    ) -> None:
        fps = float(fps)
        if not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps must be a positive number, got {fps}")
        self.path = Path(path)
        self.fps = fps
        self.crf = int(crf)
        self.preset = preset
        self.frames_written = 0
        self._size: tuple[int, int] | None = None
        self._tmp: Path | None = None
        self._container: Any = None
        self._stream: Any = None
        self._closed = False
        self._finished = False

    def __enter__(self) -> OverlayVideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _open(self, height: int, width: int) -> None:
        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".mp4", dir=self.path.parent
        )
        os.close(fd)
        self._tmp = Path(tmp)
        self._container = av.open(
            tmp, mode="w", format="mp4", container_options={"movflags": "+faststart"}
        )
        stream = self._container.add_stream(
            "libx264", rate=Fraction(self.fps).limit_denominator(100_000)
        )
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(self.crf), "preset": self.preset}
        self._stream = stream

    def write(self, frame: UInt8[np.ndarray, "H W 3"]) -> None:
        """Append one RGB frame."""
        if self._closed:
            raise ValueError(f"the video writer of {self.path} is closed")
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ValueError(
                f"a video frame must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}"
            )
        height, width = frame.shape[:2]
        if self._size is None:
            if height % 2 or width % 2:
                raise ValueError(f"H.264 needs even frame sizes, got {width}x{height}")
            self._open(height, width)
            self._size = (height, width)
        elif (height, width) != self._size:
            first_height, first_width = self._size
            raise ValueError(
                f"frame {self.frames_written} is {width}x{height}, "
                f"the first was {first_width}x{first_height}"
            )
        import av

        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self.frames_written
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> Path | None:
        """Finish the file and move it to ``path``; returns ``path`` (``None``: no frames)."""
        if self._closed:
            return self.path if self._finished else None
        self._closed = True
        if self._container is None:
            return None
        try:
            for packet in self._stream.encode(None):  # flush the encoder
                self._container.mux(packet)
            self._container.close()
            self._container = None
            os.chmod(self._tmp, 0o644)  # mkstemp creates 0600; a video is meant to be shared
            os.replace(self._tmp, self.path)
            self._finished = True
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Stop and remove the partial file; ``path`` is left as it was."""
        self._closed = True
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # the partial file is deleted anyway
                pass
            self._container = None
        if self._tmp is not None and self._tmp.exists():
            self._tmp.unlink()


# --- contact timeline ---------------------------------------------------------------------

_TOUCH_COLOR = "#d62728"
_FREE_COLOR = "#c9d6e8"
_MISSING_COLOR = "#9a9a9a"
_HATCHES = {"bridged": "////", "network": "...."}


def _runs(values: Sequence[Any]) -> list[tuple[int, int, Any]]:
    """(start, end, value) of runs of equal values (end exclusive)."""
    runs: list[tuple[int, int, Any]] = []
    for i, value in enumerate(values):
        if runs and runs[-1][2] == value:
            runs[-1] = (runs[-1][0], i + 1, value)
        else:
            runs.append((i, i + 1, value))
    return runs


def _timeline_rows(timeline: list[dict]) -> tuple[list[str], list[str]]:
    """Hand sides seen in the clip (right first) and regions touched (by first touch)."""
    sides: set[str] = set()
    regions: list[str] = []
    for entry in timeline:
        sides.update(entry.get("hands") or {})
        touched = list(entry.get("touched_regions") or [])
        for hand in (entry.get("hands") or {}).values():
            touched += list(hand.get("regions") or [])
        for region in touched:
            if region not in regions:
                regions.append(region)
    ordered = [side for side in HAND_SIDES if side in sides] + sorted(sides - set(HAND_SIDES))
    return ordered, regions


def contact_timeline(timeline: list[dict], fps: float, path: str | os.PathLike) -> Path:
    """Plot a tracked clip's contacts over time and write the PNG atomically; returns ``path``.

    ``timeline``: one dict per frame, in order, as ``handface track`` writes them::

        {"frame": 12, "time_s": 0.4, "face": "detected" | "missing",
         "hands": {"right": {"status": "detected" | "bridged" | "network" | "missing",
                             "touching": True, "regions": ["left cheek"],
                             "min_distance_mm": 1.2}},
         "touched_regions": ["left cheek"], "max_deformation_mm": 3.1}

    One row per hand side seen in the clip (red where touching, pale blue where not, grey
    where missing; bridged frames hatched ``////``, frames only the network found dotted) and
    one row per face region touched at some time (red where touched, grey where the face is
    missing). The x axis is time in seconds, with frame indices on top. A hand side absent
    from a frame's ``"hands"`` counts as missing there.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    fps = float(fps)
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps}")
    sides, regions = _timeline_rows(timeline)
    labels = [f"{side} hand" for side in sides] + regions
    rows = max(1, len(labels))
    figure = Figure(figsize=(10.0, 1.5 + 0.38 * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()

    n = len(timeline)
    frames = np.array([float(entry.get("frame", i)) for i, entry in enumerate(timeline)])
    times = np.array(
        [float(entry.get("time_s", frames[i] / fps)) for i, entry in enumerate(timeline)]
    )
    ends = np.append(times[1:], times[-1] + 1.0 / fps) if n else times
    ends = np.maximum(ends, times + 1e-9)

    def bands(y: float, values: Sequence[Any], style: dict[Any, dict[str, Any]]) -> None:
        for start, end, value in _runs(values):
            if value in style:
                span = [(times[start], ends[end - 1] - times[start])]
                axes.broken_barh(span, (y - 0.38, 0.76), linewidth=0, **style[value])

    for row, label in enumerate(labels):
        y = rows - 1 - row
        if row < len(sides):
            hands = [(entry.get("hands") or {}).get(sides[row]) for entry in timeline]
            kinds = [
                "missing" if hand is None else str(hand.get("status", "detected")) for hand in hands
            ]
            fills = [
                "missing"
                if kind == "missing"
                else ("touch" if hand and hand.get("touching") else "free")
                for hand, kind in zip(hands, kinds, strict=True)
            ]
            bands(
                y,
                fills,
                {
                    "touch": {"facecolor": _TOUCH_COLOR},
                    "free": {"facecolor": _FREE_COLOR},
                    "missing": {"facecolor": _MISSING_COLOR},
                },
            )
            hatched = {
                kind: {"facecolor": "none", "hatch": hatch, "edgecolor": "#222222"}
                for kind, hatch in _HATCHES.items()
            }
            bands(y, kinds, hatched)
        else:
            region = label
            states = []
            for entry in timeline:
                touched = set(entry.get("touched_regions") or [])
                for hand in (entry.get("hands") or {}).values():
                    touched.update(hand.get("regions") or [])
                if region in touched:
                    states.append("touch")
                elif entry.get("face") == "missing":
                    states.append("missing")
                else:
                    states.append("none")
            bands(
                y,
                states,
                {"touch": {"facecolor": _TOUCH_COLOR}, "missing": {"facecolor": _MISSING_COLOR}},
            )
            axes.axhline(y, color="#dddddd", linewidth=0.6, zorder=0)

    axes.set_yticks(range(rows))
    axes.set_yticklabels(list(reversed(labels)) if labels else [""])
    axes.set_ylim(-0.6, rows - 0.4)
    axes.set_xlabel("time (s)")
    if n:
        axes.set_xlim(times[0], ends[-1])
        # frame index on top, from the clip's own (time, frame) pairs
        t0, f0 = times[0], frames[0]
        top = axes.secondary_xaxis(
            "top", functions=(lambda t: (t - t0) * fps + f0, lambda f: (f - f0) / fps + t0)
        )
        top.set_xlabel("frame")
        top.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not labels:
        message = "no frames" if not n else "no hand seen in the clip"
        axes.text(0.5, 0.5, message, transform=axes.transAxes, ha="center", va="center")
    legend = [
        Patch(facecolor=_TOUCH_COLOR, label="touching"),
        Patch(facecolor=_FREE_COLOR, label="hand not touching"),
        Patch(facecolor=_MISSING_COLOR, label="missing (hand or face)"),
        Patch(facecolor="white", edgecolor="#222222", hatch="////", label="bridged"),
        Patch(facecolor="white", edgecolor="#222222", hatch="....", label="network only"),
    ]
    figure.legend(handles=legend, loc="outside lower center", ncols=5, frameon=False)
    axes.set_title("contact timeline")
    figure.canvas.draw()
    image = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    return save_png(path, image)
