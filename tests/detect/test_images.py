"""load_image: pixel formats, EXIF orientation and focal lengths, video frames, errors."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from handface.detect import LoadedImage, exif_focal_lengths, load_image
from handface.errors import InputError


def _smooth_rgb(height: int, width: int) -> np.ndarray:
    """An asymmetric, smooth image (JPEG keeps it within a few levels)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return np.stack(
        [255 * x / (width - 1), 255 * y / (height - 1), 128 + 100 * np.sin(x / 9.0) * (y > x)],
        axis=2,
    ).round().astype(np.uint8)  # fmt: skip


def _write_video(path: Path, frames: int, *, rotation: int = 0, codec: str = "libx264") -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        for index in range(frames):
            image = np.full((32, 64, 3), 20 + 25 * index, np.uint8)
            image[:8, :16] = 255 - image[:8, :16]  # marks the top-left corner
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


# ----------------------------------------------------------------------------- pixel formats


def test_rgb_png_round_trips_exactly(tmp_path):
    rgb = _smooth_rgb(20, 30)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")
    assert isinstance(loaded, LoadedImage) and loaded.source == str(tmp_path / "a.png")
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(loaded.rgb, rgb)
    assert not loaded.exif_rotated and loaded.warnings == [] and loaded.frame_index is None
    assert loaded.focal_35mm is None and loaded.focal_mm is None


def test_rgba_transparent_background_becomes_white(tmp_path):
    rgba = np.zeros((16, 24, 4), np.uint8)  # fully transparent black background
    rgba[4:12, 6:18] = (200, 30, 60, 255)  # opaque subject
    rgba[0, 0] = (0, 0, 100, 128)  # half-transparent blue
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")
    assert loaded.rgb.shape == (16, 24, 3)
    assert (loaded.rgb[15, 23] == 255).all() and (loaded.rgb[2, 2] == 255).all()
    np.testing.assert_array_equal(
        loaded.rgb[4:12, 6:18], np.broadcast_to((200, 30, 60), (8, 12, 3))
    )
    # 128/255 of the colour + 127/255 of white
    np.testing.assert_allclose(loaded.rgb[0, 0], [127, 127, 177], atol=1)
    assert any("white" in warning for warning in loaded.warnings)


def test_opaque_rgba_and_la_images(tmp_path):
    rgb = _smooth_rgb(10, 12)
    Image.fromarray(np.dstack([rgb, np.full((10, 12), 255, np.uint8)]), "RGBA").save(
        tmp_path / "opaque.png"
    )
    loaded = load_image(tmp_path / "opaque.png")
    np.testing.assert_array_equal(loaded.rgb, rgb)
    assert loaded.warnings == []

    gray = np.full((10, 12), 40, np.uint8)
    alpha = np.zeros((10, 12), np.uint8)
    alpha[:, :6] = 255
    Image.fromarray(np.dstack([gray, alpha]), "LA").save(tmp_path / "la.png")
    loaded = load_image(tmp_path / "la.png")
    assert (loaded.rgb[:, :6] == 40).all() and (loaded.rgb[:, 6:] == 255).all()


def test_grayscale_gives_three_equal_channels(tmp_path):
    gray = _smooth_rgb(14, 9)[..., 0]
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    loaded = load_image(tmp_path / "g.png")
    assert loaded.rgb.shape == (14, 9, 3)
    for channel in range(3):
        np.testing.assert_array_equal(loaded.rgb[..., channel], gray)


def test_palette_with_transparency_and_bilevel(tmp_path):
    palette_image = Image.new("P", (6, 4))
    palette_image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    indices = np.zeros((4, 6), np.uint8)
    indices[:, 3:] = 1
    palette_image.putdata(indices.ravel().tolist())
    palette_image.save(tmp_path / "p.png", transparency=1)  # index 1 (blue) is transparent
    loaded = load_image(tmp_path / "p.png")
    assert (loaded.rgb[:, :3] == (255, 0, 0)).all() and (loaded.rgb[:, 3:] == 255).all()

    bilevel = Image.fromarray(np.eye(5, dtype=bool))
    bilevel.save(tmp_path / "b.png")
    loaded = load_image(tmp_path / "b.png")
    np.testing.assert_array_equal(loaded.rgb[..., 1], np.eye(5, dtype=np.uint8) * 255)


