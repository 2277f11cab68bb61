import numpy as np
import pytest
import roma
import torch

from handface.models import MEDIAPIPE_INDEX_OF_68, HeadParams, landmarks_68_from_478
from handface.models.landmarks import (
    FACE_EMBEDDING_FILE,
    INTER_OCULAR_478,
    BarycentricEmbedding,
    load_face_landmark_embedding,
)
from handface.models.regions import REGION_NAMES, load_face_regions


def test_head_outputs_shapes_and_dtypes(head_model, head_model64):
    out = head_model(HeadParams())
    assert out.vertices.shape == (1, 4538, 3) and out.faces.shape == (9014, 3)
    assert out.landmarks.shape == (1, 478, 3) and out.landmarks68.shape == (1, 68, 3)
    assert out.joints.shape == (1, 64, 3) and out.vertices.dtype == torch.float32
    out64 = head_model64(HeadParams())
    assert out64.vertices.dtype == torch.float64
    assert torch.allclose(out64.vertices.float(), out.vertices, atol=1e-5)


def test_batch_matches_single_items(head_model):
    expression = torch.rand(2, 52) * 0.5
    shape = torch.rand(2, 9)
    jaw = torch.tensor([[0.1, 0.0, 0.0], [0.0, 0.0, 0.0]])
    batch = head_model(HeadParams(expression=expression, shape=shape, jaw=jaw))
    for i in range(2):
        single = head_model(
            HeadParams(expression=expression[i : i + 1], shape=shape[i : i + 1], jaw=jaw[i : i + 1])
        )
        assert torch.allclose(batch.vertices[i], single.vertices[0], atol=1e-5)


def test_global_transform_moves_landmarks_rigidly(head_model):
    rotvec = torch.tensor([[0.2, 0.5, -0.1]])
    transl = torch.tensor([[0.0, 0.1, 0.6]])
    still = head_model(HeadParams())
    moved = head_model(HeadParams(global_orient=rotvec, transl=transl))
    expected = still.landmarks @ roma.rotvec_to_rotmat(rotvec).transpose(-1, -2) + transl[:, None]
    assert torch.allclose(moved.landmarks, expected, atol=1e-5)


def test_jaw_opens_the_mouth_and_expression_moves_lips(head_model):
    neutral = head_model(HeadParams()).landmarks[0]
    opened = head_model(HeadParams(jaw=torch.tensor([[0.25, 0.0, 0.0]]))).landmarks[0]
    # inner lips: upper 13, lower 14; the chin (152) goes down (-z in the canonical frame)
    gap = lambda lm: (lm[13] - lm[14]).norm()
    assert gap(opened) > gap(neutral) + 0.005
    assert opened[152, 2] < neutral[152, 2] - 0.005
    smile = torch.zeros(1, 52)
    smile[0, head_model.expression_labels.index("mouthSmileLeft")] = 1.0
    smiling = head_model(HeadParams(expression=smile)).landmarks[0]
    # the subject's left mouth corner (291) rises; the right one (61) stays
    assert smiling[291, 2] > neutral[291, 2] + 0.002
    assert (smiling[61] - neutral[61]).norm() < (smiling[291] - neutral[291]).norm()


def test_gradients_flow_to_head_parameters(head_model):
    params = HeadParams(
        expression=torch.full((1, 52), 0.1, requires_grad=True),
        shape=torch.full((1, 9), 0.5, requires_grad=True),
        global_orient=torch.full((1, 3), 0.1, requires_grad=True),
        jaw=torch.zeros(1, 3, requires_grad=True),
    )
    head_model(params).landmarks.square().sum().backward()
    for name in ("expression", "shape", "global_orient", "jaw"):
        assert getattr(params, name).grad.abs().sum() > 0, name


def test_face_embedding_is_valid_and_anatomically_placed(head_model):
    embedding = load_face_landmark_embedding()
    assert embedding.face_index.shape == (478,) and embedding.barycentrics.shape == (478, 3)
    assert torch.all(embedding.barycentrics >= 0)
    assert torch.allclose(embedding.barycentrics.sum(1), torch.ones(478, dtype=torch.float64))
    assert int(embedding.face_index.max()) < 9014
    lm = head_model(HeadParams()).landmarks[0]  # canonical: x = subject's left, -y front, z up
    # outer eye corners: subject's right (33) at -x, left (263) at +x, at about the same height
    right_eye, left_eye = lm[INTER_OCULAR_478[0]], lm[INTER_OCULAR_478[1]]
    assert right_eye[0] < -0.03 and left_eye[0] > 0.03 and abs(right_eye[2] - left_eye[2]) < 0.005
    # mirror symmetry of the neutral head: corresponding landmarks mirror through x = 0
    assert abs(right_eye[0] + left_eye[0]) < 0.004
    # vertical order: forehead (10) above the nose tip (1) above the chin (152)
    assert lm[10, 2] > lm[1, 2] > lm[152, 2]
    # the nose tip is the front-most landmark
    assert int(lm[:, 1].argmin()) in (1, 4, 19, 94)
    # the iris centres (468, 473) lie on the eyeballs, between the eye corners
    assert lm[33, 0] < lm[468, 0] < lm[133, 0]


