"""Stage III over frames on the constructed cheek scene (tests/cheek_scene.py)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from handface.fit.guide import HandGuide
from handface.geometry.camera import project_points
from handface.geometry.contact import CONTACT_DISTANCE
from handface.track.interaction_track import HandFrames, HeadFrames, track_interaction

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cheek_scene import K, Scene, build_scene  # noqa: E402


@pytest.fixture(scope="module")
def scene(head_model, right_hand) -> Scene:
    return build_scene(head_model, right_hand)


def _guide(probability: float, num_vertices: int) -> HandGuide:
    return HandGuide(
        side="right",
        offset_from_face=torch.zeros(3, dtype=torch.float64),
        contact=torch.full((num_vertices,), 0.9),
        touching=probability > 0.5,
        presence=1.0,
        keypoints2d=np.zeros((21, 2), np.float32),
        keypoint_depth=np.zeros(21, np.float32),
        touch_probability=probability,
    )


def _frames(scene: Scene, offsets: list[float], probabilities: list[float] | None):
    count = len(offsets)
    hands = [scene.hand(offset) for offset in offsets]
    head = HeadFrames(
        canonical_vertices=scene.head.canonical_vertices.double().expand(count, -1, -1),
        rotation=scene.head.rotation.double().expand(count, -1, -1),
        transl=scene.head.params.transl.double().expand(count, -1),
        faces=scene.head_model.faces,
        depth_maps=[scene.head_depth] * count,
        map_scale=1.0,
        face_px=np.full(count, 100.0),
    )
    evidence = [scene.evidence(hand)[1] for hand in hands]
    frames = HandFrames(
        side="right",
        present=torch.ones(count, dtype=torch.bool),
        canonical_vertices=scene.canonical_vertices.double().expand(count, -1, -1),
        canonical_keypoints=scene.canonical_keypoints.double().expand(count, -1, -1),
        rotation=torch.stack([hand.rotation.double() for hand in hands]),
        transl=torch.stack([hand.params.transl[0].double() for hand in hands]),
        keypoints2d=np.stack([project_points(h.keypoints.double(), K).numpy() for h in hands]),
        overlap=[e.overlap for e in evidence],
        gap_px=np.array([e.gap_px for e in evidence]),
        guides=None
        if probabilities is None
        else [_guide(p, scene.canonical_vertices.shape[0]) for p in probabilities],
    )
    return head, frames


def _closest(scene: Scene, frames: HandFrames, result, head_transl, t: int) -> float:
    """The hand's closest signed distance to the head where stage III left both."""
    vertices = frames.canonical_vertices[t] @ result.rotation[t].T + result.transl[t]
    shift = head_transl[t] - scene.head.params.transl[0].double()
    return float(scene.sdf(vertices, scene.head.vertices.double() + shift).min())


def test_guided_verdicts_ignore_a_one_frame_flicker_and_the_meshes_follow(scene):
    offsets = [-0.02] * 6  # the hand hovers 2 cm in front of the cheek in every frame
    probabilities = [0.1, 0.6, 0.1, 0.9, 0.9, 0.9]  # frame 1: a weak one-frame "touch"
    head, frames = _frames(scene, offsets, probabilities)
    (result,), head_transl = track_interaction(head, [frames], K)
    assert result.touching.tolist() == [False, False, False, True, True, True]
    assert result.scores.tolist() == pytest.approx(probabilities)
    for t in range(6):
        closest = _closest(scene, frames, result, head_transl, t)
        if result.touching[t]:
            assert closest <= CONTACT_DISTANCE  # pulled onto the skin
        else:
            assert closest > CONTACT_DISTANCE  # kept off it


def test_smoothness_keeps_a_jittering_hand_steadier(scene):
    rng = np.random.default_rng(0)
    offsets = list(-0.03 + rng.normal(0.0, 0.004, 8))  # 4 mm of depth jitter, far from touching
    head, frames = _frames(scene, offsets, [0.0] * 8)
    (smooth,), _ = track_interaction(head, [frames], K)
    from handface.track.interaction_track import InteractionTrackConfig

    (free,), _ = track_interaction(head, [frames], K,
                                config=InteractionTrackConfig(smoothness_weight=0.0))  # fmt: skip

    def accel(result) -> float:
        centre = frames.canonical_keypoints.mean(1)
        position = (result.rotation @ centre[..., None])[..., 0] + result.transl
        return float((position[2:] - 2 * position[1:-1] + position[:-2]).norm(dim=-1).mean())

    assert accel(smooth) < 0.5 * accel(free)
