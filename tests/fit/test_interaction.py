"""Interaction refinement on a constructed scene with known geometry.

The scene: the average head turned 40 degrees so that its right cheek faces the camera, and a
flat right hand whose palm faces the cheek, placed on the viewing ray through the cheek. At
offset 0 along that ray the hand just touches the skin (closest signed distance 0); negative
offsets put it in front of the face, positive ones push it into / behind the face surface. The
"detections" are the projections of the hand's keypoints and the head's landmarks, so the image
evidence is exactly what a photo of that hand would give.
"""

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from handface.detect import Detections, FaceDetection, HandDetection
from handface.fit import ReconstructConfig, Reconstructor
from handface.fit.evidence import HandFaceEvidence
from handface.fit.guide import HandGuide
from handface.fit.interaction import InteractionConfig
from handface.geometry.camera import project_points
from handface.geometry.contact import CONTACT_DISTANCE

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cheek_scene import SIZE, K, Scene, build_scene  # noqa: E402


@pytest.fixture(scope="module")
def scene(head_model, right_hand) -> Scene:
    return build_scene(head_model, right_hand)


def _moved(before: torch.Tensor, after: torch.Tensor) -> float:
    return float((after - before).norm(dim=-1).max())


# -------------------------------------------------------------------------- the decision


@pytest.mark.parametrize("offset", [-0.015, -0.02, -0.025])
def test_a_hand_in_front_within_the_depth_uncertainty_is_pulled_onto_the_face(scene, offset):
    start = scene.hand(offset)
    gap = float(scene.sdf(start.vertices).min())
    assert 0.01 < gap < 0.025  # measured 12.3, 16.2, 20.1 mm off the skin
    result = scene.refine(start)
    assert result.contact == {"right": True}
    assert result.gaps_mm["right"] == pytest.approx(1000 * gap, abs=2.0)
    assert result.gaps_px["right"] == 0.0
    hand, head = result.hands[0], result.head
    sdf = scene.sdf(hand.vertices, head.vertices)
    # touching (within 5 mm) and pressed only a few millimetres in: measured -5.4, -3.8, -6.4 mm
    assert float(sdf.min()) < 0.005 and float(sdf.min()) > -0.007
    # both stay near their detections: measured head 0.5, 1.7, 4.0 px; hand 12.6, 5.3, 5.6 px
    # (the first round leaves them at 0.1-0.2 px; the old saturating loss drifted to 10-40 px)
    assert head.reprojection_px < 6.0 and hand.reprojection_px < 16.0
    # the hand went back along its viewing ray, towards the face: measured 3.1, 9.1, 12.3 mm
    centre0, centre1 = start.vertices.mean(0), hand.vertices.mean(0)
    assert float((centre1 - centre0) @ (centre0 / centre0.norm())) > 0.002


def test_a_hand_far_in_front_is_not_in_contact_and_stays_put(scene):
    start = scene.hand(-0.05)
    gap = float(scene.sdf(start.vertices).min())
    assert gap > 0.035  # measured 39.9 mm, more than 6 % of the hand's 0.41 m depth
    result = scene.refine(start)
    assert result.contact == {"right": False}
    assert result.gaps_mm["right"] == pytest.approx(1000 * gap, abs=1.0)
    # nothing pulls: both stay where the separate fits put them (measured 0.3-0.4 mm)
    assert _moved(start.vertices, result.hands[0].vertices) < 0.002
    assert _moved(scene.head.vertices, result.head.vertices) < 0.002
    assert float(scene.sdf(result.hands[0].vertices, result.head.vertices).min()) > 0.035


def test_the_contact_threshold_is_a_share_of_the_hand_depth(scene):
    start = scene.hand(-0.02)  # 16 mm off the skin at 0.437 m: 3.7 % of its depth
    strict = scene.refine(start, replace(InteractionConfig(), contact_gap_fraction=0.03))
    loose = scene.refine(start, replace(InteractionConfig(), contact_gap_fraction=0.05))
    assert strict.contact == {"right": False} and loose.contact == {"right": True}
    assert float(scene.sdf(strict.hands[0].vertices, strict.head.vertices).min()) > 0.012


def test_no_contact_without_the_hand_near_the_head_in_the_image(scene):
    start = scene.hand(0.0)  # touching in 3D
    assert scene.refine(start).contact == {"right": True}
    apart = HandFaceEvidence(
        overlap=np.zeros((SIZE, SIZE), bool), gap_px=40.0, overlap_fraction=0.0
    )
    result = scene.refine(start, evidence=apart)
    assert result.contact == {"right": False} and result.gaps_px["right"] == 40.0


