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
from handface.geometry.normals import vertex_normals


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
    """Copy a dataset, moving each hand ``distance`` along the inward face normal at contact."""
    shutil.copytree(source, target)
    for path in sorted((target / "labels").glob("*.npz")):
        with np.load(path) as data:
            arrays = {name: data[name] for name in data.files}
        with np.load(target / "topology.npz") as topology:
            faces = torch.from_numpy(topology["face_faces"].astype(np.int64))
        face = torch.from_numpy(arrays["face_vertices_deformed"])
        (side,) = [k.split("_")[1] for k in arrays if k.endswith("_vertices") and "hand" in k]
        hand = torch.from_numpy(arrays[f"hand_{side}_vertices"])
        nearest = signed_distance(hand, face, faces)
        closest = int(nearest.sdf.argmin())
        towards_surface = nearest.closest_points[closest] - hand[closest]
        # outside: the face is towards the closest point; inside: deeper is away from it
        inward = towards_surface if float(nearest.sdf[closest]) > 0 else -towards_surface
        if float(inward.norm()) < 1e-6:  # on the surface: into the head along the face normal
            normal = vertex_normals(face, faces)[faces[nearest.face_index[closest]]].mean(0)
            inward = normal * torch.sign((normal * (face.mean(0) - hand[closest])).sum())
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
    # every touching hand now reaches > 5 mm into the face; hands 1-10 cm away at most touch
    assert figures["non_collision"] == pytest.approx(100.0 * touching.count(False) / 6)
    assert figures["touchness"] == 100.0
    expected_f = 2 * figures["non_collision"] * 100.0 / (figures["non_collision"] + 100.0)
    assert figures["f_score"] == pytest.approx(expected_f)
    truth = evaluate_folders(synth_dataset, synth_dataset, progress=False).figures
    assert figures["col_dist_mm"] > max(0.05, 3 * truth["col_dist_mm"])
    hand_share = 1609 / (1609 + 4538)
    assert figures["pve_mm"] == pytest.approx(10.0 * hand_share, rel=1e-4)
    assert figures["pa_mpjpe_mm"] < 1e-3  # a pure translation of the hand
    for frame, is_touching in zip(result.frames, touching, strict=True):
        assert frame.collides == is_touching


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
