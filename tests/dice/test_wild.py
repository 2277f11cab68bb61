"""Weak supervision from unlabelled photos: detection cache, items, masked objective."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from handface.dice.crops import CropConfig
from handface.errors import InputError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class _CountingDetector:
    """MediaPipe, counting its calls (the cache must spare the second pass)."""

    def __init__(self) -> None:
        from handface.detect.mediapipe_detector import MediaPipeDetector

        self.detector = MediaPipeDetector(segment_person=False)
        self.calls = 0

    def __call__(self, rgb):
        self.calls += 1
        return self.detector(rgb)


@pytest.fixture(scope="module")
def wild_folder(tmp_path_factory):
    photos = sorted(EXAMPLES.glob("*.jpg"))
    if not photos:
        pytest.skip("examples/ has no photos")
    root = tmp_path_factory.mktemp("wild")
    for photo in photos:
        shutil.copy(photo, root / photo.name)
    from PIL import Image

    width, height = Image.open(photos[0]).size
    ramp = np.linspace(0.5, 1.5, width, dtype=np.float32)[None].repeat(height, 0)
    np.save(root / (photos[0].stem + ".depth.npy"), ramp)
    return root


def test_detections_are_cached_and_refreshed(wild_folder, tmp_path):
    from handface.dice.wild import CACHE_FILE, detect_folder

    root = tmp_path / "w"
    shutil.copytree(wild_folder, root)
    detector = _CountingDetector()
    first = detect_folder(root, detector, progress=False)
    assert detector.calls == len(list(root.glob("*.jpg"))) and (root / CACHE_FILE).is_file()
    again = detect_folder(root, detector, progress=False)
    assert again == first and detector.calls == len(list(root.glob("*.jpg")))
    assert all(len(entry["face"]) == 478 for entry in first.values())
    with pytest.raises(InputError):
        detect_folder(tmp_path / "missing", detector)


def test_wild_items_mix_with_synthetic_ones_and_mask_3d_terms(wild_folder, synth_dataset):
    from test_training import TINY

    from handface.dice.config import get_config
    from handface.dice.dataset import DiceDataConfig, DiceTrainingSet
    from handface.dice.objective import DiceObjective
    from handface.dice.train import build_network
    from handface.dice.wild import MixedDataset, WildImageSet

    net = build_network(get_config("dice-small").replace(**TINY))
    crop = CropConfig(size=net.config.input_size)
    wild = WildImageSet(
        wild_folder, net.sampling.mirror, net.head_model.num_vertices,
        net.hand_model.num_vertices, len(net.head_model.shape_labels), crop, None,
        progress=False,
    )  # fmt: skip
    synth = DiceTrainingSet(
        synth_dataset, net.sampling.mirror, net.hand_model.num_vertices,
        DiceDataConfig(crop=crop, augment=None),
    )  # fmt: skip
    mixed = MixedDataset(synth, wild)
    assert len(mixed) == len(synth) + len(wild)
    item = wild[0]
    assert item["has_3d"] == 0 and item["image"].shape == (3, 64, 64)
    assert item["face_keypoints2d"].abs().max() <= 1.0  # the crop holds the detections
    depth_items = [wild[i] for i in range(len(wild)) if wild[i]["keypoint_depth_valid"].any()]
    assert len(depth_items) == 1
    readings = depth_items[0]["keypoint_depth"][depth_items[0]["keypoint_depth_valid"] > 0]
    assert readings.numel() >= 68 and ((readings >= 0.5) & (readings <= 1.5)).all()
    batch = torch.utils.data.default_collate([mixed[0], mixed[len(synth)], mixed[len(mixed) - 1]])
    net.train()
    objective = DiceObjective(net)
    terms = objective(net(batch["image"]), batch)
    assert all(torch.isfinite(v) for v in terms.values())
    # a batch of wild items only: no 3D, contact or deformation term, but 2D and depth
    wild_batch = torch.utils.data.default_collate([wild[i] for i in range(len(wild))])
    with torch.no_grad():
        terms = objective(net(wild_batch["image"]), wild_batch)
    for name in ("vertices", "keypoints", "params", "contact", "deformation"):
        assert float(terms[f"part/{name}"]) == 0.0, name
    assert float(terms["part/reprojection"]) > 0.0
    assert float(terms["loss/depth"]) > 0.0
