"""Fitting drives any backend of the model interface: ``reconstruct`` with the FLAME and MANO
backends (synthetic model files in the official layout, :mod:`tests/data/decaf_fixture`), on
detections synthesised from the models' own projected landmarks and keypoints; and fit/ names
no backend."""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import roma
import torch

from handface.detect import Detections, FaceDetection, HandDetection
from handface.fit import ReconstructConfig, Reconstructor
from handface.fit.camera import intrinsics
from handface.fit.hand_fit import fit_hand
from handface.fit.head_fit import fit_head, fit_layout, landmark_basis, landmark_weights
from handface.geometry.camera import project_points
from handface.io.capture_folder import RESULT_FILE, load_capture, save_capture
from handface.models import (
    MEDIAPIPE_INDEX_OF_68,
    FlameHeadModel,
    HandParams,
    HeadParams,
    ManoHandModel,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from decaf_fixture import write_decaf_fixture, write_fake_flame, write_fake_mano  # noqa: E402

FIT = Path(__file__).resolve().parents[2] / "src" / "handface" / "fit"
K = intrinsics(640, 480, 900.0)
FLIP = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
"""Canonical (y up) -> camera (y down): FLAME's face (+z) and MANO's palm look at the camera."""


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("backends")
    flame_path, mano_path = folder / "generic_model.pkl", folder / "MANO_RIGHT.pkl"
    write_fake_flame(flame_path)
    write_fake_mano(mano_path)
    fixture = write_decaf_fixture(folder / "decaf", flame_path, mano_path, num_frames=1)
    head = FlameHeadModel(flame_path, landmark_embedding=fixture.files["landmark_embedding"])
    return head, ManoHandModel(mano_path, "right")


def _head_scene(head, expression_scale: float = 0.5):
    """A FLAME head turned a little, 0.6 m away, with an expression; MediaPipe-like detection:
    its 68 landmarks at their MediaPipe indices of a 478 array (NaN elsewhere)."""
    generator = torch.Generator().manual_seed(0)
    rotation = roma.rotvec_to_rotmat(torch.tensor([0.1, 0.3, 0.05])) @ FLIP
    params = HeadParams(
        global_orient=roma.rotmat_to_rotvec(rotation)[None],
        transl=torch.tensor([[0.0, 0.0, 0.6]]),
        expression=expression_scale * torch.randn(1, 20, generator=generator),
    )
    with torch.no_grad():
        out = head(params)
    points = out.landmarks68[0].double()
    uv68 = project_points(points, K).numpy()
    z = points[:, 2].numpy()
    landmarks = np.full((478, 2), np.nan)
    landmarks[list(MEDIAPIPE_INDEX_OF_68)] = uv68
    depth = np.full(478, np.nan)
    depth[list(MEDIAPIPE_INDEX_OF_68)] = (z - z.mean()) * float(K[0, 0]) / z.mean()
    assert 0 < uv68.min() and uv68[:, 0].max() < 640 and uv68[:, 1].max() < 480
    return params, out, FaceDetection(landmarks=landmarks, depth=depth)


def _hand_scene(hand, transl):
    """A MANO hand with a random PCA pose and its MediaPipe-like detection."""
    generator = torch.Generator().manual_seed(1)
    rotation = roma.rotvec_to_rotmat(torch.tensor([0.2, -0.3, 0.1])) @ FLIP
    params = HandParams(
        global_orient=roma.rotmat_to_rotvec(rotation)[None],
        transl=torch.tensor([transl]),
        articulation=0.5 * torch.randn(1, hand.num_articulation, generator=generator),
    )
    with torch.no_grad():
        out = hand(params)
    keypoints = out.keypoints[0].double()
    z = keypoints[:, 2].numpy()
    detection = HandDetection(
        keypoints=project_points(keypoints, K).numpy(),
        depth=(z - z[0]) * float(K[0, 0]) / z.mean(),
        side="right",
        score=0.95,
    )
    return params, out, detection


class _Detector:
    def __init__(self, detections: Detections) -> None:
        self.detections = detections

    def __call__(self, rgb: np.ndarray) -> Detections:
        return self.detections


# ------------------------------------------------------------------ the fits on their own


def test_the_landmark_basis_of_flame_is_exact(models):
    head, _ = models
    basis = landmark_basis(head)
    assert basis.mean.shape == (68, 3) and basis.neutral_shape == 0.0
    assert basis.expression.shape == (100, 68, 3) and basis.shape.shape == (300, 68, 3)
    generator = torch.Generator().manual_seed(2)
    expression = torch.randn(3, 100, generator=generator)
    shape = torch.randn(3, 300, generator=generator)
    with torch.no_grad():
        truth = head(HeadParams(expression=expression, shape=shape)).landmarks68.double()
    predicted = basis(expression.double(), shape.double())
    assert float((predicted - truth).norm(dim=-1).max()) < 1e-5
    assert float((truth[0] - basis.mean).norm(dim=-1).max()) > 1e-3  # and the parameters matter


def test_fit_head_fits_flame_to_the_68_landmarks(models):
    head, _ = models
    params, out, detection = _head_scene(head)
    assert fit_layout(head).name == "ibug68"
    weights = landmark_weights(detection.landmarks, None, ReconstructConfig().head, "ibug68")
    assert weights.shape == (68,) and np.all(weights[:17] == 0.3) and np.all(weights[17:] == 1)
    fit = fit_head(head, detection.landmarks, detection.depth, K)
    assert fit.landmarks.shape == (68, 3) and fit.landmarks68.shape == (68, 3)
    assert fit.params.expression.shape == (1, 100) and fit.params.shape.shape == (1, 300)
    # measured: 1.1 px, 0.08 deg, 0.2 mm (the expression prior keeps it from the exact 0 px)
    assert fit.reprojection_px < 2.0
    angle = roma.rotmat_geodesic_distance(
        fit.rotation.double(), roma.rotvec_to_rotmat(params.global_orient[0].double())
    )
    assert math.degrees(float(angle)) < 2.0
    assert float((fit.params.transl[0] - params.transl[0]).norm()) < 0.01
    with torch.no_grad():
        again = head(fit.params)
    assert torch.allclose(again.vertices[0], fit.vertices, atol=1e-5)
    with pytest.raises(ValueError, match="one per ibug68 landmark"):
        fit_head(head, detection.landmarks, None, K, weights=np.ones(478))


def test_fit_hand_recovers_a_mano_pose_from_exact_keypoints(models):
    _, hand = models
    params, out, detection = _hand_scene(hand, [0.12, 0.0, 0.55])
    fit = fit_hand(hand, detection.keypoints, detection.depth, K)
    assert fit.params.articulation.shape == (1, hand.num_articulation) == (1, 15)
    # measured: 0.1 px, 0.4 mm
    assert fit.reprojection_px < 1.0
    assert float((fit.keypoints - out.keypoints[0]).norm(dim=-1).mean()) < 0.002
    with torch.no_grad():
        again = hand(fit.params)
    assert torch.allclose(again.keypoints[0], fit.keypoints, atol=1e-5)
    assert torch.allclose(again.vertices[0], fit.vertices, atol=1e-5)


# ------------------------------------------------------------------------- reconstruct


def test_reconstruct_with_flame_and_mano_reprojects_and_saves(models, tmp_path):
    head, hand = models
    head_params, head_out, face = _head_scene(head)
    _, hand_out, detected_hand = _hand_scene(hand, [0.12, 0.0, 0.55])  # beside the head
    detections = Detections(image_size=(480, 640), faces=[face], hands=[detected_hand])
    reconstructor = Reconstructor(
        ReconstructConfig(mode="full"),
        head_model=head,
        hand_models={"right": hand},
        detector=_Detector(detections),
    )
    capture = reconstructor(np.zeros((480, 640, 3), np.uint8), K=K)
    face_out, hand_fit = capture.face, capture.hands["right"]
    truth68 = project_points(head_out.landmarks68[0].double(), K).numpy()
    # measured: 1.1 px mean (the expression prior), 0.2 px for the hand; 2 mm and 0.3 mm in 3D
    assert np.linalg.norm(face_out.keypoints68_2d - truth68, axis=1).mean() < 2.5
    assert np.linalg.norm(hand_fit.keypoints2d - detected_hand.keypoints, axis=1).mean() < 1.5
    assert np.linalg.norm(face_out.vertices - head_out.vertices[0].numpy(), axis=1).mean() < 0.005
    assert np.linalg.norm(hand_fit.keypoints3d - hand_out.keypoints[0].numpy(), axis=1).mean() < (
        0.003
    )
    # the 478 fields hold the 68 available landmarks at their MediaPipe indices, NaN elsewhere
    index = list(MEDIAPIPE_INDEX_OF_68)
    assert np.allclose(face_out.landmarks2d[index], face_out.keypoints68_2d, atol=1e-4)
    assert np.isnan(face_out.landmarks3d).any(axis=1).sum() == 478 - 68
    assert face_out.params["expression"].shape == (100,) and face_out.params["shape"].shape == (
        300,
    )
    assert hand_fit.params["articulation"].shape == (15,)
    assert np.array_equal(hand_fit.params["shape"], np.zeros(10, np.float32))  # MANO's average
    # no face regions for FLAME: a warning, no named areas; no touch here, no deformation
    assert any("uniform tissue stiffness" in warning for warning in capture.warnings)
    assert capture.touched_regions == [] and not capture.touching
    assert capture.penetration["max_deformation_mm"] == 0.0

    folder = save_capture(capture, tmp_path / "capture")
    names = {"result.json", "params.npz", "face.ply", "hand_right.ply", "overlay.png"}
    assert names <= {path.name for path in folder.iterdir()}
    summary = json.loads((folder / RESULT_FILE).read_text())
    assert summary["face"]["num_vertices"] == head.num_vertices
    assert summary["hands"]["right"]["num_vertices"] == hand.num_vertices
    # over the 68 landmarks both the detection and the capture hold
    error68 = np.linalg.norm(face_out.landmarks2d[index] - face.landmarks[index], axis=1).mean()
    assert summary["face"]["landmark_error_px"] == pytest.approx(error68, abs=0.01)
    assert summary["hands"]["right"]["keypoint_error_px"] < 1.5
    loaded = load_capture(folder)
    assert np.allclose(loaded.face.vertices, face_out.vertices, atol=1e-6)


def test_a_hand_pressed_into_a_flame_head_deforms_it_with_uniform_stiffness(models):
    head, hand = models
    _, _, face = _head_scene(head, expression_scale=0.0)
    # in front of the face, its closest skin a few millimetres inside the head's surface
    _, _, detected_hand = _hand_scene(hand, [0.0, 0.0, 0.47])
    detections = Detections(image_size=(480, 640), faces=[face], hands=[detected_hand])
    reconstructor = Reconstructor(
        head_model=head, hand_models={"right": hand}, detector=_Detector(detections)
    )
    capture = reconstructor(np.zeros((480, 640, 3), np.uint8), K=K)
    assert reconstructor.regions.generic and reconstructor.regions.outer_surface.all()
    assert capture.extras["interaction_contact"] == {"right": True}
    assert capture.hands["right"].touching and capture.touched_regions == []
    # measured: 1.2 mm deformation, the hand then 3 mm deep (within max_penetration)
    assert capture.penetration["max_deformation_mm"] > 0.3
    assert capture.penetration["max_after_mm"] <= 1000 * ReconstructConfig().max_penetration + 0.5
    face_out = capture.face
    assert np.abs(face_out.vertices_deformed - face_out.vertices).max() > 3e-4


# ----------------------------------------------------------------- fit/ names no backend


def _anny_references(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and "anny" in (node.module or "").split(".")[-1]:
            found.append(f"{path.name}:{node.lineno} from {node.module} import")
        elif isinstance(node, ast.Import):
            found += [
                f"{path.name}:{node.lineno} import {a.name}" for a in node.names if "anny" in a.name
            ]
        elif isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name.startswith("Anny"):
                found.append(f"{path.name}:{node.lineno} {name}")
    return found


def test_fit_uses_only_the_model_interface():
    files = sorted(FIT.glob("*.py"))
    assert {"head_fit.py", "hand_fit.py", "single_image.py"} <= {path.name for path in files}
    assert [ref for path in files for ref in _anny_references(path)] == []


def test_importing_the_fits_loads_no_anny_model_code():
    code = (
        "import sys; import handface.fit.head_fit, handface.fit.hand_fit; "
        "print(sorted(m for m in sys.modules if m == 'anny' or m.startswith('anny.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"
