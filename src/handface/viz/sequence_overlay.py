"""Pictures of a tracked video: the frames of ``overlay.mp4`` and ``contact_timeline.png``.

``handface track`` writes both into its output folder:

* :func:`sequence_overlay_frame` draws one frame of ``overlay.mp4``: on the left the video
  frame with the meshes, detections and contact heat map drawn over it (the drawing of
  :func:`~handface.viz.capture_overlay.capture_overlay`), with one caption line per hand
  (:func:`~handface.viz.verdict.verdict_lines`: verdict and detector status, e.g.
  ``"right hand (bridged) touching: left cheek"``); then a **side view** and a **top view** of
  the same 3D scene (:mod:`handface.viz.scene_views`), so the depth between hand and face
  shows; below, the legend strip (:mod:`handface.viz.legend`). The capture sheet of a photo
  (:mod:`handface.viz.capture_sheet`) is drawn in the same style.
* :class:`OverlayVideoWriter` streams such frames to an H.264 MP4, atomically.
* :func:`contact_timeline` plots who touches where over time.

View panels in a video (:data:`SIDE_VIEW_HEIGHT_M`, :data:`SIDE_ASPECT`, :data:`SIDE_HEAD_AT`,
:data:`TOP_HEAD_AT`): unlike the capture sheet, whose views are framed to hold every mesh,
a video's panels show a fixed window :data:`SIDE_VIEW_HEIGHT_M` tall at a fixed scale
(``height / SIDE_VIEW_HEIGHT_M`` pixels per metre) centred on the head's bounding box, so
nothing jumps from frame to frame. In the side view (camera on the person's left, depth
growing to the right) the head's centre sits at :data:`SIDE_HEAD_AT` of the panel's width;
in the top view (camera above, depth growing upwards, the photo camera below the panel) at
:data:`TOP_HEAD_AT` of its height. The views centre on the hands when there is no face.

Frame size: the video frame is drawn at most ``max_side`` pixels on its long side (like
``capture_overlay``), padded by one black row / column to even sizes (H.264 with ``yuv420p``
needs them); each view panel has the frame's height and ``SIDE_ASPECT`` times its width
(rounded to even); the legend strip's height is even. The layout depends only on the video's
size, so every frame of a video has the same size.

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
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from jaxtyping import UInt8

from handface.capture import Capture
from handface.render.overlay import save_png
from handface.viz.capture_overlay import capture_overlay, draw_caption, mesh_layers
from handface.viz.legend import legend_strip
from handface.viz.scene_views import (
    PANEL_BACKGROUND,
    VIEW_TITLES,
    layers_centre,
    view_camera,
    view_panel,
)
from handface.viz.verdict import STATUS_COLORS, frame_caption, verdict_lines

__all__ = [
    "STATUS_COLORS",
    "OverlayVideoWriter",
    "contact_timeline",
    "frame_caption",
    "sequence_overlay_frame",
    "side_view_camera",
]

MAX_SIDE = 960
"""Longest side (pixels) the video frame is drawn at (the view panels are added to it)."""
SIDE_VIEW_HEIGHT_M = 0.5
"""Height (metres) of the window the side and top panels show."""
SIDE_ASPECT = 0.8
"""Width / height of each view panel."""
SIDE_HEAD_AT = 0.6
"""Where the head's centre sits across the side panel (fraction of its width from the left):
more room on the camera side, where the hands are."""
TOP_HEAD_AT = 0.4
"""Where the head's centre sits down the top panel (fraction of its height): more room below,
on the camera side."""
SIDE_BACKGROUND = PANEL_BACKGROUND
HAND_SIDES = ("right", "left")
_ANCHORS = {"side": (SIDE_HEAD_AT, 0.5), "top": (0.5, TOP_HEAD_AT)}


def _even(n: float) -> int:
    """The nearest even integer >= 2."""
    return max(2, 2 * int(round(n / 2.0)))


def _view_centre(capture: Capture) -> np.ndarray | None:
    """Centre of the head's bounding box (camera frame), or of the hands' when no face."""
    layers = mesh_layers(capture)
    return layers_centre(layers, first_only=capture.face is not None)


def side_view_camera(
    centre: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(R, t, K)`` of the side camera (module docstring) for a panel of ``height x width``.

    ``R, t`` map photo-camera coordinates to side-camera coordinates (``x_side = R x + t``);
    ``K`` is its pinhole intrinsics (pixel centres at integer coordinates).
    """
    camera = view_camera("side", centre, height, width, SIDE_VIEW_HEIGHT_M, _ANCHORS["side"])
    return camera.rotation, camera.t, camera.K


def _view_panel(capture: Capture, view: str, height: int, width: int) -> np.ndarray:
    centre = _view_centre(capture)
    notes = [VIEW_TITLES[view]]
    if capture.face is None:
        notes.append("no face found" if centre is not None else "no face or hand found")
    elif not capture.hands:
        notes.append("no hand found")
    camera = None
    if centre is not None:
        camera = view_camera(view, centre, height, width, SIDE_VIEW_HEIGHT_M, _ANCHORS[view])
    return view_panel(
        mesh_layers(capture), camera, height, width, notes, face_first=capture.face is not None
    )


def sequence_overlay_frame(
    capture: Capture,
    status: dict[str, str] | None = None,
    *,
    max_side: int = MAX_SIDE,
) -> UInt8[np.ndarray, "H W 3"]:
    """One frame of ``overlay.mp4`` (RGB, even size): the drawn video frame, the side and top
    views, and the legend strip below.

    The left part is :func:`~handface.viz.capture_overlay.capture_overlay` at ``max_side``
    with :func:`frame_caption` as its caption (lines coloured by detector status: bridged
    amber, network light blue, missing grey), padded with black to even sizes; then the side
    and top views (module docstring), each the frame's height tall and ``SIDE_ASPECT`` times
    that wide; below, :func:`~handface.viz.legend.legend_strip` (even height). ``status`` maps
    a hand side to ``"detected"``, ``"bridged"``, ``"network"`` or ``"missing"``. A capture
    without face or hands still draws (the view panels then hold a note). Raises
    :class:`~handface.errors.InputError` when the capture holds no photo.
    """
    lines = verdict_lines(capture, status)
    left = capture_overlay(capture, max_side=max_side, caption=())
    draw_caption(left, [text for text, _ in lines], [color for _, color in lines])
    height, width = left.shape[:2]
    left = np.pad(left, ((0, height % 2), (0, width % 2), (0, 0)))
    height = left.shape[0]
    panel_width = _even(SIDE_ASPECT * height)
    panels = [_view_panel(capture, view, height, panel_width) for view in ("side", "top")]
    body = np.concatenate([left, *panels], axis=1)
    legend = legend_strip(body.shape[1], text_height=max(10, height // 32))
    legend = np.pad(legend, ((0, legend.shape[0] % 2), (0, 0), (0, 0)), mode="edge")
    return np.ascontiguousarray(np.concatenate([body, legend], axis=0))


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
