"""MANO hand model read from the user's own model file (never shipped with handface).

Reads the official ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` (https://mano.is.tue.mpg.de) or an
``.npz`` with the same keys: ``v_template (778, 3)``, ``f (1538, 3)``, ``shapedirs (778, 3, 10)``,
``posedirs (778, 3, 135)``, ``J_regressor`` (sparse 16 × 778), ``weights (778, 16)``,
``kintree_table (2, 16)`` and, for the PCA pose space, ``hands_components (45, 45)`` and
``hands_mean (45,)``. Pickles go through the restricted unpickler (no chumpy, no code runs).

Frame: MANO's own canonical frame, metres, origin at the model file's coordinate origin (the
wrist joint is *not* at the origin; it is ``MeshOutput.joints[:, 0]``). ``global_orient``
rotates the posed hand about that origin and ``transl`` then moves it. smplx-style MANO code
rotates about the wrist joint instead; convert with :func:`handface.models.lbs.transl_about_origin`.

Parameters: ``HandParams.finger_pose`` is ``(B, 15, 3)`` — one local axis-angle per MANO joint
after the wrist, order ``pose_bone_labels`` (index1-3, middle1-3, pinky1-3, ring1-3, thumb1-3),
not the 20 bones of the Anny hand; ``shape`` holds the first ``n ≤ 10`` betas (unbounded,
0 = average: ``neutral_shape = 0``, ``shape_prior_scale = 1``). ``articulation`` is MANO's
pose latent, ``num_articulation`` values: with the PCA space in the file, the first
``num_pca_components`` (default 15) PCA coefficients with a flat mean (0 = flat hand, as
Decaf and DICE use it; a width up to the number of components in the file is accepted);
without it, the 45 axis-angle values of the 15 joints (``finger_pose`` flattened).
:meth:`ManoHandModel.pca_to_finger_pose` maps PCA coefficients (``hand_pose @
hands_components[:n]``, plus ``hands_mean`` unless the mean is flat).

Keypoints: the 16 joints plus 5 fingertip vertices (745, 317, 444, 556, 673 — thumb, index,
middle, ring, little), in MediaPipe's 21-point order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import roma
import torch
from jaxtyping import Float
from torch import Tensor

from handface.errors import ModelFileError
from handface.models.base import HandModel, HandParams, HandSide, MeshOutput
from handface.models.flame_backend import load_skinned_model, register_array
from handface.models.lbs import blend_shapes, rigid_transform, skin

MANO_JOINT_LABELS = [
    "wrist",
    "index1", "index2", "index3",
    "middle1", "middle2", "middle3",
    "pinky1", "pinky2", "pinky3",
    "ring1", "ring2", "ring3",
    "thumb1", "thumb2", "thumb3",
]  # fmt: skip
MANO_TIP_VERTICES: tuple[int, ...] = (745, 317, 444, 556, 673)
"""Fingertip vertices: thumb, index, middle, ring, little (the usual smplx choice)."""
MANO_TO_MEDIAPIPE: tuple[int, ...] = (
    0,
    13, 14, 15, 16,  # thumb CMC, MCP, IP, tip
    1, 2, 3, 17,  # index
    4, 5, 6, 18,  # middle
    10, 11, 12, 19,  # ring
    7, 8, 9, 20,  # little
)  # fmt: skip
"""Row of [16 MANO joints, 5 tips (thumb, index, middle, ring, little)] for each MediaPipe point."""
DEFAULT_PCA_COMPONENTS = 15
"""PCA pose coefficients in ``HandParams.articulation`` (what fitting optimises): enough for
the hand shapes MediaPipe's 21 keypoints can tell apart, few enough to stay well posed."""


