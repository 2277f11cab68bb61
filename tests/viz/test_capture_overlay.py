from dataclasses import replace

import numpy as np
import pytest

from handface.capture import Capture, CapturedFace, CapturedHand
from handface.errors import InputError
from handface.models.landmarks import MEDIAPIPE_INDEX_OF_68
from handface.viz.capture_overlay import MAX_SIDE, capture_overlay, drawing_scale, overlay_caption

WIDTH, HEIGHT, FOCAL = 320, 240, 500.0
K = np.array([[FOCAL, 0, WIDTH / 2 - 0.5], [0, FOCAL, HEIGHT / 2 - 0.5], [0, 0, 1]])
DOT = (300.0, 200.0)  # one detected face landmark, away from every mesh
HAND_DOT = (20.0, 200.0)  # one detected hand keypoint


def grid(x0, x1, y0, y1, z, n=12):
    """A flat (n x n)-vertex grid facing the camera at depth z (camera frame, metres)."""
    xs, ys = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    vertices = np.stack([xs.ravel(), ys.ravel(), np.full(n * n, z)], 1).astype(np.float32)
    i = np.arange(n - 1)[:, None] * n + np.arange(n - 1)[None, :]
    a, b, c, d = i.ravel(), i.ravel() + 1, i.ravel() + n, i.ravel() + n + 1
    faces = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)]).astype(np.int64)
    return vertices, faces


def project(x, y, z, K=K):
    return K[0, 0] * x / z + K[0, 2], K[1, 1] * y / z + K[1, 2]


def make_capture(photo=None, *, face=True, hand=True, touching=True) -> Capture:
    """A 20 cm square "face" 1 m away whose left half (x < 0) is in contact, and a "hand"
    beside it whose upper half (y < 0) is in contact."""
    captured_face = hands = None
    if face:
        vertices, faces = grid(-0.1, 0.1, -0.1, 0.1, 1.0)
        detected = np.full((478, 2), np.nan, np.float32)
        detected[MEDIAPIPE_INDEX_OF_68[0]] = DOT
        zeros = np.zeros((478, 2), np.float32)
        captured_face = CapturedFace(
            params={},
            vertices=vertices,
            vertices_deformed=vertices,
            faces=faces,
            deformation=np.zeros_like(vertices),
            rotation=np.eye(3, dtype=np.float32),
            contact=(vertices[:, 0] < 0).astype(np.float32),
            landmarks3d=np.zeros((478, 3), np.float32),
            landmarks2d=zeros,
            keypoints68_3d=np.zeros((68, 3), np.float32),
            keypoints68_2d=np.zeros((68, 2), np.float32),
            detected_landmarks2d=detected,
        )
    hands = {}
    if hand:
        vertices, faces = grid(0.13, 0.2, -0.05, 0.05, 0.9)
        keypoints = np.full((21, 2), np.nan, np.float32)
        keypoints[0] = HAND_DOT
        hands["right"] = CapturedHand(
            side="right",
            params={},
            vertices=vertices,
            faces=faces,
            contact=(vertices[:, 1] < 0).astype(np.float32),
            keypoints3d=np.zeros((21, 3), np.float32),
            keypoints2d=np.zeros((21, 2), np.float32),
            detected_keypoints2d=keypoints,
            detection_score=0.9,
            touching=touching,
            min_distance_mm=0.0,
        )
    if photo is None:
        photo = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    return Capture(
        image_size=(WIDTH, HEIGHT),
        K=K,
        camera_source="given",
        face=captured_face,
        hands=hands,
        touched_regions=["left cheek", "chin"] if touching else [],
        image=photo,
    )


def redness(image: np.ndarray, u: float, v: float, r: int = 3) -> float:
    patch = image[int(v) - r : int(v) + r + 1, int(u) - r : int(u) + r + 1].astype(float)
    return float((patch[..., 0] - 0.5 * (patch[..., 1] + patch[..., 2])).mean())


