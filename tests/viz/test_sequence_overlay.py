import os

import av
import numpy as np
import pytest
from PIL import Image

from handface.capture import Capture, CapturedFace, CapturedHand
from handface.viz.capture_overlay import capture_overlay
from handface.viz.sequence_overlay import (
    SIDE_ASPECT,
    SIDE_BACKGROUND,
    SIDE_HEAD_AT,
    SIDE_VIEW_HEIGHT_M,
    STATUS_COLORS,
    TOP_HEAD_AT,
    OverlayVideoWriter,
    contact_timeline,
    frame_caption,
    sequence_overlay_frame,
    side_view_camera,
)

WIDTH, HEIGHT, FOCAL = 320, 240, 400.0
K = np.array([[FOCAL, 0, WIDTH / 2 - 0.5], [0, FOCAL, HEIGHT / 2 - 0.5], [0, 0, 1]])
HEAD_Z = 1.0  # the head box spans z in [0.9, 1.1]: its front is at 0.9
PX_PER_M = HEIGHT / SIDE_VIEW_HEIGHT_M  # side panel scale for a frame HEIGHT tall


def box(lo, hi):
    """A closed axis-aligned box (8 vertices, 12 triangles), camera frame, metres."""
    corners = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float)
    vertices = (np.asarray(lo) + corners * (np.asarray(hi) - np.asarray(lo))).astype(np.float32)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = [tri for a, b, c, d in quads for tri in ((a, b, c), (a, c, d))]
    return vertices, np.array(faces, np.int64)


def make_face():
    vertices, faces = box((-0.1, -0.12, HEAD_Z - 0.1), (0.1, 0.12, HEAD_Z + 0.1))
    nan = np.full((478, 2), np.nan, np.float32)
    return CapturedFace(
        params={},
        vertices=vertices,
        vertices_deformed=vertices,
        faces=faces,
        deformation=np.zeros_like(vertices),
        rotation=np.eye(3, dtype=np.float32),
        contact=(vertices[:, 2] < HEAD_Z).astype(np.float32),  # the front is in contact
        landmarks3d=np.zeros((478, 3), np.float32),
        landmarks2d=np.zeros((478, 2), np.float32),
        keypoints68_3d=np.zeros((68, 3), np.float32),
        keypoints68_2d=np.zeros((68, 2), np.float32),
        detected_landmarks2d=nan,
    )


def make_hand(side="right", *, gap=0.04, x=(-0.03, 0.03), z=None, touching=False):
    """A 3 cm thick hand box whose back is ``gap`` in front of the face's front."""
    z0, z1 = z if z is not None else (HEAD_Z - 0.1 - gap - 0.03, HEAD_Z - 0.1 - gap)
    vertices, faces = box((x[0], -0.02, z0), (x[1], 0.05, z1))
    return CapturedHand(
        side=side,
        params={},
        vertices=vertices,
        faces=faces,
        contact=np.zeros(len(vertices), np.float32),
        keypoints3d=np.zeros((21, 3), np.float32),
        keypoints2d=np.zeros((21, 2), np.float32),
        detected_keypoints2d=np.full((21, 2), np.nan, np.float32),
        detection_score=0.9,
        touching=touching,
        min_distance_mm=gap * 1000.0,
    )


def make_capture(*, face=True, hands=(), photo=None, size=(WIDTH, HEIGHT), touched=()):
    width, height = size
    if photo is None:
        photo = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Capture(
        image_size=(WIDTH, HEIGHT),
        K=K,
        camera_source="given",
        face=make_face() if face else None,
        hands={hand.side: hand for hand in hands},
        touched_regions=list(touched),
        image=photo,
    )


PANEL_WIDTH = 2 * round(SIDE_ASPECT * HEIGHT / 2)


def side_panel(frame):
    return frame[:HEIGHT, WIDTH : WIDTH + PANEL_WIDTH]  # WIDTH is even: no padding column


def top_panel(frame):
    return frame[:HEIGHT, WIDTH + PANEL_WIDTH :]


def blue_columns(panel):
    p = panel.astype(int)
    blue = (p[..., 2] > p[..., 0] + 40) & (p[..., 2] > p[..., 1] + 10)
    return np.flatnonzero(blue.any(axis=0))


def face_columns(panel, row):
    """Columns where the face is drawn on one row (not background, not blue)."""
    p = panel[row].astype(int)
    drawn = np.abs(p - np.array(SIDE_BACKGROUND)).sum(-1) > 30
    return np.flatnonzero(drawn & ~(p[:, 2] > p[:, 0] + 40))


