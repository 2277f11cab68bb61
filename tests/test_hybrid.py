"""--method hybrid: DICE places the hands and decides contact, fitting aligns and resolves D."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "dice"))
from test_training import TINY, _LabelDetector  # noqa: E402

from handface.dice.train import TrainOptions, train  # noqa: E402
from handface.dice.trainer import ScheduleConfig  # noqa: E402


@pytest.fixture(scope="module")
def run(synth_dataset, tmp_path_factory):
    """A tiny DICE trained for two steps on the shared synthetic samples."""
    schedule = ScheduleConfig(batch_size=6, max_steps=2, epochs=1, lr=3e-3)
    options = TrainOptions(
        data=synth_dataset, out=tmp_path_factory.mktemp("hybrid") / "run", overwrite=True,
        augment=False, schedule=schedule, progress=False, network=dict(TINY),
    )  # fmt: skip
    return train(options)


def _touching_sample(synth_dataset) -> str:
    import json

    meta = json.loads((synth_dataset / "meta.json").read_text())
    return next(item["key"] for item in meta["items"] if item["in_contact"])


def _touch_bias(reconstructor, value: float) -> None:
    """Every vertex likely in contact; the touch head's verdict set by ``value``."""
    with torch.no_grad():
        reconstructor.dice.net.interaction.stages[-1].output.bias[3] = 12.0
        reconstructor.dice.net.hand_touch.net[-1].bias.fill_(value)


def test_dice_decides_whether_the_hand_touches(run, synth_dataset):
    from handface.hybrid import HybridReconstructor

    key = _touching_sample(synth_dataset)
    labels = np.load(synth_dataset / "labels" / f"{key}.npz")
    image = synth_dataset / "images" / f"{key}.png"
    hybrid = HybridReconstructor(run / "model.pt", detector=_LabelDetector(labels))
    sides = {s for s in ("left", "right") if f"hand_{s}_keypoints2d" in labels}
    for bias, touching in ((12.0, True), (-12.0, False)):
        _touch_bias(hybrid, bias)
        capture = hybrid(image, K=torch.as_tensor(labels["K"]))
        assert capture.mode == "hybrid" and capture.face is not None
        assert sides <= set(capture.hands)
        decided = capture.extras["interaction_contact"]
        # DICE's touch verdict replaces the size-prior gate, for every fitted hand (the
        # per-vertex contact, all likely here, does not overrule it)
        assert all(decided[side] == touching for side in capture.hands)
        assert "guide_s" in capture.timings
    # with the contact term on, the touching hand ends on the skin (within the 5 mm rule)
    _touch_bias(hybrid, 12.0)
    capture = hybrid(image, K=torch.as_tensor(labels["K"]))
    assert any(hand.touching for hand in capture.hands.values())


def test_hands_the_detector_missed_are_fitted_to_dice(run, synth_dataset):
    from handface.detect.mediapipe_detector import Detections
    from handface.hybrid import HybridReconstructor

    key = _touching_sample(synth_dataset)
    labels = np.load(synth_dataset / "labels" / f"{key}.npz")
    detector = _LabelDetector(labels)
    detector.detections = Detections(
        image_size=detector.detections.image_size, faces=detector.detections.faces, hands=[]
    )
    hybrid = HybridReconstructor(run / "model.pt", detector=detector)
    with torch.no_grad():
        hybrid.dice.net.hand_presence.net[-1].bias.fill_(8.0)
    capture = hybrid(synth_dataset / "images" / f"{key}.png", K=torch.as_tensor(labels["K"]))
    assert set(capture.hands) == {"left", "right"}
    for hand in capture.hands.values():
        assert hand.found_by == "network" and hand.detection_score > 0.99
    assert sum("seen by the network only" in w for w in capture.warnings) == 2


def test_relative_keypoint_depth_is_mediapipes_convention():
    from handface.hybrid import relative_keypoint_depth

    K = torch.tensor([[400.0, 0, 64], [0, 400.0, 64], [0, 0, 1]])
    points = torch.rand(21, 3) * 0.05 + torch.tensor([0.0, 0.0, 0.4])
    depth = relative_keypoint_depth(points, K)
    assert depth[0] == 0.0
    expected = (points[:, 2] - points[0, 2]) * 400.0 / points[:, 2].mean()
    np.testing.assert_allclose(depth, expected.numpy(), rtol=1e-5)


def test_bench_methods_scores_the_three_methods_on_the_same_images(run, synth_dataset, tmp_path):
    from handface.bench import bench_methods
    from handface.fit.evaluation import REPORTED_KEYS

    figures = bench_methods(data=synth_dataset, out=tmp_path / "pred", checkpoint=run / "model.pt")
    assert figures["detect_s"] > 0
    for method in ("fit", "dice", "hybrid"):
        for key in REPORTED_KEYS:
            assert f"{method}_{key}" in figures
        assert figures[f"{method}_num_scored"] + figures[f"{method}_num_no_face"] <= 6
        assert figures[f"{method}_s_over_detect"] > 0
        # every scored image has its Capture folder, saved by the method that made it
        folders = sorted((tmp_path / "pred" / method).iterdir())
        assert len(folders) == figures[f"{method}_num_scored"]
        import json

        modes = {json.loads((f / "result.json").read_text())["mode"] for f in folders}
        assert modes == {{"fit": "full"}.get(method, method)}
    assert figures["dice_network_images_per_s"] > 0
