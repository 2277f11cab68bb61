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
from handface.sequence import Sequence, SparseRows, posed_meshes
from synthetic_sequence import synthetic_sequence

# per frame: is the head there, which hands are there
PRESENT = [(False, {"right"}), (True, {"right"}), (True, {"left"}), (True, {"left", "right"}),
           (True, set())]  # fmt: skip


def _sequence() -> Sequence:
    return synthetic_sequence(PRESENT)


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
            assert hand.contact[t, 40 + t] == pytest.approx(0.9)


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