def test_16bit_pngs_scale_to_rounded_8bit(tmp_path):
    import cv2

    # 257 * k + 128 rounds to k; keeping only the high byte would give k + 1 for k >= 128
    values = np.array([0, 257 * 200 + 128, 257 * 10 + 129, 65535, 257 * 128 - 129], np.uint16)
    expected = np.array([0, 200, 11, 255, 127], np.uint8)
    gray = np.tile(values, (3, 1))
    Image.fromarray(gray).save(tmp_path / "g16.png")  # Pillow writes 16-bit grayscale
    loaded = load_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(loaded.rgb[..., 2], np.tile(expected, (3, 1)))

    color = np.stack([gray, gray[:, ::-1], np.full_like(gray, 257 * 50)], axis=2)
    assert cv2.imwrite(str(tmp_path / "c16.png"), color[..., ::-1])  # OpenCV writes BGR
    loaded = load_image(tmp_path / "c16.png")
    np.testing.assert_array_equal(loaded.rgb[..., 0], np.tile(expected, (3, 1)))
    np.testing.assert_array_equal(loaded.rgb[..., 1], np.tile(expected[::-1], (3, 1)))
    assert (loaded.rgb[..., 2] == 50).all()


def test_cmyk_jpeg_loads_as_rgb(tmp_path):
    Image.new("RGB", (8, 8), (255, 0, 0)).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    loaded = load_image(tmp_path / "c.jpg")
    assert loaded.rgb.shape == (8, 8, 3)
    np.testing.assert_allclose(loaded.rgb.reshape(-1, 3).mean(0), [255, 0, 0], atol=6)


# ----------------------------------------------------------------------------- EXIF


def test_exif_orientation_6_is_applied(tmp_path):
    upright = _smooth_rgb(48, 80)
    # orientation 6: the viewer turns the stored pixels 90 degrees clockwise to display them
    stored = np.ascontiguousarray(np.rot90(upright, k=1))
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "r.jpg", quality=95, exif=exif)
    loaded = load_image(tmp_path / "r.jpg")
    assert loaded.exif_rotated and loaded.rgb.shape == (48, 80, 3)
    assert np.abs(loaded.rgb.astype(int) - upright).mean() < 3


def test_exif_focal_lengths_read_back(tmp_path):
    exif = Image.Exif()
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[0x920A] = 4.25  # FocalLength
    exif_ifd[0xA405] = 26  # FocalLengthIn35mmFilm
    Image.fromarray(_smooth_rgb(8, 8)).save(tmp_path / "f.jpg", exif=exif)
    loaded = load_image(tmp_path / "f.jpg")
    assert loaded.focal_35mm == pytest.approx(26.0) and loaded.focal_mm == pytest.approx(4.25)
    with Image.open(tmp_path / "f.jpg") as image:
        assert exif_focal_lengths(image) == pytest.approx((26.0, 4.25))

    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 0  # "unknown" by the EXIF standard
    Image.fromarray(_smooth_rgb(8, 8)).save(tmp_path / "zero.jpg", exif=exif)
    loaded = load_image(tmp_path / "zero.jpg")
    assert loaded.focal_35mm is None and loaded.focal_mm is None


# ----------------------------------------------------------------------------- videos


def test_video_frame_by_index_and_default_middle(tmp_path):
    _write_video(tmp_path / "v.mp4", frames=7)
    loaded = load_image(tmp_path / "v.mp4", video_frame=5)
    assert loaded.rgb.shape == (32, 64, 3) and (loaded.frame_index, loaded.num_frames) == (5, 7)
    assert abs(float(np.median(loaded.rgb)) - (20 + 25 * 5)) < 4
    middle = load_image(tmp_path / "v.mp4")
    assert middle.frame_index == 3 and abs(float(np.median(middle.rgb)) - 95) < 4
    assert middle.warnings == [
        "video: captured frame 3 of 7; `handface track` captures every frame"
    ]


def test_webm_frame_count_and_display_rotation(tmp_path):
    # WebM stores no frame count: it is counted from the packets
    _write_video(tmp_path / "v.webm", frames=5, codec="libvpx")
    loaded = load_image(tmp_path / "v.webm", video_frame=4)
    assert loaded.num_frames == 5 and abs(float(np.median(loaded.rgb)) - 120) < 6

    # a phone's portrait video: landscape pixels plus a display matrix turning them clockwise
    _write_video(tmp_path / "r.mp4", frames=3, rotation=-90)
    loaded = load_image(tmp_path / "r.mp4", video_frame=0)
    assert loaded.exif_rotated and loaded.rgb.shape == (64, 32, 3)
    # the stored top-left corner mark is at the top-right after a clockwise turn
    assert loaded.rgb[:16, -8:].mean() > 150 and loaded.rgb[-16:, :8].mean() < 100


