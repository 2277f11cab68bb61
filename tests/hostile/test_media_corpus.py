"""Hostile media inputs (issue 14): broken, odd and adversarial photos, videos and depth maps
given to ``handface reconstruct``, ``track``, ``avatar``, ``view``, ``export`` and to
``handface.reconstruct``. Every file is generated here (PIL, numpy, PyAV, raw bytes).

Each case records its outcome in :data:`hostile.OUTCOMES` under a unique id. A refusal is one
``handface: error:`` line with exit code 2, no traceback, nothing left in the output's parent
and nothing there changed. Valid but odd images (1x1, 16-bit, CMYK, gray + alpha, palette,
animated) are decoded as :mod:`handface.detect.images` documents (checked on their pixels);
as they show no face, ``reconstruct`` then refuses them with its documented "no face or hand
found" line. Depth maps with NaN, infinite or negative values are sanitised (set to 0 = no
depth, with a warning in result.json), as ``reconstruct --depth`` documents.
"""

from __future__ import annotations

import io
import json
import os
import re
import resource
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import handface
from handface.detect.images import load_image
from handface.errors import HandfaceError, InputError
from hostile import Result, assert_refused, leftovers, record, run_cli, tree_digest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hand_touching_ear.jpg"
CAPTURE_FILES = {"result.json", "face.ply", "params.npz", "overlay.png"}

# ------------------------------------------------------------------------------- generators


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + data))
    return struct.pack(">I", len(data)) + kind + data + crc


def png_bomb(path: Path, width: int = 40000, height: int = 40000) -> None:
    """A 69-byte PNG whose header claims ``width`` x ``height`` RGB pixels (4.8 GB decoded)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat)
                     + _chunk(b"IEND", b""))  # fmt: skip


def jpeg_bomb(path: Path, side: int = 60000) -> None:
    """An 8x8 JPEG whose frame header (SOF0) is patched to claim ``side`` x ``side``."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 90, 90)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    at = data.find(b"\xff\xc0")
    data[at + 5 : at + 9] = struct.pack(">HH", side, side)
    path.write_bytes(bytes(data))


def write_video(path: Path, frames: int = 8, size: tuple[int, int] = (64, 48), *,
                noise: bool = False, faststart: bool = False) -> None:  # fmt: skip
    """An MPEG-4 video of ``frames`` frames (grey ramps, or noise that compresses badly)."""
    import av

    rng = np.random.default_rng(0)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if frames == 0:
            container.start_encoding()  # the header of a video that never got a frame
        for i in range(frames):
            rgb = (rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8) if noise
                   else np.full((size[1], size[0], 3), (40 + 20 * i) % 255, np.uint8))  # fmt: skip
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None) if frames else ():
            container.mux(packet)


