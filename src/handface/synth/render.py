"""Rendering a synthetic frame: RGB, metric depth and segmentation from one rasterization.

The scene holds the deformed head, each hand with its forearm, the neck and shoulders in
clothes (:mod:`handface.synth.body`) and, for most looks, a shell of hair
(:mod:`handface.synth.hair`). Only the head and the hands carry labels; the body and the hair
are there so the picture looks like a person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch
from jaxtyping import Float, UInt8
from torch import Tensor

from handface.data.sample import SEGMENTATION_LABELS
from handface.models.base import HeadParams
from handface.models.scene import head_rotation
from handface.render.overlay import to_uint8
from handface.render.rasterizer import Scene
from handface.render.shading import shade
from handface.synth.appearance import background_image, hand_colours, head_colours
from handface.synth.body import BodyMesh, body_mesh, clothing_colours, pose_body
from handface.synth.forearm import forearm_mesh
from handface.synth.hair import hair_colours, hair_shell
from handface.synth.placement import outward_normals
from handface.synth.sampler import Frame, InteractionPlan, SynthModels, canonical_hand

_ARM = forearm_mesh()
"""The forearm tube in the hand's canonical frame (the same for every hand)."""


@dataclass
class RenderedFrame:
    rgb: UInt8[np.ndarray, "H W 3"]
    depth: Float[np.ndarray, "H W"]
    """Camera z in metres, 0 on the background."""
    segmentation: UInt8[np.ndarray, "H W"]
    """Labels of :data:`handface.data.sample.SEGMENTATION_LABELS`."""


@dataclass
class PlanMeshes:
    """What a plan's renders share: the albedo of every object and the body mesh."""

    colours: Float[Tensor, "N 3"]
    """Head, then each hand and its forearm (plan order), then the body, then the hair."""
    body: BodyMesh


def plan_meshes(models: SynthModels, plan: InteractionPlan) -> PlanMeshes:
    """Albedo and body of ``plan`` (they depend on the plan only: a sequence makes them once)."""
    with torch.no_grad():
        neutral = models.head(HeadParams(shape=plan.head_shape[None])).vertices[0]
        look = plan.look
        parts = [head_colours(models.head, models.regions, neutral, look)]
        for hand in plan.hands:
            mesh = canonical_hand(models, hand.side, hand.angles, hand.shape)
            arm_colour = torch.tensor(look.sleeve if look.sleeve is not None else look.hand_skin)
            parts.append(hand_colours(mesh.vertices[0], hand.side, look))
            parts.append(arm_colour.expand(_ARM[0].shape[0], 3))
        body = body_mesh(plan.head_shape, neutral)
        parts.append(
            clothing_colours(
                body, look.skin, look.cloth, look.collar_depth, look.cloth_pattern,
                look.background_seed + 7,
            )
        )  # fmt: skip
        if look.hair_thickness > 0:
            shell, _, _ = _hair(models, neutral, look.hair_thickness)
            parts.append(hair_colours(shell, look.hair, look.texture_seed + 2))
    return PlanMeshes(colours=torch.cat(parts), body=body)


def _hair(models: SynthModels, canonical: Tensor, thickness: float):
    normals = outward_normals(canonical, models.head.faces)
    return hair_shell(
        canonical, models.head.faces, normals, models.regions.mask("scalp"), thickness
    )


def render_frame(
    models: SynthModels, frame: Frame, meshes: PlanMeshes | None = None
) -> RenderedFrame:
    """Render ``frame`` with its plan's look: head, hands and forearms, body, hair.

    ``meshes``: :func:`plan_meshes` of the frame's plan, when the caller already has them.
    """
    plan, look, size = frame.plan, frame.plan.look, frame.image_size
    if meshes is None:
        meshes = plan_meshes(models, plan)
    rotation, translation = frame.head_rotation, plan.head_translation
    objects = [(frame.face_vertices_deformed, models.head.faces)]
    labels = [SEGMENTATION_LABELS["head"]]
    with torch.no_grad():
        for hand_plan in plan.hands:
            hand = frame.hands[hand_plan.side]
            arm, arm_faces = _ARM
            arm = arm @ roma.rotvec_to_rotmat(hand.params.global_orient[0]).T
            objects += [
                (hand.vertices, models.hands[hand.side].faces),
                (arm + hand.params.transl[0], arm_faces),
            ]
            labels += [SEGMENTATION_LABELS[f"{hand.side}_hand"]] * 2
        yaw, pitch, roll = plan.head_angles_deg[frame.index].tolist()
        torso = head_rotation(yaw * look.torso_yaw_share, 0.2 * pitch, 0.3 * roll)
        objects.append((pose_body(meshes.body, rotation, translation, torso), meshes.body.faces))
        labels.append(SEGMENTATION_LABELS["body"])
        if look.hair_thickness > 0:
            canonical = (frame.face_vertices_deformed - translation) @ rotation
            shell, shell_faces, _ = _hair(models, canonical, look.hair_thickness)
            objects.append((shell @ rotation.T + translation, shell_faces))
            labels.append(SEGMENTATION_LABELS["head"])
        scene = Scene.from_meshes(objects)
        fragments = scene.rasterize(frame.K, size, size)
        out = shade(
            fragments, scene.vertices, scene.faces, frame.K,
            vertex_colors=meshes.colours, light=look.light(),
            background=background_image(look, size),
        )  # fmt: skip
        rgb = out.rgb
        if look.noise_sigma > 0:
            generator = torch.Generator().manual_seed(look.background_seed + frame.index)
            rgb = rgb + look.noise_sigma * torch.randn(rgb.shape, generator=generator)
    return RenderedFrame(
        rgb=to_uint8(rgb.clamp(0, 1)),
        depth=out.depth.numpy().astype(np.float32),
        segmentation=segmentation_from_objects(fragments.object_id, labels),
    )


def segmentation_from_objects(object_id: Tensor, labels: list[int]) -> UInt8[np.ndarray, "H W"]:
    """Map the rasterizer's object ids (-1 background) to segmentation ``labels`` per object."""
    lookup = np.array([SEGMENTATION_LABELS["background"], *labels], dtype=np.uint8)
    return lookup[object_id.numpy() + 1]