def redness(pixel):
    p = pixel.astype(float)
    return p[..., 0] - 0.5 * (p[..., 1] + p[..., 2])


def test_frame_layout_even_and_left_part_is_the_capture_overlay():
    capture = make_capture(hands=[make_hand()])
    frame = sequence_overlay_frame(capture)
    legend = frame.shape[0] - HEIGHT  # the legend strip below, even
    assert 20 <= legend <= HEIGHT // 2 and legend % 2 == 0
    assert frame.shape == (HEIGHT + legend, WIDTH + 2 * PANEL_WIDTH, 3)
    assert frame.dtype == np.uint8
    # the legend shows the contact colour bar: grey to red, left to right
    strip = frame[HEIGHT:].astype(int)
    assert (redness(strip) > 150).sum() > 20
    # below the caption band, the left part is the capture overlay's drawing, pixel for pixel
    reference = capture_overlay(capture, max_side=960)
    np.testing.assert_array_equal(frame[40:HEIGHT, :WIDTH], reference[40:])
    assert (frame[HEIGHT - 3, 3] == capture.image[HEIGHT - 3, 3]).all()  # the photo shows
    assert (frame[:40, :WIDTH] != reference[:40]).any()  # a caption of its own

    # odd photo sizes are padded to even, the layout is the same for every frame
    odd = (WIDTH + 1, HEIGHT - 1)
    shapes = {
        sequence_overlay_frame(make_capture(size=odd, face=f, hands=h)).shape
        for f, h in ((True, [make_hand()]), (False, [make_hand()]), (True, []), (False, []))
    }
    assert len(shapes) == 1
    height, width, _ = shapes.pop()
    assert height % 2 == 0 and width % 2 == 0 and height > HEIGHT and width > WIDTH + 1
    frame = sequence_overlay_frame(make_capture(size=odd, face=False))
    assert (frame[HEIGHT - 1, : WIDTH + 2] == 0).all()  # padding row is black


