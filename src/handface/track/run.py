"""``handface track VIDEO --out DIR`` and ``handface.track(video)``: read, track, save.

Example:
    >>> sequence = handface.track("clip.mp4", out="clip_track")      # doctest: +SKIP
    >>> sequence.touching("right").mean()                              # doctest: +SKIP
    0.35
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Literal

from handface.detect.video import DepthReader, FrameReader
from handface.errors import InputError
from handface.sequence import Sequence
from handface.track.tracker import TrackConfig, Tracker


def track_video(
    video: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    start: int = 0,
    end: int | None = None,
    stride: int = 1,
    depth: str | os.PathLike | None = None,
    depth_scale: float = 0.001,
    method: Literal["fit", "dice", "hybrid"] = "fit",
    checkpoint: str | os.PathLike | None = None,
    focal: float | None = None,
    fps: float | None = None,
    meshes: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    config: TrackConfig | None = None,
    tracker: Tracker | None = None,
) -> Sequence:
    """Track a video file (or a folder of frames) and, with ``out``, write its Sequence folder
    (:mod:`handface.io.sequence_folder`); nothing is written when anything fails.

    Args:
        start, end, stride: the frames to track (``end`` exclusive; every ``stride``-th).
        depth: a folder of per-frame depth maps (RGB-D video; ``.npy`` metres or 16-bit PNG in
            units of ``depth_scale`` metres), the i-th file for video frame i.
        method: ``fit`` (the fit's own contact gate), ``dice`` (the network's per-frame
            meshes, smoothed: :mod:`~handface.track.dice_track`) or ``hybrid`` (DICE's touch
            verdicts and contact probabilities guide the fit of each frame); DICE is
            ``checkpoint`` or the shipped network.
        fps: frame rate of a folder of frames (videos carry their own).
        meshes: also write every frame's meshes as PLY files.
    """
    if method not in ("fit", "dice", "hybrid"):
        raise InputError(f"--method {method}: tracking supports fit, dice and hybrid")
    if checkpoint is not None and method == "fit":
        raise InputError("--checkpoint goes with --method dice or hybrid")
    if depth is not None and method == "dice":
        raise InputError("--depth is used by --method fit|hybrid; DICE takes RGB")
    reader = FrameReader(video, start=start, end=end, stride=stride, fps=fps)
    depth_reader = None
    if depth is not None:
        depth_reader = DepthReader(depth, scale=depth_scale, size=reader.size)
    with contextlib.ExitStack() as stack:
        stack.callback(reader.close)
        if out is not None:
            from handface.io.files import output_lock, refuse_existing

            # held from before the models load: a second run into `out` is refused at once
            stack.enter_context(output_lock(Path(out)))
            refuse_existing(Path(out), overwrite)
        if tracker is None:
            tracker = make_tracker(method, checkpoint=checkpoint, focal=focal, config=config)
        kwargs = dict(
            fps=reader.fps,
            total=len(reader.indices) if reader.indices is not None else None,
            depth=None if depth_reader is None else depth_reader.depth,
            progress=progress,
            source=str(video),
        )
        if out is None:
            sequence = tracker.run(reader, **kwargs)
            sequence.warnings[:0] = list(reader.notes)
            return sequence
        return _track_to_folder(tracker, reader, Path(out), overwrite, meshes, kwargs)


def make_tracker(
    method: Literal["fit", "dice", "hybrid"] = "fit",
    *,
    checkpoint: str | os.PathLike | None = None,
    focal: float | None = None,
    config: TrackConfig | None = None,
) -> Tracker:
    """The tracker of ``method`` (see :func:`track_video`), with DICE weights ``checkpoint``
    (default: the shipped network) for ``dice`` and ``hybrid``."""
    if method not in ("fit", "dice", "hybrid"):
        raise InputError(f"--method {method}: tracking supports fit, dice and hybrid")
    config = config or TrackConfig(focal=focal)
    if method == "dice":
        from handface.track.dice_track import DiceTracker

        return DiceTracker(config, checkpoint=checkpoint)
    guide = None
    if method == "hybrid":
        from handface.dice.predictor import DicePredictor
        from handface.hybrid import dice_guide

        guide = dice_guide(DicePredictor(checkpoint, focal=focal))
    return Tracker(config, guide=guide)


def _track_to_folder(tracker, reader, out: Path, overwrite, meshes, kwargs) -> Sequence:
    from handface.io.files import atomic_output_dir
    from handface.io.sequence_folder import (
        MESH_FOLDER,
        OVERLAY_VIDEO,
        frame_meshes,
        write_sequence_files,
    )
    from handface.viz.sequence_overlay import OverlayVideoWriter, sequence_overlay_frame

    with atomic_output_dir(out, overwrite=overwrite) as staging:
        with OverlayVideoWriter(staging / OVERLAY_VIDEO, reader.fps) as writer:

            def sink(frame, capture, status) -> None:
                writer.write(sequence_overlay_frame(capture, status))
                if meshes:
                    frame_meshes(staging / MESH_FOLDER, frame.index, capture)

            sequence = tracker.run(reader, sink=sink, **kwargs)
        sequence.warnings[:0] = list(reader.notes)
        write_sequence_files(sequence, staging)
    return sequence
