"""Load one image (or one frame of a video) as upright 8-bit RGB for detection and fitting.

:func:`load_image` accepts what users actually have: RGB, RGBA / LA (composited over white, so a
transparent background does not turn black), grayscale, palette and bilevel images, 16-bit
PNGs (scaled to 8 bit with rounding), CMYK JPEGs, and EXIF-rotated photos (the orientation is
applied, so pixel coordinates refer to the upright image). Images of more than ``max_pixels``
come back as a downscaled working copy (a JPEG is decoded at a reduced scale, so the full image
is never held in memory) with the file's size in :attr:`LoadedImage.full_size`: the capture
methods work on at most :data:`WORKING_MAX_PIXELS` and report their results in the pixels of
the whole photo.

Videos (chosen by suffix, see :data:`VIDEO_SUFFIXES`) give a single frame, the middle one unless
``video_frame`` is given; ``handface track`` is the command that captures every frame. The
container's display rotation (phones record portrait video as rotated landscape) is applied.

Every problem with the input raises :class:`~handface.errors.InputError` with a one-line message.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from jaxtyping import UInt8

from handface.errors import InputError

WORKING_MAX_PIXELS = 16_000_000
"""The most pixels a capture method works on (a 4618 x 3464 copy of a 12000 x 9000 photo): the
detector, the fit and DICE see no more detail than this, and the memory of one capture stays
near 1.5 GB whatever the photo's size."""

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg")
"""File suffixes (lower case) read as videos; everything else is decoded as an image."""

_EXIF_IFD = 0x8769
_ORIENTATION = 0x0112
_FOCAL_LENGTH = 0x920A
_FOCAL_LENGTH_35MM = 0xA405


@dataclass
class LoadedImage:
    """An upright 8-bit RGB image and what the file says about its camera."""

    rgb: UInt8[np.ndarray, "H W 3"]
    """C-contiguous pixels of the upright image (EXIF orientation / display rotation applied)."""
    source: str | None
    """The path as given (``None``: the pixels were given as an array)."""
    focal_35mm: float | None = None
    """EXIF ``FocalLengthIn35mmFilm`` in millimetres, when present and positive."""
    focal_mm: float | None = None
    """EXIF ``FocalLength`` (of the real lens, in millimetres), when present and positive."""
    exif_rotated: bool = False
    """An orientation other than identity was applied (EXIF for images, display matrix for
    videos), so ``rgb`` differs in layout from the stored pixels."""
    frame_index: int | None = None
    """Videos only: the 0-based index of the frame in ``rgb``."""
    num_frames: int | None = None
    """Videos only: how many frames the video has."""
    warnings: list[str] = field(default_factory=list)
    """Things the user may want to know (transparency composited, frame chosen, ...)."""
    full_size: tuple[int, int] | None = None
    """(height, width) of the upright image itself when ``rgb`` is a downscaled working copy
    (it had more than ``max_pixels``); ``None`` when ``rgb`` is the image itself."""

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the image itself (:attr:`full_size`, else :attr:`size`)."""
        return self.full_size or self.size

    @property
    def scale(self) -> tuple[float, float]:
        """``(sx, sy)``: the working copy's size over the image's, per axis (1 at full size)."""
        (height, width), (full_height, full_width) = self.size, self.image_size
        return width / full_width, height / full_height


def working_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """``(width, height)`` scaled by one factor to at most ``max_pixels`` pixels (unchanged when
    already within).

    Example:
        >>> working_size(12000, 9000, WORKING_MAX_PIXELS), working_size(640, 480, 10**6)
        ((4618, 3464), (640, 480))
    """
    if width * height <= max_pixels:
        return width, height
    factor = math.sqrt(max_pixels / (width * height))
    return max(1, math.floor(width * factor)), max(1, math.floor(height * factor))


def _downscaled(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``rgb`` resized to ``size`` = (width, height) with area averaging."""
    import cv2

    if (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))


def image_input(
    image: str | os.PathLike | UInt8[np.ndarray, "H W 3"], max_pixels: int | None = None
) -> LoadedImage:
    """What a capture method was given: a path (read with :func:`load_image`) or RGB pixels,
    as a working copy of at most ``max_pixels`` (default :data:`WORKING_MAX_PIXELS`;
    :attr:`LoadedImage.full_size` says the size of the image itself).

    Example:
        >>> given = image_input(np.zeros((4, 6, 3), np.uint8))
        >>> given.size, given.source
        ((4, 6), None)
    """
    max_pixels = WORKING_MAX_PIXELS if max_pixels is None else max_pixels
    if isinstance(image, np.ndarray):
        from handface.detect.mediapipe_detector import as_rgb_uint8

        try:
            rgb = as_rgb_uint8(image)
        except ValueError as error:
            raise InputError(f"cannot use the array as an image: {error}") from None
        height, width = rgb.shape[:2]
        return _working_copy(LoadedImage(rgb=rgb, source=None), (width, height), max_pixels)
    if not isinstance(image, str | os.PathLike):
        raise InputError(
            f"expected an image path or an RGB uint8 array, got {type(image).__name__}"
        )
    return load_image(image, max_pixels=max_pixels)


