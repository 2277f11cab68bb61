"""The temporal figures of ``handface bench track`` on constructed capture folders."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from handface.bench import _temporal_figures


class _Truth:
    """Five frames: a face and a right hand at rest; the hand touches in frames 2-3."""

    def __init__(self) -> None:
        self.keys = [f"000000_{t:04d}" for t in range(5)]

    def index_of(self, key: str) -> int:
        return self.keys.index(key)

    def __getitem__(self, index: int):
        contact = torch.zeros(4)
        contact[0] = 1.0 if index in (2, 3) else 0.0
        hand = SimpleNamespace(vertices=torch.ones(4, 3), contact=contact)
        return SimpleNamespace(face_vertices_deformed=torch.zeros(6, 3), hands={"right": hand})


def test_accel_err_and_contact_flips_of_saved_captures(tmp_path):
    truth = _Truth()
    said = [False, True, False, True, False]  # flickers: 4 changes in 4 transitions
    for t, key in enumerate(truth.keys):
        face = np.zeros((6, 3), np.float32)
        if t == 2:
            face[:, 0] = 0.002  # a 2 mm jump of the whole face in one frame
        hand = np.ones((4, 3), np.float32)
        folder = tmp_path / key
        folder.mkdir()
        np.savez(folder / "params.npz", face_vertices_deformed=face, hand_right_vertices=hand)
        (folder / "result.json").write_text(json.dumps({"hands": {"right": {"touching": said[t]}}}))
    figures = _temporal_figures(tmp_path, truth, truth.keys)
    # face accelerations at frames 1, 2, 3: 2, -4, 2 mm -> mean 8/3; the hand's are 0
    assert figures["accel_err_mm"] == pytest.approx((8.0 / 3.0 + 0.0) / 2, rel=1e-5)
    assert figures["contact_flips_per_100"] == pytest.approx(100.0)
    assert figures["gt_contact_flips_per_100"] == pytest.approx(50.0)
    # a frame without a capture is left out of the accelerations that need it
    (tmp_path / truth.keys[4] / "params.npz").unlink()
    figures = _temporal_figures(tmp_path, truth, truth.keys)
    assert figures["accel_err_mm"] == pytest.approx((3.0 + 0.0) / 2, rel=1e-5)  # frames 1, 2
