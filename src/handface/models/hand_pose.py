"""Compact, joint-limited finger articulation for the hand models.

Twenty degrees of freedom, each a rotation about one local axis of one bone (Blender bone
frames: y along the bone, x the flexion axis, z the abduction axis):

- index, middle, ring, little: MCP flexion, MCP abduction, PIP flexion, DIP flexion;
- thumb: CMC flexion, CMC abduction, MCP flexion, IP flexion.

An unconstrained latent ``a`` maps to an angle inside ``[lo, hi]`` by a shifted sigmoid chosen
so that ``a = 0`` gives the rest angle 0. The limits are the usual anatomical ranges (degrees)
with small hyperextension allowed; fitting optimizes the latent, so no pose outside them can be
reached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor


@dataclass(frozen=True)
class JointDof:
    """One rotational degree of freedom of the compact parameterization."""

    finger: str
    joint: str
    bone: str
    """Bone name without the side suffix (``finger2-1``)."""
    axis: int
    """Local rotation axis: 0 = x (flexion), 2 = z (abduction)."""
    lower_deg: float
    upper_deg: float


def _finger_dofs(finger: str, number: int) -> list[JointDof]:
    return [
        JointDof(finger, "mcp_flexion", f"finger{number}-1", 0, -20.0, 90.0),
        JointDof(finger, "mcp_abduction", f"finger{number}-1", 2, -20.0, 20.0),
        JointDof(finger, "pip_flexion", f"finger{number}-2", 0, -5.0, 105.0),
        JointDof(finger, "dip_flexion", f"finger{number}-3", 0, -5.0, 80.0),
    ]


COMPACT_DOFS: tuple[JointDof, ...] = (
    JointDof("thumb", "cmc_flexion", "finger1-1", 0, -25.0, 45.0),
    JointDof("thumb", "cmc_abduction", "finger1-1", 2, -40.0, 40.0),
    JointDof("thumb", "mcp_flexion", "finger1-2", 0, -10.0, 60.0),
    JointDof("thumb", "ip_flexion", "finger1-3", 0, -15.0, 80.0),
    *_finger_dofs("index", 2),
    *_finger_dofs("middle", 3),
    *_finger_dofs("ring", 4),
    *_finger_dofs("little", 5),
)
"""The 20 degrees of freedom, in latent order."""

NUM_COMPACT_DOFS = len(COMPACT_DOFS)


def dof_limits(
    dtype: torch.dtype = torch.float32,
) -> tuple[Float[Tensor, "20"], Float[Tensor, "20"]]:
    """Lower and upper angle limits (radians) of the 20 degrees of freedom."""
    lower = torch.tensor([math.radians(d.lower_deg) for d in COMPACT_DOFS], dtype=dtype)
    upper = torch.tensor([math.radians(d.upper_deg) for d in COMPACT_DOFS], dtype=dtype)
    return lower, upper


def latent_to_angles(latent: Float[Tensor, "*B 20"]) -> Float[Tensor, "*B 20"]:
    """Map the unconstrained latent to joint angles (radians) inside the anatomical limits.

    ``latent = 0`` gives angle 0 (the rest pose of the model) for every joint.

    Example:
        >>> latent_to_angles(torch.zeros(20)).abs().max().item() < 1e-6
        True
    """
    lower, upper = dof_limits(latent.dtype)
    lower, upper = lower.to(latent.device), upper.to(latent.device)
    span = upper - lower
    offset = torch.logit(-lower / span)
    return lower + span * torch.sigmoid(latent + offset)


def angles_to_latent(angles: Float[Tensor, "*B 20"], eps: float = 1e-4) -> Float[Tensor, "*B 20"]:
    """Inverse of :func:`latent_to_angles`; angles are clamped just inside the limits first."""
    lower, upper = dof_limits(angles.dtype)
    lower, upper = lower.to(angles.device), upper.to(angles.device)
    span = upper - lower
    fraction = ((angles - lower) / span).clamp(eps, 1.0 - eps)
    return torch.logit(fraction) - torch.logit(-lower / span)


def angles_to_bone_rotvecs(
    angles: Float[Tensor, "B 20"], pose_bone_labels: list[str], side_suffix: str
) -> Float[Tensor, "B 20 3"]:
    """Scatter the 20 joint angles into per-bone axis-angle vectors (order ``pose_bone_labels``)."""
    batch = angles.shape[0]
    rotvecs = angles.new_zeros(batch, len(pose_bone_labels), 3)
    index = {label: i for i, label in enumerate(pose_bone_labels)}
    for k, dof in enumerate(COMPACT_DOFS):
        rotvecs[:, index[dof.bone + side_suffix], dof.axis] = angles[:, k]
    return rotvecs