def _working_copy(loaded: LoadedImage, full: tuple[int, int], max_pixels: int) -> LoadedImage:
    """``loaded`` (an image of ``full`` = (width, height), its pixels possibly already decoded
    smaller) brought to :func:`working_size`, with :attr:`LoadedImage.full_size` and a warning
    when that is smaller than the image."""
    size = working_size(*full, max_pixels)
    if size == full:
        return loaded
    loaded.rgb = _downscaled(loaded.rgb, size)
    loaded.full_size = (full[1], full[0])
    loaded.warnings.insert(0, (
        f"{loaded.source or 'the image'}: very large image ({full[0]}x{full[1]} pixels): "
        f"captured on a {size[0]}x{size[1]} copy; the camera and 2D points refer to the whole "
        "image"
    ))  # fmt: skip
    return loaded


def load_image(
    path: str | os.PathLike, *, video_frame: int | None = None, max_pixels: int | None = None
) -> LoadedImage:
    """Read an image or one video frame as upright RGB uint8.

    Args:
        path: an image file (anything Pillow decodes) or a video (suffix in
            :data:`VIDEO_SUFFIXES`).
        video_frame: for videos, the 0-based frame to return (default: the middle frame). Giving
            it for a still image is an error.
        max_pixels: an image or frame with more pixels comes back downscaled to this many (see
            :attr:`LoadedImage.full_size`); a JPEG is decoded at a reduced scale. ``None``: the
            full image.

    Raises:
        InputError: missing path, a directory, an empty or undecodable file, an image without
            pixels, ``video_frame`` out of range or given for a still image.

    Example:
        >>> loaded = load_image("portrait.jpg")  # doctest: +SKIP
        >>> loaded.rgb.shape, loaded.focal_35mm  # doctest: +SKIP
        ((1024, 820, 3), 28.0)
    """
    source = os.fspath(path)
    file = Path(source)
    if not file.exists():
        raise InputError(missing_file_message(source))
    if file.is_dir():
        raise InputError(f"{source} is a directory; give an image or video file")
    if file.stat().st_size == 0:
        raise InputError(f"cannot read {source} as an image: the file is empty (0 bytes)")
    if file.suffix.lower() in VIDEO_SUFFIXES:
        loaded = _load_video_frame(file, source, video_frame)
        height, width = loaded.size
        return _working_copy(loaded, (width, height), max_pixels) if max_pixels else loaded
    return _load_still(file, source, video_frame, max_pixels)


def missing_file_message(source: str, what: str = "file") -> str:
    """``no such file: PATH``, or for a symbolic link that leads nowhere (a loop, a missing
    target) what it is, since ``ls`` lists it."""
    if os.path.islink(source):
        return (
            f"{source} is a symbolic link that leads nowhere (a loop or a missing target); "
            f"give the {what} itself"
        )
    return f"no such {what}: {source}"


def exif_focal_lengths(pil_image) -> tuple[float | None, float | None]:
    """``(focal_35mm, focal_mm)`` from a PIL image's EXIF; ``None`` where absent or not positive.

    Both tags live in the Exif IFD (0x8769); some writers put them in IFD0, which is read too.
    """
    try:
        exif = pil_image.getexif()
    except Exception:  # broken EXIF must not stop loading
        return None, None
    try:
        exif_ifd = exif.get_ifd(_EXIF_IFD)
    except Exception:
        exif_ifd = {}

    def positive(tag: int) -> float | None:
        value = exif_ifd.get(tag, exif.get(tag))
        if isinstance(value, tuple | list):  # (numerator, denominator) from older writers
            value = value[0] / value[1] if len(value) == 2 and value[1] else None
        try:
            number = float(value)
        except (TypeError, ValueError, ZeroDivisionError):
            return None
        return number if np.isfinite(number) and number > 0 else None

    return positive(_FOCAL_LENGTH_35MM), positive(_FOCAL_LENGTH)


