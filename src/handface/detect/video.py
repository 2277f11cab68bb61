"""Stream the frames of a video (or a folder of images) and per-frame depth maps, one at a time.

:class:`FrameReader` is what ``handface track VIDEO --start S --end E --stride K`` reads: upright
8-bit RGB frames, decoded with PyAV one after the other (never the whole video at once), with
the container's display rotation applied as in :func:`~handface.detect.load_image`. A folder of
numbered images (``frame2.png`` before ``frame10.png``) works the same way, timed by ``fps``.

:class:`DepthReader` gives the matching depth maps of an RGB-D recording, in metres, from a
folder of per-frame ``.npy`` (metres) or 16-bit ``.png`` (millimetres by default) files.

Every problem with the input raises :class:`~handface.errors.InputError` with a one-line message
that names the file, including a video that breaks off part-way (truncated or corrupt).
"""

from __future__ import annotations

import math
import operator
import os
import re
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from jaxtyping import Float, UInt8

from handface.detect.images import VIDEO_SUFFIXES, _short, load_image, missing_file_message
from handface.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
"""File suffixes (lower case) of the frames in a folder read by :class:`FrameReader`."""

DEPTH_SUFFIXES = (".npy", ".png")
"""File suffixes (lower case) of the per-frame depth maps read by :class:`DepthReader`."""

DEFAULT_FPS = 30.0
"""Frame rate used for a folder of images, and for a video whose stream gives none."""


@dataclass(eq=False)
class VideoFrame:
    """One frame of a :class:`FrameReader`."""

    index: int
    """0-based position of the frame in the video (or in the sorted folder)."""
    time_s: float
    """Seconds since the first frame of the video: from the frame's timestamp when the stream
    has one (so variable frame rates are honoured), else ``index / fps``."""
    rgb: UInt8[np.ndarray, "H W 3"]
    """C-contiguous pixels of the upright frame (display rotation / EXIF orientation applied)."""


def natural_sort_key(name: str) -> tuple:
    """Sort key that orders the digit runs in a name by value, so ``frame2`` < ``frame10``.

    Example:
        >>> sorted(["f10.png", "f2.png", "F1.png"], key=natural_sort_key)
        ['F1.png', 'f2.png', 'f10.png']
    """
    parts = re.split(r"(\d+)", name)
    return tuple(int(part) if i % 2 else part.lower() for i, part in enumerate(parts)), name


