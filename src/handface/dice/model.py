"""The DICE network: one image crop -> face, right hand, contact, deformation and parameters.

``DiceNet(config, head_model, hand_model)`` wires the parts of DICE (arXiv 2406.17988, §3):

1. backbone (:mod:`~handface.dice.backbone`): the crop -> 49 feature tokens;
2. :class:`~handface.dice.meshnet.TokenBuilder`: one token per hand keypoint (21), face
   keypoint (68), coarse hand vertex and coarse face vertex, each ``feature ⊕ template xyz``,
   some masked in training;
3. :class:`~handface.dice.meshnet.MeshNet` -> coarse keypoints and vertices; the coarse
   vertices are upsampled to the full meshes by the fixed matrices of
   :mod:`handface.models.mesh_sampling`;
4. :class:`~handface.dice.interaction_net.InteractionNet` -> per-token face deformation and
   hand / face contact logits, upsampled the same way;
5. IKNets (:mod:`~handface.dice.iknet`) -> the models' parameters from a mid-level coarse
   mesh; the parametric models give the hand ``V_H``, the undeformed face ``V*_F`` and
   ``V_F = V*_F + D``; translations are solved in closed form (centroids of the parametric
   and the coarse mesh at the IK level agree);
6. a weak-perspective camera ``(s, tx, ty)`` from the pooled image features.

**Frame.** Every 3D output is in the *head-centred camera-aligned frame*: camera-frame points
(OpenCV: x right, y down, z forward; metres) minus the centre of the undeformed face (the mean
of its vertices). The templates the tokens carry are the mean-pose meshes in that frame: the
face looking at the camera (face towards -z, up towards -y) and centred, the right hand flat,
fingers up, palm towards the right cheek 1.5 cm in front of it. The deformation ``D`` is in the
same frame (``face_vertices - face_vertices_undeformed``);
:meth:`DiceOutput.deformation_canonical` turns it into the head's canonical frame (DESIGN.md).

**Camera.** ``weak_perspective(points, camera)`` gives normalised crop coordinates
(``[-1, 1]`` across the crop, x right, y down): ``s * (x, y) + (tx, ty)``. Flipping the crop
horizontally negates x and ``tx``.

The network predicts the face and the *right* hand; :mod:`handface.dice.mirror` gets the left
hand from the mirrored crop.

Example:
    >>> from handface.models import AnnyHandModel, AnnyHeadModel
    >>> config = get_config("dice-small")
    >>> net = DiceNet(config, AnnyHeadModel(), AnnyHandModel("right")).eval()
    >>> with torch.no_grad():
    ...     out = net(torch.rand(1, 3, 224, 224))
    >>> out.face_vertices.shape, out.hand_vertices.shape, out.face_contact_logits.shape
    (torch.Size([1, 4538, 3]), torch.Size([1, 1609, 3]), torch.Size([1, 4538]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import roma
import torch
from jaxtyping import Float
from torch import Tensor, nn

from handface.dice.backbone import build_backbone
from handface.dice.config import DiceConfig, get_config
from handface.dice.iknet import FaceIKNet, HandIKNet, centroid_translation
from handface.dice.interaction_net import InteractionNet
from handface.dice.meshnet import MeshNet, TokenBuilder
from handface.models.base import HandModel, HandParams, HeadModel, HeadParams
from handface.models.mesh_sampling import (
    BodySampling,
    body_sampling_for,
    neutral_hand,
    neutral_head,
)

__all__ = [
    "DiceNet",
    "DiceOutput",
    "DiceTemplates",
    "dice_templates",
    "get_config",
    "weak_perspective",
]

ANNY_HEAD_VERTICES = 4538
"""Vertex count the config's face levels refer to."""
ANNY_HAND_VERTICES = 1609
"""Vertex count the config's hand levels refer to."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HAND_IN_FRONT_OF_CHEEK = 0.015
"""Distance (metres) of the template hand's palm in front of the right cheek."""
HAND_PALM_TILT_DEG = 30.0
"""The template palm faces away from the camera, turned this far towards the face."""