class ManoHandModel(HandModel):
    """MANO of one side from the user's model file: 778 vertices, 16 joints, 10 betas.

    Example:
        >>> hand = ManoHandModel("mano_v1_2/models/MANO_RIGHT.pkl", "right")   # doctest: +SKIP
        >>> pose = hand.pca_to_finger_pose(torch.zeros(1, 45))                 # doctest: +SKIP
        >>> hand(HandParams(finger_pose=pose)).keypoints.shape                 # doctest: +SKIP
        torch.Size([1, 21, 3])
    """

    def __init__(
        self,
        path: str | Path,
        side: HandSide = "right",
        dtype: torch.dtype = torch.float32,
        tip_vertices: tuple[int, ...] = MANO_TIP_VERTICES,
        num_pca_components: int = DEFAULT_PCA_COMPONENTS,
    ) -> None:
        super().__init__()
        if side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', got {side!r}")
        path = Path(path)
        other = "LEFT" if side == "right" else "RIGHT"
        if other in path.stem.upper():
            raise ModelFileError(f"{path} looks like the {other.lower()} MANO model; side={side!r}")
        self.path = path
        self.side = side
        arrays = load_skinned_model(
            self, path, dtype, what="MANO model file", optional=["hands_components", "hands_mean"]
        )
        num_joints = len(self.parents)
        if num_joints != len(MANO_JOINT_LABELS):
            raise ModelFileError(f"{path}: MANO has 16 joints, this file has {num_joints}")
        num_verts = arrays["v_template"].shape[0]
        if len(tip_vertices) != 5 or max(tip_vertices) >= num_verts:
            raise ModelFileError(f"{path}: fingertip vertices {tip_vertices} not on {num_verts} v")
        self.joint_labels = list(MANO_JOINT_LABELS)
        self.pose_bone_labels = self.joint_labels[1:]
        self.shape_labels = [f"beta{i}" for i in range(arrays["shapedirs"].shape[-1])]
        register_array(self, "shapedirs", arrays["shapedirs"], dtype)
        register_array(self, "tip_vertices", np.asarray(tip_vertices, np.int64), torch.int64)
        self.has_pca = "hands_components" in arrays and "hands_mean" in arrays
        if self.has_pca:
            register_array(
                self, "hands_components", arrays["hands_components"].reshape(-1, 45), dtype
            )
            register_array(self, "hands_mean", arrays["hands_mean"].reshape(45), dtype)
            available = self.hands_components.shape[0]
            if not 0 < num_pca_components <= available:
                raise ValueError(
                    f"num_pca_components must be in 1..{available}, got {num_pca_components}"
                )
        self.num_pca_components = num_pca_components

    @property
    def dtype(self) -> torch.dtype:
        return self.template_vertices.dtype

    @property
    def num_articulation(self) -> int:
        """``num_pca_components`` PCA coefficients (flat mean) if the file has the PCA space,
        else the 45 axis-angle values of the 15 finger joints."""
        return self.num_pca_components if self.has_pca else 3 * (len(MANO_JOINT_LABELS) - 1)

    def articulation_to_finger_pose(self, articulation: Float[Tensor, "B A"]) -> Tensor:
        """Per-joint axis-angles ``(B, 15, 3)`` from the pose latent ``HandParams.articulation``."""
        if self.has_pca:
            return self.pca_to_finger_pose(articulation, flat_hand_mean=True)
        if articulation.shape[-1] != self.num_articulation:
            raise ValueError(
                f"articulation must have {self.num_articulation} values (axis-angles of the 15 "
                f"joints; this MANO file has no PCA space), got {articulation.shape[-1]}"
            )
        return articulation.reshape(*articulation.shape[:-1], 15, 3)

    def pca_to_finger_pose(
        self, coefficients: Float[Tensor, "B N"], flat_hand_mean: bool = True
    ) -> Float[Tensor, "B 15 3"]:
        """Per-joint axis-angles from ``N ≤ 45`` PCA coefficients of MANO's pose space.

        ``flat_hand_mean=True`` (Decaf, DICE) adds no mean pose: zero coefficients give the flat
        hand; ``False`` adds ``hands_mean`` (MANO's relaxed mean pose).
        """
        if not self.has_pca:
            raise ModelFileError(f"{self.path} has no hands_components/hands_mean (PCA pose space)")
        count = coefficients.shape[-1]
        if count > self.hands_components.shape[0]:
            raise ValueError(
                f"at most {self.hands_components.shape[0]} PCA coefficients, got {count}"
            )
        pose = coefficients.to(self.hands_components) @ self.hands_components[:count]
        if not flat_hand_mean:
            pose = pose + self.hands_mean
        return pose.reshape(*coefficients.shape[:-1], 15, 3)

    def forward(self, params: HandParams) -> MeshOutput:
        batch = params.batch_size
        like = self.template_vertices
        v_shaped = like.expand(batch, -1, -1)
        if params.shape is not None:
            count = params.shape.shape[-1]
            if count > self.shapedirs.shape[-1]:
                raise ValueError(f"shape has {count} values; MANO has {self.shapedirs.shape[-1]}")
            betas = params.shape.to(like).expand(batch, -1)
            v_shaped = v_shaped + blend_shapes(betas, self.shapedirs[..., :count])
        eye = torch.eye(3, dtype=like.dtype, device=like.device)
        rotations = eye.expand(batch, len(self.parents), 3, 3)
        fingers = []  # compact first, then per-bone (HandParams)
        if params.articulation is not None:
            pose = self.articulation_to_finger_pose(params.articulation.to(like))
            fingers.append(roma.rotvec_to_rotmat(pose.expand(batch, -1, -1)))
        if params.finger_pose is not None:
            shape = tuple(params.finger_pose.shape)
            if shape[-2:] != (len(self.parents) - 1, 3):
                raise ValueError(f"finger_pose must be (B, 15, 3) for MANO, got {shape}")
            fingers.append(roma.rotvec_to_rotmat(params.finger_pose.to(like).expand(batch, -1, -1)))
        if fingers:
            finger_rotations = fingers[0] if len(fingers) == 1 else fingers[0] @ fingers[1]
            rotations = torch.cat([rotations[:, :1], finger_rotations], dim=1)
        canonical, joints = skin(
            v_shaped, rotations, self.posedirs, self.joint_regressor, self.parents, self.weights
        )
        points = torch.cat([joints, canonical[:, self.tip_vertices]], dim=1)
        keypoints = points[:, list(MANO_TO_MEDIAPIPE)]
        return MeshOutput(
            vertices=rigid_transform(canonical, params.global_orient, params.transl),
            faces=self.faces,
            joints=rigid_transform(joints, params.global_orient, params.transl),
            keypoints=rigid_transform(keypoints, params.global_orient, params.transl),
            extras={"canonical_vertices": canonical, "canonical_joints": joints},
        )
