"""``handface eval`` on folders: ground truth against itself, a shifted copy, Capture layout."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

from handface.cli import entrypoint
from handface.errors import InputError
from handface.eval import SUMMARY_KEYS
from handface.eval.folders import evaluate_folders
from handface.geometry import signed_distance


def test_ground_truth_against_itself_is_perfect(synth_dataset):
    figures = evaluate_folders(synth_dataset, synth_dataset, progress=False).figures
    assert figures["pve_mm"] == 0.0 and figures["mpjpe_mm"] == 0.0
    assert figures["pa_mpjpe_mm"] < 1e-3
    assert figures["non_collision"] == 100.0
    assert figures["touchness"] == 100.0 and figures["f_score"] == 100.0
    assert figures["contact_f1_face"] == 1.0 and figures["contact_f1_hand"] == 1.0
    assert figures["deform_err_mm"] == 0.0
    assert figures["num_frames"] == 6


def _shift_hands_into_face(source, target, distance):
    """Copy a dataset, moving each hand ``distance`` from its closest point towards the head's
    centre."""
    shutil.copytree(source, target)
    for path in sorted((target / "labels").glob("*.npz")):
        with np.load(path) as data:
            arrays = {name: data[name] for name in data.files}
        with np.load(target / "topology.npz") as topology:
            faces = torch.from_numpy(topology["face_faces"].astype(np.int64))
        face = torch.from_numpy(arrays["face_vertices_deformed"])
        sides = [k.split("_")[1] for k in arrays if k.endswith("_vertices") and "hand" in k]
        for side in sides:
            hand = torch.from_numpy(arrays[f"hand_{side}_vertices"])
            closest = int(signed_distance(hand, face, faces).sdf.argmin())
            # towards the middle of the head: into the face wherever the hand is
            inward = face.mean(0) - hand[closest]
            shift = torch.nn.functional.normalize(inward, dim=0) * distance
            for name in (f"hand_{side}_vertices", f"hand_{side}_keypoints3d"):
                arrays[name] = (torch.from_numpy(arrays[name]) + shift).numpy()
        np.savez_compressed(path, **arrays)
    return target


def test_hands_shifted_one_centimetre_into_the_face(synth_dataset, tmp_path):
    shifted = _shift_hands_into_face(synth_dataset, tmp_path / "shifted", 0.01)
    result = evaluate_folders(shifted, synth_dataset, progress=False)
    figures = result.figures
    meta = json.loads((synth_dataset / "meta.json").read_text())
    touching = [item["in_contact"] for item in meta["items"]]
    # hands >= 8 mm away at most touch; a hand touching a cheek now reaches > 5 mm into it
    # (at the lips, the eyes or an ear a shifted fingertip can slip into a gap instead)
    on_cheek = ["cheek" in item["anchor"] for item in meta["items"]]
    for frame, is_touching, cheek in zip(result.frames, touching, on_cheek, strict=True):
        assert not frame.collides or is_touching
        assert frame.collides or not (is_touching and cheek)
    assert any(t and c for t, c in zip(touching, on_cheek, strict=True)) and not all(touching)
    collisions = sum(frame.collides for frame in result.frames)
    assert figures["non_collision"] == pytest.approx(100.0 * (6 - collisions) / 6)
    assert figures["touchness"] == 100.0
    expected_f = 2 * figures["non_collision"] * 100.0 / (figures["non_collision"] + 100.0)
    assert figures["f_score"] == pytest.approx(expected_f)
    truth = evaluate_folders(synth_dataset, synth_dataset, progress=False).figures
    assert figures["col_dist_mm"] > max(0.05, 3 * truth["col_dist_mm"])
    hands = [item["num_hands"] for item in meta["items"]]
    expected = np.mean([10.0 * n * 1609 / (n * 1609 + 4538) for n in hands])
    assert figures["pve_mm"] == pytest.approx(expected, rel=1e-4)
    assert figures["pa_mpjpe_mm"] < 1e-3  # a pure translation of the hand


def test_capture_layout_and_missing_items(synth_dataset, tmp_path):
    captures = tmp_path / "captures"
    for key in ("000000", "000001"):
        (captures / key).mkdir(parents=True)
        shutil.copy(synth_dataset / "labels" / f"{key}.npz", captures / key / "params.npz")
        (captures / key / "result.json").write_text(json.dumps({"timings": {"total_s": 0.5}}))
    with pytest.raises(InputError, match="no result for 4 of 6"):
        evaluate_folders(captures, synth_dataset, progress=False)
    result = evaluate_folders(captures, synth_dataset, allow_missing=True, progress=False)
    assert result.figures["num_frames"] == 2 and result.figures["num_missing"] == 4
    assert result.figures["seconds_per_image"] == 0.5
    assert result.figures["pve_mm"] == 0.0


def test_eval_cli_json_and_errors(synth_dataset, tmp_path, capsys):
    entrypoint(["eval", "--pred", str(synth_dataset), "--gt", str(synth_dataset), "--json"])
    figures = json.loads(capsys.readouterr().out)
    for key in SUMMARY_KEYS:
        assert key in figures and not math.isnan(figures[key])
    entrypoint(["eval", "--pred", str(synth_dataset), "--gt", str(synth_dataset)])
    table = capsys.readouterr().out
    assert "PVE" in table and "Touchness" in table and "published, Decaf test split" in table
    with pytest.raises(SystemExit) as exit_info:
        entrypoint(["eval", "--pred", str(tmp_path), "--gt", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "not a handface synthetic dataset" in capsys.readouterr().err
