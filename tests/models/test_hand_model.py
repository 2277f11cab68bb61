import roma
import torch

from handface.models import HAND_KEYPOINT_NAMES, HandParams
from handface.models.hand_pose import (
    COMPACT_DOFS,
    angles_to_latent,
    dof_limits,
    latent_to_angles,
)


def test_keypoints_follow_mediapipe_order(right_hand):
    out = right_hand(HandParams())
    keypoints = out.keypoints[0]
    assert keypoints.shape == (21, 3) and len(HAND_KEYPOINT_NAMES) == 21
    assert torch.allclose(keypoints[0], torch.zeros(3), atol=1e-6)  # wrist at the canonical origin
    for finger in range(5):
        chain = keypoints[1 + 4 * finger : 5 + 4 * finger]
        distance_from_wrist = chain.norm(dim=1)
        # joints of one finger get further from the wrist towards the tip on a flat hand
        assert torch.all(distance_from_wrist[1:] > distance_from_wrist[:-1])
    # the tips are surface vertices, the other keypoints are bone heads
    tips = keypoints[[4, 8, 12, 16, 20]]
    nearest = (tips[:, None] - out.vertices[0][None]).norm(dim=-1).min(dim=1).values
    assert nearest.max() < 1e-7
    # middle finger is the longest: its tip is furthest from the wrist
    assert keypoints[12].norm() == tips.norm(dim=1).max()


def test_shapes_dtypes_and_batch(right_hand):
    params = HandParams(
        articulation=torch.randn(3, 20),
        global_orient=0.3 * torch.randn(3, 3),
        transl=torch.randn(3, 3),
    )
    out = right_hand(params)
    assert (
        out.vertices.shape == (3, 1609, 3)
        and out.faces.shape == (3196, 3)
        and out.joints.shape == (3, 21, 3)
    )
    assert out.vertices.dtype == torch.float32
    single = right_hand(
        HandParams(
            articulation=params.articulation[1:2],
            global_orient=params.global_orient[1:2],
            transl=params.transl[1:2],
        )
    )
    assert torch.allclose(single.vertices[0], out.vertices[1], atol=1e-5)


def test_global_transform_is_rigid_motion_of_canonical_mesh(right_hand):
    rotvec = torch.tensor([[0.3, -1.2, 0.5]])
    transl = torch.tensor([[0.1, -0.2, 0.7]])
    articulation = torch.randn(1, 20)
    canonical = right_hand(HandParams(articulation=articulation)).vertices
    moved = right_hand(
        HandParams(articulation=articulation, global_orient=rotvec, transl=transl)
    ).vertices
    expected = canonical @ roma.rotvec_to_rotmat(rotvec).transpose(-1, -2) + transl[:, None]
    assert torch.allclose(moved, expected, atol=1e-5)


def test_flexion_curls_fingers_towards_the_palm(right_hand, left_hand):
    flat = right_hand(HandParams())
    latent = torch.zeros(1, 20)
    mcp = [
        k
        for k, dof in enumerate(COMPACT_DOFS)
        if dof.finger != "thumb" and dof.joint == "mcp_flexion"
    ]
    latent[0, mcp] = angles_to_latent(torch.full((20,), 1.0))[mcp]  # about 57 degrees
    bent = right_hand(HandParams(articulation=latent))
    tips = [8, 12, 16, 20]
    # the palm faces canonical -x: fingers bent at the knuckles move their tips to the palm side
    assert torch.all(bent.keypoints[0, tips, 0] < flat.keypoints[0, tips, 0] - 0.03)
    assert torch.all(bent.keypoints[0, tips, 1] < flat.keypoints[0, tips, 1] - 0.01)
    # the MCP joints themselves do not move
    assert torch.allclose(
        bent.keypoints[0, [5, 9, 13, 17]], flat.keypoints[0, [5, 9, 13, 17]], atol=1e-6
    )
    # the left hand is the mirror image of the right one through the x = 0 plane
    left = left_hand(HandParams(articulation=latent))
    mirrored = bent.keypoints * torch.tensor([-1.0, 1.0, 1.0])
    assert torch.allclose(left.keypoints, mirrored, atol=1e-4)


def test_compact_parameterization_respects_joint_limits():
    lower, upper = dof_limits()
    angles = latent_to_angles(torch.linspace(-50, 50, 101)[:, None].expand(-1, 20))
    assert torch.all(angles >= lower - 1e-6) and torch.all(angles <= upper + 1e-6)
    assert torch.allclose(angles[0], lower, atol=1e-4) and torch.allclose(
        angles[-1], upper, atol=1e-4
    )
    assert torch.allclose(latent_to_angles(torch.zeros(20)), torch.zeros(20), atol=1e-6)
    inside = lower + (upper - lower) * torch.rand(5, 20) * 0.98 + 0.01 * (upper - lower)
    assert torch.allclose(latent_to_angles(angles_to_latent(inside)), inside, atol=1e-4)


def test_gradients_reach_every_parameter(right_hand):
    params = HandParams(
        articulation=torch.zeros(1, 20, requires_grad=True),
        global_orient=torch.full((1, 3), 0.1, requires_grad=True),
        transl=torch.zeros(1, 3, requires_grad=True),
        shape=torch.full((1, 6), 0.5, requires_grad=True),
        finger_pose=torch.zeros(1, 20, 3, requires_grad=True),
    )
    right_hand(params).keypoints.square().sum().backward()
    for name in ("articulation", "global_orient", "transl", "shape", "finger_pose"):
        grad = getattr(params, name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_shape_changes_hand_size(right_hand):
    small = right_hand(HandParams(shape=torch.tensor([[0.5, 0.5, 0.5, 0.5, 0.0, 0.5]])))
    large = right_hand(HandParams(shape=torch.tensor([[0.5, 0.5, 0.5, 0.5, 1.0, 0.5]])))
    length = lambda out: (out.keypoints[0, 12] - out.keypoints[0, 0]).norm()
    assert length(large) > length(small) * 1.05


def test_anny_hand_interface_for_fitting(right_hand):
    from handface.models import HandModel

    assert right_hand.num_articulation == len(COMPACT_DOFS) == 20
    assert right_hand.neutral_shape == 0.5 and right_hand.shape_prior_scale == 0.2
    assert right_hand.shape_bounds == (0.0, 1.0)
    # the fast rig and the interface's default (the full forward pass) agree
    generator = torch.Generator().manual_seed(3)
    articulation = torch.randn(2, 20, generator=generator)
    orient, transl = roma.random_rotvec(2, generator=generator), torch.randn(2, 3)
    shape = torch.rand(1, 6, generator=generator)
    fast = right_hand.keypoint_rig(shape)(articulation, orient, transl)
    full = HandModel.keypoint_rig(right_hand, shape)(articulation, orient, transl)
    assert float((fast - full).norm(dim=-1).max()) < 1e-6
