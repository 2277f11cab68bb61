"""Head fitting from face landmarks: the linear landmark basis, PnP, landmark weights, and
recovery of a known head (pose, smile) from its own projected landmarks. Nothing is rendered:
the detections are the head model's landmarks projected with a known camera."""

import math

import numpy as np
import pytest
import roma
import torch

from handface.detect import Detections, FaceDetection
from handface.fit import ReconstructConfig, Reconstructor
from handface.fit.camera import intrinsics
from handface.fit.head_fit import (
    FACE_OVAL,
    NUM_SURFACE_LANDMARKS,
    HeadFitConfig,
    fit_head,
    initial_pose,
    landmark_basis,
    landmark_weights,
)
from handface.geometry.camera import project_points
from handface.models import HeadParams
from handface.models.scene import head_rotation

K = intrinsics(640, 480, 900.0)
SMILE = ("mouthSmileLeft", "mouthSmileRight")


def _smile(head_model, value: float) -> torch.Tensor:
    expression = torch.zeros(1, 52)
    for name in SMILE:
        expression[0, head_model.expression_labels.index(name)] = value
    return expression


@pytest.fixture(scope="module")
def known_head(head_model):
    """A smiling average head, turned 25 deg, pitched -10, rolled 5, about 0.45 m away."""
    rotation = head_rotation(25.0, -10.0, 5.0)
    params = HeadParams(
        global_orient=roma.rotmat_to_rotvec(rotation)[None],
        transl=torch.tensor([[0.03, 0.10, 0.55]]),
        expression=_smile(head_model, 0.7),
    )
    with torch.no_grad():
        out = head_model(params)
    landmarks = out.landmarks[0].double()
    uv = project_points(landmarks, K).numpy()
    z = landmarks[:, 2].numpy()
    depth = (z - z.mean()) * float(K[0, 0]) / z.mean()  # MediaPipe-like relative depth (px)
    assert 0 < uv.min() and uv[:, 0].max() < 640 and uv[:, 1].max() < 480
    return params, out, uv, depth


def _errors(fit, params, out, head_model):
    angle = roma.rotmat_geodesic_distance(
        fit.rotation.double(), roma.rotvec_to_rotmat(params.global_orient[0].double())
    )
    smile = [head_model.expression_labels.index(name) for name in SMILE]
    others = fit.params.expression[0].clone()
    others[smile] = 0.0
    return {
        "degrees": math.degrees(float(angle)),
        "transl_m": float((fit.params.transl[0] - params.transl[0]).norm()),
        "smile": fit.params.expression[0, smile],
        "other_max": float(others.max()),
        "vertex_m": float((fit.vertices - out.vertices[0]).norm(dim=-1).mean()),
    }


# ------------------------------------------------------------------------- the linear basis


def test_landmark_basis_is_exact_in_the_facial_actions(head_model):
    basis = landmark_basis(head_model)
    assert landmark_basis(head_model) is basis  # computed once per model
    generator = torch.Generator().manual_seed(7)
    expression = torch.rand(4, 52, generator=generator)  # the full [0, 1] range
    average = torch.full((4, 9), 0.5)
    with torch.no_grad():
        truth = head_model(HeadParams(expression=expression, shape=average)).landmarks.double()
    predicted = basis(expression.double(), average.double())
    assert float((predicted - truth).norm(dim=-1).max()) < 1e-5  # measured 1e-6 m
    assert float((basis.mean - truth[0]).norm(dim=-1).max()) > 1e-3  # and expressions matter


@pytest.mark.parametrize("name", ["gender", "height", "proportions"])
def test_landmark_basis_is_exact_in_each_linear_phenotype(head_model, name):
    basis = landmark_basis(head_model)
    generator = torch.Generator().manual_seed(3)
    shape = torch.full((5, 9), 0.5)
    shape[:, head_model.shape_labels.index(name)] = torch.tensor([0.0, 0.2, 0.45, 0.8, 1.0])
    expression = torch.rand(5, 52, generator=generator)
    with torch.no_grad():
        truth = head_model(HeadParams(expression=expression, shape=shape)).landmarks.double()
    predicted = basis(expression.double(), shape.double())
    assert float((predicted - truth).norm(dim=-1).max()) < 1e-5  # measured 1e-6 m
    assert float((truth[0] - truth[-1]).norm(dim=-1).max()) > 1e-3  # the phenotype matters


