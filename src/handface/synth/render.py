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
from handface.synth.sampler import Frame, SynthModels


@dataclass
class RenderedFrame:
    rgb: UInt8[np.ndarray, "H W 3"]
    depth: Float[np.ndarray, "H W"]
    """Camera z in metres, 0 on the background."""
    segmentation: UInt8[np.ndarray, "H W"]
    """Labels of :data:`handface.data.sample.SEGMENTATION_LABELS`."""


def render_frame(models: SynthModels, frame: Frame) -> RenderedFrame:
    """Render the deformed head and the hand of ``frame`` with the plan's look."""
    plan, look, size = frame.plan, frame.plan.look, frame.image_size
    with torch.no_grad():
        neutral = models.head(HeadParams(shape=plan.head_shape[None])).vertices[0]
        hand_model = models.hands[plan.hand_side]
        hand_canonical = hand_model(
            frame.hand_params.__class__(
                articulation=frame.hand_params.articulation, shape=frame.hand_params.shape
            )
        ).vertices[0]
        colours = torch.cat(
            [
                head_colours(models.head, models.regions, neutral, look),
                hand_colours(hand_canonical, plan.hand_side, look),
            ]
        )
        arm, arm_faces = forearm_mesh()
        hand_rotation = roma.rotvec_to_rotmat(frame.hand_params.global_orient[0])
        arm = arm @ hand_rotation.T + frame.hand_params.transl[0]
        arm_colour = torch.tensor(look.sleeve if look.sleeve is not None else look.hand_skin)
        colours = torch.cat([colours, arm_colour.expand(arm.shape[0], 3)])
        scene = Scene.from_meshes(
            [
                (frame.face_vertices_deformed, models.head.faces),
                (frame.hand_vertices, hand_model.faces),
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