def head_template_rotation(head_model: HeadModel) -> Float[Tensor, "3 3"]:
    """Rotation from the head model's canonical frame to a head facing the camera.

    handface's canonical head (Anny: z up, face towards -y) turns by
    :data:`handface.models.scene.HEAD_TO_CAMERA`; FLAME's (y up, face towards +z) by a half
    turn about x. Both keep x (the person's left is +x, image right), so mirroring is
    negating x in both frames.
    """
    from handface.models.flame_backend import FlameHeadModel
    from handface.models.scene import HEAD_TO_CAMERA

    if isinstance(head_model, FlameHeadModel):
        return torch.diag(torch.tensor([1.0, -1.0, -1.0]))
    return HEAD_TO_CAMERA.clone()


def hand_template_rotation(keypoints: Float[Tensor, "21 3"]) -> Float[Tensor, "3 3"]:
    """Rotation from a right hand's canonical frame to the template pose, from its keypoints.

    The template hand has its fingers up (wrist -> middle MCP along -y) and its palm facing
    away from the camera (+z), turned by :data:`HAND_PALM_TILT_DEG` towards the face (+x),
    as a hand resting beside the right cheek. Works for any backend with keypoints in
    MediaPipe order.
    """
    keypoints = keypoints.double()
    fingers = torch.nn.functional.normalize(keypoints[9] - keypoints[0], dim=0)
    across = keypoints[5] - keypoints[17]  # little -> index MCP
    palm = torch.nn.functional.normalize(torch.linalg.cross(across, fingers), dim=0)
    fingers = torch.nn.functional.normalize(fingers - (fingers @ palm) * palm, dim=0)
    source = torch.stack([palm, fingers, torch.linalg.cross(palm, fingers)], dim=1)
    tilt = math.radians(HAND_PALM_TILT_DEG)
    palm_target = torch.tensor([math.sin(tilt), 0.0, math.cos(tilt)], dtype=torch.float64)
    fingers_target = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)
    target = torch.stack(
        [palm_target, fingers_target, torch.linalg.cross(palm_target, fingers_target)], dim=1
    )
    return (target @ source.T).float()


@dataclass
class DiceTemplates:
    """Mean-pose meshes in the network's frame: what the tokens carry, where IK starts."""

    face_vertices: Float[Tensor, "Vf 3"]
    face_keypoints: Float[Tensor, "68 3"]
    face_rotation: Float[Tensor, "3 3"]
    """Head canonical frame -> template pose."""
    hand_vertices: Float[Tensor, "Vh 3"]
    hand_keypoints: Float[Tensor, "21 3"]
    hand_rotation: Float[Tensor, "3 3"]
    """Hand canonical frame -> template pose."""


def dice_templates(head_model: HeadModel, hand_model: HandModel) -> DiceTemplates:
    """The neutral face (centred, facing the camera) and right hand (beside the right cheek).

    Example:
        >>> from handface.models import AnnyHandModel, AnnyHeadModel
        >>> t = dice_templates(AnnyHeadModel(), AnnyHandModel("right"))
        >>> t.face_vertices.mean(0).abs().max().item() < 1e-6
        True
        >>> bool(t.hand_vertices[:, 0].mean() < 0)  # the person's right: image left
        True
    """
    head = neutral_head(head_model)
    if head.landmarks68 is None:
        raise ValueError("DICE needs a head model with the 68 landmarks (landmarks68)")
    face_rotation = head_template_rotation(head_model).to(head.vertices)
    face = head.vertices[0] @ face_rotation.T
    centre = face.mean(0)
    landmarks = head.landmarks68[0] @ face_rotation.T - centre
    hand = neutral_hand(hand_model)
    if hand.keypoints is None:
        raise ValueError("DICE needs a hand model with the 21 keypoints")
    hand_rotation = hand_template_rotation(hand.keypoints[0]).to(hand.vertices)
    palm = hand.keypoints[0, [0, 5, 9, 13, 17]].mean(0) @ hand_rotation.T
    cheek = 0.5 * (landmarks[2] + landmarks[31])  # jaw line and alar base, person's right
    target = cheek - torch.tensor([0.0, 0.0, HAND_IN_FRONT_OF_CHEEK]).to(cheek)
    offset = target - palm
    return DiceTemplates(
        face_vertices=(face - centre).float(),
        face_keypoints=landmarks.float(),
        face_rotation=face_rotation.float(),
        hand_vertices=(hand.vertices[0] @ hand_rotation.T + offset).float(),
        hand_keypoints=(hand.keypoints[0] @ hand_rotation.T + offset).float(),
        hand_rotation=hand_rotation.float(),
    )


