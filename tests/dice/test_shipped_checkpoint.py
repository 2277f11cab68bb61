"""The DICE network that ships with handface: it loads, is small, and tells touching from not."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from handface.dice.predictor import SHIPPED_CHECKPOINT, load_network


@pytest.fixture(scope="module")
def shipped():
    return load_network()


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """Fresh 256 px renders (seed 31, never used in training: its seeds are 1000 and up)."""
    from handface.synth import generate

    return generate(
        tmp_path_factory.mktemp("shipped") / "data", num=16, seed=31, size=256, workers=2,
        progress=False,
    )  # fmt: skip


def test_the_shipped_file_is_small_and_loads_with_weights_only(shipped):
    assert SHIPPED_CHECKPOINT.is_file()
    assert SHIPPED_CHECKPOINT.stat().st_size <= 30 * 2**20
    state = torch.load(SHIPPED_CHECKPOINT, map_location="cpu", weights_only=True)
    assert state["config"]["name"] == "dice-small"
    assert shipped.config.name == "dice-small" and not shipped.training
    assert all(p.dtype == torch.float32 for p in shipped.parameters())
    assert shipped.hand_touch is not None  # v2 and later decide touches with the touch head


def _touch_scores(shipped, renders) -> list[tuple[bool, float]]:
    """(ground truth touching, the network's touch probability, the likelier hand's) per render."""
    from handface.dice.crops import CropConfig
    from handface.dice.dataset import DiceDataConfig, DiceTrainingSet
    from handface.dice.mirror import predict_both_hands

    data = DiceTrainingSet(
        renders, shipped.sampling.mirror, shipped.hand_model.num_vertices,
        DiceDataConfig(crop=CropConfig(size=shipped.config.input_size), augment=None),
    )  # fmt: skip
    meta = json.loads((renders / "meta.json").read_text())
    scores = []
    with torch.no_grad():
        for index, item in enumerate(meta["items"]):
            prediction = predict_both_hands(shipped, data[index]["image"][None])
            touch = torch.maximum(prediction.right.touch, prediction.left.touch)
            scores.append((bool(item["in_contact"]), float(touch[0])))
    return scores


def test_a_contact_render_is_touching_and_a_non_contact_one_is_not(shipped, renders):
    scores = _touch_scores(shipped, renders)
    touching = [score for truth, score in scores if truth]
    apart = [score for truth, score in scores if not truth]
    assert touching and apart
    # the clearest cases of each class are called right
    assert max(touching) > 0.5 and min(apart) < 0.5
    # and on the whole it ranks touching renders above the others (measured 0.63 for v2's
    # touch verdict, as for v1's highest face contact: weak; the model card says how weak)
    pairs = [(t > a) + 0.5 * (t == a) for t in touching for a in apart]
    assert np.mean(pairs) > 0.55
