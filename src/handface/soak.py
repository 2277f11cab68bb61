"""``handface bench soak``: memory under load, measured on real command runs.

Three runs of the command line, each in its own process (``python -m handface ...``), sampled
from outside through ``/proc/<pid>/status`` every :data:`SAMPLE_S` seconds: resident memory
(VmRSS) and its peak so far (VmHWM):

1. ``handface reconstruct`` over ``num`` photos in one call (copies of a few synthetic renders
   of people, JPEG): the resident memory when 100 and when all results are written, and the
   growth between them (``rss_growth_mb``: flat within noise means nothing accumulates per
   image);
2. one ``big_size`` JPEG (default 12000 x 9000, 108 megapixels): the peak of the whole run
   against :data:`BIG_JPEG_BOUND_MB`;
3. ``handface track`` of a ``minutes``-long 1080p H.264 video (30 fps, every 30th frame
   tracked: the decoder still reads every frame): resident memory in the second and in the
   last quarter of the run (``video_rss_growth_mb``: tracking is windowed, memory must not grow
   with the video's length).

Example:
    >>> figures = bench_soak(num=500, minutes=10.0)       # about 25 minutes  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from handface.errors import HandfaceError

SAMPLE_S = 0.25
"""Seconds between two memory samples of a running command."""
BIG_JPEG_BOUND_MB = 2000.0
"""The stated bound on the peak resident memory of ``handface reconstruct`` of one 12000 x 9000
JPEG: the capture methods work on a copy of at most 16 MP
(:data:`handface.detect.images.WORKING_MAX_PIXELS`), decoded at half scale, so the photo's own
324 MB of pixels are never held."""
VIDEO_FPS = 30
VIDEO_SIZE = (1920, 1080)
VIDEO_STRIDE = 30


def resident_mb(pid: int, field: str = "VmRSS") -> float | None:
    """Resident memory of process ``pid`` in MB (``VmRSS``, or its peak so far ``VmHWM``),
    ``None`` once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        return None
    return None


def run_sampled(
    args: list[str], on_sample: Callable[[float, float, float], None] | None = None
) -> tuple[int, float, float]:
    """Run ``python -m handface ARGS``; call ``on_sample(seconds, rss_mb, peak_mb)`` every
    :data:`SAMPLE_S`; return ``(exit status, seconds, peak RSS in MB)``. The peak is the last
    ``VmHWM`` seen (the peak of the running program; ``ru_maxrss`` would count the forking
    parent's memory, copied into the child before it ran handface)."""
    import tempfile

    start = time.perf_counter()
    peak = 0.0
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: progress bars fill pipes
        process = subprocess.Popen([sys.executable, "-m", "handface", *map(str, args)],
                                   stdout=subprocess.DEVNULL, stderr=errors)  # fmt: skip
        while True:
            pid, status, _ = os.wait4(process.pid, os.WNOHANG)
            if pid == process.pid:
                break
            peak = max(peak, resident_mb(process.pid, "VmHWM") or 0.0)
            rss = resident_mb(process.pid)
            if rss is not None and on_sample is not None:
                on_sample(time.perf_counter() - start, rss, peak)
            time.sleep(SAMPLE_S)
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        seconds = time.perf_counter() - start
        if process.returncode != 0:
            errors.seek(0)
            lines = errors.read().decode(errors="replace").strip().splitlines()
            raise HandfaceError(f"handface {args[0]} failed ({process.returncode}): "
                               f"{lines[-1] if lines else 'no message'}")  # fmt: skip
    return process.returncode, seconds, peak


def _faces(folder: Path, count: int) -> list[np.ndarray]:
    """``count`` renders of people (512 px) whose faces MediaPipe finds."""
    from handface.data.synth import SynthDataset
    from handface.synth.generate import generate

    data = SynthDataset(generate(folder, num=count, seed=5150, size=512, progress=False))
    return [(data[i].image.numpy() * 255.0 + 0.5).astype(np.uint8) for i in range(len(data))]