def scaled_levels(levels: tuple[int, ...], anny_vertices: int, vertices: int) -> tuple[int, ...]:
    """Level sizes given for the Anny mesh, scaled to a mesh of ``vertices`` vertices."""
    if vertices == anny_vertices:
        return levels
    return tuple(max(1, round(level * vertices / anny_vertices)) for level in levels)


def weak_perspective(
    points: Float[Tensor, "B N 3"], camera: Float[Tensor, "B 3"]
) -> Float[Tensor, "B N 2"]:
    """Normalised crop coordinates ``s * (x, y) + (tx, ty)`` of points in the network's frame.

    Example:
        >>> weak_perspective(torch.tensor([[[0.1, -0.05, 0.6]]]), torch.tensor([[8.0, 0.1, 0.0]]))
        tensor([[[ 0.9000, -0.4000]]])
    """
    return camera[:, None, :1] * points[..., :2] + camera[:, None, 1:]


class CameraHead(nn.Module):
    """Pooled image features -> weak-perspective ``(s, tx, ty)``, ``s = scale * exp(out)``."""

    def __init__(self, feature_dim: int, hidden: int, scale: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(feature_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 3)
        )
        nn.init.normal_(self.net[-1].weight, std=1e-3)
        nn.init.zeros_(self.net[-1].bias)
        self.scale = scale

    def forward(self, features: Float[Tensor, "B 49 C"]) -> Float[Tensor, "B 3"]:
        out = self.net(features.mean(dim=1))
        scale = self.scale * torch.exp(out[:, :1].clamp(-5.0, 5.0))
        return torch.cat([scale, out[:, 1:]], dim=-1)


class PresenceHead(nn.Module):
    """Pooled image features -> logit that the network's (right) hand is in the crop.

    Not in the paper, whose crops always hold the hand: ours are framed on the face, so the
    network must say whether a hand is there at all (MediaPipe misses hands lying on faces).
    """

    def __init__(self, feature_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(feature_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1)
        )

    def forward(self, features: Float[Tensor, "B 49 C"]) -> Float[Tensor, " B"]:
        return self.net(features.mean(dim=1))[:, 0]


class TouchHead(nn.Module):
    """Image features -> logit that the network's (right) hand touches the face.

    Not in the paper, whose touch verdict follows from the predicted meshes: at DICE's
    centimetre-level placement error, "on the skin or 1-2 cm in front" is decided better from
    the image directly (occlusion edges, shadows, the pressed skin). The 7x7 features are pooled
    twice, by their mean and by learned attention (the few cells where hand meets face), and an
    MLP reads both.
    """

    def __init__(self, feature_dim: int, hidden: int) -> None:
        super().__init__()
        self.attention = nn.Linear(feature_dim, 1)
        self.net = nn.Sequential(
            nn.Linear(2 * feature_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1)
        )

    def forward(self, features: Float[Tensor, "B 49 C"]) -> Float[Tensor, " B"]:
        weights = torch.softmax(self.attention(features), dim=1)
        pooled = torch.cat([features.mean(dim=1), (weights * features).sum(dim=1)], dim=-1)
        return self.net(pooled)[:, 0]