def test_embedding_apply_and_round_trip(tmp_path):
    vertices = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    faces = torch.tensor([[0, 1, 2], [0, 1, 3]])
    embedding = BarycentricEmbedding(
        torch.tensor([0, 1]), torch.tensor([[1.0, 0, 0], [0.2, 0.3, 0.5]])
    )
    points = embedding.apply(vertices, faces)
    assert torch.allclose(points, torch.tensor([[0.0, 0, 0], [0.3, 0, 0.5]]))
    batched = embedding.apply(torch.stack([vertices, 2 * vertices]), faces)
    assert torch.allclose(batched[1], 2 * points)
    embedding.save(tmp_path / "e.npz")
    loaded = BarycentricEmbedding.load(tmp_path / "e.npz")
    assert torch.equal(loaded.face_index, embedding.face_index)
    assert FACE_EMBEDDING_FILE.exists()


def test_68_point_layout():
    assert len(MEDIAPIPE_INDEX_OF_68) == 68 and len(set(MEDIAPIPE_INDEX_OF_68)) == 68
    landmarks = torch.arange(478.0)[:, None].expand(478, 2)
    selected = landmarks_68_from_478(landmarks)
    assert selected[8, 0] == 152 and selected[36, 0] == 33 and selected[45, 0] == 263


def test_68_layout_is_mirror_symmetric_on_the_neutral_head(head_model):
    lm68 = head_model(HeadParams()).landmarks68[0].numpy()
    # iBUG pairs: jaw 0<->16, brows 17<->26, eyes 36<->45, mouth corners 48<->54
    for a, b in [(0, 16), (3, 13), (17, 26), (36, 45), (39, 42), (48, 54), (31, 35)]:
        assert abs(lm68[a, 0] + lm68[b, 0]) < 0.006, (a, b)
        assert abs(lm68[a, 2] - lm68[b, 2]) < 0.006, (a, b)
        assert lm68[a, 0] < 0 < lm68[b, 0]


def test_regions_and_stiffness(head_model):
    regions = load_face_regions()
    assert regions.labels.shape == (4538,) and regions.stiffness.shape == (4538,)
    assert set(regions.labels.unique().tolist()) == set(range(len(REGION_NAMES)))
    assert float(regions.stiffness.min()) >= 0 and float(regions.stiffness.max()) <= 1
    lm = head_model(HeadParams()).landmarks[0]
    vertices = head_model(HeadParams()).vertices[0]

    def stiffness_near(point, radius=0.006):
        near = (vertices - point).norm(dim=1) < radius
        near &= regions.outer_surface
        return float(regions.stiffness[near].mean())

    forehead, nose_bridge = lm[151], lm[168]
    cheek = 0.5 * (lm[50] + lm[187]) + torch.tensor([0.0, 0.0, -0.012])  # soft mid-cheek
    lips = 0.5 * (lm[0] + lm[13])  # middle of the upper lip
    assert stiffness_near(forehead) > 0.8 and stiffness_near(nose_bridge) > 0.7
    assert stiffness_near(cheek) < 0.45 and stiffness_near(lips) < 0.2
    assert stiffness_near(forehead) > stiffness_near(cheek) + 0.4
    # lips are labelled lips, the nose tip nose, the top of the head scalp
    nearest = lambda p: int(regions.labels[(vertices - p).norm(dim=1).argmin()])
    assert REGION_NAMES[nearest(lips)] == "lips"
    assert REGION_NAMES[nearest(lm[1])] == "nose"
    top = vertices[vertices[:, 2].argmax()]
    assert REGION_NAMES[nearest(top)] == "scalp"
    assert int(regions.mask("eyes").sum()) == 112
    np.testing.assert_array_equal(
        regions.mask("lips", "nose").numpy(), (regions.mask("lips") | regions.mask("nose")).numpy()
    )


def test_anny_head_interface_for_fitting(head_model):
    assert head_model.landmark_layout == "mediapipe478"
    assert head_model.expression_bounds == (0.0, 1.0) and head_model.shape_bounds == (0.0, 1.0)
    assert head_model.neutral_shape == 0.5 and head_model.shape_prior_scale == 0.2
    assert torch.equal(head_model.neutral_shape_tensor(), torch.full((1, 9), 0.5))
    out = head_model(HeadParams(jaw=torch.tensor([[0.2, 0.0, 0.0]])))
    landmarks, landmarks68 = head_model.surface_landmarks(out.vertices + 0.01)
    assert torch.allclose(landmarks, out.landmarks + 0.01, atol=1e-6)
    assert torch.allclose(landmarks68, out.landmarks68 + 0.01, atol=1e-6)


def test_parameter_batch_size_broadcasts_ones_and_refuses_mixed_sizes():
    from handface.models.base import HandParams

    params = HeadParams(global_orient=torch.zeros(1, 3), transl=torch.zeros(4, 3))
    assert params.batch_size == 4 and HeadParams().batch_size == 1
    assert HandParams(transl=torch.zeros(1, 3)).batch_size == 1
    with pytest.raises(ValueError, match="inconsistent batch sizes"):
        _ = HeadParams(global_orient=torch.zeros(2, 3), transl=torch.zeros(3, 3)).batch_size