def _reconstruct_many(root: Path, faces: list[np.ndarray], num: int) -> dict[str, float]:
    from PIL import Image

    photos = root / "photos"
    photos.mkdir()
    originals = []
    for i, face in enumerate(faces[:num]):
        path = photos / f"face{i}.jpg"
        Image.fromarray(face).save(path, quality=90)
        originals.append(path)
    for i in range(len(originals), num):  # the same bytes under other names: no extra disk
        os.link(originals[i % len(originals)], photos / f"photo{i:04d}.jpg")
    out = root / "captures"
    samples: list[tuple[int, float, float]] = []  # (results written, RSS MB, peak RSS MB)

    def on_sample(_: float, rss: float, peak: float) -> None:
        done = (
            sum(1 for p in out.iterdir() if not p.name.endswith(".partial")) if out.is_dir() else 0
        )
        samples.append((done, rss, peak))

    _, seconds, peak = run_sampled(["reconstruct", *sorted(photos.iterdir()), "--out", out],
                                   on_sample)  # fmt: skip
    written = sum(1 for p in out.iterdir() if (p / "result.json").is_file())
    mark = mark_after(num)
    _, at_mark, peak_at_mark = next((s for s in samples if s[0] >= mark), (0, math.nan, math.nan))
    last_done, at_end, _ = samples[-1] if samples else (0, math.nan, math.nan)
    return {"images": float(written), "s_per_image": seconds / max(written, 1),
            "images_at_mark": float(mark), "rss_mb_at_mark": at_mark,
            "peak_rss_mb_at_mark": peak_at_mark, "rss_mb_at_end": at_end,
            "images_at_end": float(last_done), "rss_growth_mb": at_end - at_mark,
            "peak_rss_growth_mb": peak - peak_at_mark, "reconstruct_peak_rss_mb": peak}  # fmt: skip


def mark_after(num: int) -> int:
    """The number of results after which memory is first read: 100 of 500 or more (the figure
    the field quotes), a fifth of fewer, so the growth always spans most of the run.

    Example:
        >>> mark_after(500), mark_after(100), mark_after(3)
        (100, 20, 1)
    """
    return 100 if num >= 500 else max(1, num // 5)


def _big_jpeg(root: Path, face: np.ndarray, size: tuple[int, int]) -> dict[str, float]:
    import cv2
    from PIL import Image

    width, height = size
    big = cv2.resize(face, (height, height), interpolation=cv2.INTER_CUBIC)  # square: the face
    canvas = np.full((height, width, 3), 128, np.uint8)
    left = (width - height) // 2
    canvas[:, max(left, 0) : max(left, 0) + min(width, height)] = big[:, : min(width, height)]
    path = root / "big.jpg"
    Image.fromarray(canvas).save(path, quality=85)
    del big, canvas
    _, seconds, peak = run_sampled(["reconstruct", path, "--out", root / "big"])
    return {"big_jpeg_megapixels": width * height / 1e6, "big_jpeg_s": seconds,
            "big_jpeg_peak_rss_mb": peak, "big_jpeg_bound_mb": BIG_JPEG_BOUND_MB}  # fmt: skip


def _video(root: Path, face: np.ndarray, minutes: float) -> Path:
    """A ``minutes``-long 1080p H.264 video of ``face`` drifting slowly across the frame."""
    import av
    import cv2

    width, height = VIDEO_SIZE
    side = height
    face = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    path = root / "long.mp4"
    frames = max(1, round(minutes * 60 * VIDEO_FPS))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=VIDEO_FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "28"}
        canvas = np.zeros((height, width, 3), np.uint8)
        for t in range(frames):
            left = int((width - side) * (0.5 + 0.4 * math.sin(2 * math.pi * t / (20 * VIDEO_FPS))))
            canvas[:] = 0
            canvas[:, left : left + side] = face
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _track_long(root: Path, face: np.ndarray, minutes: float) -> dict[str, float]:
    video = _video(root, face, minutes)
    samples: list[tuple[float, float]] = []
    _, seconds, peak = run_sampled(
        ["track", video, "--out", root / "track", "--stride", VIDEO_STRIDE],
        lambda s, rss, _: samples.append((s, rss)),
    )
    times = np.array([s for s, _ in samples])
    rss = np.array([r for _, r in samples])

    def quarter(k: int) -> float:
        chosen = (times >= seconds * k / 4) & (times < seconds * (k + 1) / 4)
        return float(rss[chosen].mean()) if chosen.any() else math.nan

    return {"video_minutes": minutes, "video_frames_tracked": math.ceil(minutes * 60 * VIDEO_FPS
                                                                       / VIDEO_STRIDE),
            "video_s": seconds, "video_rss_mb_q2": quarter(1), "video_rss_mb_q4": quarter(3),
            "video_rss_growth_mb": quarter(3) - quarter(1), "video_peak_rss_mb": peak}  # fmt: skip


def bench_soak(
    num: int = 500, minutes: float = 10.0, big_size: tuple[int, int] = (12000, 9000)
) -> dict[str, float]:
    """The three soak runs of the module docstring; figures in MB and seconds."""
    import tempfile

    from handface.errors import InputError

    if num < 1 or minutes <= 0:
        raise InputError("bench soak needs --num >= 1 images and --minutes > 0 of video")
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="handface-soak-") as tmp:
        root = Path(tmp)
        faces = _faces(root / "faces", 4)
        for name, part in (("many", lambda d: _reconstruct_many(d, faces, num)),
                           ("big", lambda d: _big_jpeg(d, faces[0], big_size)),
                           ("video", lambda d: _track_long(d, faces[0], minutes))):  # fmt: skip
            folder = root / name
            folder.mkdir()
            figures.update(part(folder))
    return figures
