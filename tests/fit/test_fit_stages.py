"""Camera model, image evidence, fast keypoints, and the head and hand fits on exact inputs."""

import math

import numpy as np
import pytest
import roma
import torch

from handface.errors import InputError
from handface.fit.camera import camera_for_image, focal_from_35mm
from handface.fit.evidence import hand_face_evidence, hand_mask
from handface.fit.hand_fit import fit_hand
from handface.fit.head_fit import fit_head, initial_pose, landmark_basis
from handface.fit.single_image import contact_probability
from handface.geometry.camera import intrinsics_from_fov, project_points
from handface.models import HandParams, HeadParams


def test_focal_from_35mm_and_source_precedence():
    assert focal_from_35mm(math.hypot(36, 24), 300, 400) == pytest.approx(500.0)
    assert camera_for_image(640, 480, focal_px=700.0, exif_focal_35mm=28.0).source == "--focal"
    exif = camera_for_image(640, 480, exif_focal_35mm=28.0)
    assert exif.source == "exif" and exif.focal == pytest.approx(28.0 * 800 / math.hypot(36, 24))
    default = camera_for_image(640, 480)
    assert default.source == "default" and default.focal == pytest.approx(
        35.0 * 800 / 43.2666, rel=1e-4
    )
    assert default.K[0, 2] == 319.5 and default.K[1, 2] == 239.5
    with pytest.raises(InputError, match="positive"):
        camera_for_image(640, 480, focal_px=-1.0)


def test_hand_face_evidence_overlap_and_gap():
    head = np.zeros((100, 200), bool)
    head[20:80, 20:80] = True
    hand = np.zeros_like(head)
    hand[40:60, 110:130] = True  # 30 px right of the head's last column (79)
    evidence = hand_face_evidence(hand, head)
    assert evidence.gap_px == pytest.approx(31.0, abs=1.0) and not evidence.overlap.any()
    hand[40:60, 70:90] = True
    evidence = hand_face_evidence(hand, head)
    assert evidence.gap_px == 0.0 and evidence.overlap.sum() == 20 * 10
    assert evidence.overlap_fraction == pytest.approx(200 / hand.sum())


def test_hand_mask_covers_the_skeleton_and_respects_the_person_mask():
    keypoints = np.stack([np.full(21, 50.0), np.linspace(90.0, 10.0, 21)], axis=1)
    mask = hand_mask(keypoints, (100, 100))
    assert mask[50, 50] and mask[15, 50] and not mask[50, 5] and not mask[50, 95]
    person = np.zeros((100, 100), np.float32)
    person[:, :50] = 1.0
    gated = hand_mask(keypoints, (100, 100), person)
    assert gated[50, 49] and not gated[50, 52]


def test_contact_probability_is_one_half_at_five_millimetres():
    p = contact_probability(torch.tensor([0.0, 0.005, 0.01]))
    assert p[0] > 0.99 and p[1] == pytest.approx(0.5) and p[2] < 0.01


def test_keypoint_rig_equals_the_full_forward_pass(right_hand, left_hand):
    generator = torch.Generator().manual_seed(0)
    for hand in (right_hand, left_hand):
        shape = torch.rand(1, 6, generator=generator)
        articulation = torch.randn(3, 20, generator=generator)
        orient = 0.5 * torch.randn(3, 3, generator=generator)
        transl = 0.1 * torch.randn(3, 3, generator=generator)
        full = hand(
            HandParams(articulation=articulation, global_orient=orient, transl=transl, shape=shape)
        ).keypoints
        fast = hand.keypoint_rig(shape)(articulation, orient, transl)
        assert torch.allclose(fast, full, atol=1e-6)


def test_landmark_basis_is_exact_for_expression_and_shape(head_model):
    basis = landmark_basis(head_model)
    generator = torch.Generator().manual_seed(1)
    expression = 0.5 * torch.rand(1, 52, generator=generator)
    shape = 0.5 + 0.2 * (torch.rand(1, 9, generator=generator) - 0.5)
    with torch.no_grad():
        canonical = head_model(HeadParams(expression=expression, shape=shape)).landmarks
    predicted = basis(expression.double(), shape.double())
    # expression and shape interact slightly (about 1 mm here); each alone is linear
    assert (predicted - canonical.double()).abs().max() < 2e-3
    average = torch.full((1, 9), 0.5)
    with torch.no_grad():
        smile_only = head_model(HeadParams(expression=expression, shape=average)).landmarks
    assert (basis(expression.double(), average.double()) - smile_only.double()).abs().max() < 1e-5


