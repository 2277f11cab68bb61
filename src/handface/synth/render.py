"""Rendering a synthetic frame: RGB, metric depth and segmentation from one rasterization."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import roma
import torch
from jaxtyping import Float, UInt8
from torch import Tensor

from handface.data.sample import SEGMENTATION_LABELS
from handface.models.base import HeadParams
from handface.render.overlay import to_uint8
from handface.render.rasterizer import Scene
from handface.render.shading import shade
from handface.synth.appearance import background_image, hand_colours, head_colours
from handface.synth.forearm import forearm_mesh
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


def plan_colours(models: SynthModels, plan: InteractionPlan) -> Float[Tensor, "V 3"]:
    """Albedo of the head, the hand and the forearm (in that order) for ``plan``'s look.

    It depends on the plan only (shape, hand pose, look), so a sequence computes it once.
    """
    with torch.no_grad():
        neutral = models.head(HeadParams(shape=plan.head_shape[None])).vertices[0]
        hand = canonical_hand(models, plan.hand_side, plan.hand_angles, plan.hand_shape)
    look = plan.look
    arm_colour = torch.tensor(look.sleeve if look.sleeve is not None else look.hand_skin)
    return torch.cat(
        [
            head_colours(models.head, models.regions, neutral, look),
            hand_colours(hand.vertices[0], plan.hand_side, look),
            arm_colour.expand(_ARM[0].shape[0], 3),
        ]
    )


def render_frame(
    models: SynthModels, frame: Frame, colours: Float[Tensor, "V 3"] | None = None
) -> RenderedFrame:
    """Render the deformed head, the hand and its forearm of ``frame`` with the plan's look.

    ``colours``: :func:`plan_colours` of the frame's plan, when the caller already has them.
    """
    plan, look, size = frame.plan, frame.plan.look, frame.image_size
    if colours is None:
        colours = plan_colours(models, plan)
    with torch.no_grad():
        arm, arm_faces = _ARM
        hand_rotation = roma.rotvec_to_rotmat(frame.hand_params.global_orient[0])
        arm = arm @ hand_rotation.T + frame.hand_params.transl[0]
        scene = Scene.from_meshes(
            [
                (frame.face_vertices_deformed, models.head.faces),
                (frame.hand_vertices, models.hands[plan.hand_side].faces),
                (arm, arm_faces),
            ]
        )
        fragments = scene.rasterize(frame.K, size, size)
        out = shade(
            fragments, scene.vertices, scene.faces, frame.K,
            vertex_colors=colours, light=look.light(), background=background_image(look, size),
        )  # fmt: skip
        rgb = out.rgb
        if look.noise_sigma > 0:
            generator = torch.Generator().manual_seed(look.background_seed + frame.index)
            rgb = rgb + look.noise_sigma * torch.randn(rgb.shape, generator=generator)
    segmentation = segmentation_from_objects(fragments.object_id, plan.hand_side)
    return RenderedFrame(
        rgb=to_uint8(rgb.clamp(0, 1)),
        depth=out.depth.numpy().astype(np.float32),
        segmentation=segmentation,
    )


def segmentation_from_objects(object_id: Tensor, hand_side: str) -> UInt8[np.ndarray, "H W"]:
    """Map the rasterizer's object ids (0 head, 1 hand, 2 forearm, -1 background) to labels."""
    labels = np.zeros(tuple(object_id.shape), dtype=np.uint8)
    ids = object_id.numpy()
    labels[ids == 0] = SEGMENTATION_LABELS["head"]
    labels[ids >= 1] = SEGMENTATION_LABELS[f"{hand_side}_hand"]  # the hand and its forearm
    return labels