def test_landmark_basis_holds_about_the_average_age(head_model):
    # Anny's age is piecewise linear with an anchor at 5/9, just past the average 0.5: the basis
    # uses central differences of step 0.05 about 0.5 (a one-sided secant 0.5 -> 0.75 straddled
    # the kink and was off by 5.5 mm at age 0.4 or 0.6)
    basis = landmark_basis(head_model)
    shape = torch.full((2, 9), 0.5)
    shape[:, head_model.shape_labels.index("age")] = torch.tensor([0.4, 0.6])
    with torch.no_grad():
        truth = head_model(HeadParams(shape=shape)).landmarks.double()
    predicted = basis(torch.zeros(2, 52, dtype=torch.float64), shape.double())
    assert float((predicted - truth).norm(dim=-1).max()) < 1e-3


# ---------------------------------------------------------------------------------- the fit


def test_initial_pose_recovers_an_exact_pose_from_noise_free_points(head_model, known_head):
    params, out, uv, _ = known_head
    rotation = roma.rotvec_to_rotmat(params.global_orient[0].double())
    canonical = (out.landmarks[0].double() - params.transl[0].double()) @ rotation
    rvec, tvec = initial_pose(canonical.numpy(), uv, K.numpy())
    assert np.abs(rvec - params.global_orient[0].numpy()).max() < 1e-5
    assert np.abs(tvec - params.transl[0].numpy()).max() < 1e-5


def test_landmark_weights_downweight_the_outline_and_covered_landmarks(known_head):
    _, _, uv, _ = known_head
    config = HeadFitConfig()
    weights = landmark_weights(uv, None, config)
    assert weights.shape == (478,)
    assert np.all(weights[NUM_SURFACE_LANDMARKS:] == 0.0)  # irises
    assert np.all(weights[list(FACE_OVAL)] == config.outline_weight)
    interior = np.setdiff1d(np.arange(NUM_SURFACE_LANDMARKS), FACE_OVAL)
    assert np.all(weights[interior] == 1.0)

    # a hand over the left half of the image covers the landmarks there
    mask = np.zeros((480, 640), bool)
    mask[:, :450] = True
    covered = landmark_weights(uv, [mask], config)
    under = np.round(uv[:, 0]) < 450
    assert under.any() and (~under).any()
    assert np.allclose(covered[under], weights[under] * config.occluded_weight)
    assert np.array_equal(covered[~under], weights[~under])
    twice = landmark_weights(uv, [mask, mask], config)  # two hands over the same landmarks
    assert np.allclose(twice[under], weights[under] * config.occluded_weight**2)
    # landmarks outside the image read the mask at its border instead of failing
    outside = uv + np.array([1000.0, 0.0])
    assert np.array_equal(
        landmark_weights(outside, [mask], config), landmark_weights(outside, None, config)
    )


@pytest.mark.parametrize("with_depth", [False, True])
def test_fit_head_recovers_pose_and_smile_from_exact_landmarks(head_model, known_head, with_depth):
    params, out, uv, depth = known_head
    fit = fit_head(head_model, uv, depth if with_depth else None, K)
    errors = _errors(fit, params, out, head_model)
    # measured: 0.18-0.20 px, 0.05-0.06 deg, 0.2-0.3 mm, smile 0.67, others <= 0.009, 0.16 mm
    assert fit.reprojection_px < 0.5
    assert errors["degrees"] < 0.5
    assert errors["transl_m"] < 0.002
    assert torch.allclose(errors["smile"], torch.tensor(0.7), atol=0.1)
    assert errors["other_max"] < 0.05
    assert torch.allclose(fit.params.shape, torch.tensor(0.5), atol=0.02)
    assert errors["vertex_m"] < 0.001
    # the returned meshes are the model's output for the returned parameters
    with torch.no_grad():
        again = head_model(fit.params)
    assert torch.allclose(again.vertices[0], fit.vertices, atol=1e-5)
    assert torch.allclose(again.landmarks[0], fit.landmarks, atol=1e-5)
    assert torch.allclose(
        fit.canonical_vertices @ fit.rotation.T + fit.params.transl[0], fit.vertices, atol=1e-5
    )
    assert fit.landmarks68.shape == (68, 3)