def test_real_video_frame(shared_media):
    import av

    videos = sorted((shared_media / "video").glob("*.mp4"))
    if not videos:
        pytest.skip("no .mp4 in shared media")
    with av.open(str(videos[0])) as container:
        stream = container.streams.video[0]
        expected_count = stream.frames
        for index, frame in enumerate(container.decode(stream)):
            if index == 12:
                expected = frame.to_ndarray(format="rgb24")
                break
    loaded = load_image(videos[0], video_frame=12)
    assert loaded.num_frames == expected_count > 12 and loaded.frame_index == 12
    np.testing.assert_array_equal(loaded.rgb, expected)
    assert load_image(videos[0]).frame_index == expected_count // 2


# ----------------------------------------------------------------------------- errors


def _one_line_error(path, match: str, **kwargs) -> str:
    with pytest.raises(InputError, match=match) as info:
        load_image(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_errors_are_one_line_input_errors(tmp_path):
    _one_line_error(tmp_path / "missing.jpg", "^no such file: ")
    _one_line_error(tmp_path, "is a directory")
    (tmp_path / "empty.png").write_bytes(b"")
    _one_line_error(tmp_path / "empty.png", "cannot read .* as an image: .*empty")
    (tmp_path / "notes.jpg").write_text("not an image\nsecond line\n")
    _one_line_error(tmp_path / "notes.jpg", "cannot read .* as an image: ")

    Image.fromarray(_smooth_rgb(64, 64)).save(tmp_path / "whole.jpg")
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    _one_line_error(tmp_path / "cut.jpg", "cannot read .* as an image: ")

    _one_line_error(tmp_path / "whole.jpg", "still image", video_frame=0)
    (tmp_path / "fake.mp4").write_bytes(b"\x00" * 100)
    _one_line_error(tmp_path / "fake.mp4", "cannot read .* as a video: ")

    _write_video(tmp_path / "v.mp4", frames=4)
    message = _one_line_error(tmp_path / "v.mp4", "out of range", video_frame=4)
    assert "4 frames" in message
    _one_line_error(tmp_path / "v.mp4", "out of range", video_frame=-1)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_an_image_over_max_pixels_comes_back_as_a_working_copy(tmp_path, suffix):
    import cv2

    full = _smooth_rgb(900, 1200)
    Image.fromarray(full).save(tmp_path / f"big{suffix}", quality=95)
    loaded = load_image(tmp_path / f"big{suffix}", max_pixels=120_000)
    assert loaded.rgb.shape == (300, 400, 3) and loaded.rgb.flags.c_contiguous
    assert loaded.full_size == (900, 1200) and loaded.image_size == (900, 1200)
    assert loaded.scale == pytest.approx((1 / 3, 1 / 3))
    assert loaded.warnings == [
        f"{tmp_path / f'big{suffix}'}: very large image (1200x900 pixels): captured on a "
        "400x300 copy; the camera and 2D points refer to the whole image"
    ]
    # the JPEG is decoded at half scale (DCT), then averaged down: the same picture
    expected = cv2.resize(full, (400, 300), interpolation=cv2.INTER_AREA)
    assert np.abs(loaded.rgb.astype(int) - expected).mean() < 2.0
    within = load_image(tmp_path / f"big{suffix}", max_pixels=1200 * 900)
    assert within.full_size is None and within.size == within.image_size == (900, 1200)


def test_a_turned_jpeg_over_max_pixels_is_upright_with_its_upright_size(tmp_path):
    upright = _smooth_rgb(960, 480)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = np.ascontiguousarray(np.rot90(upright, k=1))
    Image.fromarray(stored).save(tmp_path / "r.jpg", quality=95, exif=exif)
    loaded = load_image(tmp_path / "r.jpg", max_pixels=480 * 960 // 16)
    assert loaded.exif_rotated and loaded.rgb.shape == (240, 120, 3)
    assert loaded.full_size == (960, 480)
    small = upright[2::4, 2::4].astype(int)
    assert np.abs(loaded.rgb.astype(int) - small).mean() < 4.0


def test_a_large_array_given_to_a_method_is_a_working_copy_too():
    from handface.detect.images import image_input

    loaded = image_input(_smooth_rgb(200, 300), max_pixels=6000)
    assert loaded.size == (63, 94) and loaded.full_size == (200, 300)
    assert image_input(_smooth_rgb(20, 30)).full_size is None


def test_a_video_frame_over_max_pixels_is_a_working_copy_too(tmp_path):
    _write_video(tmp_path / "v.mp4", frames=3)
    loaded = load_image(tmp_path / "v.mp4", video_frame=1, max_pixels=512)
    assert loaded.rgb.shape == (16, 32, 3) and loaded.full_size == (32, 64)
    assert loaded.warnings[0].startswith(f"{tmp_path / 'v.mp4'}: very large image (64x32")
    assert abs(float(np.median(loaded.rgb)) - (20 + 25 * 1)) < 4
