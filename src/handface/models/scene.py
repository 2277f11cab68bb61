"""Standard scenes built from the models: the bench and demo scene of a hand on the cheek."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import roma
import torch
from jaxtyping import Float, Int
from torch import Tensor

from handface.geometry.camera import intrinsics_from_fov
from handface.geometry.normals import vertex_normals
from handface.models.base import HandParams, HeadParams

HEAD_TO_CAMERA = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""Rotation taking the head's canonical frame (z up, face towards -y) to a camera in front of
the face (OpenCV: x right, y down, z forward)."""


def head_rotation(yaw_deg: float, pitch_deg: float, roll_deg: float = 0.0) -> Float[Tensor, "3 3"]:
    """Head canonical -> camera for a head turned by yaw (about z), pitch (x) and roll (y).

    Example:
        >>> torch.equal(head_rotation(0.0, 0.0), HEAD_TO_CAMERA)
        True
    """
    yaw = roma.rotvec_to_rotmat(torch.tensor([0.0, 0.0, math.radians(yaw_deg)]))
    pitch = roma.rotvec_to_rotmat(torch.tensor([math.radians(pitch_deg), 0.0, 0.0]))
    roll = roma.rotvec_to_rotmat(torch.tensor([0.0, math.radians(roll_deg), 0.0]))
    return HEAD_TO_CAMERA @ roll @ pitch @ yaw


@dataclass
class ContactScene:
    """A head and a right hand in the camera frame (metres), with the camera that sees them."""

    head_vertices: Float[Tensor, "4538 3"]
    head_faces: Int[Tensor, "F_head 3"]
    hand_vertices: Float[Tensor, "1609 3"]
    hand_faces: Int[Tensor, "F_hand 3"]
    K: Float[Tensor, "3 3"]
    """Intrinsics for ``image_size``; scale rows 0-1 for other sizes."""
    image_size: int
    fov_deg: float
    head_params: HeadParams
    hand_params: HandParams

    def intrinsics(self, size: int) -> Float[Tensor, "3 3"]:
        """Intrinsics of the same camera at a square image of ``size`` pixels."""
        return intrinsics_from_fov(size, size, self.fov_deg)


@functools.lru_cache(maxsize=1)
def hand_on_cheek_scene(image_size: int = 512, fov_deg: float = 30.0) -> ContactScene:
    """The Anny head facing the camera 0.6 m away, its right palm resting on its right cheek.

    The palm lies along the cheek with the fingers pointing up towards the temple; it is placed
    2 mm into the undeformed skin, so a few hand vertices are inside the head, which is what
    contact, collision and depth-order code is exercised with.
    """
    from handface.models.anny_backend import AnnyHandModel, AnnyHeadModel

    head_model = AnnyHeadModel(with_landmarks=False)
    hand_model = AnnyHandModel("right")
    head_rotvec = roma.rotmat_to_rotvec(HEAD_TO_CAMERA)[None]
    head_params = HeadParams(global_orient=head_rotvec, transl=torch.tensor([[0.0, 0.12, 0.60]]))
    with torch.no_grad():
        head = head_model(head_params)
        canonical_head = head.extras["canonical_vertices"][0]
        # The right cheek: the front-most skin point below the right cheekbone.
        near = (canonical_head[:, 0] + 0.047).abs() < 0.006
        near &= (canonical_head[:, 2] - 0.085).abs() < 0.006
        candidates = torch.nonzero(near)[:, 0]
        cheek_index = candidates[canonical_head[candidates, 1].argmin()]
        cheek = canonical_head[cheek_index]
        inward = -vertex_normals(canonical_head, head_model.faces)[cheek_index]
        if inward[1] < 0:  # normals of an inconsistently wound patch: inward points backwards
            inward = -inward

        # Hand frame -> head frame: the palm normal (-x) along the inward skin normal, fingers
        # up the cheek towards the temple, thumb from the cross product.
        palm_out = -inward
        up = torch.tensor([0.0, 0.0, 1.0])
        fingers = torch.nn.functional.normalize(up - (up @ palm_out) * palm_out, dim=0)
        thumb = torch.linalg.cross(palm_out, fingers)
        hand_to_head = torch.stack([palm_out, fingers, thumb], dim=1)
        articulation = torch.zeros(1, 20)
        articulation[0, 4::4] = -0.5  # slightly relaxed MCP joints, as a resting hand has
        rest = hand_model(HandParams(articulation=articulation))
        canonical_hand = rest.vertices[0]
        palm_centre = rest.keypoints[0, [0, 5, 9, 13, 17]].mean(0)
        near_palm = (canonical_hand[:, 1:] - palm_centre[1:]).norm(dim=1) < 0.015
        palm_surface = canonical_hand[near_palm][canonical_hand[near_palm, 0].argmin()]
        hand_in_head = palm_surface @ hand_to_head.T
        target = cheek + 0.002 * inward  # pressed 2 mm into the undeformed skin
        hand_rotation = HEAD_TO_CAMERA @ hand_to_head
        hand_transl = HEAD_TO_CAMERA @ (target - hand_in_head) + head_params.transl[0]
        hand_params = HandParams(
            global_orient=roma.rotmat_to_rotvec(hand_rotation)[None],
            transl=hand_transl[None],
            articulation=articulation,
        )
        hand = hand_model(hand_params)
    return ContactScene(
        head_vertices=head.vertices[0],
        head_faces=head_model.faces,
        hand_vertices=hand.vertices[0],
        hand_faces=hand_model.faces,
        K=intrinsics_from_fov(image_size, image_size, fov_deg),
        image_size=image_size,
        head_params=head_params,
        hand_params=hand_params,
        fov_deg=fov_deg,
    )