def _guide(touching: bool, num_vertices: int) -> HandGuide:
    return HandGuide(
        side="right",
        offset_from_face=torch.zeros(3, dtype=torch.float64),
        contact=torch.full((num_vertices,), 0.9 if touching else 0.1),
        touching=touching,
        presence=1.0,
        keypoints2d=np.zeros((21, 2), np.float32),
        keypoint_depth=np.zeros(21, np.float32),
    )


def test_a_guide_that_says_not_touching_keeps_a_touching_hand_off_the_skin(scene):
    start = scene.hand(0.0)  # touching; alone, fitting calls it contact (test above)
    num_vertices = start.vertices.shape[0]
    result = scene.refine(start, guide=_guide(False, num_vertices))
    assert result.contact == {"right": False}
    gap = float(scene.sdf(result.hands[0].vertices, result.head.vertices).min())
    # beyond the contact distance (5 mm); the clearance asks 7 mm
    assert gap > CONTACT_DISTANCE, f"{1000 * gap:.1f} mm"
    # without the clearance the hand stays on the skin
    config = replace(InteractionConfig(), clearance_mm=-CONTACT_DISTANCE * 1000)
    stays = scene.refine(start, config, guide=_guide(False, num_vertices))
    assert float(scene.sdf(stays.hands[0].vertices, stays.head.vertices).min()) < CONTACT_DISTANCE
    # a guide that says touching pulls a hand 2 cm off the skin onto it
    pulled = scene.refine(scene.hand(-0.02), guide=_guide(True, num_vertices))
    assert pulled.contact == {"right": True}
    assert float(scene.sdf(pulled.hands[0].vertices, pulled.head.vertices).min()) < 0.005


# ------------------------------------------------------------------------- depth order


@pytest.mark.parametrize("offset", [0.01, 0.02, 0.03])
def test_depth_order_brings_the_hand_in_front_where_the_image_shows_it_in_front(scene, offset):
    start = scene.hand(offset)  # pushed along the ray: part of the hand is inside the head
    assert float(scene.sdf(start.vertices).min()) < -0.008
    tolerance = 0.003  # the contact press (2 mm) and a millimetre
    hidden_before = scene.hidden(start, scene.head.vertices, tolerance)
    assert hidden_before > 80  # measured 104, 547, 904 of the hand's 1609 vertices
    base = InteractionConfig()
    configs = {
        "full": base,
        "order only": replace(base, contact_weight=0.0, collision_weight=0.0),
        "nothing": replace(base, contact_weight=0.0, collision_weight=0.0, order_weight=0.0),
    }
    hidden = {}
    for name, config in configs.items():
        result = scene.refine(start, config)
        hidden[name] = scene.hidden(result.hands[0], result.head.vertices, tolerance)
    # measured: full 7, 3, 7; the depth-order term alone 0, 5, 0; no interaction term: all stay
    assert hidden["full"] <= 20
    assert hidden["order only"] <= 10
    assert hidden["nothing"] >= 0.95 * hidden_before


@pytest.mark.parametrize("offset", [0.01, 0.02, 0.03])
def test_collision_pushes_a_penetrating_hand_out_to_the_press_depth(scene, offset):
    start = scene.hand(offset)
    assert float(scene.sdf(start.vertices).min()) < -0.008  # 9, 18, 26 mm inside
    result = scene.refine(start, replace(InteractionConfig(), order_weight=0.0))
    sdf = scene.sdf(result.hands[0].vertices, result.head.vertices)
    # out to about the allowed press (2 mm) plus the 1 mm margin: measured -3.6, -5.1, -3.1 mm
    assert float(sdf.min()) > -0.0065 and float(sdf.min()) < 0.005


def test_refined_parameters_reproduce_the_returned_meshes(scene):
    result = scene.refine(scene.hand(-0.02))
    head, hand = result.head, result.hands[0]
    with torch.no_grad():
        head_out = scene.head_model(head.params)
        hand_out = scene.hand_model(hand.params)
    assert torch.allclose(head_out.vertices[0], head.vertices, atol=1e-5)
    assert torch.allclose(head_out.landmarks[0], head.landmarks, atol=1e-5)
    assert torch.allclose(head_out.landmarks68[0], head.landmarks68, atol=1e-5)
    assert torch.allclose(hand_out.vertices[0], hand.vertices, atol=1e-5)
    assert torch.allclose(hand_out.keypoints[0], hand.keypoints, atol=1e-5)
    # rigid moves only: the canonical meshes are untouched
    assert torch.equal(head.canonical_vertices, scene.head.canonical_vertices)
    assert torch.equal(hand.canonical_vertices, scene.canonical_vertices)
    assert torch.equal(hand.params.articulation, torch.zeros(1, 20))


# ---------------------------------------------------------- the pipeline on exact detections