def test_photo_is_kept_where_nothing_is_drawn():
    capture = make_capture()
    out = capture_overlay(capture)
    assert out.shape == (HEIGHT, WIDTH, 3) and out.dtype == np.uint8
    kept = np.ones((HEIGHT, WIDTH), bool)
    rows, cols = np.mgrid[:HEIGHT, :WIDTH]
    # mesh footprints (projected boxes, 2 px margin), the caption band and the two dots
    for x0, x1, y0, y1, z in ((-0.1, 0.1, -0.1, 0.1, 1.0), (0.13, 0.2, -0.05, 0.05, 0.9)):
        (u0, v0), (u1, v1) = project(x0, y0, z), project(x1, y1, z)
        kept &= ~((cols >= u0 - 2) & (cols <= u1 + 2) & (rows >= v0 - 2) & (rows <= v1 + 2))
    kept[:30] = False
    for u, v in (DOT, HAND_DOT):
        kept &= (cols - u) ** 2 + (rows - v) ** 2 > 5**2
    np.testing.assert_array_equal(out[kept], capture.image[kept])
    # ... and everything else was drawn on: meshes, dots, caption
    u, v = project(0.05, 0.0, 1.0)
    assert np.abs(out[int(v), int(u)].astype(int) - capture.image[int(v), int(u)]).sum() > 0
    assert (out[int(DOT[1]), int(DOT[0])] != capture.image[int(DOT[1]), int(DOT[0])]).any()
    assert (out[:30] != capture.image[:30]).any(axis=-1).sum() > 50  # the caption


def test_contact_is_red_on_face_and_hand():
    capture = make_capture(np.full((HEIGHT, WIDTH, 3), 128, np.uint8))
    out = capture_overlay(capture)
    contact, free = project(-0.05, 0.02, 1.0), project(0.05, 0.02, 1.0)
    assert redness(out, *contact) > redness(out, *free) + 40
    assert redness(out, *free) < 10  # no contact: grey, not red
    hand_contact, hand_free = project(0.165, -0.03, 0.9), project(0.165, 0.03, 0.9)
    assert redness(out, *hand_contact) > redness(out, *hand_free) + 40
    blue = out[int(hand_free[1]), int(hand_free[0])].astype(int)
    assert blue[2] > blue[0] + 30  # the hand's own tint where it does not touch
    # the face lets the photo through: a darker photo gives a darker face
    dark = capture_overlay(make_capture(np.full((HEIGHT, WIDTH, 3), 20, np.uint8)))
    u, v = (int(c) for c in free)
    assert int(dark[v, u].sum()) < int(out[v, u].sum()) - 60


def test_large_photos_are_drawn_at_most_max_side():
    assert MAX_SIDE == 1600 and drawing_scale((4000, 3000)) == 0.4
    strip = np.zeros((100, 3200, 3), np.uint8)  # long but cheap to draw
    capture = replace(make_capture(strip), image_size=(3200, 100))
    assert capture_overlay(capture).shape == (50, MAX_SIDE, 3)
    assert capture_overlay(make_capture()).shape == (HEIGHT, WIDTH, 3)  # small: unchanged
    # downscaled drawing keeps meshes on the photo: K is scaled with it
    big = np.full((HEIGHT * 2, WIDTH * 2, 3), 128, np.uint8)
    K2 = K.copy()
    K2[:2, :2] *= 2
    K2[:2, 2] = 2 * (K[:2, 2] + 0.5) - 0.5
    capture = replace(make_capture(big), image_size=(WIDTH * 2, HEIGHT * 2), K=K2)
    out = capture_overlay(capture, max_side=WIDTH)
    assert out.shape == (HEIGHT, WIDTH, 3)
    contact, free = project(-0.05, 0.02, 1.0), project(0.05, 0.02, 1.0)
    assert redness(out, *contact) > redness(out, *free) + 40
    assert (out[HEIGHT - 5, 5] == 128).all()  # a background pixel stays the photo's


def test_face_only_hand_only_and_captions():
    touching = make_capture()
    assert overlay_caption(touching) == "right hand touching: left cheek, chin"
    assert overlay_caption(make_capture(touching=False)) == "no contact"
    both = replace(touching, hands={**touching.hands, "left": touching.hands["right"]})
    assert overlay_caption(both) == "both hands touching: left cheek, chin"
    face_only, hand_only = make_capture(hand=False), make_capture(face=False)
    assert overlay_caption(face_only) == "no hand found"
    assert overlay_caption(hand_only) == "no face found"
    for capture, drawn in (
        (face_only, project(0.05, 0.0, 1.0)),
        (hand_only, project(0.165, 0.03, 0.9)),
    ):
        out = capture_overlay(capture)
        u, v = (int(c) for c in drawn)
        assert out.shape == (HEIGHT, WIDTH, 3) and (out[v, u] != capture.image[v, u]).any()
    face_pixel = project(0.05, 0.0, 1.0)
    out = capture_overlay(hand_only)
    u, v = (int(c) for c in face_pixel)
    assert (out[v, u] == hand_only.image[v, u]).all()  # no face drawn


def test_a_capture_without_its_photo_is_refused():
    with pytest.raises(InputError, match="no photo"):
        capture_overlay(replace(make_capture(), image=None))
    with pytest.raises(InputError, match="uint8"):
        capture_overlay(replace(make_capture(), image=np.zeros((HEIGHT, WIDTH, 3), np.float32)))
