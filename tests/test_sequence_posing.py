"""`handface.sequence.posed_meshes`: a Sequence's frames posed from their stored parameters.

The face of a frame is the head model called with that frame's parameters plus the frame's
deformation turned by the head's rotation (computed here with scipy, one model call per
frame); a hand is the hand model's output. Posing many frames at once (in chunks) gives what
posing them one by one gives.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

import handface.sequence as sequence_module
from handface.errors import InputError
from handface.models.base import HandParams, HeadParams
from handface.sequence import FrameHand, Sequence, SequenceFrame, SparseRows, posed_meshes

# per frame: is the head there, which hands are there
PRESENT = [(False, {"right"}), (True, {"right"}), (True, {"left"}), (True, {"left", "right"}),
           (True, set())]  # fmt: skip


def _sequence() -> Sequence:
    generator = np.random.default_rng(7)
    frames = []
    for t, (has_head, sides) in enumerate(PRESENT):
        head = None
        if has_head:
            expression = np.zeros(52, np.float32)
            expression[[2, 9, 30]] = 0.25 * t
            head = {"global_orient": np.array([0.1 * t, 0.6 - 0.2 * t, 0.05], np.float32),
                    "transl": np.array([0.01 * t, -0.04, 0.6], np.float32),
                    "expression": expression}  # fmt: skip
        hands = {
            side: FrameHand(
                status="detected",
                params={
                    "global_orient": generator.normal(0, 0.4, 3).astype(np.float32),
                    "transl": np.array(
                        [0.08 if side == "right" else -0.08, 0.01 * t, 0.55], np.float32
                    ),
                    "articulation": generator.normal(0, 0.3, 20).astype(np.float32),
                },
                touching=False,
                min_distance_mm=10.0,
                regions=[],
                contact=SparseRows(
                    np.array([3, 30 + t], np.int32), np.array([0.5, 0.1 * t], np.float32)
                ),
            )
            for side in sorted(sides)
        }
        frames.append(SequenceFrame(
            index=t, time_s=t / 10, face_detected=has_head, head=head, hands=hands,
            face_contact=SparseRows(np.array([10, 20 + t], np.int32),
                                    np.array([0.9, 0.2 * t], np.float32)),
            deformation=SparseRows(np.arange(100, 120, dtype=np.int32) + t,
                                   generator.normal(0, 0.003, (20, 3)).astype(np.float32)),
        ))  # fmt: skip
    return Sequence(
        image_size=(320, 240), K=np.array([[500.0, 0, 160], [0, 500, 120], [0, 0, 1]]),
        camera_source="given", fps=10.0, method="fit", head_shape=np.full(9, 0.45, np.float32),
        frames=frames, hand_shapes={"right": np.full(6, 0.55, np.float32),
                                    "left": np.full(6, 0.4, np.float32)},
    )  # fmt: skip


def _one(value) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value, np.float32)[None])


@pytest.fixture(scope="module")
def models(head_model, left_hand, right_hand):
    return head_model, {"left": left_hand, "right": right_hand}


def test_posing_is_the_models_output_plus_the_turned_deformation(models, monkeypatch):
    monkeypatch.setattr(sequence_module, "POSE_CHUNK", 2)  # several model calls per mesh
    head_model, hand_models = models
    sequence = _sequence()
    tracks = {track.name: track for track in posed_meshes(sequence, None, *models)}
    assert list(tracks) == ["face", "left_hand", "right_hand"]
    face = tracks["face"]
    assert face.present.tolist() == [h for h, _ in PRESENT]
    assert np.array_equal(face.faces, np.asarray(head_model.faces, np.int64))
    assert not face.vertices[0].any() and not face.contact[0].any()  # absent: zeros
    for t, frame in enumerate(sequence.frames):
        if frame.head is None:
            continue
        with torch.no_grad():
            out = head_model(HeadParams(global_orient=_one(frame.head["global_orient"]),
                                        transl=_one(frame.head["transl"]),
                                        expression=_one(frame.head["expression"]),
                                        shape=_one(sequence.head_shape)))  # fmt: skip
        undeformed = out.vertices[0].double().numpy()
        D = np.zeros_like(undeformed)
        D[frame.deformation.indices] = frame.deformation.values
        R = Rotation.from_rotvec(frame.head["global_orient"].astype(np.float64)).as_matrix()
        expected = undeformed + D @ R.T
        assert np.abs(face.vertices[t] - expected).max() < 1e-6
        assert np.abs(expected - (undeformed + D)).max() > 1e-4  # the turn matters here
        np.testing.assert_array_equal(face.deformation[t], D.astype(np.float32))
        np.testing.assert_array_equal(face.contact[t], frame.face_contact.to_dense(len(D)))
    for side in ("left", "right"):
        hand = tracks[f"{side}_hand"]
        assert hand.deformation is None
        assert hand.present.tolist() == [side in s for _, s in PRESENT]
        for t, frame in enumerate(sequence.frames):
            if side not in frame.hands:
                assert not hand.vertices[t].any()
                continue
            params = {name: _one(value) for name, value in frame.hands[side].params.items()}
            params["shape"] = _one(sequence.hand_shapes[side])
            with torch.no_grad():
                out = hand_models[side](HandParams(**params))
            assert np.abs(hand.vertices[t] - out.vertices[0].numpy()).max() < 1e-6
            assert hand.contact[t, 3] == pytest.approx(0.5)


def test_batched_equals_frame_by_frame(models, monkeypatch):
    monkeypatch.setattr(sequence_module, "POSE_CHUNK", 2)
    sequence = _sequence()
    frames = [4, 1, 3]  # any order, any subset
    batched = {track.name: track for track in posed_meshes(sequence, frames, *models)}
    for k, t in enumerate(frames):
        single = {track.name: track for track in posed_meshes(sequence, [t], *models)}
        for name, whole in batched.items():
            assert whole.present[k] == (name in single)
            if name in single:
                assert single[name].present.tolist() == [True]
                assert np.abs(whole.vertices[k] - single[name].vertices[0]).max() < 1e-6
                np.testing.assert_array_equal(whole.contact[k], single[name].contact[0])
    # a mesh absent from every frame asked for is left out
    assert [track.name for track in posed_meshes(sequence, [0], *models)] == ["right_hand"]


def test_values_for_vertices_the_model_lacks_are_refused(models):
    sequence = _sequence()
    sequence.frames[1].deformation = SparseRows(np.array([99999], np.int32),
                                                np.ones((1, 3), np.float32))  # fmt: skip
    with pytest.raises(InputError, match="deformation addresses vertex 99999"):
        posed_meshes(sequence, [1], *models)
