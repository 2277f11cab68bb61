import numpy as np
import pytest

from handface.detect import MediaPipeDetector


@pytest.fixture(scope="module")
def detector():
    return MediaPipeDetector()


def test_blank_image_has_no_detections(detector):
    detections = detector(np.full((128, 128, 3), 127, np.uint8))
    assert detections.faces == [] and detections.hands == [] and detections.image_size == (128, 128)


def test_render_of_the_head_is_detected_where_the_embedding_projects(detector, head_model):
    from handface.geometry.camera import project_points
    from handface.models.build_landmarks import HeadView, render_head_view
    from handface.models.landmarks import INTER_OCULAR_478

    view = HeadView(
        shape=tuple([0.4] * 9), expression=(("mouthSmileLeft", 0.3),), yaw_deg=12.0, pitch_deg=-5.0
    )
    rendered = render_head_view(head_model, view, size=384)
    face = detector.detect_face(rendered.image)
    assert face is not None and face.landmarks.shape == (478, 2)
    projected = project_points(
        head_model.landmark_embedding.apply(rendered.vertices_cam, head_model.faces), rendered.K
    )
    inter_ocular = np.linalg.norm(
        face.landmarks[INTER_OCULAR_478[0]] - face.landmarks[INTER_OCULAR_478[1]]
    )
    nme = np.linalg.norm(projected.numpy() - face.landmarks, axis=1) / inter_ocular
    assert np.median(nme) < 0.05


def test_real_photo_face_and_hand(detector, shared_media):
    from PIL import Image

    portrait = np.asarray(
        Image.open(
            shared_media / "frontal_face" / "face01_obama_official_portrait_2012_PD.jpg"
        ).convert("RGB")
    )
    detections = detector(portrait)
    assert len(detections.faces) == 1
    landmarks = detections.faces[0].landmarks
    # the subject's right eye corner (33) appears left of the left one (263) in a photo
    assert landmarks[33, 0] < landmarks[263, 0]
    assert 0 <= landmarks[:, 0].min() and landmarks[:, 0].max() < portrait.shape[1]
    hand = np.asarray(
        Image.open(shared_media / "single_hand" / "hand01_mediapipe_thumb_up_640.jpg").convert(
            "RGB"
        )
    )
    hands = detector.detect_hands(hand)
    assert (
        len(hands) == 1
        and hands[0].keypoints.shape == (21, 2)
        and hands[0].side in ("left", "right")
    )