def write_audio_only(path: Path) -> None:
    """An MP4 holding a quarter second of AAC silence and no video stream."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        stream.layout = "mono"
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")  # fmt: skip
            frame.sample_rate, frame.pts = 44100, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _cut(source: Path, target: Path, share: float = 0.5) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * share)])
    return target


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """The generated corpus: name -> path (all in one read-only-by-convention folder)."""
    folder = tmp_path_factory.mktemp("media")
    files: dict[str, Path] = {}

    def add(name: str, file: str) -> Path:
        files[name] = folder / file
        return files[name]

    add("empty_jpg", "empty.jpg").write_bytes(b"")
    add("empty_png", "empty.png").write_bytes(b"")
    add("empty_mp4", "empty.mp4").write_bytes(b"")
    gradient = np.linspace(0, 255, 64 * 48 * 3).reshape(48, 64, 3).astype(np.uint8)
    noise = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(gradient).save(add("whole_jpg", "whole.jpg"), quality=95)
    Image.fromarray(noise).save(add("whole_png", "whole.png"))
    _cut(files["whole_jpg"], add("cut_jpg", "cut.jpg"))
    _cut(files["whole_png"], add("cut_png", "cut.png"))
    add("text_jpg", "notes.jpg").write_text("not a photo\nrm -rf /\n")
    add("text_mp4", "notes.mp4").write_text("not a video\n")
    add("folder_jpg", "folder.jpg").mkdir()
    png_bomb(add("bomb_png", "bomb.png"))
    jpeg_bomb(add("bomb_jpg", "bomb.jpg"))
    loop_a, loop_b = add("loop", "loop_a.jpg"), folder / "loop_b.jpg"
    os.symlink(loop_b.name, loop_a)
    os.symlink(loop_a.name, loop_b)
    os.symlink("loop_a.mp4", add("loop_mp4", "loop_b.mp4"))
    os.symlink("loop_b.mp4", folder / "loop_a.mp4")

    # valid but odd images (their decoded pixels are checked in the tests)
    Image.new("RGB", (1, 1), (200, 10, 10)).save(add("one_pixel", "one_pixel.png"))
    import cv2

    deep = np.empty((24, 32, 3), np.uint16)
    deep[...] = (65535, 32896, 0)  # RGB; 32896 / 257 = 128
    cv2.imwrite(str(add("png16", "deep16.png")), deep[..., ::-1])  # OpenCV writes BGR
    Image.new("CMYK", (32, 24), (0, 255, 255, 0)).save(add("cmyk", "cmyk.jpg"), quality=95)
    gray_alpha = np.zeros((24, 32, 2), np.uint8)
    gray_alpha[:, 16:, 1] = 255  # left half transparent, right half opaque black
    Image.fromarray(gray_alpha, "LA").save(add("gray_alpha", "gray_alpha.png"))
    palette = Image.new("P", (32, 24), 1)
    palette.putpalette([255, 0, 0, 0, 255, 0])
    palette.save(add("palette", "palette.png"))
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (32, 24), c) for c in colours]
    frames[0].save(add("gif", "animated.gif"), save_all=True, append_images=frames[1:],
                   duration=100, loop=0)  # fmt: skip
    frames[0].save(add("apng", "animated.png"), save_all=True, append_images=frames[1:],
                   duration=100, loop=0)  # fmt: skip

    # a photo with a face and no hand (the example with its hand painted out): captures work
    face = load_image(EXAMPLE).rgb[60:230, 200:330].copy()
    face[:, 122:] = 128
    Image.fromarray(face).save(add("face", "face.png"))
    files["face_size"] = face.shape[:2]  # type: ignore[assignment]

    # videos
    write_video(add("video", "clip.mp4"))
    write_video(add("zero_frames", "zero_frames.mp4"), frames=0)
    write_video(folder / "noise.mp4", frames=12, size=(96, 64), noise=True)
    _cut(folder / "noise.mp4", add("cut_mp4", "cut.mp4"))  # its index (moov) is at the end
    write_video(folder / "fast.mp4", frames=12, size=(96, 64), noise=True, faststart=True)
    _cut(folder / "fast.mp4", add("cut_faststart", "cut_faststart.mp4"))  # index first
    write_audio_only(add("audio_only", "audio_only.mp4"))
    frames_folder = add("broken_frames", "frames")
    frames_folder.mkdir()
    _cut(files["whole_png"], frames_folder / "0001.png")
    return files


def refused(case: str, args: list, parent: Path, *, match: str | None = None,
            in_subprocess: bool = False, keep_progress: bool = True) -> Result:  # fmt: skip
    """Run ``handface ARGS`` and assert the refusal contract; ``parent``: the folder the output
    would go to (nothing may appear or change in it)."""
    parent.mkdir(parents=True, exist_ok=True)
    before, digest = set(os.listdir(parent)), tree_digest(parent)
    result = run_cli(args, in_subprocess=in_subprocess, timeout=300)
    if not keep_progress:
        result = _without_progress_bars(result)
    partial = bool(leftovers(parent, before)) or tree_digest(parent) != digest
    assert_refused(case, result, match=match, partial=partial)
    return result


_BAR = re.compile(r"^\s*\w+:\s+\d+%\|[^\n]*\n?")


def _without_progress_bars(result: Result) -> Result:
    """stderr less tqdm's progress bar: its redraws, the blanks that erase it (each
    ``\\r``-separated) and the finished bar it leaves; the messages remain."""
    parts = (_BAR.sub("", part) for part in result.err.split("\r"))
    return Result(result.code, result.out, "".join(p for p in parts if p.strip(" ")))


# ------------------------------------------------------------------ reconstruct: broken files

BROKEN_IMAGES = [
    ("reconstruct-empty-jpg", "empty_jpg", "the file is empty (0 bytes)"),
    ("reconstruct-empty-png", "empty_png", "the file is empty (0 bytes)"),
    ("reconstruct-truncated-jpg", "cut_jpg", "cannot read"),
    ("reconstruct-truncated-png", "cut_png", "cannot read"),
    ("reconstruct-text-named-jpg", "text_jpg", "not a recognised image format"),
    ("reconstruct-directory-as-image", "folder_jpg", "is a folder"),
    ("reconstruct-symlink-loop", "loop", "symbolic link that leads nowhere"),
    ("reconstruct-zero-frame-mp4", "zero_frames", "has no video stream"),
    ("reconstruct-truncated-mp4", "cut_mp4", "cannot read"),
    ("reconstruct-truncated-faststart-mp4", "cut_faststart", "is truncated or corrupt"),
    ("reconstruct-audio-only-mp4", "audio_only", "has no video stream (only audio)"),
]


@pytest.mark.parametrize(("case", "name", "match"), BROKEN_IMAGES,
                         ids=[c[0] for c in BROKEN_IMAGES])  # fmt: skip
def test_reconstruct_refuses_broken_media(media, tmp_path, case, name, match):
    result = refused(case, ["reconstruct", media[name], "--out", tmp_path / "out"], tmp_path,
                     match=match)  # fmt: skip
    assert str(media[name]) in result.err  # the message names the file


@pytest.mark.parametrize("name", ["bomb_png", "bomb_jpg"])
def test_decompression_bombs_are_refused_from_the_header(media, tmp_path, name):
    # refused on the header alone: the process's peak memory does not grow by the gigabytes
    # that decoding 40000x40000 (60000x60000) pixels takes
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(InputError, match="more pixels than Pillow allows"):
        load_image(media[name])
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 200_000
    case = f"reconstruct-decompression-bomb-{name.split('_')[1]}"
    refused(case, ["reconstruct", media[name], "--out", tmp_path / "out"], tmp_path,
            match="downscale it first")  # fmt: skip


# ----------------------------------------------------------------- reconstruct: odd but valid


def _rgb(loaded, y: int, x: int) -> tuple[int, ...]:
    return tuple(int(v) for v in loaded.rgb[y, x])


ODD_IMAGES = [  # case, file, check of the decoded pixels, a note the loader must give
    ("reconstruct-1x1-image", "one_pixel", lambda im: im.size == (1, 1)
     and _rgb(im, 0, 0) == (200, 10, 10), None),
    ("reconstruct-16-bit-png", "png16", lambda im: im.size == (24, 32)
     and _rgb(im, 5, 5) == (255, 128, 0), None),
    ("reconstruct-cmyk-jpeg", "cmyk", lambda im: im.size == (24, 32)
     and im.rgb[..., 0].min() > 200 and im.rgb[..., 1:].max() < 60, None),
    ("reconstruct-gray-alpha-png", "gray_alpha", lambda im: _rgb(im, 3, 3) == (255, 255, 255)
     and _rgb(im, 3, 20) == (0, 0, 0), "transparent pixels composited over white"),
    ("reconstruct-palette-png", "palette", lambda im: _rgb(im, 0, 0) == (0, 255, 0), None),
    ("reconstruct-animated-gif", "gif", lambda im: _rgb(im, 4, 4) == (255, 0, 0),
     "has 3 frames; using the first"),
    ("reconstruct-animated-png", "apng", lambda im: _rgb(im, 4, 4) == (255, 0, 0),
     "has 3 frames; using the first"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "name", "pixels", "note"), ODD_IMAGES,
                         ids=[c[0] for c in ODD_IMAGES])  # fmt: skip
def test_odd_but_valid_images_are_decoded_then_reach_the_detector(media, tmp_path, case, name,
                                                                  pixels, note):  # fmt: skip
    """Documented: the loader takes these formats (the first frame of an animation, with a
    note); a picture without a face then ends in reconstruct's "no face or hand found" line."""
    loaded = load_image(media[name])
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.ndim == 3 and loaded.rgb.shape[2] == 3
    assert pixels(loaded), loaded.rgb[:2, :2]
    if note is not None:
        assert any(note in warning for warning in loaded.warnings), loaded.warnings
    refused(case, ["reconstruct", media[name], "--out", tmp_path / "out"], tmp_path,
            match="no face or hand found")  # fmt: skip


