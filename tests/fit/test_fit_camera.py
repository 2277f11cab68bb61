"""The single-image camera model: 35 mm conversion, focal-length precedence, principal point,
and the camera a :class:`~handface.fit.Reconstructor` actually uses for an image."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from handface.detect import Detections, HandDetection
from handface.errors import InputError
from handface.fit import ReconstructConfig, Reconstructor
from handface.fit.camera import (
    DEFAULT_FOCAL_35MM,
    FULL_FRAME_DIAGONAL_MM,
    camera_for_image,
    focal_from_35mm,
)
from handface.geometry.camera import project_points
from handface.models import HandParams


def test_focal_from_35mm_scales_the_image_diagonal():
    assert FULL_FRAME_DIAGONAL_MM == pytest.approx(43.2666153, abs=1e-6)
    # f_35 equal to the full-frame diagonal gives f_px equal to the image diagonal (3-4-5)
    assert focal_from_35mm(FULL_FRAME_DIAGONAL_MM, 3000, 4000) == pytest.approx(5000.0)
    assert focal_from_35mm(26.0, 4032, 3024) == pytest.approx(26.0 * 5040.0 / 43.2666153)
    # only the diagonal matters: portrait, landscape and a different aspect with the same one
    assert focal_from_35mm(50.0, 300, 400) == focal_from_35mm(50.0, 400, 300)
    assert focal_from_35mm(50.0, 480, 140) == pytest.approx(focal_from_35mm(50.0, 400, 300))
    # linear in the focal length and in the image size
    assert focal_from_35mm(70.0, 640, 480) == pytest.approx(2 * focal_from_35mm(35.0, 640, 480))
    assert focal_from_35mm(35.0, 1280, 960) == pytest.approx(2 * focal_from_35mm(35.0, 640, 480))


def test_intrinsics_are_square_pixels_with_the_principal_point_at_the_centre():
    camera = camera_for_image(641, 361, focal_px=512.5)
    K = camera.K
    assert K.dtype == torch.float64 and K.shape == (3, 3)
    expected = torch.tensor(
        [[512.5, 0.0, 320.0], [0.0, 512.5, 180.0], [0.0, 0.0, 1.0]], dtype=torch.float64
    )
    assert torch.equal(K, expected)
    assert camera.focal == 512.5
    even = camera_for_image(640, 480).K
    assert (float(even[0, 2]), float(even[1, 2])) == (319.5, 239.5)
    assert even[0, 0] == even[1, 1] and even[0, 1] == 0 and even[1, 0] == 0


@pytest.mark.parametrize(
    ("focal_px", "exif", "source", "focal"),
    [
        (700.0, 28.0, "--focal", 700.0),  # the user's value beats EXIF
        (700.0, None, "--focal", 700.0),
        (None, 28.0, "exif", 28.0 * 800.0 / FULL_FRAME_DIAGONAL_MM),
        (None, None, "default", DEFAULT_FOCAL_35MM * 800.0 / FULL_FRAME_DIAGONAL_MM),
        (None, 0.0, "default", DEFAULT_FOCAL_35MM * 800.0 / FULL_FRAME_DIAGONAL_MM),
        (None, -5.0, "default", DEFAULT_FOCAL_35MM * 800.0 / FULL_FRAME_DIAGONAL_MM),
    ],
)
def test_focal_length_precedence(focal_px, exif, source, focal):
    camera = camera_for_image(640, 480, focal_px=focal_px, exif_focal_35mm=exif)
    assert camera.source == source
    assert camera.focal == pytest.approx(focal, rel=1e-12)


def test_default_35mm_equivalent_is_configurable():
    camera = camera_for_image(640, 480, default_focal_35mm=50.0)
    assert camera.source == "default"
    assert camera.focal == pytest.approx(50.0 * 800.0 / FULL_FRAME_DIAGONAL_MM)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_a_focal_that_is_not_a_positive_number_is_a_user_error(bad):
    with pytest.raises(InputError) as error:
        camera_for_image(640, 480, focal_px=bad, exif_focal_35mm=28.0)
    message = str(error.value)
    assert "--focal" in message and "positive" in message and "\n" not in message


# ---------------------------------------------------------------- through the Reconstructor


class _OneHand:
    """A detector that always reports the same right hand (no MediaPipe needed)."""

    def __init__(self, keypoints: np.ndarray, depth: np.ndarray, size: tuple[int, int]) -> None:
        self.detections = Detections(
            image_size=size,
            hands=[HandDetection(keypoints=keypoints, depth=depth, side="right", score=0.9)],
        )

    def __call__(self, rgb):
        assert rgb.shape[:2] == self.detections.image_size
        return self.detections


@pytest.fixture(scope="module")
def hand_only(right_hand, left_hand, head_model):
    """A Reconstructor whose detector sees one flat right hand, fingers up, 0.5 m away."""
    K = torch.tensor([[300.0, 0.0, 159.5], [0.0, 300.0, 119.5], [0.0, 0.0, 1.0]])
    params = HandParams(
        global_orient=torch.tensor([[math.pi, 0.0, 0.0]]), transl=torch.tensor([[0.0, 0.08, 0.5]])
    )
    with torch.no_grad():
        keypoints = right_hand(params).keypoints[0].double()
    uv = project_points(keypoints, K.double()).numpy()
    depth = ((keypoints[:, 2] - keypoints[0, 2]) * 300.0 / keypoints[:, 2].mean()).numpy()
    assert uv.min() > 0 and uv[:, 0].max() < 320 and uv[:, 1].max() < 240
    return Reconstructor(
        head_model=head_model,
        hand_models={"right": right_hand, "left": left_hand},
        detector=_OneHand(uv, depth, (240, 320)),
    )


def test_reconstructor_uses_given_intrinsics_then_focal_then_exif_then_default(hand_only, tmp_path):
    rgb = np.full((240, 320, 3), 90, np.uint8)
    K = torch.tensor([[300.0, 0.0, 150.0], [0.0, 300.0, 110.0], [0.0, 0.0, 1.0]])
    hand_only.config = ReconstructConfig(focal=999.0)
    given = hand_only(rgb, K=K)
    assert given.camera_source == "given" and np.array_equal(given.K, K.numpy())

    focal = hand_only(rgb)
    assert focal.camera_source == "--focal" and focal.K[0, 0] == 999.0
    assert focal.image_size == (320, 240) and (focal.K[0, 2], focal.K[1, 2]) == (159.5, 119.5)

    path = tmp_path / "exif.jpg"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0xA405] = 50  # FocalLengthIn35mmFilm
    Image.fromarray(rgb).save(path, exif=exif)
    from_exif = hand_only(path)  # --focal beats the file's EXIF
    assert from_exif.source == str(path) and from_exif.camera_source == "--focal"
    hand_only.config = ReconstructConfig()
    from_exif = hand_only(path)
    assert from_exif.camera_source == "exif"
    assert from_exif.K[0, 0] == pytest.approx(50.0 * 400.0 / FULL_FRAME_DIAGONAL_MM)

    default = hand_only(rgb)
    assert default.camera_source == "default"
    assert default.K[0, 0] == pytest.approx(35.0 * 400.0 / FULL_FRAME_DIAGONAL_MM)
    # a hand-only capture says so, and has no face to touch
    assert default.face is None and set(default.hands) == {"right"}
    assert any("no face" in warning for warning in default.warnings)
    assert not default.hands["right"].touching and not default.touching


def test_reconstructor_rejects_a_bad_focal_and_a_misaligned_depth_map(hand_only):
    rgb = np.zeros((240, 320, 3), np.uint8)
    hand_only.config = ReconstructConfig(focal=-3.0)
    with pytest.raises(InputError, match="--focal"):
        hand_only(rgb)
    hand_only.config = ReconstructConfig()
    with pytest.raises(InputError, match="depth map is 240x320 but the image is 320x240"):
        hand_only(rgb, depth=np.ones((320, 240)))


def test_projection_with_the_estimated_camera_is_the_pinhole_model():
    camera = camera_for_image(800, 600, focal_px=650.0)
    point = torch.tensor([0.1, -0.05, 1.3], dtype=torch.float64)
    uv = camera.K @ point / point[2]
    assert float(uv[0]) == pytest.approx(399.5 + 650.0 * 0.1 / 1.3)
    assert float(uv[1]) == pytest.approx(299.5 - 650.0 * 0.05 / 1.3)
    # a point on the optical axis lands on the centre of the middle pixels
    axis = camera.K @ torch.tensor([0.0, 0.0, 2.0], dtype=torch.float64) / 2.0
    assert (float(axis[0]), float(axis[1])) == (399.5, 299.5)
    assert math.isclose(camera.focal, 650.0)