def _posed_head(head_model):
    expression = torch.zeros(1, 52)
    expression[0, head_model.expression_labels.index("mouthSmileLeft")] = 0.7
    expression[0, head_model.expression_labels.index("mouthSmileRight")] = 0.7
    rotation = roma.rotvec_to_rotmat(torch.tensor([1.45, 0.25, -0.1]))
    params = HeadParams(
        global_orient=roma.rotmat_to_rotvec(rotation)[None],
        transl=torch.tensor([[0.02, 0.05, 0.6]]),
        expression=expression,
    )
    with torch.no_grad():
        return params, head_model(params)


def test_initial_pose_recovers_an_exact_pose(head_model):
    params, out = _posed_head(head_model)
    K = intrinsics_from_fov(512, 512, 40.0, dtype=torch.float64)
    basis = landmark_basis(head_model)
    canonical = basis(params.expression.double(), torch.full((1, 9), 0.5, dtype=torch.float64))[0]
    points2d = project_points(out.landmarks[0].double(), K).numpy()
    rvec, tvec = initial_pose(canonical.numpy(), points2d, K.numpy())
    assert np.allclose(rvec, params.global_orient[0].numpy(), atol=1e-4)
    assert np.allclose(tvec, params.transl[0].numpy(), atol=1e-4)


def test_fit_head_recovers_pose_and_smile_from_landmarks(head_model):
    params, out = _posed_head(head_model)
    K = intrinsics_from_fov(512, 512, 40.0, dtype=torch.float64)
    landmarks2d = project_points(out.landmarks[0].double(), K).numpy()
    noisy = landmarks2d + np.random.default_rng(0).normal(0.0, 1.0, landmarks2d.shape)
    fit = fit_head(head_model, noisy, None, K)
    assert fit.reprojection_px < 1.5
    angle = roma.rotmat_geodesic_distance(
        fit.rotation.double(), roma.rotvec_to_rotmat(params.global_orient[0].double())
    )
    assert math.degrees(float(angle)) < 3.0
    assert float((fit.params.transl[0] - params.transl[0]).norm()) < 0.02
    smile = [head_model.expression_labels.index(n) for n in ("mouthSmileLeft", "mouthSmileRight")]
    assert float(fit.params.expression[0, smile].mean()) > 0.4
    error = (fit.vertices - out.vertices[0]).norm(dim=-1)
    assert float(error.mean()) < 0.006


def test_fit_hand_recovers_a_curled_hand(right_hand):
    articulation = torch.zeros(1, 20)
    articulation[0, 4:] = 0.8  # fingers moderately curled
    params = HandParams(
        articulation=articulation,
        global_orient=torch.tensor([[0.3, -0.4, 2.8]]),
        transl=torch.tensor([[0.03, 0.02, 0.5]]),
    )
    with torch.no_grad():
        keypoints = right_hand(params).keypoints[0].double()
    K = intrinsics_from_fov(512, 512, 40.0, dtype=torch.float64)
    uv = project_points(keypoints, K).numpy()
    z = ((keypoints[:, 2] - keypoints[0, 2]) * K[0, 0] / keypoints[:, 2].mean()).numpy()
    fit = fit_hand(right_hand, uv, z, K)
    assert fit.reprojection_px < 3.0
    centred = lambda x: x - x.mean(0)
    assert float((centred(fit.keypoints.double()) - centred(keypoints)).norm(dim=-1).mean()) < 0.006
    assert abs(float(fit.keypoints[:, 2].mean() - keypoints[:, 2].mean())) < 0.03
    assert torch.allclose(
        fit.vertices, fit.canonical_vertices @ fit.rotation.T + fit.params.transl[0], atol=1e-6
    )
