import json
import math
from dataclasses import replace

import numpy as np
import pytest

from handface.capture import CAPTURE_SCHEMA_VERSION, Capture, CapturedFace, CapturedHand
from handface.data.sample import InteractionSample
from handface.data.synth import SynthDataset
from handface.errors import InputError, OutputExistsError
from handface.eval.folders import evaluate_folders
from handface.io import load_capture, load_ply, save_capture
from handface.models.face_areas import touched_areas

GREY = (204, 204, 204)  # colormap "contact" at 0: (0.8, 0.8, 0.8)
RED = (217, 20, 20)  # at 1: (0.85, 0.08, 0.08)


def _np(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def capture_from_sample(sample: InteractionSample, index: int = 0) -> Capture:
    """A Capture that states a synthetic item's ground truth, as a perfect method would."""
    landmarks2d = _np(sample.face_keypoints2d)
    detected = landmarks2d + 1.5  # 1.5 px off along x and y: an error of 1.5 * sqrt(2)
    detected[:10] = np.nan  # landmarks the detector did not return
    face = CapturedFace(
        params={name: _np(value) for name, value in sample.head_params.items()},
        vertices=_np(sample.face_vertices),
        vertices_deformed=_np(sample.face_vertices_deformed),
        faces=_np(sample.face_faces),
        deformation=_np(sample.deformation),
        rotation=_np(sample.head_rotation),
        contact=_np(sample.face_contact),
        landmarks3d=_np(sample.face_keypoints3d),
        landmarks2d=landmarks2d,
        keypoints68_3d=_np(sample.face_keypoints68_3d),
        keypoints68_2d=_np(sample.face_keypoints68_2d),
        detected_landmarks2d=detected,
    )
    hands = {
        side: CapturedHand(
            side=side,
            params={name: _np(value) for name, value in hand.params.items()},
            vertices=_np(hand.vertices),
            faces=_np(hand.faces),
            contact=_np(hand.contact),
            keypoints3d=_np(hand.keypoints3d),
            keypoints2d=_np(hand.keypoints2d),
            detected_keypoints2d=_np(hand.keypoints2d),
            detection_score=0.9871234,
            touching=bool(hand.contact.max() > 0.5),
            min_distance_mm=-0.12345 if hand.contact.max() > 0.5 else math.nan,
            found_by="network" if side == "left" else "detector",
        )
        for side, hand in sample.hands.items()
    }
    image = None
    if sample.image is not None:
        image = (_np(sample.image) * 255.0 + 0.5).astype(np.uint8)
    return Capture(
        image_size=sample.image_size,
        K=_np(sample.K),
        camera_source="given",
        face=face,
        hands=hands,
        touched_regions=touched_areas(face.contact),
        penetration={"max_before_mm": 1.25, "max_after_mm": 0.0, "collision_distance_mm": 0.0},
        timings={"detect_s": 0.1, "total_s": 2.0 + index},
        warnings=["a warning"],
        source=f"images/{sample.key}.png",
        image=image,
    )


@pytest.fixture(scope="module")
def dataset(synth_dataset):
    return SynthDataset(synth_dataset)


@pytest.fixture(scope="module")
def contact_capture(dataset):
    """A capture of an item where a hand touches the face."""
    index = next(i for i, item in enumerate(dataset.items) if item["in_contact"])
    return capture_from_sample(dataset[index], index)


def assert_same_capture(loaded: Capture, capture: Capture) -> None:
    expected, actual = capture.label_arrays(), loaded.label_arrays()
    assert sorted(actual) == sorted(expected)
    for name, value in expected.items():
        assert actual[name].dtype == value.dtype, name
        np.testing.assert_array_equal(actual[name], value, err_msg=name)
    assert loaded.image_size == capture.image_size and loaded.image is None
    assert loaded.camera_source == capture.camera_source and loaded.mode == capture.mode
    assert loaded.source == capture.source and loaded.warnings == capture.warnings
    assert loaded.touched_regions == capture.touched_regions
    assert loaded.timings == pytest.approx(capture.timings, abs=1e-4)
    assert loaded.penetration == pytest.approx(capture.penetration, abs=1e-3)
    assert sorted(loaded.hands) == sorted(capture.hands)
    for side, hand in capture.hands.items():
        got = loaded.hands[side]
        assert got.side == side and got.touching == hand.touching
        assert got.detection_score == pytest.approx(hand.detection_score, abs=1e-4)
        assert got.found_by == hand.found_by
        assert got.min_distance_mm == pytest.approx(hand.min_distance_mm, abs=1e-3, nan_ok=True)
        assert sorted(got.params) == sorted(hand.params)
    if capture.face is not None:
        assert sorted(loaded.face.params) == sorted(capture.face.params)


def test_round_trip_and_result_json(contact_capture, tmp_path):
    folder = save_capture(contact_capture, tmp_path / "capture")
    names = sorted(p.name for p in folder.iterdir())
    sides = sorted(contact_capture.hands)
    assert names == sorted(
        ["face.ply", "overlay.png", "params.npz", "result.json"] + [f"hand_{s}.ply" for s in sides]
    )
    assert_same_capture(load_capture(folder), contact_capture)

    text = (folder / "result.json").read_text()
    assert "NaN" not in text and "Infinity" not in text and text.count("\n") > 20  # pretty
    result = json.loads(text)
    assert result["schema_version"] == CAPTURE_SCHEMA_VERSION
    assert result["source"] == contact_capture.source and result["mode"] == "full"
    assert result["image_size"] == list(contact_capture.image_size)
    K = contact_capture.K
    assert result["camera"]["focal_px"] == pytest.approx((K[0, 0] + K[1, 1]) / 2, abs=1e-3)
    assert result["camera"]["source"] == "given"
    face = result["face"]
    assert face["detected"] is True and face["num_vertices"] == 4538
    assert face["landmark_error_px"] == pytest.approx(1.5 * math.sqrt(2), abs=0.01)
    deformation = contact_capture.face.deformation
    assert face["max_deformation_mm"] == pytest.approx(
        1000 * np.linalg.norm(deformation, axis=1).max(), abs=1e-3
    )
    assert face["contact_vertices"] == int((contact_capture.face.contact > 0.5).sum()) > 0
    for side, hand in contact_capture.hands.items():
        facts = result["hands"][side]
        assert facts["touching"] == hand.touching and facts["keypoint_error_px"] == 0.0
        assert facts["contact_vertices"] == int((hand.contact > 0.5).sum())
        assert facts["detection_score"] == 0.9871
    assert result["contact"]["any"] is True
    assert result["contact"]["left"] == ("left" in sides and contact_capture.hands["left"].touching)
    assert result["touched_regions"] == contact_capture.touched_regions != []
    assert result["timings"]["total_s"] == contact_capture.timings["total_s"]

    # nothing in result.json is an array larger than the 3x3 intrinsics
    def sizes(value):
        if isinstance(value, dict):
            return [n for v in value.values() for n in sizes(v)]
        if isinstance(value, list):
            return [len(value)] + [n for v in value for n in sizes(v)]
        return []

    assert max(sizes(result)) <= 3


def test_ply_colours_show_contact(contact_capture, tmp_path):
    folder = save_capture(contact_capture, tmp_path / "capture")
    meshes = [("face.ply", contact_capture.face.vertices_deformed, contact_capture.face.contact)]
    meshes += [(f"hand_{s}.ply", h.vertices, h.contact) for s, h in contact_capture.hands.items()]
    for name, vertices, contact in meshes:
        v, f, colours = load_ply(folder / name)
        np.testing.assert_allclose(v, vertices, atol=1e-6)  # the deformed face, not the rest
        assert colours is not None and colours.shape == (len(vertices), 3)
        assert set(np.unique(contact)) <= {0.0, 1.0}
        assert (contact == 1).any() and (contact == 0).any()
        assert (colours[contact == 1] == RED).all(), name
        assert (colours[contact == 0] == GREY).all(), name


def test_face_only_hand_only_and_no_image(contact_capture, tmp_path):
    face_only = replace(contact_capture, hands={}, touched_regions=[], image=None)
    folder = save_capture(face_only, tmp_path / "face_only")
    assert sorted(p.name for p in folder.iterdir()) == ["face.ply", "params.npz", "result.json"]
    result = json.loads((folder / "result.json").read_text())
    assert result["hands"] == {} and result["contact"] == {
        "any": False,
        "left": False,
        "right": False,
    }
    assert_same_capture(load_capture(folder), face_only)

    hand_only = replace(contact_capture, face=None, touched_regions=[])
    folder = save_capture(hand_only, tmp_path / "hand_only")
    names = sorted(p.name for p in folder.iterdir())
    assert "face.ply" not in names and "overlay.png" in names
    assert json.loads((folder / "result.json").read_text())["face"] is None
    loaded = load_capture(folder)
    assert loaded.face is None
    assert_same_capture(loaded, hand_only)


def test_never_overwrites_by_accident_and_fails_atomically(contact_capture, tmp_path, monkeypatch):
    out = tmp_path / "capture"
    save_capture(contact_capture, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(OutputExistsError):
        save_capture(contact_capture, out)

    # A failure while writing (here the overlay, the last file) leaves an existing folder
    # untouched, even with overwrite, and no partial folder behind.
    def fail(capture):
        raise RuntimeError("disk full")

    monkeypatch.setattr("handface.viz.capture_sheet.capture_sheet", fail)
    changed = replace(contact_capture, warnings=["second run"])
    with pytest.raises(RuntimeError, match="disk full"):
        save_capture(changed, out, overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    with pytest.raises(RuntimeError, match="disk full"):
        save_capture(changed, tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["capture"]
    monkeypatch.undo()
    save_capture(changed, out, overwrite=True)
    assert load_capture(out).warnings == ["second run"]


def test_inconsistent_capture_is_refused_before_writing(contact_capture, tmp_path):
    broken = replace(contact_capture, face=replace(contact_capture.face, contact=np.zeros(3)))
    with pytest.raises(ValueError, match="face contact has 3 values for 4538 vertices"):
        save_capture(broken, tmp_path / "capture")
    assert list(tmp_path.iterdir()) == []


def test_load_rejects_what_is_not_a_capture(contact_capture, tmp_path):
    with pytest.raises(InputError, match="not a capture folder"):
        load_capture(tmp_path)
    folder = save_capture(contact_capture, tmp_path / "capture")
    result = json.loads((folder / "result.json").read_text())
    result["schema_version"] = CAPTURE_SCHEMA_VERSION + 1
    (folder / "result.json").write_text(json.dumps(result))
    with pytest.raises(InputError, match="schema version"):
        load_capture(folder)


def test_eval_scores_saved_captures_of_the_ground_truth_as_perfect(
    dataset, synth_dataset, tmp_path
):
    # The contract with `handface eval`: a folder of captures that state the ground truth
    # scores exactly like the ground truth against itself.
    pred = tmp_path / "pred"
    for index in range(len(dataset)):
        sample = dataset[index]
        save_capture(capture_from_sample(sample, index), pred / sample.key)
    scored = evaluate_folders(pred, synth_dataset, progress=False).figures
    truth = evaluate_folders(synth_dataset, synth_dataset, progress=False).figures
    assert scored["num_frames"] == len(dataset) and scored["num_missing"] == 0
    for name in ("pve_mm", "mpjpe_mm", "pa_mpjpe_mm", "deform_err_mm"):
        assert scored[name] < 1e-3, name
    for name in ("non_collision", "touchness", "col_dist_mm", "num_touch_frames"):
        assert scored[name] == pytest.approx(truth[name], nan_ok=True), name
    assert scored["contact_f1_face"] == 1.0 and scored["contact_f1_hand"] == 1.0
    assert scored["seconds_per_image"] == np.median([2.0 + i for i in range(len(dataset))])
