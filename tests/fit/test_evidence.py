"""Image evidence of a hand and the face: the hand's pixel mask and its overlap / gap with the
head's silhouette, on constructed masks with known answers."""

import math

import numpy as np
import pytest

from handface.fit.evidence import (
    HAND_BONES,
    PALM,
    finger_width_px,
    hand_face_evidence,
    hand_mask,
)


def _spread_hand(scale: float = 1.0, offset=(60.0, 20.0)) -> np.ndarray:
    """A flat, spread 2D hand skeleton (MediaPipe order): wrist at the bottom, fingers up."""
    wrist = np.array([0.0, 80.0])
    knuckles = {1: (-18.0, 62.0), 5: (-12.0, 40.0), 9: (0.0, 38.0), 13: (12.0, 40.0)}
    knuckles[17] = (22.0, 46.0)
    directions = {1: (-1.0, -0.6), 5: (-0.25, -1.0), 9: (0.0, -1.0), 13: (0.25, -1.0)}
    directions[17] = (0.5, -1.0)
    points = np.zeros((21, 2))
    points[0] = wrist
    for base, knuckle in knuckles.items():
        step = np.array(directions[base]) / np.linalg.norm(directions[base]) * 10.0
        for j in range(4):
            points[base + j] = np.array(knuckle) + j * step
    return points * scale + np.array(offset)