def test_side_view_shows_the_depth_gap_between_hand_and_face():
    offsets = []
    for gap in (0.02, 0.08):
        frame = sequence_overlay_frame(make_capture(hands=[make_hand(gap=gap)]))
        panel = side_panel(frame)
        hand = blue_columns(panel)
        face = face_columns(panel, HEIGHT // 2 + 40)  # below the hand, above the scale bar
        assert len(hand) > 0 and len(face) > 0
        assert hand.max() < face.min()  # the camera is on the left: the hand is left of the face
        offsets.append(face.min() - hand.max())
        assert abs(offsets[-1] - gap * PX_PER_M) <= 2.5
        # the head's centre sits at SIDE_HEAD_AT of the panel, its 20 cm depth at scale
        assert abs(0.5 * (face.min() + face.max()) - SIDE_HEAD_AT * panel.shape[1]) <= 2
        assert abs((face.max() - face.min()) - 0.2 * PX_PER_M) <= 2
    assert offsets[1] > offsets[0] + 0.05 * PX_PER_M

    # contact heat map in the side view: the face's front (in contact) is red, its back grey
    face = face_columns(panel, HEIGHT // 2 + 40)
    row = panel[HEIGHT // 2 + 40]
    assert redness(row[face.min() + 3]) > redness(row[face.max() - 3]) + 40


def test_top_view_shows_the_depth_gap_below_the_face():
    """From above, the photo camera is below the panel: a hand in front of the face is drawn
    below it, the gap at scale, the head's centre at TOP_HEAD_AT of the panel's height."""
    gaps = []
    for gap in (0.02, 0.08):
        panel = top_panel(sequence_overlay_frame(make_capture(hands=[make_hand(gap=gap)])))
        p = panel.astype(int)
        blue = (p[..., 2] > p[..., 0] + 40) & (p[..., 2] > p[..., 1] + 10)
        hand_rows = np.flatnonzero(blue.any(axis=1))
        column = panel.shape[1] // 2 + int(0.06 * PX_PER_M)  # beside the hand, on the face
        drawn = np.abs(p[:, column] - np.array(SIDE_BACKGROUND)).sum(-1) > 30
        face_rows = 30 + np.flatnonzero(drawn[30 : int(0.9 * HEIGHT)])  # below the title
        assert len(hand_rows) and len(face_rows)
        assert hand_rows.min() > face_rows.max()  # in front of the face: below it
        gaps.append(hand_rows.min() - face_rows.max())
        assert abs(gaps[-1] - gap * PX_PER_M) <= 2.5
        assert abs(0.5 * (face_rows.min() + face_rows.max()) - TOP_HEAD_AT * HEIGHT) <= 2
    assert gaps[1] > gaps[0] + 0.05 * PX_PER_M


def test_side_camera_maps_depth_to_columns():
    centre = np.array([0.05, -0.02, 1.3])
    R, t, K_side = side_view_camera(centre, HEIGHT, 192)
    assert np.allclose(R @ R.T, np.eye(3)) and np.isclose(np.linalg.det(R), 1.0)

    def column(point):
        p = R @ point + t
        return (K_side @ p / p[2])[:2]

    u0, v0 = column(centre)
    assert np.isclose(u0, SIDE_HEAD_AT * 192 - 0.5) and np.isclose(v0, (HEIGHT - 1) / 2)
    u1, v1 = column(centre + [0.0, 0.0, 0.1])  # 10 cm deeper: 10 cm to the right
    assert np.isclose(u1 - u0, 0.1 * PX_PER_M) and np.isclose(v1, v0)
    u2, v2 = column(centre + [0.0, 0.1, 0.0])  # 10 cm down: down
    assert np.isclose(v2 - v0, 0.1 * PX_PER_M) and np.isclose(u2, u0)
    u3, _ = column(centre + [0.1, 0.0, 0.1])  # x barely matters: nearly orthographic
    assert abs(u3 - u1) < 0.011 * (u1 - u0)


def test_a_hand_behind_the_head_shows_through_it():
    # the right hand on the far side of the head (x < -0.1), level with the head's centre
    hidden = make_hand(x=(-0.16, -0.12), z=(HEAD_Z - 0.02, HEAD_Z + 0.02))
    with_hand = side_panel(sequence_overlay_frame(make_capture(hands=[hidden])))
    without = side_panel(sequence_overlay_frame(make_capture(hands=[])))
    u = int(round(SIDE_HEAD_AT * with_hand.shape[1]))
    v = HEIGHT // 2
    a, b = with_hand[v, u].astype(int), without[v, u].astype(int)
    assert a[2] - a[0] > b[2] - b[0] + 30  # bluer where the hidden hand is
    far = with_hand[v, u + int(0.06 * PX_PER_M)]  # beyond the hand's depth: no change
    assert (far == without[v, u + int(0.06 * PX_PER_M)]).all()


def test_captions_show_status_and_verdicts():
    touching = make_hand(touching=True)
    capture = make_capture(hands=[touching], touched=["left cheek"])
    assert frame_caption(capture) == ["right hand touching: left cheek"]
    assert frame_caption(capture, {"right": "bridged"}) == [
        "right hand (bridged) touching: left cheek"
    ]
    assert frame_caption(capture, {"right": "detected", "left": "missing"}) == [
        "right hand touching: left cheek",
        "left hand missing",
    ]
    apart = make_capture(hands=[make_hand(gap=0.04)])
    assert frame_caption(apart) == ["right hand not touching (40 mm away)"]
    both = make_capture(
        hands=[touching, make_hand("left", touching=True)], touched=["chin", "left cheek"]
    )
    assert frame_caption(both, {"left": "network"}) == [
        "right hand touching",
        "left hand (network) touching",
        "touched: chin, left cheek",
    ]
    assert frame_caption(make_capture(face=False)) == ["no face or hand found"]
    assert frame_caption(make_capture()) == ["no hand found"]
    assert frame_caption(make_capture(face=False, hands=[touching]))[0] == "no face found"

    # the bridged line is drawn in its own colour, so it reads at a glance
    photo = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
    capture = make_capture(hands=[touching], touched=["left cheek"], photo=photo)
    detected = sequence_overlay_frame(capture, {"right": "detected"})[:30, :WIDTH]
    bridged = sequence_overlay_frame(capture, {"right": "bridged"})[:30, :WIDTH]
    amber = np.array(STATUS_COLORS["bridged"])

    def amber_pixels(image):
        return int((np.abs(image.astype(int) - amber).sum(-1) < 60).sum())

    assert amber_pixels(bridged) > 30 and amber_pixels(detected) == 0


def test_an_empty_capture_draws_an_empty_side_panel():
    frame = sequence_overlay_frame(make_capture(face=False))
    panel = side_panel(frame)
    middle = panel[HEIGHT // 3 : 2 * HEIGHT // 3]
    assert (middle == np.array(SIDE_BACKGROUND, np.uint8)).all()
    assert (panel[:20] != np.array(SIDE_BACKGROUND, np.uint8)).any()  # the note
    # hands without a face: the view centres on them
    panel = side_panel(sequence_overlay_frame(make_capture(face=False, hands=[make_hand()])))
    assert len(blue_columns(panel)) > 0


def write_video(path, frames, fps=10.0):
    with OverlayVideoWriter(path, fps) as video:
        for frame in frames:
            video.write(frame)
    return video


def read_video(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate)
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)], rate


def test_video_writer_round_trip(tmp_path):
    color = np.array([200, 60, 30], np.uint8)
    frames = [np.broadcast_to(color, (48, 64, 3)).copy() for _ in range(5)]
    frames[2][:, :32] = 0  # one frame differs
    path = tmp_path / "overlay.mp4"
    video = write_video(path, frames, fps=12.0)
    assert video.frames_written == 5 and os.listdir(tmp_path) == ["overlay.mp4"]
    decoded, rate = read_video(path)
    assert len(decoded) == 5 and decoded[0].shape == (48, 64, 3)
    assert np.isclose(rate, 12.0)
    assert np.abs(decoded[0].reshape(-1, 3).mean(0) - color).max() < 6
    assert (
        decoded[2][:, :28].mean() < 10 and np.abs(decoded[2][:, 36:].mean((0, 1)) - color).max() < 8
    )
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_video_writer_leaves_nothing_partial(tmp_path):
    path = tmp_path / "overlay.mp4"
    path.write_bytes(b"previous run")
    frame = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(RuntimeError, match="stop"), OverlayVideoWriter(path, 25.0) as video:
        video.write(frame)
        video.write(frame)
        raise RuntimeError("stop")
    assert path.read_bytes() == b"previous run" and os.listdir(tmp_path) == ["overlay.mp4"]

    # a frame of another size is refused, and the partial file goes with the error
    other = tmp_path / "other.mp4"
    with pytest.raises(ValueError, match="first was 16x16"), OverlayVideoWriter(other, 25.0) as v:
        v.write(frame)
        v.write(np.zeros((16, 18, 3), np.uint8))
    assert sorted(os.listdir(tmp_path)) == ["overlay.mp4"]
    writer = OverlayVideoWriter(other, 25.0)
    with pytest.raises(ValueError, match="even"):
        writer.write(np.zeros((15, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        writer.write(np.zeros((16, 16, 3), np.float32))
    assert writer.close() is None and not other.exists()  # no frames, no file
    with pytest.raises(ValueError, match="fps"):
        OverlayVideoWriter(other, 0.0)


def timeline(frames=30, *, touching=False, status="detected", hands=("right",)):
    return [
        {
            "frame": i,
            "time_s": i / 30.0,
            "face": "detected",
            "hands": {
                side: {
                    "status": status,
                    "touching": touching,
                    "regions": ["left cheek"] if touching else [],
                    "min_distance_mm": 0.0 if touching else None,
                }
                for side in hands
            },
            "touched_regions": ["left cheek"] if touching else [],
            "max_deformation_mm": 2.0 if touching else 0.0,
        }
        for i in range(frames)
    ]


def red_pixels(path):
    image = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int((np.abs(image - np.array([214, 39, 40])).sum(-1) < 30).sum()), image


def test_contact_timeline(tmp_path):
    touch = contact_timeline(timeline(touching=True), 30.0, tmp_path / "touch.png")
    free = contact_timeline(timeline(touching=False), 30.0, tmp_path / "free.png")
    assert touch == tmp_path / "touch.png"
    red_touch, image_touch = red_pixels(touch)
    red_free, image_free = red_pixels(free)
    # a hand row and a region row filled with red, against the legend's swatch alone
    assert red_touch > 20 * red_free > 0
    assert image_touch.shape[0] > image_free.shape[0]  # the "left cheek" row

    # bridged frames look different from detected ones
    bridged = contact_timeline(timeline(status="bridged"), 30.0, tmp_path / "bridged.png")
    image_bridged = np.asarray(Image.open(bridged).convert("RGB"))
    assert image_bridged.shape == image_free.shape
    assert (np.abs(image_bridged.astype(int) - image_free).sum(-1) > 100).sum() > 500

    # no hand seen, no frames: still a picture
    for name, entries in (("none.png", timeline(hands=())), ("empty.png", [])):
        out = contact_timeline(entries, 30.0, tmp_path / name)
        assert Image.open(out).size[0] > 100
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["touch.png", "free.png", "bridged.png", "none.png", "empty.png"]
    )  # nothing temporary left behind
