"""FrameReader (videos and image folders, start/end/stride, rotation, errors) and DepthReader."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from handface.detect import DepthReader, FrameReader, VideoFrame, natural_sort_key
from handface.errors import InputError

HEIGHT, WIDTH = 48, 64


def _pattern(index: int) -> np.ndarray:
    """Frame ``index`` (up to 40): flat level ``10 + 6 * index``, a white top-left corner mark."""
    image = np.full((HEIGHT, WIDTH, 3), 10 + 6 * index, np.uint8)
    image[:8, :16] = 255
    return image


def _write_video(
    path: Path,
    frames: int = 12,
    *,
    rate: int = 10,
    rotation: int = 0,
    codec: str = "libx264",
    faststart: bool = False,
) -> Path:
    """A near-lossless video (x264 ``qp=0`` in yuv444p) of :func:`_pattern` frames."""
    import av

    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=rate, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv444p"
        if rotation:
            stream.set_display_rotation(rotation)
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(_pattern(index), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _level(rgb: np.ndarray) -> float:
    """The flat level of a :func:`_pattern` frame, away from the corner mark."""
    return float(np.median(rgb[16:, 24:]))


def _which(rgb: np.ndarray) -> int:
    """The index of the :func:`_pattern` frame that ``rgb`` shows (levels are 6 apart)."""
    return round((_level(rgb) - 10) / 6)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return _write_video(tmp_path_factory.mktemp("video") / "clip.mp4")


def _one_line_error(match: str, call, *args, **kwargs) -> str:
    with pytest.raises(InputError, match=match) as info:
        result = call(*args, **kwargs)
        if isinstance(result, FrameReader):
            list(result)
    message = str(info.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------------- videos


def test_video_properties_and_every_frame(video):
    reader = FrameReader(video)
    assert reader.source == str(video)
    assert (reader.size, reader.fps, reader.num_frames) == ((HEIGHT, WIDTH), 10.0, 12)
    assert reader.indices == range(12) and len(reader) == 12
    assert not reader.rotated and reader.notes == []
    frames = list(reader)
    assert all(isinstance(frame, VideoFrame) for frame in frames)
    assert [frame.index for frame in frames] == list(range(12))
    for frame in frames:
        assert frame.rgb.shape == (HEIGHT, WIDTH, 3) and frame.rgb.dtype == np.uint8
        assert frame.rgb.flags.c_contiguous
        # qp=0 in yuv444p: only the YUV -> RGB rounding differs from what was written
        assert np.abs(frame.rgb.astype(int) - _pattern(frame.index)).max() <= 2
    times = np.array([frame.time_s for frame in frames])
    np.testing.assert_allclose(times, np.arange(12) / 10.0, atol=1e-6)
    np.testing.assert_allclose(np.diff(times), 1 / reader.fps, atol=1e-6)


@pytest.mark.parametrize(
    ("start", "end", "stride", "expected"),
    [
        (0, None, 1, list(range(12))),
        (3, None, 1, list(range(3, 12))),
        (2, 9, 3, [2, 5, 8]),
        (1, None, 4, [1, 5, 9]),
        (11, None, 5, [11]),
        (5, 6, 1, [5]),
        (4, 100, 5, [4, 9]),  # end past the last frame is clamped, with a note
    ],
)
def test_start_end_stride_select_the_right_frames(video, start, end, stride, expected):
    reader = FrameReader(video, start=start, end=end, stride=stride)
    assert list(reader.indices) == expected and len(reader) == len(expected)
    frames = list(reader)
    assert [frame.index for frame in frames] == expected
    assert [_which(frame.rgb) for frame in frames] == expected  # the content, not just the label
    np.testing.assert_allclose([f.time_s for f in frames], np.array(expected) / 10.0, atol=1e-6)
    assert any("past the last frame" in note for note in reader.notes) == (end == 100)


def test_iterating_twice_gives_the_same_frames(video):
    reader = FrameReader(video, start=1, stride=5)
    first = [(frame.index, frame.rgb) for frame in reader]
    second = [(frame.index, frame.rgb) for frame in reader]
    assert [i for i, _ in first] == [i for i, _ in second] == [1, 6, 11]
    for (_, a), (_, b) in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_iteration_streams_and_close_releases_the_decoder(video):
    reader = FrameReader(video)
    frames = iter(reader)
    assert inspect.isgenerator(frames)  # nothing is decoded before the first next()
    assert inspect.getgeneratorstate(frames) == inspect.GEN_CREATED
    taken = [next(frames).index, next(frames).index]
    assert taken == [0, 1] and inspect.getgeneratorstate(frames) == inspect.GEN_SUSPENDED
    reader.close()
    assert inspect.getgeneratorstate(frames) == inspect.GEN_CLOSED
    reader.close()  # twice is fine

    with FrameReader(video, start=4) as reader:
        frame = next(iter(reader))
    assert frame.index == 4 and _which(frame.rgb) == 4
    assert [f.index for f in reader] == list(range(4, 12))  # still usable after close()


def test_fps_argument_overrides_the_stream_rate(video):
    reader = FrameReader(video, fps=25, start=2, stride=2, end=7)
    assert reader.fps == 25.0
    assert [frame.time_s for frame in reader] == [2 / 25, 4 / 25, 6 / 25]


def test_matroska_has_no_stored_frame_count(tmp_path):
    path = _write_video(tmp_path / "clip.mkv", frames=6)
    reader = FrameReader(path, start=1, stride=2)
    assert reader.num_frames is None and reader.indices is None
    with pytest.raises(TypeError, match="frame count"):
        len(reader)
    assert bool(reader)  # truthiness does not depend on the unknown length
    frames = list(reader)
    assert [frame.index for frame in frames] == [1, 3, 5]
    assert [_which(frame.rgb) for frame in frames] == [1, 3, 5]
    # unknown count: a start past the end is found while iterating
    message = _one_line_error("beyond the end", FrameReader, path, start=9)
    assert "6 frames" in message


def test_display_rotation_is_applied(tmp_path):
    path = tmp_path / "portrait.mp4"
    try:
        # a phone's portrait video: landscape pixels plus a display matrix turning them clockwise
        _write_video(path, frames=3, rotation=-90)
    except (AttributeError, NotImplementedError) as error:
        pytest.skip(f"this pyav cannot write a display rotation: {error}")
    reader = FrameReader(path)
    if not reader.rotated:
        pytest.skip("the display rotation was not stored by this pyav/ffmpeg")
    assert reader.size == (WIDTH, HEIGHT)
    frames = list(reader)
    assert [frame.rgb.shape for frame in frames] == [(WIDTH, HEIGHT, 3)] * 3
    expected = np.rot90(_pattern(2), k=-1)  # clockwise: the corner mark goes to the top-right
    assert np.abs(frames[2].rgb.astype(int) - expected).max() <= 2
    assert frames[2].rgb[:16, -8:].min() > 240 and frames[2].rgb[-16:, :8].max() < 70


def test_real_video_frames_match_plain_decoding(shared_media):
    import av

    videos = sorted((shared_media / "video").glob("*.mp4"))
    if not videos:
        pytest.skip("no .mp4 in shared media")
    with av.open(str(videos[0])) as container:
        stream = container.streams.video[0]
        count = stream.frames
        for index, frame in enumerate(container.decode(stream)):
            if index == 7:
                expected = frame.to_ndarray(format="rgb24")
                break
    with FrameReader(videos[0], start=3, stride=4, end=12) as reader:
        assert reader.num_frames == count and list(reader.indices) == [3, 7, 11]
        frames = list(reader)
    np.testing.assert_array_equal(frames[1].rgb, expected)
    assert frames[1].time_s == pytest.approx(7 / reader.fps, abs=1e-3)


# ----------------------------------------------------------------------------------- folders


def test_folder_of_frames_in_natural_order(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(12):  # frame2 must come before frame10 (plain sorting gets it wrong)
        Image.fromarray(_pattern(index)).save(folder / f"frame{index}.png")
    (folder / "notes.txt").write_text("not a frame")
    (folder / ".frame99.png").write_bytes(b"hidden")

    reader = FrameReader(folder, start=1, stride=4, fps=5)
    assert (reader.size, reader.fps, reader.num_frames) == ((HEIGHT, WIDTH), 5.0, 12)
    assert reader.indices == range(1, 12, 4) and not reader.rotated
    frames = list(reader)
    assert [frame.index for frame in frames] == [1, 5, 9]
    for frame in frames:
        np.testing.assert_array_equal(frame.rgb, _pattern(frame.index))  # PNG is lossless
    assert [frame.time_s for frame in frames] == [0.2, 1.0, 1.8]
    assert FrameReader(folder).fps == 30.0  # the default for folders


def test_natural_sort_key():
    names = ["img10.jpg", "img2.jpg", "IMG1.jpg", "img2b.jpg", "a.png", "img002.jpg"]
    assert sorted(names, key=natural_sort_key) == [
        "a.png",
        "IMG1.jpg",
        "img002.jpg",
        "img2.jpg",
        "img2b.jpg",
        "img10.jpg",
    ]


def test_folder_with_a_frame_of_another_size(tmp_path):
    for index in range(3):
        Image.fromarray(_pattern(index)).save(tmp_path / f"{index}.png")
    Image.fromarray(np.zeros((40, 64, 3), np.uint8)).save(tmp_path / "3.png")
    reader = FrameReader(tmp_path)
    assert reader.num_frames == 4
    message = _one_line_error("same size", list, reader)
    assert str(tmp_path / "3.png") in message and "64x40" in message and "64x48" in message
    assert [frame.index for frame in FrameReader(tmp_path, end=3)] == [0, 1, 2]


# ----------------------------------------------------------------------------------- errors


def test_argument_errors(video):
    assert "at least 0" in _one_line_error("start", FrameReader, video, start=-1)
    assert "at least 1" in _one_line_error("stride", FrameReader, video, stride=0)
    _one_line_error("whole number", FrameReader, video, stride=1.5)
    _one_line_error(
        r"end \(3\) must be greater than start \(3\)", FrameReader, video, start=3, end=3
    )
    _one_line_error("fps must be a positive", FrameReader, video, fps=0)
    message = _one_line_error("beyond the end", FrameReader, video, start=12)
    assert "12 frames" in message and str(video) in message


def test_file_errors_are_one_line_input_errors(tmp_path, video):
    missing = tmp_path / "missing.mp4"
    assert str(missing) in _one_line_error("no such file", FrameReader, missing)

    (tmp_path / "empty.mp4").write_bytes(b"")
    message = _one_line_error("empty", FrameReader, tmp_path / "empty.mp4")
    assert str(tmp_path / "empty.mp4") in message

    (tmp_path / "notes.mp4").write_text("this is not a video\nsecond line\n")
    _one_line_error(r"cannot read .*notes\.mp4 as a video", FrameReader, tmp_path / "notes.mp4")

    # a plain MP4 keeps its index (moov) at the end: half the bytes fail when opened
    data = video.read_bytes()
    (tmp_path / "half.mp4").write_bytes(data[: len(data) // 2])
    _one_line_error(r"cannot read .*half\.mp4 as a video", FrameReader, tmp_path / "half.mp4")

    still = tmp_path / "still.png"
    Image.fromarray(_pattern(0)).save(still)
    _one_line_error("neither a video .* nor a folder of images", FrameReader, still)

    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "readme.txt").write_text("no frames here")
    _one_line_error(r"nothing holds no images", FrameReader, tmp_path / "nothing")


def test_audio_only_file(tmp_path):
    import av

    path = tmp_path / "voice.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        for index in range(4):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, index * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    message = _one_line_error("has no video stream", FrameReader, path)
    assert "audio" in message and str(path) in message


def test_video_without_decodable_frames(tmp_path):
    # a "fast start" MP4 (index first) cut right after the index: 12 frames listed, none stored
    data = _write_video(tmp_path / "fs.mp4", faststart=True).read_bytes()
    mdat = data.index(b"mdat")
    assert data.index(b"moov") < mdat  # the index really is at the front
    (tmp_path / "bare.mp4").write_bytes(data[: mdat + 4])
    _one_line_error(
        "bare.mp4 as a video: it has no decodable frames", FrameReader, tmp_path / "bare.mp4"
    )


@pytest.mark.parametrize("kept", [0.5, 0.95])
def test_truncated_video_fails_after_the_good_frames(tmp_path, kept):
    # with the index first, a cut file opens and decodes until the data runs out (a cut inside
    # a packet makes the decoder fail; a cut between packets just ends the stream early)
    data = _write_video(tmp_path / "fs.mp4", frames=40, faststart=True).read_bytes()
    mdat = data.index(b"mdat")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: mdat + int((len(data) - mdat) * kept)])
    reader = FrameReader(cut)
    assert reader.num_frames == 40 and reader.size == (HEIGHT, WIDTH)
    seen: list[int] = []
    with pytest.raises(
        InputError, match=r"cut\.mp4 is truncated or corrupt after frame \d+: "
    ) as info:
        for frame in reader:
            assert _which(frame.rgb) == frame.index  # the frames before the cut are right
            seen.append(frame.index)
    assert 0 < len(seen) < 40 and seen == list(range(len(seen)))
    assert f"after frame {seen[-1]}:" in str(info.value) and "\n" not in str(info.value)
    # the frames before the cut can still be read on their own
    assert [f.index for f in FrameReader(cut, end=len(seen))] == seen


def test_boundary_cuts_are_truncation_not_a_short_video(tmp_path):
    # cut exactly after a packet: no decoder error, the data simply ends at the end of the file
    path = _write_video(tmp_path / "fs.mp4", frames=40, faststart=True)
    import av

    with av.open(str(path)) as container:
        ends = [p.pos + p.size for p in container.demux(video=0) if p.size]
    data = path.read_bytes()
    assert ends[-1] == len(data) and len(ends) == 40
    (tmp_path / "cut.mp4").write_bytes(data[: ends[9]])  # 10 whole frames
    reader = FrameReader(tmp_path / "cut.mp4", start=2, stride=3)
    assert len(reader) == 13
    seen: list[int] = []
    with pytest.raises(InputError, match="after frame 9: its data ends there .* 40 frames"):
        for frame in reader:
            seen.append(frame.index)
    assert seen == [2, 5, 8]


# ----------------------------------------------------------------------------------- depth


def test_depth_from_npy_in_metres_with_invalid_values_cleaned(tmp_path):
    rng = np.random.default_rng(0)
    maps = [rng.uniform(0.3, 2.0, (HEIGHT, WIDTH)).astype(np.float32) for _ in range(11)]
    maps[3][0, 0], maps[3][1, 1], maps[3][2, 2], maps[3][3, 3] = np.nan, np.inf, -0.5, 0.0
    for index, depth in enumerate(maps):
        np.save(tmp_path / f"depth_{index}.npy", depth)

    reader = DepthReader(tmp_path, size=(HEIGHT, WIDTH))
    assert reader.num_frames == len(reader) == 11 and reader.size == (HEIGHT, WIDTH)
    for index in (0, 2, 10):  # natural order: depth_10 is the last map
        depth = reader.depth(index)
        assert depth.dtype == np.float32 and depth.shape == (HEIGHT, WIDTH)
        np.testing.assert_array_equal(depth, maps[index])
    assert reader.notes == []
    cleaned = reader.depth(3)
    assert cleaned[0, 0] == cleaned[1, 1] == cleaned[2, 2] == cleaned[3, 3] == 0.0
    assert np.isfinite(cleaned).all() and (cleaned >= 0).all()
    np.testing.assert_array_equal(cleaned[4:], maps[3][4:])
    assert len(reader.notes) == 1 and "depth_3.npy: 3 NaN" in reader.notes[0]
    reader.depth(3)
    assert len(reader.notes) == 1  # one note per file, however often it is read

    message = _one_line_error("no depth map for frame 11", reader.depth, 11)
    assert "11 (frames 0..10)" in message
    _one_line_error("no depth map for frame -1", reader.depth, -1)


def test_depth_from_16bit_png_is_exact(tmp_path):
    import cv2

    millimetres = np.arange(HEIGHT * WIDTH, dtype=np.uint16).reshape(HEIGHT, WIDTH) * 13
    millimetres[0, 0] = 0  # no measurement
    millimetres[-1, -1] = 65533  # near the top of the 16-bit range
    for index in range(3):
        assert cv2.imwrite(str(tmp_path / f"{index:04d}.png"), millimetres + index)
    reader = DepthReader(tmp_path)  # size from the first map
    assert reader.size == (HEIGHT, WIDTH) and reader.num_frames == 3
    depth = reader.depth(2)
    assert depth.dtype == np.float32 and depth[0, 0] == np.float32(0.002)
    np.testing.assert_array_equal(depth, ((millimetres + 2) * 0.001).astype(np.float32))
    assert depth.max() == np.float32(65.535)  # the largest 16-bit value
    # another unit: tenths of a millimetre
    tenths = DepthReader(tmp_path, scale=0.0001).depth(0)
    np.testing.assert_array_equal(tenths, (millimetres * 0.0001).astype(np.float32))


def test_depth_errors(tmp_path):
    np.save(tmp_path / "0.npy", np.ones((HEIGHT, WIDTH), np.float32))
    np.save(tmp_path / "1.npy", np.ones((HEIGHT // 2, WIDTH // 2), np.float32))
    reader = DepthReader(tmp_path, size=(HEIGHT, WIDTH))
    assert reader.depth(0).sum() == HEIGHT * WIDTH
    message = _one_line_error("is 32x24 but the video is 64x48", reader.depth, 1)
    assert str(tmp_path / "1.npy") in message
    message = _one_line_error(
        "is 64x48 but the video is 32x24", DepthReader(tmp_path, size=(24, 32)).depth, 0
    )
    assert str(tmp_path / "0.npy") in message

    _one_line_error("is a file; give a folder of per-frame", DepthReader, tmp_path / "0.npy")
    _one_line_error("no such folder", DepthReader, tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    _one_line_error("holds no depth maps", DepthReader, tmp_path / "empty")

    eight_bit = tmp_path / "eight"
    eight_bit.mkdir()
    Image.fromarray(np.zeros((HEIGHT, WIDTH), np.uint8)).save(eight_bit / "0.png")
    _one_line_error("8-bit PNG .* single-channel 16-bit", DepthReader, eight_bit)

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    np.save(mixed / "0.npy", np.ones((2, 2)))
    Image.fromarray(np.zeros((2, 2), np.uint16)).save(mixed / "1.png")
    _one_line_error("mixes .npy and .png", DepthReader, mixed)
    _one_line_error("positive number of metres", DepthReader, tmp_path, scale=0)
