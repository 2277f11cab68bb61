"""``track --method dice``: the network's per-frame meshes, smoothed and made consistent."""

from __future__ import annotations

import numpy as np
import pytest

from handface.detect.video import FrameReader
from handface.track.tracker import TrackConfig


@pytest.fixture(scope="module")
def predictor():
    from handface.dice.predictor import DicePredictor

    return DicePredictor()


def _track(clip, predictor, config: TrackConfig, dice=None):
    from handface.track.dice_track import DiceTracker

    captures = []
    reader = FrameReader(clip / "images", fps=10.0)
    try:
        sequence = DiceTracker(config, dice, predictor=predictor).run(
            reader, fps=10.0, progress=False,
            sink=lambda frame, capture, status: captures.append(capture),
        )  # fmt: skip
    finally:
        reader.close()
    return sequence, captures


def _accel(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[2:] - 2 * points[1:-1] + points[:-2], axis=-1).mean())


def test_dice_tracking_smooths_the_networks_frames_and_windows_agree(clip, predictor):
    from handface.data.synth import SynthDataset

    focal = float(SynthDataset(clip)[0].K[0, 0])
    windowed, windowed_captures = _track(
        clip, predictor, TrackConfig(window=5, overlap=3, max_gap=2, focal=focal)
    )
    whole, whole_captures = _track(clip, predictor, TrackConfig(window=12, overlap=3, focal=focal))
    assert len(whole) == len(windowed) == 8
    assert whole.method == "dice" and all(c.mode == "dice" for c in whole_captures)
    for frame in whole.frames:
        assert all(h.status in ("detected", "network", "bridged") for h in frame.hands.values())
    # every frame's own estimate (no smoothing; the verdicts still consistent)
    from handface.track.dice_track import DiceTrackConfig

    _, raw = _track(clip, predictor, TrackConfig(window=12, overlap=3, focal=focal),
                    DiceTrackConfig(face_strength=0.0, hand_strength=0.0))  # fmt: skip
    centres = lambda caps: np.stack([c.face.vertices.mean(0) for c in caps])  # noqa: E731
    # the smoothed face moves with less acceleration than the per-frame one and follows it
    assert _accel(centres(whole_captures)) < 0.5 * _accel(centres(raw))
    deviation = np.linalg.norm(centres(whole_captures) - centres(raw), axis=-1)
    windows = np.linalg.norm(centres(windowed_captures) - centres(whole_captures), axis=-1)
    assert deviation.mean() < 0.03
    # windows of 5 (3 solved again, anchored to the last two kept frames) change the result
    # far less than smoothing itself does
    assert windows.mean() < 0.5 * deviation.mean()
    # the verdicts and the meshes agree: a touching hand is within the contact distance
    for frame in whole.frames:
        for hand in frame.hands.values():
            assert hand.touching == (hand.min_distance_mm <= 5.0)
