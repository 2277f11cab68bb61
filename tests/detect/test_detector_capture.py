"""MediaPipeDetector for single-image capture: person mask, large images, EXIF-rotated photos,
input conversion and one hand per side."""

import numpy as np
import pytest

from handface.detect import Detections, HandDetection, MediaPipeDetector, load_image
from handface.detect.mediapipe_detector import one_hand_per_side
from handface.models.landmarks import INTER_OCULAR_478

PORTRAIT = "frontal_face/face01_obama_official_portrait_2012_PD.jpg"


@pytest.fixture(scope="module")
def detector():
    return MediaPipeDetector()  # segmentation on, max_side=1280


@pytest.fixture(scope="module")
def portrait(shared_media):
    return load_image(shared_media / PORTRAIT).rgb  # 1024 x 820


@pytest.fixture(scope="module")
def portrait_detections(detector, portrait):
    return detector(portrait)


def _inter_ocular(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[INTER_OCULAR_478[0]] - landmarks[INTER_OCULAR_478[1]]))


def test_person_mask_is_high_on_the_face_and_low_in_the_corners(portrait, portrait_detections):
    mask = portrait_detections.person_mask
    assert mask is not None and mask.shape == portrait.shape[:2] and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    landmarks = portrait_detections.faces[0].landmarks
    rows = np.clip(np.rint(landmarks[:, 1]).astype(int), 0, mask.shape[0] - 1)
    cols = np.clip(np.rint(landmarks[:, 0]).astype(int), 0, mask.shape[1] - 1)
    assert np.median(mask[rows, cols]) > 0.9
    assert mask[:40, :40].mean() < 0.1 and mask[:40, -40:].mean() < 0.1
    assert portrait_detections.timing_s > 0


def test_segmentation_can_be_turned_off(portrait, portrait_detections):
    detections = MediaPipeDetector(segment_person=False)(portrait)
    assert detections.person_mask is None and len(detections.faces) == 1
    # same models on the same pixels: the same landmarks
    np.testing.assert_allclose(
        detections.faces[0].landmarks, portrait_detections.faces[0].landmarks, atol=1e-6
    )


def test_large_image_is_detected_downscaled_and_reported_at_full_resolution(detector, portrait):
    import cv2

    small = cv2.resize(portrait, (480, 600), interpolation=cv2.INTER_AREA)
    large = cv2.resize(small, (1440, 1800), interpolation=cv2.INTER_CUBIC)  # 3x, > max_side
    seen = []
    original = detector._process
    detector._process = lambda solution, image: (
        seen.append(image.shape) or original(solution, image)
    )
    try:
        small_detections = detector(small)
        seen.clear()
        large_detections = detector(large)
    finally:
        del detector._process
    assert seen and all(max(shape[:2]) == 1280 for shape in seen)  # MediaPipe saw the copy
    assert large_detections.image_size == (1800, 1440)
    assert large_detections.person_mask.shape == (1800, 1440)

    expected = (small_detections.faces[0].landmarks + 0.5) * 3.0 - 0.5
    found = large_detections.faces[0].landmarks
    error = np.linalg.norm(found - expected, axis=1) / _inter_ocular(expected)
    assert np.median(error) < 0.02 and _inter_ocular(found) / _inter_ocular(expected) == (
        pytest.approx(1.0, abs=0.03)
    )
    depth_ratio = np.std(large_detections.faces[0].depth) / np.std(small_detections.faces[0].depth)
    assert depth_ratio == pytest.approx(3.0, rel=0.1)
    # the mask is upsampled: where the small mask is confident, the large one agrees
    small_mask = cv2.resize(small_detections.person_mask, (1440, 1800))
    confident = (small_mask > 0.9) | (small_mask < 0.1)
    assert (
        np.mean((large_detections.person_mask[confident] > 0.5) == (small_mask[confident] > 0.5))
        > 0.98
    )