# ------------------------------------------------------------ reconstruct: names and outputs


@pytest.fixture(scope="module")
def unicode_capture(media, tmp_path_factory):
    """``reconstruct`` of the face photo under a name with accents and spaces."""
    parent = tmp_path_factory.mktemp("unicode")
    photo = parent / "fäce ü 1 — ok.png"
    photo.write_bytes(media["face"].read_bytes())
    out = parent / "résultats et al"
    return photo, out, run_cli(["reconstruct", photo, "--out", out])


def test_unicode_and_space_laden_names_work(unicode_capture):
    photo, out, result = unicode_capture
    folder = out / "fäce ü 1 — ok"
    done = (result.code == 0 and not result.has_traceback and folder.is_dir()
            and CAPTURE_FILES <= {p.name for p in folder.iterdir()})  # fmt: skip
    record("reconstruct-unicode-space-name", handled=done, traceback=result.has_traceback)
    assert result.code == 0, result.err[-2000:]
    assert sorted(p.name for p in out.iterdir()) == [folder.name]
    assert CAPTURE_FILES <= {p.name for p in folder.iterdir()}
    summary = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    assert summary["face"]["detected"]
    assert str(folder / "overlay.png") in result.out


def test_existing_output_is_not_overwritten(media, tmp_path):
    out = tmp_path / "out"
    (out / "face").mkdir(parents=True)
    (out / "face" / "result.json").write_text('{"kept": true}')
    before = tree_digest(out)
    refused("reconstruct-existing-output", ["reconstruct", media["face"], "--out", out],
            tmp_path, match="already exists")  # fmt: skip
    assert tree_digest(out) == before


