"""Gap bridging and temporally consistent touching verdicts."""

from __future__ import annotations

import numpy as np

from handface.track.bridge import bridge_gaps, bridgeable_gaps, near_face
from handface.track.decisions import continued_verdicts, stable_verdicts


def _track(frames: int, missing: slice) -> tuple[np.ndarray, np.ndarray]:
    keypoints = np.arange(frames, dtype=np.float64)[:, None, None] * np.ones((1, 21, 2))
    depth = np.arange(frames, dtype=np.float64)[:, None] * np.ones((1, 21))
    keypoints[missing] = np.nan
    depth[missing] = np.nan
    return keypoints, depth


def test_a_short_gap_near_the_face_is_interpolated_and_marked():
    keypoints, depth = _track(10, slice(3, 6))
    filled = bridge_gaps(keypoints, depth, np.ones(10, bool), max_gap=3)
    assert filled.bridged.tolist() == [False] * 3 + [True] * 3 + [False] * 4
    # linear motion is recovered exactly
    assert np.allclose(filled.keypoints[:, 0, 0], np.arange(10))
    assert np.allclose(filled.depth[:, 5], np.arange(10))
    assert filled.present.all()


def test_long_gaps_open_ends_and_hands_away_from_the_face_stay_missing():
    keypoints, depth = _track(10, slice(3, 7))
    assert not bridge_gaps(keypoints, depth, np.ones(10, bool), max_gap=3).bridged.any()
    keypoints, depth = _track(10, slice(7, 10))  # lost at the end: nothing after the gap
    assert not bridge_gaps(keypoints, depth, np.ones(10, bool), max_gap=5).bridged.any()
    keypoints, depth = _track(10, slice(3, 5))
    near = np.ones(10, bool)
    near[5] = False  # reappears far from the face: the hand left, not hidden on the face
    filled = bridge_gaps(keypoints, depth, near, max_gap=5)
    assert not filled.bridged.any() and not filled.present[3:5].any()


def test_near_face_uses_the_face_box_with_a_margin():
    face = np.array([[100.0, 100.0], [200.0, 220.0]])
    hand = np.array([[230.0, 150.0], [280.0, 200.0]]).repeat(11, axis=0)[:21]
    assert near_face(hand, face, margin=0.5)  # 30 px from a 100 px wide face
    assert not near_face(hand + [200.0, 0.0], face, margin=0.5)
    assert not near_face(hand, None)


def test_one_frame_flicker_is_removed_but_a_clear_tap_is_kept():
    scores = np.array([0.1, 0.1, 0.6, 0.1, 0.1, 0.8, 0.8, 0.8, 0.4, 0.8, 0.8])
    verdicts = stable_verdicts(scores, min_run=3)
    assert verdicts.tolist() == [False] * 5 + [True] * 6  # the 0.4 dip does not end the contact
    tap = np.array([0.0, 0.0, 1.0, 0.0, 0.0])
    assert stable_verdicts(tap, min_run=3).tolist() == [False, False, True, False, False]
    assert stable_verdicts(tap, min_run=3, strong=0.6).tolist() == [False] * 5
    # min_run 1 keeps the raw decision
    assert stable_verdicts(scores, min_run=1).tolist() == (scores > 0.5).tolist()


def test_frames_without_the_hand_are_never_touching_and_split_runs():
    scores = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.9])
    valid = np.array([True, True, False, True, True, True])
    verdicts = stable_verdicts(scores, valid=valid, min_run=3)
    assert verdicts.tolist() == [True, True, False, True, True, True]


def test_bridgeable_gaps_is_the_rule_bridge_gaps_applies():
    seen = np.array([1, 0, 0, 1, 0, 0, 0, 1, 1, 0], bool)
    assert bridgeable_gaps(seen, np.ones(10, bool), max_gap=2).astype(int).tolist() == [
        0, 1, 1, 0, 0, 0, 0, 0, 0, 0
    ]  # fmt: skip
    assert bridgeable_gaps(seen, np.ones(10, bool), max_gap=3)[4:7].all()
    near = np.ones(10, bool)
    near[3] = False  # the hand was away from the face on one side of both gaps
    assert not bridgeable_gaps(seen, near, max_gap=3).any()


def test_continued_verdicts_use_the_committed_history_as_context():
    scores = np.array([0.9, 0.1, 0.1, 0.1, 0.1])
    valid = np.ones(5, bool)
    # alone, the window's first frame is a one-frame touch on weak-ish evidence... kept only
    # because it is strong (0.9); with a history of touching it continues a contact instead
    alone = continued_verdicts(np.array([0.6, 0.1, 0.1, 0.1, 0.1]), valid, None)
    assert alone.tolist() == [False] * 5
    with_history = continued_verdicts(
        np.array([0.6, 0.6, 0.1, 0.1, 0.1]), valid, np.array([0.7, 0.7, 0.7])
    )
    assert with_history.tolist() == [True, True, False, False, False]
    assert (
        continued_verdicts(scores, valid, np.zeros(0)).tolist()
        == stable_verdicts(scores, valid=valid).tolist()
    )