def composite_over_white(
    color: UInt8[np.ndarray, "H W C"], alpha: UInt8[np.ndarray, "H W"]
) -> UInt8[np.ndarray, "H W C"]:
    """``color * a + 255 * (1 - a)`` with ``a = alpha / 255``, rounded to uint8."""
    a = alpha.astype(np.float32)[..., None] / 255.0
    out = color.astype(np.float32) * a + 255.0 * (1.0 - a)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------- stills


def _load_still(
    file: Path, source: str, video_frame: int | None, max_pixels: int | None
) -> LoadedImage:
    from PIL import Image, UnidentifiedImageError

    notes: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                stored = (image.width, image.height)
                target = working_size(*stored, max_pixels) if max_pixels else stored
                if target != stored and image.format == "JPEG":
                    image.draft(image.mode, target)  # DCT scaling: 1/2, 1/4 or 1/8, >= target
                image.load()
                decoded = image.size  # (width, height) as stored, reduced by the draft
                loaded = _decode_still(image, file, source, video_frame, notes)
        if target != stored:
            turned = loaded.size != decoded[::-1]  # EXIF orientation swapped the axes
            return _working_copy(loaded, stored[::-1] if turned else stored, max_pixels)
        if any(issubclass(w.category, Image.DecompressionBombWarning) for w in caught):
            height, width = loaded.rgb.shape[:2]
            notes.insert(0, f"{source}: very large image ({width}x{height} pixels)")
        return loaded
    except Image.DecompressionBombError:
        raise InputError(
            f"cannot read {source} as an image: it has more pixels than Pillow allows "
            f"({Image.MAX_IMAGE_PIXELS * 2:,}); downscale it first"
        ) from None
    except UnidentifiedImageError:
        raise InputError(
            f"cannot read {source} as an image: not a recognised image format "
            f"(convert it to PNG or JPEG; videos must end in {', '.join(VIDEO_SUFFIXES)})"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise InputError(f"cannot read {source} as an image: {_short(error)}") from None


def _decode_still(image, file: Path, source: str, video_frame: int | None, notes: list[str]):
    from PIL import ImageOps

    if video_frame is not None:
        raise InputError(f"{source} is a still image; video_frame is only for videos")
    if image.width == 0 or image.height == 0:
        raise InputError(f"cannot read {source} as an image: it has no pixels")
    if getattr(image, "n_frames", 1) > 1:
        notes.append(f"{source}: has {image.n_frames} frames; using the first")

    focal_35mm, focal_mm = exif_focal_lengths(image)
    exif_rotated = False
    try:
        orientation = int(image.getexif().get(_ORIENTATION, 1) or 1)
    except Exception:  # broken EXIF must not stop loading
        orientation = 1
    if orientation in range(2, 9):
        try:
            image = ImageOps.exif_transpose(image)
            exif_rotated = True
        except Exception as error:  # keep the stored layout rather than fail
            notes.append(f"{source}: EXIF orientation {orientation} not applied ({_short(error)})")

    rgb, converted = _to_rgb8(image, file)
    if converted:
        notes.append(f"{source}: {converted}")
    return LoadedImage(
        rgb=np.ascontiguousarray(rgb),
        source=source,
        focal_35mm=focal_35mm,
        focal_mm=focal_mm,
        exif_rotated=exif_rotated,
        warnings=notes,
    )


def _to_rgb8(image, file: Path) -> tuple[np.ndarray, str]:
    """PIL image of any mode -> (H, W, 3) uint8 and a note about transparency ("" if none)."""
    mode = image.mode
    if mode in ("RGB", "RGBA") and _png_bit_depth(file) == 16:
        # Pillow keeps only the high byte of 16-bit colour PNGs; decode with OpenCV to round.
        deep = _read_png16(file)
        if deep is not None and deep.shape[:2] == (image.height, image.width):
            return _finish(_scale16(deep))
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image).astype(np.float64)
        return _finish(np.rint(np.clip(values, 0, 65535) / 257.0).astype(np.uint8))
    if mode == "F":
        values = np.asarray(image).astype(np.float64)
        values = np.nan_to_num(values)
        scale = 255.0 if values.max(initial=0.0) <= 1.0 else 1.0
        return _finish(np.rint(np.clip(values * scale, 0, 255)).astype(np.uint8))
    if mode in ("P", "PA"):
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in mode else "RGB")  # CMYK, YCbCr, LAB, RGBa, ...
    return _finish(np.asarray(image))