def test_exif_rotated_photo_gives_the_upright_landmarks(
    tmp_path, detector, portrait, portrait_detections
):
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned counter-clockwise; viewers turn it clockwise
    Image.fromarray(np.ascontiguousarray(np.rot90(portrait, k=1))).save(
        tmp_path / "rotated.jpg", quality=95, exif=exif
    )
    loaded = load_image(tmp_path / "rotated.jpg")
    assert loaded.exif_rotated and loaded.rgb.shape == portrait.shape
    landmarks = detector.detect_face(loaded.rgb).landmarks
    error = np.linalg.norm(landmarks - portrait_detections.faces[0].landmarks, axis=1)
    assert np.median(error) < 3.0


def test_grayscale_and_rgba_arrays_are_converted(detector, portrait):
    import cv2

    small = cv2.resize(portrait, (320, 400), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    from_gray = detector.detect_face(gray)
    from_gray3 = detector.detect_face(np.repeat(gray[..., None], 3, axis=2))
    assert from_gray is not None
    np.testing.assert_allclose(from_gray.landmarks, from_gray3.landmarks, atol=1e-6)

    rgba = np.dstack([small, np.full(small.shape[:2], 255, np.uint8)])
    np.testing.assert_allclose(
        detector.detect_face(rgba).landmarks, detector.detect_face(small).landmarks, atol=1e-6
    )
    with pytest.raises(ValueError, match="uint8"):
        detector(small.astype(np.float32) / 255)
    with pytest.raises(ValueError, match="shape"):
        detector(np.zeros((8, 8, 5), np.uint8))


def _hand(side: str, score: float, at: float = 0.0) -> HandDetection:
    keypoints = np.linspace([0.0, 0.0], [40.0, 60.0], 21) + at
    return HandDetection(keypoints=keypoints, depth=np.zeros(21), side=side, score=score)


def test_one_hand_per_side():
    first, second = _hand("right", 0.6), _hand("right", 0.9, at=200.0)
    kept = one_hand_per_side([first, second])
    assert kept == [first, second]
    assert (second.side, second.relabeled) == ("right", False)
    assert (first.side, first.relabeled) == ("left", True)

    # the true left hand keeps its label; the weaker duplicate right has nowhere to go
    weak, strong, left = _hand("right", 0.8), _hand("right", 0.95, 200), _hand("left", 0.7, 400)
    kept = one_hand_per_side([weak, strong, left])
    assert kept == [strong, left] and not left.relabeled

    # two detections of one hand (video mode): the weaker is dropped, not given the other side
    tracked, fresh = _hand("left", 0.9), _hand("right", 0.7, at=3.0)
    assert one_hand_per_side([tracked, fresh]) == [tracked] and not fresh.relabeled

    detections = Detections(image_size=(4, 4), hands=kept)
    assert detections.hand("right") is strong and detections.hand("left") is left
    assert Detections(image_size=(4, 4)).hand("left") is None
    with pytest.raises(ValueError, match="left"):
        detections.hand("up")


def test_two_hands_photo_has_one_hand_per_side(detector, shared_media):
    image = load_image(shared_media / "single_hand" / "hand03_tfjs_two_open_hands_white_bg.jpg")
    detections = detector(image.rgb)
    assert sorted(hand.side for hand in detections.hands) == ["left", "right"]
    assert detections.hand("left") is not detections.hand("right")


def test_small_to_full_coordinates_keep_pixel_centres():
    # normalised (0.5, 0.5) is the image centre; (0, 0) the outer corner of the first pixel
    points = np.array([[0.5, 0.5, 0.1], [0.0, 0.0, 0.0], [1.0, 1.0, -0.2]])
    pixels, depth = MediaPipeDetector._to_full(points, small_hw=(10, 20), full_hw=(30, 60))
    np.testing.assert_allclose(pixels, [[29.5, 14.5], [-0.5, -0.5], [59.5, 29.5]])
    np.testing.assert_allclose(depth, [6.0, 0.0, -12.0])
    # a small-image pixel centre maps to the centre of the 3x3 block it came from
    x_small = 4.0
    full, _ = MediaPipeDetector._to_full(
        np.array([[(x_small + 0.5) / 20, 0.5, 0.0]]), small_hw=(10, 20), full_hw=(30, 60)
    )
    assert full[0, 0] == pytest.approx((x_small + 0.5) * 3 - 0.5) == pytest.approx(13.0)
