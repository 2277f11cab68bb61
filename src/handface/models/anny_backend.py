"""Anny backend of the head and hand models (Apache-2.0 code, CC0 MakeHuman data).

Wraps ``anny.Anny`` (``makehuman-head`` rig / ``head`` topology with the 52 ARKit facial
actions; ``anny-hand.R|L`` rigs / ``hand.R|L`` topologies) behind :class:`HeadModel` and
:class:`HandModel`. The first construction of each Anny model builds a cache (about 90 s for the
head, 30 s per hand); later ones take a second or two. Skinning is Anny's dense linear blend
skinning in pure PyTorch, so float32, float64 and autograd all work.
"""

from __future__ import annotations

import functools
import warnings

import roma
import torch
from jaxtyping import Float
from torch import Tensor

from handface.models.base import HandModel, HandParams, HandSide, HeadModel, HeadParams, MeshOutput
from handface.models.hand_pose import NUM_COMPACT_DOFS, angles_to_bone_rotvecs, latent_to_angles
from handface.models.landmarks import (
    hand_keypoint_definition,
    landmarks_68_from_478,
    load_face_landmark_embedding,
)
from handface.models.lbs import rigid_transform

HEAD_SHAPE_LABELS = [
    "gender", "age", "muscle", "weight", "height", "proportions", "african", "asian", "caucasian",
]  # fmt: skip
"""Anny phenotypes exposed as head shape (cup size and firmness do not touch the head)."""

HAND_SHAPE_LABELS = ["gender", "age", "muscle", "weight", "height", "proportions"]


@functools.lru_cache(maxsize=8)
def _load_anny(rig: str, topology: str, facial_actions: str, phenotypes: str, dtype: torch.dtype):
    import anny

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = anny.Anny(
            rig=rig,
            topology=topology,
            facial_actions=facial_actions,
            phenotypes=phenotypes,
            pose_parameterization="local-bone",
            skinning_method="lbs",
        )
    return model.to(dtype=dtype).eval()


def _rigid(rotvec: Float[Tensor, "B 3"]) -> Float[Tensor, "B 4 4"]:
    transform = torch.eye(4, dtype=rotvec.dtype, device=rotvec.device).repeat(rotvec.shape[0], 1, 1)
    transform[:, :3, :3] = roma.rotvec_to_rotmat(rotvec)
    return transform


def _phenotype_tensor(
    shape: Tensor | None, labels: list[str], all_labels: list[str], batch: int, like: Tensor
) -> Tensor:
    values = like.new_full((batch, len(all_labels)), 0.5)
    if shape is None:
        return values
    if shape.shape[-1] != len(labels):
        raise ValueError(
            f"shape must have {len(labels)} values ({', '.join(labels)}), got {shape.shape[-1]}"
        )
    columns = [all_labels.index(label) for label in labels]
    values = values.clone()
    values[:, columns] = shape.expand(batch, -1).to(like)
    return values


