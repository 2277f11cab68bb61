"""Hand pose files: write/read round trip and every malformed field refused with its place."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handface.avatar.hand_poses import read_hand_poses, write_hand_poses
from handface.errors import InputError


def _pose(articulation: int = 4) -> dict:
    return {
        "right": {
            "global_orient": np.array([0.1, -0.2, 0.3]),
            "transl": np.array([0.05, -0.12, 0.08]),
            "articulation": np.linspace(-0.5, 0.5, articulation),
        }
    }


def test_round_trip(tmp_path):
    poses = [_pose(), {}, _pose()]
    path = write_hand_poses(tmp_path / "hands.json", poses)
    back = read_hand_poses(path, articulation_size=4)
    assert len(back) == 3 and back[1] == {}
    for name, value in poses[0]["right"].items():
        assert np.allclose(back[0]["right"][name], value, atol=1e-7)


def _hand(orient=(0, 0, 0), transl=(0, 0, 0), articulation=4) -> dict:
    return {"global_orient": list(orient), "transl": list(transl),
            "articulation": [0] * articulation}  # fmt: skip


def _document(**changes) -> dict:
    document = {"format": "handface-hand-poses", "version": 1, "frame": "head",
                "poses": [{"right": {"global_orient": [0, 0, 0], "transl": [0, 0, 0],
                                     "articulation": [0, 0, 0, 0]}}]}  # fmt: skip
    document.update(changes)
    return document


@pytest.mark.parametrize(
    "document, message",
    [
        ("not json {", "not a JSON hand pose file"),
        ({"poses": []}, "not a hand pose file"),
        (_document(version=2), "version 2"),
        (_document(frame="camera"), '"frame" must be "head"'),
        (_document(poses=[]), "non-empty list"),
        (_document(poses=[{"middle": {}}]), "pose 0 must map"),
        (_document(poses=[{"left": {"transl": [0, 0, 0]}}]), "pose 0 left: needs exactly"),
        (_document(poses=[{"right": _hand(orient=(0, 0))}]), "global_orient: needs 3"),
        (_document(poses=[{"right": _hand(articulation=5)}]), "articulation: needs 4"),
        (_document(poses=[{"right": _hand(transl=(0, "x", 0))}]), "transl: needs 3 finite"),
    ],
)
def test_malformed_files_are_refused(tmp_path, document, message):
    path = tmp_path / "hands.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    with pytest.raises(InputError, match=message):
        read_hand_poses(path, articulation_size=4)


def test_non_finite_values_are_refused(tmp_path):
    path = tmp_path / "hands.json"
    path.write_text(json.dumps(_document()).replace("\"transl\": [0, 0, 0]",
                                                    "\"transl\": [0, NaN, 0]"))  # fmt: skip
    with pytest.raises(InputError, match="finite"):
        read_hand_poses(path, articulation_size=4)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_hand_poses(tmp_path / "nope.json", articulation_size=4)