@dataclass
class DiceOutput:
    """Everything one forward pass predicts (batch first; 3D in the network's frame, metres).

    Fields after ``camera`` come from the parametric models and are ``None`` when the forward
    pass ran with ``parametric=False``.
    """

    hand_keypoints_coarse: Float[Tensor, "B 21 3"]
    """MeshNet's hand keypoint tokens (MediaPipe order)."""
    face_keypoints_coarse: Float[Tensor, "B 68 3"]
    """MeshNet's face keypoint tokens (iBUG 68)."""
    hand_vertices_coarse: Float[Tensor, "B Nh 3"]
    """MeshNet's coarse hand vertices ``V'_H`` (the hand's last coarse level)."""
    face_vertices_coarse: Float[Tensor, "B Nf 3"]
    """MeshNet's coarse face vertices ``V'_F`` (the face's last coarse level)."""
    hand_vertices_upsampled: Float[Tensor, "B Vh 3"]
    """``V'_H`` upsampled to the full hand mesh."""
    face_vertices_upsampled: Float[Tensor, "B Vf 3"]
    """``V'_F`` upsampled to the full face mesh."""
    hand_contact_coarse: Float[Tensor, "B Nh"]
    """Contact logits of the coarse hand vertices."""
    face_contact_coarse: Float[Tensor, "B Nf"]
    """Contact logits of the coarse face vertices."""
    face_deformation_coarse: Float[Tensor, "B Nf 3"]
    """Deformation of the coarse face vertices."""
    hand_contact_logits: Float[Tensor, "B Vh"]
    """Per-vertex hand contact logits (upsampled from the coarse tokens)."""
    face_contact_logits: Float[Tensor, "B Vf"]
    """Per-vertex face contact logits (upsampled)."""
    face_deformation: Float[Tensor, "B Vf 3"]
    """Per-vertex face deformation ``D`` (upsampled), the network's frame."""
    face_landmarks68_upsampled: Float[Tensor, "B 68 3"] | None
    """The 68 landmarks on the upsampled face (``None``: the head model has no landmark
    embedding), the paper's keypoints regressed from the coarse mesh."""
    camera: Float[Tensor, "B 3"]
    """Weak-perspective camera ``(s, tx, ty)`` (see :func:`weak_perspective`)."""
    hand_presence_logits: Float[Tensor, " B"]
    """Logit that the (right) hand is in the crop (:class:`PresenceHead`)."""
    hand_touch_logits: Float[Tensor, " B"]
    """Logit that the (right) hand touches the face (:class:`TouchHead`; without one, the
    likeliest hand vertex's contact logit)."""
    head_params: HeadParams | None = None
    """Regressed head parameters; ``global_orient``/``transl`` place the canonical head in the
    network's frame."""
    hand_params: HandParams | None = None
    """Regressed right-hand parameters (the same convention)."""
    head_rotation: Float[Tensor, "B 3 3"] | None = None
    """Head canonical frame -> network frame (the matrix behind ``head_params.global_orient``)."""
    hand_rotation: Float[Tensor, "B 3 3"] | None = None
    """Hand canonical frame -> network frame."""
    face_vertices_undeformed: Float[Tensor, "B Vf 3"] | None = None
    """The parametric face ``V*_F``."""
    face_vertices: Float[Tensor, "B Vf 3"] | None = None
    """The deformed face ``V_F = V*_F + D``."""
    hand_vertices: Float[Tensor, "B Vh 3"] | None = None
    """The parametric hand ``V_H``."""
    face_landmarks68: Float[Tensor, "B 68 3"] | None = None
    """The 68 landmarks of the parametric (undeformed) face."""
    hand_keypoints: Float[Tensor, "B 21 3"] | None = None
    """The 21 keypoints of the parametric hand."""

    @property
    def face_contact(self) -> Float[Tensor, "B Vf"]:
        """Per-vertex face contact probability."""
        return torch.sigmoid(self.face_contact_logits)

    @property
    def hand_contact(self) -> Float[Tensor, "B Vh"]:
        """Per-vertex hand contact probability."""
        return torch.sigmoid(self.hand_contact_logits)

    def deformation_canonical(self) -> Float[Tensor, "B Vf 3"]:
        """``D`` in the head's canonical frame (DESIGN.md's convention)."""
        if self.head_rotation is None:
            raise ValueError("the head rotation needs the parametric pass (parametric=True)")
        return self.face_deformation @ self.head_rotation


