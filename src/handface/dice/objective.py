"""DICE's training objective: the paper's loss terms, weighted, as a named dict.

``L = 12.5 L_mesh + 5 L_interaction + 2.5 L_depth + 1 L_adv`` (METHOD.md §1), with

* ``L_mesh = L_reproj + 4 L_vert + 2 L_key + 2 L_params``;
* ``L_vert = 3 (4 |V'_h - D V^_h| + |V_h - V^_h|) + (4 |V'_f - D V^_f| + |V*_f - V^_f|)``:
  coarse MeshNet vertices against the ground truth downsampled to their level (``D``), the
  parametric meshes against the full ground truth (the face undeformed);
* ``L_key = 4 (keypoint tokens + keypoints read off the coarse mesh) + (parametric
  keypoints)``; the face's 68 points are read off its upsampled coarse mesh by the landmark
  embedding; the hand has no backend-independent joint regressor, so its coarse-mesh term is
  left out (its tokens and parametric keypoints supervise both ends);
* ``L_reproj = 4 (hand: tokens, parametric) + 1 (face: tokens, parametric)``, L1 in
  normalised crop coordinates; points are projected through the crop's pinhole camera with
  the head placed by the camera head (:mod:`handface.dice.projection`; the paper's weak
  perspective when the batch has no camera);
* ``L_params``: mean of the L1 terms of the face (expression, shape, rotation matrix) and the
  hand (articulation, shape, rotation matrix);
* ``L_interaction = 0.2 L_touch + 0.6 L_contact + L_collision + 6 L_deform`` with
  :func:`~handface.losses.touch_chamfer` on the predicted meshes (ours: with ``D`` held
  fixed, so the touch term moves the meshes and only ``L_deform`` teaches ``D``),
  :func:`~handface.losses.contact_bce` on face and hand,
  :func:`~handface.losses.penetration_chamfer` of the parametric hand against the undeformed
  face (both at their coarse level), and the stiffness-weighted
  :func:`~handface.losses.deformation_loss`;
* ``L_depth``: :func:`~handface.losses.scale_invariant_log_depth` on keypoint depths, only for
  in-the-wild items with a depth map (``keypoint_depth``, ``keypoint_depth_valid``);
* ``L_adv``: the non-saturating generator loss of the two parameter discriminators.

Ours, not in the paper: ``L_presence`` (BCE of the hand-presence logit against "the branch's
hand is in the crop") and ``L_touching`` (BCE of the touch logit against "some vertex of the
branch's hand is in contact"), both on synthetic items only; and ``contact_positive``, a
weight of the contact vertices inside ``L_contact`` (1, the paper's plain BCE, by default).

Every term is computed only on the items that carry its label (masks of
:mod:`handface.dice.dataset`); lengths are in metres. The weights are :class:`LossWeights`,
whose defaults are the paper's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from handface.dice.discriminator import DiceDiscriminators
from handface.dice.model import DiceNet, DiceOutput
from handface.dice.projection import CropCamera, project_to_crop
from handface.geometry.contact import in_contact
from handface.geometry.normals import vertex_normals
from handface.losses import (
    contact_bce,
    deformation_loss,
    generator_loss,
    masked_l1,
    penetration_chamfer,
    reprojection_l1,
    scale_invariant_log_depth,
    stiffness_weights,
    touch_chamfer,
)


@dataclass(frozen=True)
class LossWeights:
    """Multipliers of the loss terms (defaults: the DICE paper)."""

    mesh: float = 12.5
    interaction: float = 5.0
    depth: float = 2.5
    adversarial: float = 1.0
    reprojection: float = 1.0
    """Inside L_mesh."""
    vertices: float = 4.0
    keypoints: float = 2.0
    params: float = 2.0
    hand_part: float = 3.0
    """Hand vs face inside L_vert (face: 1)."""
    hand_reprojection: float = 4.0
    """Hand vs face inside L_reproj (face: 1)."""
    coarse: float = 4.0
    """Coarse (MeshNet) vs parametric terms inside L_vert and L_key."""
    touch: float = 0.2
    contact: float = 0.6
    collision: float = 1.0
    deformation: float = 6.0
    presence: float = 2.0
    """Ours (not in the paper): the hand-presence BCE, synthetic items only."""
    touching: float = 2.0
    """Ours: the BCE of the hand's touch verdict (:class:`~handface.dice.model.TouchHead`)
    against "some hand vertex is in contact", synthetic items only."""
    contact_positive: float = 1.0
    """Weight of the contact vertices inside the contact BCE (the paper: 1; see
    :func:`~handface.losses.contact_bce`)."""


class DiceObjective:
    """The weighted loss of one batch; call it with the network output and the batch dict."""

    def __init__(self, net: DiceNet, weights: LossWeights | None = None) -> None:
        from handface.models.regions import face_regions_for

        self.net = net
        self.weights = weights or LossWeights()
        head = net.head_model
        regions = face_regions_for(head.num_vertices)
        self.stiffness = stiffness_weights(torch.as_tensor(regions.stiffness).float())
        self.faces = head.faces
        # Anny's head is not wound consistently: fix each normal's side once, on the template,
        # so that it points away from the head's centre (a point behind the face)
        template = net.templates.face_vertices
        normals = vertex_normals(template, self.faces)
        inside = template.mean(0) + torch.tensor([0.0, 0.0, 0.04])
        self.normal_sign = torch.where(((template - inside) * normals).sum(-1) < 0, -1.0, 1.0).to(
            template
        )

    def __call__(
        self,
        out: DiceOutput,
        batch: dict[str, Tensor],
        discriminators: DiceDiscriminators | None = None,
    ) -> dict[str, Tensor]:
        """Named weighted terms (``loss/...``) and their sum ``loss/total``."""
        w = self.weights
        net = self.net
        head_s, hand_s = net.sampling.head, net.sampling.hand
        has_hand = batch["has_hand"]
        ones = torch.ones_like(has_hand)
        # in-the-wild items (has_3d = 0) have 2D keypoints and maybe depth, no 3D labels
        has_3d = batch.get("has_3d", ones)
        hand_3d = has_hand * has_3d

        # -- mesh ---------------------------------------------------------------------------
        gt_face, gt_hand = batch["face_vertices"], batch["hand_vertices"]
        face_coarse_gt = head_s.downsample(gt_face, net.face_level)
        hand_coarse_gt = hand_s.downsample(gt_hand, net.hand_level)
        hand_vertex = w.coarse * masked_l1(
            out.hand_vertices_coarse, hand_coarse_gt, hand_3d
        ) + masked_l1(out.hand_vertices, gt_hand, hand_3d)
        face_vertex = w.coarse * masked_l1(
            out.face_vertices_coarse, face_coarse_gt, has_3d
        ) + masked_l1(out.face_vertices_undeformed, gt_face, has_3d)
        l_vert = w.hand_part * hand_vertex + face_vertex
        hand_kp, face_kp = batch["hand_keypoints3d"], batch["face_keypoints3d"]
        l_key = w.coarse * (
            masked_l1(out.hand_keypoints_coarse, hand_kp, hand_3d)
            + masked_l1(out.face_keypoints_coarse, face_kp, has_3d)
            + masked_l1(out.face_landmarks68_upsampled, face_kp, has_3d)
        ) + (
            masked_l1(out.hand_keypoints, hand_kp, hand_3d)
            + masked_l1(out.face_landmarks68, face_kp, has_3d)
        )

        crop = CropCamera.from_batch(batch)

        def reproj(points: Tensor, target: Tensor, mask: Tensor) -> Tensor:
            visible = mask[:, None].expand(-1, points.shape[1])
            return reprojection_l1(project_to_crop(points, out.camera, crop), target, visible)

        l_reproj = w.hand_reprojection * (
            reproj(out.hand_keypoints_coarse, batch["hand_keypoints2d"], has_hand)
            + reproj(out.hand_keypoints, batch["hand_keypoints2d"], has_hand)
        ) + (
            reproj(out.face_keypoints_coarse, batch["face_keypoints2d"], ones)
            + reproj(out.face_landmarks68, batch["face_keypoints2d"], ones)
        )
        face_valid = batch["face_params_valid"] * has_3d
        hand_valid = batch["hand_params_valid"] * hand_3d
        head_params, hand_params = out.head_params, out.hand_params
        face_terms = [
            masked_l1(head_params.expression, batch["head_expression"], face_valid),
            masked_l1(head_params.shape, batch["head_shape"], face_valid),
            masked_l1(out.head_rotation, batch["head_rotation"], face_valid),
        ]
        hand_terms = [masked_l1(out.hand_rotation, batch["hand_rotation"], hand_valid)]
        if net.hand_is_anny:
            hand_terms += [
                masked_l1(hand_params.articulation, batch["hand_articulation"], hand_valid),
                masked_l1(hand_params.shape, batch["hand_shape"], hand_valid),
            ]
        l_params = torch.stack(face_terms + hand_terms).mean()
        l_mesh = w.reprojection * l_reproj + w.vertices * l_vert + w.keypoints * l_key
        l_mesh = l_mesh + w.params * l_params

        # -- interaction --------------------------------------------------------------------
        # D is learned from L_deform alone: with D in the touch term, D learned to reach for a
        # misplaced hand (v2 of dice-small: D against the ground truth at cosine -0.26)
        l_touch = touch_chamfer(
            out.face_vertices_undeformed + out.face_deformation.detach(),
            out.hand_vertices,
            out.face_contact,
            out.hand_contact * has_hand[:, None],
        )
        l_contact = contact_bce(
            out.face_contact_logits, batch["face_contact"], has_3d, w.contact_positive
        ) + contact_bce(out.hand_contact_logits, batch["hand_contact"], hand_3d, w.contact_positive)
        faces = self.faces.to(out.face_vertices_undeformed.device)
        normals = vertex_normals(out.face_vertices_undeformed, faces) * self.normal_sign[
            :, None
        ].to(out.face_vertices_undeformed)
        face_points = head_s.downsample(out.face_vertices_undeformed, net.face_level)
        face_normals = torch.nn.functional.normalize(
            head_s.downsample(normals, net.face_level), dim=-1
        )
        hand_points = hand_s.downsample(out.hand_vertices, net.hand_level)
        l_collision = penetration_chamfer(hand_points, face_points, face_normals, has_hand)
        l_deform = deformation_loss(
            out.face_deformation,
            batch["deformation"],
            self.stiffness.to(out.face_deformation),
            mask=has_3d,
        )
        l_interaction = (
            w.touch * l_touch + w.contact * l_contact + w.collision * l_collision
        ) + w.deformation * l_deform

        # -- depth (in-the-wild items with a depth map) -------------------------------------
        l_depth = out.camera.new_zeros(())
        if "keypoint_depth" in batch and bool((batch["keypoint_depth_valid"] > 0).any()):
            depth_valid = batch["keypoint_depth_valid"]
            predicted = torch.cat([out.hand_keypoints_coarse, out.face_keypoints_coarse], 1)[..., 2]
            # keypoint depths relative to the head centre, placed at the head's distance
            distance = (crop.focal()[:, None] / out.camera[:, :1]).detach()
            l_depth = scale_invariant_log_depth(
                predicted + distance, batch["keypoint_depth"], depth_valid
            )

        # -- adversarial --------------------------------------------------------------------
        l_adv = out.camera.new_zeros(())
        if discriminators is not None:
            face_logits, hand_logits = discriminators(head_params, hand_params)
            l_adv = generator_loss(face_logits)
            if bool((has_hand > 0).any()):
                l_adv = l_adv + generator_loss(hand_logits[has_hand > 0])

        # -- hand presence (ours): is the branch's hand in the crop? -------------------------
        l_presence = contact_bce(out.hand_presence_logits[:, None], has_hand[:, None], has_3d)
        # -- touch verdict (ours): does the branch's hand touch the face? -------------------
        touches = (has_hand * in_contact(batch["hand_contact"]).any(dim=1)).to(has_hand)
        l_touching = out.camera.new_zeros(())
        if net.hand_touch is not None:
            l_touching = contact_bce(out.hand_touch_logits[:, None], touches[:, None], has_3d)

        terms = {
            "loss/presence": w.presence * l_presence,
            "loss/touching": w.touching * l_touching,
            "loss/mesh": w.mesh * l_mesh,
            "loss/interaction": w.interaction * l_interaction,
            "loss/depth": w.depth * l_depth,
            "loss/adversarial": w.adversarial * l_adv,
        }
        terms["loss/total"] = sum(terms.values())
        # unweighted parts, for the log
        terms.update(
            {
                "part/reprojection": l_reproj,
                "part/vertices": l_vert,
                "part/keypoints": l_key,
                "part/params": l_params,
                "part/touch": l_touch,
                "part/contact": l_contact,
                "part/collision": l_collision,
                "part/deformation": l_deform,
                "part/presence": l_presence,
                "part/touching": l_touching,
            }
        )
        return terms
