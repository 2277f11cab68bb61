"""Linear blend skinning with blendshapes: the forward model of SMPL-family files (FLAME, MANO).

The model definition (Loper et al. 2015, "SMPL"; Li et al. 2017, "FLAME"; Romero et al. 2017,
"MANO"):

1. shaped template ``T(β) = T̄ + Σ_k β_k S_k`` (identity and expression blendshapes);
2. rest joints ``J = 𝒥 T(β)`` (a sparse linear regressor);
3. pose correctives ``T_P = T(β) + Σ_p f_p(θ) P_p``, where ``f(θ)`` stacks the entries of
   ``R_j(θ) − I`` of every non-root joint ``j`` (row-major, joint-major);
4. forward kinematics along the kinematic tree: ``G_j = G_parent(j) · [R_j | J_j − J_parent(j)]``;
5. skinning ``v = Σ_j w_vj · (G_j · [I | −J_j]) · T_P(v)``.

Everything is batched PyTorch, so autograd, float32 and float64 work.
"""

from __future__ import annotations

import roma
import torch
from jaxtyping import Float, Int
from torch import Tensor


def blend_shapes(
    coefficients: Float[Tensor, "B K"], directions: Float[Tensor, "V 3 K"]
) -> Float[Tensor, "B V 3"]:
    """Linear blendshape offsets ``Σ_k c_k D_k``.

    Example:
        >>> d = torch.zeros(2, 3, 1); d[0, 2, 0] = 1.0
        >>> blend_shapes(torch.tensor([[0.5]]), d)[0, 0].tolist()
        [0.0, 0.0, 0.5]
    """
    return torch.einsum("bk,vck->bvc", coefficients, directions)


def skin(
    v_shaped: Float[Tensor, "B V 3"],
    rotations: Float[Tensor, "B J 3 3"],
    posedirs: Float[Tensor, "V 3 P"],
    joint_regressor: Float[Tensor, "J V"],
    parents: Int[Tensor, " J"] | list[int],
    weights: Float[Tensor, "V J"],
) -> tuple[Float[Tensor, "B V 3"], Float[Tensor, "B J 3"]]:
    """Pose a shaped template: pose correctives, forward kinematics and skinning.

    ``rotations`` are the joints' local rotations (the root's included); ``parents[j] < j`` with
    ``parents[0] = -1``. Returns the posed vertices and the posed joint centres.

    Example:
        >>> v = torch.tensor([[[1.0, 0.0, 0.0]]])
        >>> R = roma.rotvec_to_rotmat(torch.tensor([[[0.0, 0.0, 1.5707964]]]))
        >>> out, _ = skin(v, R, torch.zeros(1, 3, 0), torch.zeros(1, 1), [-1], torch.ones(1, 1))
        >>> [round(x, 5) + 0.0 for x in out[0, 0].tolist()]
        [0.0, 1.0, 0.0]
    """
    batch, num_joints = rotations.shape[:2]
    parents = [int(p) for p in parents]
    joints = torch.einsum("jv,bvc->bjc", joint_regressor, v_shaped)
    eye = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
    pose_feature = (rotations[:, 1:] - eye).reshape(batch, -1)
    if posedirs.shape[-1]:
        v_posed = v_shaped + torch.einsum("bp,vcp->bvc", pose_feature, posedirs)
    else:
        v_posed = v_shaped
    world_rot: list[Tensor] = []
    world_pos: list[Tensor] = []
    for j in range(num_joints):
        parent = parents[j]
        if parent < 0:
            world_rot.append(rotations[:, j])
            world_pos.append(joints[:, j])
        else:
            offset = (joints[:, j] - joints[:, parent]).unsqueeze(-1)
            world_rot.append(world_rot[parent] @ rotations[:, j])
            world_pos.append(world_pos[parent] + (world_rot[parent] @ offset).squeeze(-1))
    rot = torch.stack(world_rot, dim=1)  # (B, J, 3, 3)
    posed_joints = torch.stack(world_pos, dim=1)  # (B, J, 3)
    # Transform of each joint relative to its rest pose: x -> rot (x - J) + posed_J.
    shift = posed_joints - (rot @ joints.unsqueeze(-1)).squeeze(-1)
    blended_rot = torch.einsum("vj,bjkl->bvkl", weights, rot)
    blended_shift = torch.einsum("vj,bjk->bvk", weights, shift)
    vertices = (blended_rot @ v_posed.unsqueeze(-1)).squeeze(-1) + blended_shift
    return vertices, posed_joints


def rigid_transform(
    points: Float[Tensor, "B N 3"], rotvec: Tensor | None, transl: Tensor | None
) -> Float[Tensor, "B N 3"]:
    """``R(rotvec) @ p + transl`` for every point (either part may be ``None``)."""
    if rotvec is not None:
        points = points @ roma.rotvec_to_rotmat(rotvec).transpose(-1, -2)
    if transl is not None:
        points = points + transl.unsqueeze(-2)
    return points


def transl_about_origin(
    rotvec: Float[Tensor, "*B 3"], pivot: Float[Tensor, "*B 3"], transl: Float[Tensor, "*B 3"]
) -> Float[Tensor, "*B 3"]:
    """Translation that makes a rotation about ``pivot`` one about the origin.

    A rotation ``R`` about ``pivot`` followed by ``transl`` maps ``x`` to
    ``R (x − pivot) + pivot + transl = R x + t'`` with ``t' = transl + pivot − R pivot``; this
    returns ``t'``. (smplx-style FLAME / MANO rotate the root about the root joint.)

    Example:
        >>> t = transl_about_origin(torch.tensor([0.0, 0.0, 3.1415927]),
        ...                         torch.tensor([1.0, 0.0, 0.0]), torch.zeros(3))
        >>> [round(x, 4) + 0.0 for x in t.tolist()]
        [2.0, 0.0, 0.0]
    """
    rotated = (roma.rotvec_to_rotmat(rotvec) @ pivot.unsqueeze(-1)).squeeze(-1)
    return transl + pivot - rotated


def local_rotations(
    batch: int,
    num_joints: int,
    rotvecs: dict[int, Tensor | None],
    like: Tensor,
) -> Float[Tensor, "B J 3 3"]:
    """Per-joint rotation matrices: identity except the joints given as axis-angles."""
    eye = torch.eye(3, dtype=like.dtype, device=like.device)
    columns = [eye.expand(batch, 3, 3)] * num_joints
    for joint, rotvec in rotvecs.items():
        if rotvec is not None:
            columns[joint] = roma.rotvec_to_rotmat(rotvec.to(like).expand(batch, 3))
    return torch.stack(columns, dim=1)