def _segment_distance(pixels: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(((pixels - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    return np.linalg.norm(pixels - (a + t[:, None] * ab), axis=1)


def _convex_distance(pixels: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Signed distance of pixels to the convex hull of ``polygon`` (positive inside)."""
    import cv2

    hull = cv2.convexHull(polygon.astype(np.float32))
    return np.array([cv2.pointPolygonTest(hull, (float(x), float(y)), True) for x, y in pixels])


def test_finger_width_is_a_fifth_of_the_palm_length_and_at_least_two_pixels():
    keypoints = _spread_hand()
    palm = float(np.linalg.norm(keypoints[9] - keypoints[0]))
    assert palm == pytest.approx(42.0)
    assert finger_width_px(keypoints) == pytest.approx(0.2 * palm)
    assert finger_width_px(keypoints * 0.1) == 2.0  # a tiny hand still gets 2 px fingers


def test_hand_mask_covers_every_bone_and_the_palm_and_nothing_far_away():
    keypoints = _spread_hand()
    size = (120, 130)
    mask = hand_mask(keypoints, size)
    assert mask.dtype == bool and mask.shape == size
    rows, cols = np.mgrid[0 : size[0], 0 : size[1]]
    pixels = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(float)
    distance = np.min(
        [_segment_distance(pixels, keypoints[a], keypoints[b]) for a, b in HAND_BONES], axis=0
    )
    palm = _convex_distance(pixels, keypoints[list(PALM)])
    half = round(finger_width_px(keypoints)) / 2.0
    flat = mask.ravel()
    # every pixel on a bone (within half a pixel of the segment) is hand
    assert flat[distance <= 0.5].all()
    # every pixel inside the palm polygon is hand (the mask's corners are rounded to pixels)
    assert flat[palm >= 1.0].all()
    # pixels more than a line half-width (plus rounding) from every bone, outside the palm, are not
    far = (distance > half + 1.5) & (palm < -1.5)
    assert not flat[far].any()
    # the drawn width is the finger width: the middle finger's mid-segment, measured across
    y = int(round((keypoints[10, 1] + keypoints[11, 1]) / 2))
    across = mask[y, :]
    x = int(round(keypoints[10, 0]))
    assert across[x]
    left = next(i for i in range(x, -1, -1) if not across[i])
    right = next(i for i in range(x, across.size) if not across[i])
    assert abs((right - left - 1) - round(finger_width_px(keypoints))) <= 1


def test_hand_mask_is_gated_by_the_person_mask_above_one_half():
    keypoints = _spread_hand()
    ungated = hand_mask(keypoints, (120, 130))
    person = np.zeros((120, 130), np.float32)
    person[:, :60] = 0.51
    person[:, 60:70] = 0.5  # exactly one half is not "person"
    person[:, 70:] = 0.9
    gated = hand_mask(keypoints, (120, 130), person)
    assert np.array_equal(gated[:, :60], ungated[:, :60])
    assert not gated[:, 60:70].any() and ungated[:, 60:70].any()
    assert np.array_equal(gated[:, 70:], ungated[:, 70:])
    assert not hand_mask(keypoints, (120, 130), np.zeros((120, 130))).any()


def test_hand_mask_clips_a_hand_that_leaves_the_image():
    keypoints = _spread_hand(offset=(20.0, -30.0))  # thumb left of, fingertips above the image
    assert keypoints[:, 0].min() < 0 and keypoints[:, 1].min() < 0
    mask = hand_mask(keypoints, (100, 100))
    assert mask.shape == (100, 100) and mask[50, 20] and mask[0].any() and mask[:, 0].any()
    assert not hand_mask(keypoints + 200.0, (100, 100)).any()  # entirely outside: no pixels


def _rectangles(head_box, hand_box, size=(120, 200)):
    head = np.zeros(size, bool)
    hand = np.zeros(size, bool)
    head[head_box[0] : head_box[1], head_box[2] : head_box[3]] = True
    hand[hand_box[0] : hand_box[1], hand_box[2] : hand_box[3]] = True
    return hand, head


@pytest.mark.parametrize(
    ("hand_box", "gap"),
    [
        ((40, 60, 110, 130), 31.0),  # same rows, columns 110.. vs the head's last column 79
        ((40, 60, 80, 100), 1.0),  # side by side, no overlap: one pixel apart
        ((95, 110, 100, 120), math.hypot(100 - 79, 95 - 79)),  # diagonal: corner to corner
        ((0, 10, 40, 60), 11.0),  # straight above: rows 0..9 vs the head's first row 20
    ],
)
def test_gap_is_the_pixel_distance_between_separate_masks(hand_box, gap):
    hand, head = _rectangles((20, 80, 20, 80), hand_box)
    evidence = hand_face_evidence(hand, head)
    assert evidence.gap_px == pytest.approx(gap, abs=0.01)
    assert not evidence.overlap.any() and evidence.overlap_fraction == 0.0
    assert not evidence.adjacent


def test_overlapping_masks_have_zero_gap_and_the_shared_pixels():
    hand, head = _rectangles((20, 80, 20, 80), (40, 60, 70, 90))
    evidence = hand_face_evidence(hand, head)
    assert evidence.gap_px == 0.0 and evidence.adjacent
    assert np.array_equal(evidence.overlap, hand & head)
    assert int(evidence.overlap.sum()) == 20 * 10
    assert evidence.overlap_fraction == pytest.approx(200 / 400)
    inside, _ = _rectangles((20, 80, 20, 80), (30, 40, 30, 40))
    assert hand_face_evidence(inside, head).overlap_fraction == 1.0


def test_no_hand_pixels_or_no_head_means_an_infinite_gap():
    hand, head = _rectangles((20, 80, 20, 80), (40, 60, 110, 130))
    empty = np.zeros_like(hand)
    for evidence in (hand_face_evidence(empty, head), hand_face_evidence(hand, empty)):
        assert evidence.gap_px == math.inf and evidence.overlap_fraction == 0.0
        assert not evidence.overlap.any() and not evidence.adjacent


def test_gap_of_a_skeleton_mask_shrinks_as_the_hand_approaches_the_head():
    head = np.zeros((120, 260), bool)
    head[10:110, 10:90] = True
    gaps = []
    for x in (200.0, 180.0, 160.0, 130.0, 100.0):
        mask = hand_mask(_spread_hand(offset=(x, 20.0)), head.shape)
        gaps.append(hand_face_evidence(mask, head).gap_px)
    # sliding the hand 20 px towards the head closes the gap by 20 px, until they overlap
    assert gaps[0] > 60
    assert gaps[0] - gaps[1] == pytest.approx(20.0, abs=0.01)
    assert gaps[1] - gaps[2] == pytest.approx(20.0, abs=0.01)
    assert gaps[3] == 0.0 and gaps[4] == 0.0