def test_unwritable_output_is_refused_before_any_work(media, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root writes anyway: a path under a FILE never exists
            blocker = tmp_path / "blocker.txt"
            blocker.write_text("a file, not a folder")
            out, match = blocker / "out", "is a file, not a folder"
        else:
            out, match = locked / "out", "no permission to write"
        refused("reconstruct-unwritable-output", ["reconstruct", media["whole_png"], "--out", out],
                tmp_path, match=match)  # fmt: skip
        assert not out.exists()
    finally:
        locked.chmod(0o700)


def test_a_batch_with_broken_images_keeps_the_good_ones(media, tmp_path):
    """batch.py: an image that cannot be captured is reported in one line and the others
    still go through; the command exits 2 with a summary line."""
    out = tmp_path / "out"
    good = tmp_path / "good one.png"
    good.write_bytes(media["face"].read_bytes())
    broken = [media["cut_jpg"], media["empty_png"], media["text_jpg"]]
    result = _without_progress_bars(run_cli(["reconstruct", good, *broken, "--out", out]))
    lines = result.error_lines
    names = {p.name for p in (out / "good one").iterdir()} if (out / "good one").is_dir() else set()
    handled = (result.code == 2 and len(lines) == len(broken) + 1
               and all(line.startswith("handface: error:") for line in lines[:-1])
               and lines[-1].startswith("handface: 3 of 4 images failed")
               and CAPTURE_FILES <= names)  # fmt: skip
    partial = sorted(os.listdir(out)) != ["good one"]
    record("reconstruct-batch-some-broken", handled=handled, traceback=result.has_traceback,
           partial=partial)  # fmt: skip
    assert not result.has_traceback and result.code == 2, result.err[-2000:]
    for file, line in zip(broken, lines, strict=False):
        assert line.startswith("handface: error:") and str(file) in line, lines
    assert lines[-1].startswith("handface: 3 of 4 images failed (1 written to"), lines
    assert CAPTURE_FILES <= names
    assert not partial, os.listdir(out)  # no folder (or .partial) for the broken ones


# ---------------------------------------------------------------------------- depth maps


def test_depth_of_the_wrong_size_is_refused(media, tmp_path):
    depth = tmp_path / "inputs" / "depth.npy"
    depth.parent.mkdir()
    np.save(depth, np.ones((10, 12), np.float32))
    refused("reconstruct-depth-wrong-size",
            ["reconstruct", media["face"], "--depth", depth, "--out", tmp_path / "outs" / "out"],
            tmp_path / "outs", match="depth map is 12x10 but the image is 130x170")  # fmt: skip


@pytest.mark.parametrize(("case", "content", "match"), [
    ("reconstruct-depth-empty-npy", b"", "cannot read"),
    ("reconstruct-depth-text-npy", b"1.0 2.0\n3.0 4.0\n", "cannot read"),
    ("reconstruct-depth-3-channel", "rgb", "a depth map is (H, W) numbers"),
])  # fmt: skip
def test_unreadable_depth_files_are_refused(media, tmp_path, case, content, match):
    depth = tmp_path / "inputs" / "depth.npy"
    depth.parent.mkdir()
    if content == "rgb":
        np.save(depth, np.ones((*media["face_size"], 3), np.float32))
    else:
        depth.write_bytes(content)
    out = tmp_path / "outs" / "out"
    refused(case, ["reconstruct", media["face"], "--depth", depth, "--out", out],
            tmp_path / "outs", match=match)  # fmt: skip


def test_nan_inf_and_negative_depth_is_sanitised(media, tmp_path):
    """Documented (Reconstructor, DepthReader): 0 means no depth; NaN, infinite and negative
    values become 0 with a warning, and the capture goes on."""
    height, width = media["face_size"]
    depth = np.full((height, width), 0.6)
    depth[:10] = np.nan
    depth[10:20] = np.inf
    depth[20:30] = -1.0
    file = tmp_path / "depth.npy"
    np.save(file, depth)
    out = tmp_path / "out"
    result = run_cli(["reconstruct", media["face"], "--depth", file, "--out", out])
    warnings = []
    if (out / "face" / "result.json").is_file():
        warnings = json.loads((out / "face" / "result.json").read_text())["warnings"]
    expected = f"depth map: {30 * width} NaN, infinite or negative values set to 0 (no depth)"
    record("reconstruct-depth-nan-inf-negative", handled=result.code == 0 and expected in warnings,
           traceback=result.has_traceback)  # fmt: skip
    assert result.code == 0 and not result.has_traceback, result.err[-2000:]
    assert expected in warnings, warnings


# ---------------------------------------------------------------------------- the Python API

API_INPUTS = [  # case, input (a media name or an array), message
    ("api-truncated-jpg", "cut_jpg", "cannot read"),
    ("api-directory", "folder_jpg", "is a directory"),
    ("api-symlink-loop", "loop", "symbolic link that leads nowhere"),
    ("api-decompression-bomb", "bomb_png", "more pixels than Pillow allows"),
    ("api-float-array", np.zeros((16, 16, 3), np.float32), "expected a uint8 image"),
    ("api-empty-array", np.zeros((0, 0, 3), np.uint8), "has no pixels"),
    ("api-not-a-path", 42, "expected an image path or an RGB uint8 array"),
]


@pytest.mark.parametrize(("case", "given", "match"), API_INPUTS, ids=[c[0] for c in API_INPUTS])
def test_the_api_raises_one_line_input_errors(media, case, given, match):
    image = media[given] if isinstance(given, str) else given
    error = None
    try:
        handface.reconstruct(image)
    except HandfaceError as raised:
        error = raised
    except Exception as raised:  # a bug: not the user's fault, and no one-line message
        record(case, handled=False, traceback=True)
        raise AssertionError(f"{case}: {type(raised).__name__}: {raised}") from raised
    message = "" if error is None else str(error)
    handled = (isinstance(error, InputError) and "\n" not in message
               and match.lower() in message.lower())  # fmt: skip
    record(case, handled=handled)
    assert handled, (type(error), message)


# ------------------------------------------------------------------------------------ track

BROKEN_VIDEOS = [
    ("track-empty-mp4", "empty_mp4", "the file is empty (0 bytes)"),
    ("track-zero-frame-mp4", "zero_frames", "has no video stream"),
    ("track-truncated-mp4", "cut_mp4", "Invalid data found"),
    ("track-audio-only-mp4", "audio_only", "has no video stream (only audio)"),
    ("track-text-named-mp4", "text_mp4", "cannot read"),
    ("track-image-as-video", "whole_jpg", "is neither a video"),
    ("track-symlink-loop", "loop_mp4", "symbolic link that leads nowhere"),
    ("track-folder-of-broken-frames", "broken_frames", "cannot read"),
]


@pytest.mark.parametrize(("case", "name", "match"), BROKEN_VIDEOS,
                         ids=[c[0] for c in BROKEN_VIDEOS])  # fmt: skip
def test_track_refuses_broken_videos(media, tmp_path, case, name, match):
    result = refused(case, ["track", media[name], "--out", tmp_path / "out"], tmp_path,
                     match=match)  # fmt: skip
    assert media[name].name in result.err


def test_track_of_a_video_cut_mid_stream_fails_in_one_line(media, tmp_path):
    # the index is at the front and lists 12 frames; the data stops after a few of them. This
    # shows only while decoding, after the progress bar started (it erases itself)
    refused("track-truncated-faststart-mp4",
            ["track", media["cut_faststart"], "--out", tmp_path / "out"], tmp_path,
            match="is truncated or corrupt after frame", keep_progress=False)  # fmt: skip


def test_track_keeps_an_existing_output_and_refuses_an_impossible_one(media, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "timeline.json").write_text("{}")
    before = tree_digest(out)
    refused("track-existing-output", ["track", media["video"], "--out", out], tmp_path,
            match="already exists")  # fmt: skip
    assert tree_digest(out) == before
    blocker = tmp_path / "blocker.mp4"
    blocker.write_bytes(b"a file")
    refused("track-output-under-a-file", ["track", media["video"], "--out", blocker / "out"],
            tmp_path, match="is a file, not a folder")  # fmt: skip


# ----------------------------------------------------------------------------------- avatar


@pytest.mark.parametrize(("case", "name", "match"), [
    ("avatar-truncated-mp4", "cut_mp4", "Invalid data found"),
    ("avatar-audio-only-mp4", "audio_only", "has no video stream (only audio)"),
    ("avatar-image-as-video", "cmyk", "is neither a video"),
])  # fmt: skip
def test_avatar_refuses_broken_videos(media, tmp_path, case, name, match):
    refused(case, ["avatar", media[name], "--out", tmp_path / "out"], tmp_path, match=match)


def test_avatar_keeps_an_existing_output(media, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "avatar.json").write_text("{}")
    before = tree_digest(out)
    refused("avatar-existing-output", ["avatar", media["video"], "--out", out], tmp_path,
            match="already exists")  # fmt: skip
    assert tree_digest(out) == before


# ------------------------------------------------------------------------- view and export


@pytest.mark.parametrize(("case", "name", "match"), [
    ("view-photo-as-result", "whole_jpg", "is a file; give a Capture"),
    ("view-video-as-result", "video", "is a file; give a Capture"),
    ("view-symlink-loop", "loop", "does not exist"),
    ("view-folder-of-frames", "broken_frames", "is neither a Capture"),
])  # fmt: skip
def test_view_refuses_media_in_place_of_a_result(media, tmp_path, case, name, match):
    from handface.view import load_scene

    # the path checks first (a path they let through would start a server below)
    with pytest.raises(InputError, match=re.escape(match)) as error:
        load_scene(media[name])
    assert "\n" not in str(error.value)
    refused(case, ["view", media[name]], tmp_path, match=match)


def test_export_refuses_media_and_keeps_existing_files(media, unicode_capture, tmp_path):
    refused("export-photo-as-result", ["export", media["whole_jpg"], "--out", tmp_path / "a.glb"],
            tmp_path, match="is a file; give a Capture")  # fmt: skip
    _, out, result = unicode_capture
    assert result.code == 0
    capture = out / "fäce ü 1 — ok"
    existing = tmp_path / "mesh.glb"
    existing.write_bytes(b"an older export")
    refused("export-existing-output", ["export", capture, "--out", existing], tmp_path,
            match="already exists")  # fmt: skip
    assert existing.read_bytes() == b"an older export"
    refused("export-output-under-a-file", ["export", capture, "--out", existing / "x.glb"],
            tmp_path, match="is a file, not a folder")  # fmt: skip


# -------------------------------------------------------------------- what a shell sees


@pytest.mark.parametrize(("case", "command", "name", "match"), [
    ("shell-reconstruct-truncated-jpg", "reconstruct", "cut_jpg", "cannot read"),
    ("shell-track-audio-only-mp4", "track", "audio_only", "has no video stream (only audio)"),
])  # fmt: skip
def test_in_a_fresh_interpreter(media, tmp_path, case, command, name, match):
    result = refused(case, [command, media[name], "--out", tmp_path / "out"], tmp_path,
                     match=match, in_subprocess=True)  # fmt: skip
    assert result.out == ""