class FrameReader:
    """Upright RGB uint8 frames of a video file or a folder of images, streamed one by one.

    Opening the reader checks the input (it decodes the first frame, which gives :attr:`size`);
    iterating yields :class:`VideoFrame` instances for frames ``start, start + stride, ...``
    before ``end``. Every iteration reopens the file, so a reader can be iterated several
    times. Frames before ``start`` and between strides are decoded (video codecs need them) but
    not converted to RGB. Use it as a context manager, or call :meth:`close`, to release the
    decoder when an iteration stops early.

    Args:
        path: a video (suffix in :data:`~handface.detect.VIDEO_SUFFIXES`) or a folder of
            images (suffix in :data:`IMAGE_SUFFIXES`, sorted with :func:`natural_sort_key`,
            all of the same size).
        start: index of the first frame to yield.
        end: index one past the last frame to yield (``None``: to the end of the video).
        stride: yield every ``stride``-th frame.
        fps: frame rate of a folder of images (default :data:`DEFAULT_FPS`). For a video it
            overrides the stream's rate, and ``time_s`` becomes ``index / fps``.

    Raises:
        InputError: missing path, an empty or undecodable file, no video stream, no decodable
            frame, a folder without images, invalid ``start`` / ``end`` / ``stride`` / ``fps``,
            ``start`` past the last frame. While iterating: a video that breaks off part-way
            ("truncated or corrupt after frame N"), an image of another size in a folder.

    Example:
        >>> with FrameReader("clip.mp4", start=10, stride=2) as reader:  # doctest: +SKIP
        ...     print(reader.size, reader.fps, reader.num_frames, reader.indices)
        ...     for frame in reader:
        ...         print(frame.index, round(frame.time_s, 3), frame.rgb.shape)
        (720, 1280) 25.0 14 range(10, 14, 2)
        10 0.4 (720, 1280, 3)
        12 0.48 (720, 1280, 3)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        start: int = 0,
        end: int | None = None,
        stride: int = 1,
        fps: float | None = None,
    ) -> None:
        self._source = os.fspath(path)
        self._start = _whole(start, "start", minimum=0)
        self._stride = _whole(stride, "stride", minimum=1)
        self._end = None if end is None else _whole(end, "end", minimum=0)
        if self._end is not None and self._end <= self._start:
            raise InputError(f"end ({self._end}) must be greater than start ({self._start})")
        if fps is not None:
            try:
                fps = float(fps)
            except (TypeError, ValueError):
                raise InputError(f"fps must be a number, not {fps!r}") from None
            if not (math.isfinite(fps) and fps > 0):
                raise InputError(f"fps must be a positive number, not {fps}")
        self._fps_override = fps
        self._notes: list[str] = []
        self._files: list[Path] | None = None
        self._quarter_turns = 0
        self._rotated = False
        self._live: weakref.WeakSet = weakref.WeakSet()

        file = Path(self._source)
        if not file.exists():
            raise InputError(missing_file_message(self._source, "file or folder"))
        if file.is_dir():
            self._open_folder(file)
        elif file.suffix.lower() in VIDEO_SUFFIXES:
            self._open_video(file)
        else:
            raise InputError(
                f"{self._source} is neither a video ({', '.join(VIDEO_SUFFIXES)}) nor a folder "
                "of images"
            )

        if self._num_frames is not None:
            if self._start >= self._num_frames:
                raise InputError(_beyond(self._start, self._source, self._num_frames))
            if self._end is not None and self._end > self._num_frames:
                self._notes.append(
                    f"{self._source}: end {self._end} is past the last frame; reading to frame "
                    f"{self._num_frames - 1}"
                )

    # ------------------------------------------------------------------------------ properties

    @property
    def source(self) -> str:
        """The path as given."""
        return self._source

    @property
    def fps(self) -> float:
        """Frames per second: ``fps`` if given, else the stream's rate (30 if it has none)."""
        return self._fps

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the upright frames in pixels."""
        return self._size

    @property
    def num_frames(self) -> int | None:
        """Frames in the video or images in the folder; ``None`` when the container does not
        store the count (Matroska / WebM)."""
        return self._num_frames

    @property
    def indices(self) -> range | None:
        """Indices of the frames an iteration yields; ``None`` when :attr:`num_frames` is."""
        if self._num_frames is None:
            return None
        stop = self._num_frames if self._end is None else min(self._end, self._num_frames)
        return range(self._start, stop, self._stride)

    @property
    def rotated(self) -> bool:
        """The frames were turned upright (display matrix of a video, EXIF of the first image)."""
        return self._rotated

    @property
    def notes(self) -> list[str]:
        """Things the user may want to know (rate assumed, end clamped, video ended early)."""
        return self._notes

    def __len__(self) -> int:
        """Number of frames an iteration yields (TypeError when :attr:`num_frames` is unknown)."""
        indices = self.indices
        if indices is None:
            raise TypeError(f"{self._source} does not store its frame count; iterate to count")
        return len(indices)

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        height, width = self._size
        return (
            f"FrameReader({self._source!r}, {width}x{height}, fps={self._fps:g}, "
            f"num_frames={self._num_frames}, indices={self.indices})"
        )

    # ------------------------------------------------------------------------------ iteration

    def __iter__(self) -> Iterator[VideoFrame]:
        frames = self._iter_folder() if self._files is not None else self._iter_video()
        self._live.add(frames)
        return frames

    def close(self) -> None:
        """Stop every iteration in progress and release its decoder (safe to call twice)."""
        for frames in list(self._live):
            frames.close()
        self._live = weakref.WeakSet()

    def __enter__(self) -> FrameReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ------------------------------------------------------------------------------ folders

    def _open_folder(self, folder: Path) -> None:
        try:
            names = [
                entry.name
                for entry in os.scandir(folder)
                if entry.is_file()
                and not entry.name.startswith(".")
                and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES
            ]
        except OSError as error:
            raise InputError(f"cannot list {self._source}: {_short(error)}") from None
        if not names:
            raise InputError(
                f"{self._source} holds no images ({', '.join(IMAGE_SUFFIXES)}); give a video or "
                "a folder of frames"
            )
        self._files = [folder / name for name in sorted(names, key=natural_sort_key)]
        self._num_frames = len(self._files)
        self._fps = DEFAULT_FPS if self._fps_override is None else self._fps_override
        first = load_image(self._files[0])
        self._size = first.size
        self._rotated = first.exif_rotated
        self._notes.extend(first.warnings)

    def _iter_folder(self) -> Iterator[VideoFrame]:
        assert self._files is not None
        for index in self.indices or ():
            loaded = load_image(self._files[index])
            if loaded.size != self._size:
                raise InputError(
                    f"{self._files[index]} is {_wxh(loaded.size)} but the first frame of "
                    f"{self._source} is {_wxh(self._size)}; all frames must have the same size"
                )
            yield VideoFrame(index=index, time_s=index / self._fps, rgb=loaded.rgb)

    # ------------------------------------------------------------------------------ videos

    def _open_video(self, file: Path) -> None:
        if file.stat().st_size == 0:
            raise InputError(f"cannot read {self._source} as a video: the file is empty (0 bytes)")
        container = self._open_container()
        try:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            self._num_frames = int(stream.frames or 0) or None
            try:
                first = next(container.decode(stream), None)
            except Exception as error:  # any decoder failure is the user's file
                raise InputError(
                    f"cannot read {self._source} as a video: {_av_message(error)}"
                ) from None
            if first is None:
                raise InputError(
                    f"cannot read {self._source} as a video: it has no decodable frames"
                )
            rotation = int(getattr(first, "rotation", 0) or 0)
            height, width = int(first.height), int(first.width)
        finally:
            container.close()
        if width == 0 or height == 0:
            raise InputError(f"cannot read {self._source} as a video: its frames have no pixels")

        if self._fps_override is not None:
            self._fps = self._fps_override
        elif rate is not None and float(rate) > 0:
            self._fps = float(rate)
        else:
            self._fps = DEFAULT_FPS
            self._notes.append(
                f"{self._source}: no frame rate in the stream; assuming {DEFAULT_FPS:g}"
            )
        # frame.rotation is the counter-clockwise angle the display matrix applies; np.rot90 with
        # k > 0 also turns counter-clockwise (a phone's "rotate=90" tag reads back as -90).
        self._quarter_turns = int(round(rotation / 90.0)) % 4
        self._rotated = bool(self._quarter_turns)
        self._size = (width, height) if self._quarter_turns % 2 else (height, width)

    def _open_container(self):
        try:
            import av
        except ImportError:
            raise InputError(
                f"cannot read {self._source} as a video: av is not installed (pip install av)"
            ) from None
        try:
            container = av.open(self._source)
        except Exception as error:  # any demuxer failure is the user's file
            raise InputError(
                f"cannot read {self._source} as a video: {_av_message(error)}"
            ) from None
        if not container.streams.video:
            kinds = sorted({stream.type for stream in container.streams})
            container.close()
            holds = f"only {' and '.join(kinds)}" if kinds else "no streams"
            raise InputError(
                f"{self._source} has no video stream ({holds}); give a video with pictures"
            )
        return container

    def _iter_video(self) -> Iterator[VideoFrame]:
        container = self._open_container()
        read = _PacketCount()
        try:
            stream = container.streams.video[0]
            decoded = _decode(container, stream, read)
            stored = (self._size[1], self._size[0]) if self._quarter_turns % 2 else self._size
            index, first_time, yielded, exhausted = -1, None, 0, False
            while self._end is None or index + 1 < self._end:
                try:
                    frame = next(decoded, None)
                except Exception as error:  # the file breaks off or holds garbage
                    if index < 0:
                        raise InputError(
                            f"cannot read {self._source} as a video: {_av_message(error)}"
                        ) from None
                    raise InputError(
                        f"{self._source} is truncated or corrupt after frame {index}: "
                        f"{_av_message(error)}"
                    ) from None
                if frame is None:
                    exhausted = True
                    break
                index += 1
                time = frame.time
                if index == 0:
                    first_time = time
                if index < self._start or (index - self._start) % self._stride:
                    continue
                if (int(frame.height), int(frame.width)) != stored:
                    raise InputError(
                        f"{self._source}: frame {index} is {frame.width}x{frame.height} but the "
                        f"first frame is {stored[1]}x{stored[0]}; re-encode the video at one size"
                    )
                try:
                    rgb = frame.to_ndarray(format="rgb24")
                except Exception as error:
                    raise InputError(
                        f"cannot convert frame {index} of {self._source} to RGB: "
                        f"{_av_message(error)}"
                    ) from None
                if self._quarter_turns:
                    rgb = np.rot90(rgb, k=self._quarter_turns)
                if self._fps_override is None and time is not None and first_time is not None:
                    time_s = float(time - first_time)
                else:
                    time_s = index / self._fps
                yielded += 1
                yield VideoFrame(index=index, time_s=time_s, rgb=np.ascontiguousarray(rgb))
        finally:
            container.close()

        if exhausted and self._num_frames is not None and index + 1 < self._num_frames:
            # The stream ran out before the frame count in its header. Either the file is cut
            # (its data stops at the end of the file, short of the packets the index lists) or
            # an edit list hides frames that are stored (all packets read, fewer frames shown).
            try:
                file_size = os.path.getsize(self._source)
            except OSError:
                file_size = None
            if read.packets < self._num_frames and file_size is not None and read.end >= file_size:
                raise InputError(
                    f"{self._source} is truncated or corrupt after frame {index}: its data ends "
                    f"there although it says it has {self._num_frames} frames"
                )
            note = (
                f"{self._source}: the video ended after frame {index} although it says it has "
                f"{self._num_frames} frames"
            )
            if note not in self._notes:
                self._notes.append(note)
        if yielded == 0 and index < self._start:
            raise InputError(_beyond(self._start, self._source, index + 1))


@dataclass
class _PacketCount:
    """What :func:`_decode` has read: packets with data, and the byte just past the last one."""

    packets: int = 0
    end: int = -1


def _decode(container, stream, read: _PacketCount) -> Iterator:
    """``container.decode(stream)``, counting the packets read (a truncation shows there)."""
    for packet in container.demux(stream):
        if packet.size:
            read.packets += 1
            if packet.pos is not None and packet.pos >= 0:
                read.end = max(read.end, int(packet.pos) + int(packet.size))
        yield from packet.decode()  # the last, empty packet flushes the decoder


class DepthReader:
    """Per-frame depth maps of an RGB-D recording, in metres, read when asked for.

    The folder holds one file per video frame, either ``.npy`` arrays (float: metres; integer:
    units of ``scale``) or single-channel 16-bit ``.png`` images (units of ``scale`` metres,
    millimetres by default); the ``i``-th file in :func:`natural_sort_key` order is frame ``i``.
    Zero means no measurement. NaN, infinite and negative values become 0 with a note.

    Args:
        path: the folder of depth maps (a depth *video* is not supported).
        scale: metres per unit of the integer files (0.001: millimetres).
        size: (height, width) every map must have, normally :attr:`FrameReader.size`
            (``None``: the size of the first map).

    Raises:
        InputError: missing path, a file instead of a folder, a folder without ``.npy`` or
            ``.png`` files (or mixing both), an unreadable map; from :meth:`depth`: an index
            out of range, a map of the wrong size or kind.

    Example:
        >>> frames = FrameReader("take1.mp4")  # doctest: +SKIP
        >>> depths = DepthReader("take1_depth/", size=frames.size)  # doctest: +SKIP
        >>> depths.depth(0).shape, depths.depth(0).dtype  # doctest: +SKIP
        ((480, 640), dtype('float32'))
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        scale: float = 0.001,
        size: tuple[int, int] | None = None,
    ) -> None:
        self._source = os.fspath(path)
        try:
            scale = float(scale)
        except (TypeError, ValueError):
            raise InputError(f"depth scale must be a number, not {scale!r}") from None
        if not (math.isfinite(scale) and scale > 0):
            raise InputError(f"depth scale must be a positive number of metres, not {scale}")
        self._scale = scale
        self._notes: list[str] = []

        folder = Path(self._source)
        if not folder.exists():
            raise InputError(f"no such folder: {self._source}")
        if not folder.is_dir():
            raise InputError(
                f"{self._source} is a file; give a folder of per-frame .npy (metres) or 16-bit "
                ".png depth maps"
            )
        try:
            names = [
                entry.name
                for entry in os.scandir(folder)
                if entry.is_file()
                and not entry.name.startswith(".")
                and Path(entry.name).suffix.lower() in DEPTH_SUFFIXES
            ]
        except OSError as error:
            raise InputError(f"cannot list {self._source}: {_short(error)}") from None
        if not names:
            raise InputError(f"{self._source} holds no depth maps (.npy or 16-bit .png files)")
        kinds = {Path(name).suffix.lower() for name in names}
        if len(kinds) > 1:
            raise InputError(
                f"{self._source} mixes .npy and .png depth maps; keep one kind, one file per frame"
            )
        self._files = [folder / name for name in sorted(names, key=natural_sort_key)]
        if size is None:
            size = self._read(0).shape
        self._size = (int(size[0]), int(size[1]))

    @property
    def source(self) -> str:
        """The folder as given."""
        return self._source

    @property
    def num_frames(self) -> int:
        """Number of depth maps (frames) in the folder."""
        return len(self._files)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) every depth map has."""
        return self._size

    @property
    def scale(self) -> float:
        """Metres per unit of the integer (16-bit PNG, integer ``.npy``) files."""
        return self._scale

    @property
    def notes(self) -> list[str]:
        """Things the user may want to know (invalid values set to 0), one per file."""
        return self._notes

    def __len__(self) -> int:
        return len(self._files)

    def __repr__(self) -> str:
        return f"DepthReader({self._source!r}, num_frames={self.num_frames}, size={self._size})"

    def depth(self, index: int) -> Float[np.ndarray, "H W"]:
        """The depth map of frame ``index`` in metres (float32, 0 where there is no depth).

        Example:
            >>> DepthReader("take1_depth/").depth(3).max()  # doctest: +SKIP
            np.float32(1.274)
        """
        index = operator.index(index)
        if not 0 <= index < len(self._files):
            raise InputError(
                f"no depth map for frame {index}: {self._source} has {len(self._files)} "
                f"(frames 0..{len(self._files) - 1})"
            )
        depth = self._read(index)
        if depth.shape != self._size:
            raise InputError(
                f"depth map {self._files[index]} is {_wxh(depth.shape)} but the video is "
                f"{_wxh(self._size)}; depth maps must be registered to the colour frames"
            )
        return depth

    def _read(self, index: int) -> np.ndarray:
        file = self._files[index]
        if file.suffix.lower() == ".npy":
            try:
                raw = np.load(file, allow_pickle=False)
            except Exception as error:  # truncated, pickled object arrays, not an .npy at all
                raise InputError(f"cannot read depth map {file}: {_short(error)}") from None
            if raw.ndim == 3 and raw.shape[2] == 1:
                raw = raw[..., 0]
            if raw.ndim != 2 or not (
                np.issubdtype(raw.dtype, np.floating) or np.issubdtype(raw.dtype, np.integer)
            ):
                raise InputError(
                    f"depth map {file} holds a {raw.dtype} array of shape {raw.shape}; expected "
                    "(H, W) numbers"
                )
            if np.issubdtype(raw.dtype, np.integer):
                depth = raw.astype(np.float64) * self._scale
            else:
                depth = raw.astype(np.float64)
        else:
            raw = _read_png16(file)
            depth = raw.astype(np.float64) * self._scale
        invalid = ~np.isfinite(depth) | (depth < 0)
        count = int(invalid.sum())
        if count:
            depth[invalid] = 0.0
            note = f"{file}: {count} NaN, infinite or negative depth values set to 0 (no depth)"
            if note not in self._notes:
                self._notes.append(note)
        return np.ascontiguousarray(depth, dtype=np.float32)


# --------------------------------------------------------------------------------------- helpers


def _whole(value, name: str, *, minimum: int) -> int:
    if isinstance(value, bool):
        raise InputError(f"{name} must be a whole number, not {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise InputError(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise InputError(f"{name} must be at least {minimum}, not {number}")
    return number


def _beyond(start: int, source: str, num_frames: int) -> str:
    return (
        f"start {start} is beyond the end: {source} has {num_frames} frames (0..{num_frames - 1})"
    )


def _av_message(error: BaseException) -> str:
    """An FFmpeg error's text without its errno and the C function it came from."""
    text = getattr(error, "strerror", None)
    if isinstance(text, str) and text.strip():
        return " ".join(text.split())
    return _short(error)


def _wxh(size: tuple[int, ...]) -> str:
    return f"{size[1]}x{size[0]}"


def _read_png16(file: Path) -> np.ndarray:
    import cv2

    try:
        data = np.fromfile(file, dtype=np.uint8)
    except OSError as error:
        raise InputError(f"cannot read depth map {file}: {_short(error)}") from None
    array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if array is None:
        raise InputError(f"cannot read depth map {file}: not a decodable PNG")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim != 2 or array.dtype != np.uint16:
        channels = 1 if array.ndim == 2 else array.shape[2]
        raise InputError(
            f"depth map {file} is a {8 * array.dtype.itemsize}-bit PNG with {channels} "
            "channel(s); depth maps are single-channel 16-bit PNGs"
        )
    return array