class AnnyHeadModel(HeadModel):
    """The Anny head: 4538 vertices, 9014 triangles, 64 bones, 52 facial actions.

    Example:
        >>> head = AnnyHeadModel()
        >>> out = head(HeadParams(expression=torch.zeros(1, 52)))
        >>> out.vertices.shape, out.landmarks.shape
        (torch.Size([1, 4538, 3]), torch.Size([1, 478, 3]))
    """

    expression_bounds = (0.0, 1.0)
    """ARKit facial actions: 0 = inactive, 1 = fully active."""
    neutral_shape = 0.5
    shape_prior_scale = 0.2
    shape_bounds = (0.0, 1.0)
    """Anny phenotypes live in [0, 1]; 0.5 is the average."""

    def __init__(self, dtype: torch.dtype = torch.float32, with_landmarks: bool = True) -> None:
        super().__init__()
        self._anny = _load_anny("makehuman-head", "head", "all", "all", dtype)
        self.expression_labels = list(self._anny.facial_action_labels)
        self.shape_labels = list(HEAD_SHAPE_LABELS)
        self.joint_labels = list(self._anny.bone_labels)
        self.register_buffer("faces", self._anny.faces.clone(), persistent=False)
        self.register_buffer(
            "template_vertices", self._anny.template_vertices.clone(), persistent=False
        )
        uv = self._anny.texture_coordinates.to(dtype)
        self.face_uvs = uv[self._anny.face_texture_coordinate_indices].clone()
        self._bone = {
            name: self.joint_labels.index(name) for name in ("head", "jaw", "eye.L", "eye.R")
        }
        self.landmark_embedding = None
        if with_landmarks:
            self.landmark_embedding = load_face_landmark_embedding()

    @property
    def dtype(self) -> torch.dtype:
        return self.template_vertices.dtype

    def forward(self, params: HeadParams) -> MeshOutput:
        batch = params.batch_size
        like = self.template_vertices
        pose = torch.eye(4, dtype=like.dtype, device=like.device).repeat(
            batch, len(self.joint_labels), 1, 1
        )
        local = {"head": params.neck, "jaw": params.jaw}
        if params.eyes is not None:
            local["eye.L"], local["eye.R"] = params.eyes[:, 0], params.eyes[:, 1]
        for name, rotvec in local.items():
            if rotvec is not None:
                pose[:, self._bone[name]] = _rigid(rotvec.to(like).expand(batch, 3))
        phenotypes = _phenotype_tensor(
            params.shape, self.shape_labels, list(self._anny.phenotype_labels), batch, like
        )
        expression = params.expression
        if expression is None:
            expression = like.new_zeros(batch, len(self.expression_labels))
        output = self._anny(
            pose_parameters=pose,
            phenotype_kwargs=phenotypes,
            facial_actions=expression.to(like).expand(batch, -1),
        )
        canonical = output["vertices"]
        vertices = rigid_transform(canonical, params.global_orient, params.transl)
        joints = rigid_transform(
            output["bone_poses"][..., :3, 3], params.global_orient, params.transl
        )
        result = MeshOutput(
            vertices=vertices,
            faces=self.faces,
            joints=joints,
            extras={"canonical_vertices": canonical},
        )
        if self.landmark_embedding is not None:
            result.landmarks = self.landmark_embedding.apply(vertices, self.faces)
            result.landmarks68 = landmarks_68_from_478(result.landmarks)
        return result