def test_fit_head_with_one_pixel_noise(head_model, known_head):
    params, out, uv, depth = known_head
    noisy = uv + np.random.default_rng(0).normal(0.0, 1.0, uv.shape)
    fit = fit_head(head_model, noisy, depth, K)
    errors = _errors(fit, params, out, head_model)
    # measured: 1.22 px (the noise itself: E|N(0, I2)| = 1.25), 0.09 deg, 0.5 mm, smile 0.67-0.68
    assert fit.reprojection_px < 1.6
    assert errors["degrees"] < 1.0
    assert errors["transl_m"] < 0.003
    assert torch.allclose(errors["smile"], torch.tensor(0.7), atol=0.15)
    assert errors["vertex_m"] < 0.0015
    # against the noise-free landmarks the fit is better than the detections it was given
    clean = project_points(fit.landmarks.double(), K).numpy() - uv
    assert np.linalg.norm(clean, axis=1)[:NUM_SURFACE_LANDMARKS].mean() < 0.6


def test_landmarks_under_a_hand_count_less(head_model):
    rotation = head_rotation(-15.0, 5.0)
    params = HeadParams(
        global_orient=roma.rotmat_to_rotvec(rotation)[None], transl=torch.tensor([[0.0, 0.1, 0.5]])
    )
    with torch.no_grad():
        out = head_model(params)
    uv = project_points(out.landmarks[0].double(), K).numpy()
    # a hand over one side of the face: the landmarks under it are misdetected by ~20 px
    x0, x1 = np.percentile(uv[:NUM_SURFACE_LANDMARKS, 0], [0, 35])
    y0, y1 = np.percentile(uv[:NUM_SURFACE_LANDMARKS, 1], [30, 80])
    under = (uv[:, 0] >= x0) & (uv[:, 0] <= x1) & (uv[:, 1] >= y0) & (uv[:, 1] <= y1)
    assert under.sum() > 50
    rng = np.random.default_rng(1)
    detected = uv.copy()
    detected[under] += rng.normal(0.0, 15.0, (under.sum(), 2)) + np.array([20.0, 0.0])
    mask = np.zeros((480, 640), bool)
    mask[int(y0) : int(y1) + 1, int(x0) : int(x1) + 1] = True

    def pose_error(weights):
        fit = fit_head(head_model, detected, None, K, weights=weights)
        angle = roma.rotmat_geodesic_distance(fit.rotation.double(), rotation.double())
        return math.degrees(float(angle)), float((fit.params.transl[0] - params.transl[0]).norm())

    plain = pose_error(None)
    weighted = pose_error(landmark_weights(detected, [mask], HeadFitConfig()))
    # measured: 0.61 deg / 1.7 mm unweighted, 0.31 deg / 0.9 mm with the hand's mask
    assert weighted[0] < plain[0] and weighted[1] < plain[1]
    assert weighted[0] < 0.5 and weighted[1] < 0.0015


# ------------------------------------------------------------------- a face-only capture


class _Detector:
    def __init__(self, detections):
        self.detections = detections

    def __call__(self, rgb):
        return self.detections


def test_face_only_capture_recovers_the_head_and_reports_no_hand(head_model, known_head):
    params, out, uv, depth = known_head
    detections = Detections(image_size=(480, 640), faces=[FaceDetection(landmarks=uv, depth=depth)])
    reconstructor = Reconstructor(
        ReconstructConfig(mode="full"), head_model=head_model, detector=_Detector(detections)
    )
    capture = reconstructor(np.zeros((480, 640, 3), np.uint8), K=K)
    face = capture.face
    assert face is not None and capture.hands == {} and not capture.touching
    assert any("no hand found" in warning for warning in capture.warnings)
    assert capture.image_size == (640, 480) and capture.camera_source == "given"
    assert np.linalg.norm(face.vertices - out.vertices[0].numpy(), axis=1).mean() < 0.001
    # no hand, no deformation and no contact
    assert np.array_equal(face.vertices, face.vertices_deformed)
    assert np.abs(face.deformation).max() == 0.0 and face.contact.max() < 0.01
    assert capture.touched_regions == [] and capture.penetration["max_deformation_mm"] == 0.0
    error = np.linalg.norm(face.landmarks2d - face.detected_landmarks2d, axis=1)
    assert error[:NUM_SURFACE_LANDMARKS].mean() < 0.5
    assert np.allclose(face.rotation, _rotation_matrix(face.params["global_orient"]), atol=1e-5)
    assert face.keypoints68_2d.shape == (68, 2) and face.landmarks3d.shape == (478, 3)
    assert set(capture.timings) >= {"detect_s", "fit_head_s", "fit_hands_s", "total_s"}


def _rotation_matrix(rotvec: np.ndarray) -> np.ndarray:
    return roma.rotvec_to_rotmat(torch.as_tensor(rotvec, dtype=torch.float64)).numpy()