class DiceNet(nn.Module):
    """The DICE network for one head model and one *right*-hand model (see the module doc).

    The body models and everything derived from them (templates, sampling matrices) are not
    part of the state dict: a checkpoint holds only learned weights. ``.to()`` moves the body
    models along. In training mode batches need at least two crops (the IKNets' BatchNorm).
    """

    def __init__(
        self,
        config: DiceConfig | str,
        head_model: HeadModel,
        hand_model: HandModel,
        sampling: BodySampling | None = None,
    ) -> None:
        super().__init__()
        config = get_config(config) if isinstance(config, str) else config
        if hand_model.side != "right":
            raise ValueError("DiceNet predicts the right hand; pass the right hand model")
        self.config = config
        self._body = (head_model, hand_model)
        face_levels = scaled_levels(config.face_levels, ANNY_HEAD_VERTICES, head_model.num_vertices)
        hand_levels = scaled_levels(config.hand_levels, ANNY_HAND_VERTICES, hand_model.num_vertices)
        if sampling is None:
            sampling = body_sampling_for(head_model, hand_model, face_levels, hand_levels)
        self.sampling = sampling
        self.face_level = len(face_levels)
        self.hand_level = len(hand_levels)
        templates = dice_templates(head_model, hand_model)
        self.templates = templates
        face_coarse = sampling.head.downsample(templates.face_vertices[None], self.face_level)[0]
        hand_coarse = sampling.hand.downsample(templates.hand_vertices[None], self.hand_level)[0]
        token_template = torch.cat(
            [templates.hand_keypoints, templates.face_keypoints, hand_coarse, face_coarse]
        )
        self.register_buffer("token_template", token_template, persistent=False)
        counts = (
            templates.hand_keypoints.shape[0],
            templates.face_keypoints.shape[0],
            hand_coarse.shape[0],
            face_coarse.shape[0],
        )
        self.token_counts = counts
        num_tokens = sum(counts)
        self.register_buffer(
            "face_ik_index", sampling.head.vertex_index(config.face_ik_level), persistent=False
        )
        self.register_buffer(
            "hand_ik_index", sampling.hand.vertex_index(config.hand_ik_level), persistent=False
        )
        self.register_buffer(
            "pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False
        )

        self.backbone = build_backbone(config)
        self.tokens = TokenBuilder(config, num_tokens)
        self.meshnet = MeshNet(config, num_tokens)
        self.interaction = InteractionNet(config, num_tokens)
        self.face_ik = FaceIKNet(
            num_vertices=int(self.face_ik_index.shape[0]),
            num_expression=len(head_model.expression_labels),
            num_shape=len(head_model.shape_labels),
            config=config,
            expression_bounds=head_model.expression_bounds,
            shape_bounds=head_model.shape_bounds,
            neutral_shape=head_model.neutral_shape,
            base_rotation=templates.face_rotation,
            jaw_pose="jawOpen" not in head_model.expression_labels,
        )
        self.hand_ik = HandIKNet(
            num_vertices=int(self.hand_ik_index.shape[0]),
            pose_dim=hand_model.num_articulation,
            num_shape=len(hand_model.shape_labels),
            config=config,
            shape_bounds=hand_model.shape_bounds,
            neutral_shape=hand_model.neutral_shape,
            base_rotation=templates.hand_rotation,
        )
        self.camera = CameraHead(config.feature_dim, config.camera_hidden, config.camera_scale)
        self.hand_presence = PresenceHead(config.feature_dim, config.camera_hidden)
        self.hand_touch = (
            TouchHead(config.feature_dim, config.camera_hidden) if config.touch_head else None
        )

    @property
    def head_model(self) -> HeadModel:
        return self._body[0]

    @property
    def hand_model(self) -> HandModel:
        return self._body[1]

    @property
    def hand_is_anny(self) -> bool:
        """Whether the hand's pose latent is Anny's compact articulation."""
        from handface.models.anny_backend import AnnyHandModel

        return isinstance(self.hand_model, AnnyHandModel)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        for model in self._body:
            model._apply(fn)
        return self

    def split_tokens(self, values: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Per-token values -> (hand keypoints, face keypoints, hand vertices, face vertices)."""
        return tuple(values.split(self.token_counts, dim=1))  # type: ignore[return-value]

    def forward(self, images: Float[Tensor, "B 3 H W"], parametric: bool = True) -> DiceOutput:
        """Predict everything from crops in ``[0, 1]`` (``parametric=False`` skips step 5)."""
        features = self.backbone((images - self.pixel_mean) / self.pixel_std)
        template = self.token_template
        tokens = self.tokens(features, template)
        xyz = self.meshnet(tokens, template)
        deformation, contact = self.interaction(tokens)
        hand_kp, face_kp, hand_c, face_c = self.split_tokens(xyz)
        _, _, hand_contact_c, face_contact_c = self.split_tokens(contact)
        face_def_c = self.split_tokens(deformation)[3]

        head_s, hand_s = self.sampling.head, self.sampling.hand
        face_ik = head_s.upsample(face_c, self.face_level, self.config.face_ik_level)
        face_up = head_s.upsample(face_ik, self.config.face_ik_level)
        hand_ik = hand_s.upsample(hand_c, self.hand_level, self.config.hand_ik_level)
        hand_up = hand_s.upsample(hand_ik, self.config.hand_ik_level)
        face_deformation = head_s.upsample(face_def_c, self.face_level)
        face_contact = head_s.upsample(face_contact_c[..., None], self.face_level)[..., 0]
        hand_contact = hand_s.upsample(hand_contact_c[..., None], self.hand_level)[..., 0]
        out = DiceOutput(
            hand_keypoints_coarse=hand_kp,
            face_keypoints_coarse=face_kp,
            hand_vertices_coarse=hand_c,
            face_vertices_coarse=face_c,
            hand_vertices_upsampled=hand_up,
            face_vertices_upsampled=face_up,
            hand_contact_coarse=hand_contact_c,
            face_contact_coarse=face_contact_c,
            face_deformation_coarse=face_def_c,
            hand_contact_logits=hand_contact,
            face_contact_logits=face_contact,
            face_deformation=face_deformation,
            face_landmarks68_upsampled=self.head_model.surface_landmarks(face_up)[1],
            camera=self.camera(features),
            hand_presence_logits=self.hand_presence(features),
            hand_touch_logits=(
                self.hand_touch(features)
                if self.hand_touch is not None
                else hand_contact.amax(dim=1)
            ),
        )
        if parametric:
            self._parametric(out, face_ik, hand_ik)
        return out

    def _parametric(self, out: DiceOutput, face_ik: Tensor, hand_ik: Tensor) -> None:
        face = self.face_ik(face_ik)
        head = self.head_model(
            HeadParams(expression=face.expression, shape=face.shape, jaw=face.jaw, neck=face.neck)
        )
        rotation = face.rotation.to(head.vertices)
        posed = head.vertices @ rotation.transpose(1, 2)
        transl = centroid_translation(posed[:, self.face_ik_index], face_ik)
        undeformed = posed + transl[:, None]
        out.head_rotation = rotation
        out.head_params = HeadParams(
            global_orient=roma.rotmat_to_rotvec(rotation),
            transl=transl,
            neck=face.neck,
            jaw=face.jaw,
            expression=face.expression,
            shape=face.shape,
        )
        out.face_vertices_undeformed = undeformed
        out.face_vertices = undeformed + out.face_deformation
        out.face_landmarks68 = head.landmarks68 @ rotation.transpose(1, 2) + transl[:, None]

        hand = self.hand_ik(hand_ik)
        params = HandParams(articulation=hand.pose, shape=hand.shape)
        mesh = self.hand_model(params)
        rotation = hand.rotation.to(mesh.vertices)
        posed = mesh.vertices @ rotation.transpose(1, 2)
        transl = centroid_translation(posed[:, self.hand_ik_index], hand_ik)
        out.hand_rotation = rotation
        params.global_orient = roma.rotmat_to_rotvec(rotation)
        params.transl = transl
        out.hand_params = params
        out.hand_vertices = posed + transl[:, None]
        out.hand_keypoints = mesh.keypoints @ rotation.transpose(1, 2) + transl[:, None]