class AnnyHandModel(HandModel):
    """An Anny hand of one side: 1609 vertices, 3196 triangles, 21 bones, 21 MediaPipe keypoints.

    Example:
        >>> hand = AnnyHandModel("right")
        >>> hand(HandParams(articulation=torch.zeros(1, 20))).keypoints.shape
        torch.Size([1, 21, 3])
    """

    neutral_shape = 0.5
    shape_prior_scale = 0.2
    shape_bounds = (0.0, 1.0)
    """Anny phenotypes live in [0, 1]; 0.5 is the average."""

    def __init__(self, side: HandSide = "right", dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', got {side!r}")
        self.side = side
        self.suffix = ".R" if side == "right" else ".L"
        self._anny = _load_anny(
            f"anny-hand{self.suffix}", f"hand{self.suffix}", "none", "default", dtype
        )
        self.shape_labels = list(HAND_SHAPE_LABELS)
        self.joint_labels = list(self._anny.bone_labels)
        self.pose_bone_labels = self.joint_labels[1:]
        self.register_buffer("faces", self._anny.faces.clone(), persistent=False)
        self.register_buffer(
            "template_vertices", self._anny.template_vertices.clone(), persistent=False
        )
        definition = hand_keypoint_definition(side)
        self.register_buffer(
            "_keypoint_bones", torch.tensor(definition.bone_indices), persistent=False
        )
        self.register_buffer(
            "_keypoint_vertices", torch.tensor(definition.tip_vertices), persistent=False
        )
        self._keypoint_is_tip = definition.is_tip

    @property
    def dtype(self) -> torch.dtype:
        return self.template_vertices.dtype

    @property
    def num_articulation(self) -> int:
        """The 20 joint-limited degrees of freedom of :mod:`handface.models.hand_pose`."""
        return NUM_COMPACT_DOFS

    def finger_rotvecs(
        self, params: HandParams, batch: int
    ) -> tuple[Float[Tensor, "B 20 3"] | None, Float[Tensor, "B 20 3"] | None]:
        """Per-bone local rotations from the compact latent and from the per-bone pose."""
        like = self.template_vertices
        rotvecs = None
        if params.articulation is not None:
            if params.articulation.shape[-1] != NUM_COMPACT_DOFS:
                raise ValueError(
                    f"articulation must have {NUM_COMPACT_DOFS} values, "
                    f"got {params.articulation.shape[-1]}"
                )
            angles = latent_to_angles(params.articulation.to(like).expand(batch, -1))
            rotvecs = angles_to_bone_rotvecs(angles, self.pose_bone_labels, self.suffix)
        return rotvecs, (
            None
            if params.finger_pose is None
            else params.finger_pose.to(like).expand(batch, -1, -1)
        )

    def keypoint_rig(self, shape: Float[Tensor, "1 S"] | None = None) -> HandKeypointRig:
        """A fast keypoint-only forward pass at a fixed ``shape`` (default: average hand);
        the same keypoints as the base class's full forward pass."""
        return HandKeypointRig(self, shape)

    def forward(self, params: HandParams) -> MeshOutput:
        batch = params.batch_size
        like = self.template_vertices
        pose = torch.eye(4, dtype=like.dtype, device=like.device).repeat(
            batch, len(self.joint_labels), 1, 1
        )
        compact, per_bone = self.finger_rotvecs(params, batch)
        rotations = [roma.rotvec_to_rotmat(r) for r in (compact, per_bone) if r is not None]
        if rotations:
            pose[:, 1:, :3, :3] = (
                rotations[0] if len(rotations) == 1 else rotations[0] @ rotations[1]
            )
        phenotypes = _phenotype_tensor(
            params.shape, self.shape_labels, list(self._anny.phenotype_labels), batch, like
        )
        output = self._anny(pose_parameters=pose, phenotype_kwargs=phenotypes)
        canonical = output["vertices"]
        bone_heads = output["bone_poses"][..., :3, 3]
        keypoints = torch.where(
            torch.tensor(self._keypoint_is_tip, device=like.device)[None, :, None],
            canonical[:, self._keypoint_vertices],
            bone_heads[:, self._keypoint_bones],
        )
        transform = functools.partial(
            rigid_transform, rotvec=params.global_orient, transl=params.transl
        )
        return MeshOutput(
            vertices=transform(canonical),
            faces=self.faces,
            joints=transform(bone_heads),
            keypoints=transform(keypoints),
            extras={"canonical_vertices": canonical},
        )


class HandKeypointRig:
    """The 21 keypoints of an Anny hand of fixed shape, without skinning the whole mesh.

    Forward kinematics of the 21 bones plus linear blend skinning of the five fingertip
    vertices: the same keypoints as :meth:`AnnyHandModel.forward` at a fraction of the cost,
    which matters inside fitting loops (hundreds of evaluations per image).

    Example:
        >>> rig = AnnyHandModel("right").keypoint_rig()
        >>> rig(torch.zeros(1, 20)).shape
        torch.Size([1, 21, 3])
    """

    def __init__(self, model: AnnyHandModel, shape: Float[Tensor, "1 S"] | None) -> None:
        self.model = model
        like = model.template_vertices
        phenotypes = _phenotype_tensor(
            shape, model.shape_labels, list(model._anny.phenotype_labels), 1, like
        )
        identity = torch.eye(4, dtype=like.dtype).repeat(1, len(model.joint_labels), 1, 1)
        with torch.no_grad():
            rest = model._anny(pose_parameters=identity, phenotype_kwargs=phenotypes)
        self.rest_bone_poses = rest["rest_bone_poses"]
        tips = model._keypoint_vertices[torch.tensor(model._keypoint_is_tip)]
        rest_tips = rest["rest_vertices"][0, tips]
        self.rest_tips = torch.cat([rest_tips, rest_tips.new_ones(len(tips), 1)], dim=1)
        self.tip_weights = model._anny.dense_vertex_bone_weights[tips].to(like)
        self.is_tip = torch.tensor(model._keypoint_is_tip)
        self.bones = model._keypoint_bones[~self.is_tip]

    def __call__(
        self,
        articulation: Float[Tensor, "B 20"],
        global_orient: Float[Tensor, "B 3"] | None = None,
        transl: Float[Tensor, "B 3"] | None = None,
    ) -> Float[Tensor, "B 21 3"]:
        model = self.model
        batch = articulation.shape[0]
        pose = torch.eye(4, dtype=articulation.dtype).repeat(batch, len(model.joint_labels), 1, 1)
        rotvecs, _ = model.finger_rotvecs(HandParams(articulation=articulation), batch)
        pose[:, 1:, :3, :3] = roma.rotvec_to_rotmat(rotvecs)
        transforms, bone_poses = model._anny.get_bone_transforms(
            pose, self.rest_bone_poses.expand(batch, -1, -1, -1)
        )
        # tip = sum_b w_b T_b [v; 1]
        moved = torch.einsum("bjkl,tl->btjk", transforms, self.rest_tips)[..., :3]
        tips = (moved * self.tip_weights[None, :, :, None]).sum(dim=2)
        keypoints = articulation.new_empty(batch, 21, 3)
        keypoints[:, self.is_tip] = tips
        keypoints[:, ~self.is_tip] = bone_poses[:, self.bones, :3, 3]
        return rigid_transform(keypoints, global_orient, transl)