def _finish(array: np.ndarray) -> tuple[np.ndarray, str]:
    """(H, W[, C]) uint8 with C in 1..4 -> RGB, compositing any alpha over white."""
    if array.ndim == 2:
        array = array[..., None]
    channels = array.shape[2]
    note = ""
    if channels in (2, 4):
        color, alpha = array[..., :-1], array[..., -1]
        if (alpha < 255).any():
            array = composite_over_white(color, alpha)
            note = "transparent pixels composited over white"
        else:
            array = color
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[..., :3]), note


def _scale16(array: np.ndarray) -> np.ndarray:
    return np.rint(array.astype(np.float64) / 257.0).astype(np.uint8)


def _png_bit_depth(file: Path) -> int | None:
    try:
        with open(file, "rb") as handle:
            header = handle.read(25)
    except OSError:
        return None
    if len(header) == 25 and header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR":
        return header[24]
    return None


def _read_png16(file: Path) -> np.ndarray | None:
    """16-bit PNG as (H, W, C) uint16 in RGB(A) order, or None if OpenCV cannot decode it."""
    import cv2

    data = np.fromfile(file, dtype=np.uint8)
    array = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if array is None or array.dtype != np.uint16:
        return None
    if array.ndim == 3 and array.shape[2] == 3:
        array = array[..., ::-1]
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[..., [2, 1, 0, 3]]
    return array


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."


# --------------------------------------------------------------------------------------- videos


def _load_video_frame(file: Path, source: str, video_frame: int | None) -> LoadedImage:
    try:
        import av
        import imageio.v3 as iio
    except ImportError as error:
        raise InputError(
            f"cannot read {source} as a video: {error.name or 'av'} is not installed "
            "(pip install av imageio)"
        ) from None

    from handface.detect.video import _av_message

    try:  # what the container holds, in FFmpeg's words (imageio's plugin errors say less)
        with av.open(str(file)) as container:
            kinds = sorted({stream.type for stream in container.streams})
    except Exception as error:  # any demuxer failure is the user's file
        raise InputError(f"cannot read {source} as a video: {_av_message(error)}") from None
    if "video" not in kinds:
        holds = f"only {' and '.join(kinds)}" if kinds else "no streams"
        raise InputError(f"{source} has no video stream ({holds}); give a video with pictures")
    try:
        with iio.imopen(file, "r", plugin="pyav") as handle:
            num_frames = int(handle.properties().shape[0])
    except Exception as error:  # any decoder failure is the user's file
        raise InputError(f"cannot read {source} as a video: {_short(error)}") from None

    try:
        with av.open(str(file)) as container:
            stream = container.streams.video[0]
            if num_frames <= 0:  # Matroska / WebM do not store the count: count packets
                num_frames = sum(1 for packet in container.demux(stream) if packet.size > 0)
                container.seek(0)
            first = next(container.decode(stream), None)
            rotation = int(getattr(first, "rotation", 0) or 0) if first is not None else 0
    except Exception as error:
        raise InputError(f"cannot read {source} as a video: {_short(error)}") from None
    if num_frames <= 0:
        raise InputError(f"cannot read {source} as a video: it has no frames")

    index = num_frames // 2 if video_frame is None else int(video_frame)
    if not 0 <= index < num_frames:
        raise InputError(
            f"video_frame {video_frame} is out of range: {source} has {num_frames} frames "
            f"(0..{num_frames - 1})"
        )
    try:
        frame = iio.imread(file, plugin="pyav", index=index)
    except Exception as error:
        if video_frame is None:  # the middle frame of the count the file declares is missing
            raise InputError(
                f"{source} is truncated or corrupt: it says it has {num_frames} frames but "
                f"frame {index} cannot be read"
            ) from None
        raise InputError(
            f"cannot read frame {index} of {source}: {_short(error)}; try a smaller video_frame"
        ) from None
    if frame.ndim != 3 or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(f"cannot read {source} as a video: frame {index} has no pixels")

    # frame.rotation is the counter-clockwise angle the display matrix applies; np.rot90 with
    # k > 0 also turns counter-clockwise (a phone's "rotate=90" tag reads back as -90).
    quarter_turns = int(round(rotation / 90.0)) % 4
    if quarter_turns:
        frame = np.rot90(frame, k=quarter_turns)
    return LoadedImage(
        rgb=np.ascontiguousarray(frame[..., :3], dtype=np.uint8),
        source=source,
        exif_rotated=bool(quarter_turns),
        frame_index=index,
        num_frames=num_frames,
        warnings=[
            f"video: captured frame {index} of {num_frames}; `handface track` captures every frame"
        ],
    )