class _Detector:
    def __init__(self, detections):
        self.detections = detections

    def __call__(self, rgb):
        return self.detections


def _capture(scene, offset: float, mode: str):
    truth = scene.hand(offset)
    f = float(K[0, 0])
    landmark_z = scene.head.landmarks[:, 2].double()
    keypoint_z = truth.keypoints[:, 2].double()
    detections = Detections(
        image_size=(SIZE, SIZE),
        faces=[
            FaceDetection(
                landmarks=scene.landmarks2d,
                depth=((landmark_z - landmark_z.mean()) * f / landmark_z.mean()).numpy(),
            )
        ],
        hands=[
            HandDetection(
                keypoints=project_points(truth.keypoints.double(), K).numpy(),
                depth=((keypoint_z - keypoint_z[0]) * f / keypoint_z.mean()).numpy(),
                side="right",
                score=0.98,
            )
        ],
    )
    reconstructor = Reconstructor(
        ReconstructConfig(mode=mode),
        head_model=scene.head_model,
        hand_models={"right": scene.hand_model},
        detector=_Detector(detections),
    )
    return truth, reconstructor(np.zeros((SIZE, SIZE, 3), np.uint8), K=K)


def test_full_capture_of_a_touching_hand(scene):
    truth, capture = _capture(scene, 0.0, "full")
    face, hand = capture.face, capture.hands["right"]
    assert capture.mode == "full" and capture.extras["interaction_contact"] == {"right": True}
    assert hand.touching and capture.touching and hand.min_distance_mm <= 5.0
    # the person's right cheek, and nothing on the left side of the face (measured: right ear,
    # right cheek, right eye, forehead, right temple: a flat hand with its fingers up)
    assert "right cheek" in capture.touched_regions
    assert not [name for name in capture.touched_regions if name.startswith("left")]
    assert face.contact.max() > 0.9 and (hand.contact > 0.5).sum() > 20
    assert capture.penetration["max_after_mm"] <= 4.0 + 1e-3
    assert capture.penetration["max_deformation_mm"] > 0.5  # measured 4.0 mm
    assert np.allclose(
        face.vertices + face.deformation @ face.rotation.T, face.vertices_deformed, atol=1e-5
    )
    # measured: face 4.6 mm, hand 1.7 mm from the truth (vertex mean)
    assert np.linalg.norm(face.vertices - scene.head.vertices.numpy(), axis=1).mean() < 0.008
    assert np.linalg.norm(hand.vertices - truth.vertices.numpy(), axis=1).mean() < 0.005
    assert hand.vertices.shape == (1609, 3) and hand.contact.shape == (1609,)
    assert face.vertices.shape == (4538, 3) and face.contact.shape == (4538,)


def test_separate_capture_fits_each_part_and_deforms_nothing(scene):
    truth, capture = _capture(scene, 0.0, "separate")
    face, hand = capture.face, capture.hands["right"]
    assert capture.mode == "separate" and capture.extras["interaction_contact"] == {}
    assert np.array_equal(face.vertices, face.vertices_deformed)
    assert np.abs(face.deformation).max() == 0.0
    assert capture.penetration["max_deformation_mm"] == 0.0
    # exact landmarks give the exact head (measured 0.1 mm); the hand is 3.4 mm off
    assert np.linalg.norm(face.vertices - scene.head.vertices.numpy(), axis=1).mean() < 0.001
    assert np.linalg.norm(hand.vertices - truth.vertices.numpy(), axis=1).mean() < 0.006


def test_full_capture_of_a_hand_well_in_front_reports_no_contact(scene):
    _, capture = _capture(scene, -0.05, "full")
    assert capture.extras["interaction_contact"] == {"right": False}
    assert not capture.touching and capture.touched_regions == []
    assert capture.hands["right"].min_distance_mm > 20.0
    assert np.abs(capture.face.deformation).max() == 0.0
    assert capture.face.contact.max() < 0.01 and capture.hands["right"].contact.max() < 0.01


@pytest.mark.parametrize("offset", [0.008, 0.02])
def test_back_out_lifts_a_deep_hand_to_the_limit_and_returns_its_distances(scene, offset):
    reconstructor = Reconstructor(
        head_model=scene.head_model, hand_models={"right": scene.hand_model}
    )
    pushed = scene.hand(offset)
    depth_before = float(-scene.sdf(pushed.vertices).min())
    assert depth_before > 0.007
    hand, sdf = reconstructor._back_out(pushed, scene.head.vertices, 0.004)
    fresh = scene.sdf(hand.vertices)
    assert torch.allclose(sdf.double(), fresh, atol=1e-6)  # the distances of the returned hand
    assert -float(fresh.min()) <= 0.004 + 1e-6
    assert -float(fresh.min()) < depth_before
