"""Hand placements relative to the avatar's head, and the deformation a placement causes.

A hand pose file places hands in the head's canonical frame (metres; the head model's rest
frame, Z up, the face towards -Y), so a placement moves with the head through any frame::

    {
      "format": "handface-hand-poses",
      "version": 1,
      "frame": "head",
      "poses": [                       # one entry per rendered frame (or one for all)
        {"right": {"global_orient": [rx, ry, rz],      # axis-angle, about the wrist
                   "transl": [x, y, z],                 # metres, after the rotation
                   "articulation": [a0, ..., a19]}},    # the hand model's pose latent
        {}                                              # a frame without hands
      ]
    }

``handface avatar hands AVATAR --out FILE`` writes the avatar's own frames in this format, a
starting point to edit. The deformation of a placement (:func:`placement_deformation`) is
computed for it, never taken from a stored frame: by the soft-tissue solver on this person's
head (default), or as training found the frames' (codes optimised with the contact loss
through the avatar's decoder and basis, which stay as trained).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import roma
import torch
from torch import Tensor
from tqdm import tqdm

from handface.avatar.hand_deformation import (
    ContactFrame,
    HandDeformationConfig,
    fit_hand_deformation,
)
from handface.avatar.model import Avatar
from handface.errors import InputError
from handface.io.files import atomic_write_bytes, read_format_json
from handface.models import HandParams
from handface.models.regions import face_regions_for
from handface.physics import Collider, deform

HAND_POSES_FORMAT = "handface-hand-poses"
HAND_POSES_VERSION = 1
SIDES = ("left", "right")

HandPoses = list[dict[str, dict[str, np.ndarray]]]
"""Per frame: side -> {"global_orient" (3,), "transl" (3,), "articulation" (A,)}, head frame."""


def avatar_hand_poses(avatar: Avatar, frames: range | None = None) -> HandPoses:
    """The avatar's own hands at ``frames`` (default all), moved into the head's frame:
    ``orient = R_head^T R_hand``, ``transl = R_head^T (t_hand - t_head)`` (the hand model
    rotates about its own origin, so a rigid move acts on its parameters directly)."""
    out: HandPoses = []
    for t in frames if frames is not None else range(len(avatar)):
        R = avatar.rotation[t].astype(np.float64)
        entry = {}
        for side, hands in sorted(avatar.hands.items()):
            if not hands.present[t]:
                continue
            R_hand = roma.rotvec_to_rotmat(torch.as_tensor(hands.global_orient[t]).double())
            entry[side] = {
                "global_orient": roma.rotmat_to_rotvec(
                    torch.as_tensor(R.T) @ R_hand
                ).numpy(),  # fmt: skip
                "transl": R.T @ (hands.transl[t].astype(np.float64) - avatar.transl[t]),
                "articulation": hands.articulation[t].astype(np.float64),
            }
        out.append(entry)
    return out


def write_hand_poses(path: Path, poses: HandPoses) -> Path:
    """Write ``poses`` as a hand pose file (atomically)."""
    document = {
        "format": HAND_POSES_FORMAT,
        "version": HAND_POSES_VERSION,
        "frame": "head",
        "poses": [{side: {name: [round(float(x), 7) for x in value]
                          for name, value in hand.items()}
                   for side, hand in entry.items()} for entry in poses],
    }  # fmt: skip
    atomic_write_bytes(Path(path), (json.dumps(document, indent=1) + "\n").encode())
    return Path(path)


def read_hand_poses(path: Path, articulation_size: int) -> HandPoses:
    """Read a hand pose file, checking every field.

    Raises:
        InputError: unreadable, another format or a newer version, an unknown side, or a
            field of the wrong length or with a non-finite value.
    """
    document = read_format_json(path, "hand pose file", HAND_POSES_FORMAT, HAND_POSES_VERSION,
                                "; write one with `handface avatar hands`")  # fmt: skip
    if document.get("frame") != "head":
        raise InputError(f'{path}: "frame" must be "head" (poses in the head\'s frame)')
    entries = document.get("poses")
    if not isinstance(entries, list) or not entries:
        raise InputError(f'{path}: "poses" must be a non-empty list, one entry per frame')
    sizes = {"global_orient": 3, "transl": 3, "articulation": articulation_size}
    poses: HandPoses = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) - set(SIDES):
            raise InputError(f'{path}: pose {index} must map "left"/"right" to a hand')
        parsed = {}
        for side, hand in entry.items():
            if not isinstance(hand, dict) or set(hand) != set(sizes):
                raise InputError(f"{path}: pose {index} {side}: needs exactly {sorted(sizes)}")
            parsed[side] = {}
            for name, size in sizes.items():
                value = hand[name]
                if (not isinstance(value, list) or len(value) != size
                        or not all(isinstance(x, int | float) and math.isfinite(x)
                                   for x in value)):  # fmt: skip
                    raise InputError(f"{path}: pose {index} {side} {name}: needs {size} "
                                     "finite numbers")  # fmt: skip
                parsed[side][name] = np.asarray(value, dtype=np.float64)
        poses.append(parsed)
    return poses


def placed_hands(
    avatar: Avatar, hand_models, t: int, pose: dict[str, dict[str, np.ndarray]]
) -> list[tuple[str, Tensor, Tensor]]:
    """The hands of ``pose`` (head frame) in frame ``t``'s camera frame: (side, vertices,
    faces), as :meth:`Avatar.hand_meshes` gives the frame's own."""
    R = torch.as_tensor(avatar.rotation[t]).double()
    transl = torch.as_tensor(avatar.transl[t]).double()
    out = []
    for side, hand in sorted(pose.items()):
        R_hand = roma.rotvec_to_rotmat(torch.as_tensor(hand["global_orient"]).double())
        params = HandParams(
            global_orient=roma.rotmat_to_rotvec(R @ R_hand)[None].float(),
            transl=(R @ torch.as_tensor(hand["transl"]).double() + transl)[None].float(),
            articulation=torch.as_tensor(hand["articulation"])[None].float(),
        )
        with torch.no_grad():
            out.append((side, hand_models[side](params).vertices[0], hand_models[side].faces))
    return out


PLACEMENT_METHODS = ("physics", "contact")


def placement_deformation(
    avatar: Avatar,
    head_model,
    frames: list[int],
    hands: list[list[tuple[str, Tensor, Tensor]]],
    method: str = "physics",
    config: HandDeformationConfig | None = None,
    progress: bool = False,
) -> Tensor:
    """The avatar's deformation (``(N, V, 3)``, head frame) for hands placed anew: ``hands[i]``
    (camera frame, as :func:`placed_hands` gives) on avatar frame ``frames[i]``'s head.

    ``method``:

    - ``"physics"`` (default): the soft-tissue solver (:func:`handface.physics.deform`) pushes
      this person's head out of the hands, with the face regions' stiffness, as the synthetic
      data and the subject basis are made. The skin ends outside the hands.
    - ``"contact"``: the avatar paper's way; per placement a code is optimised with the contact
      loss through the avatar's decoder and basis (kept fixed), with ``config`` (default: the
      training defaults). Bounded by what the basis and the ``|delta|^2`` regulariser allow: a
      hand a few millimetres deep stays mostly inside.

    A placement with no hand reaching the face gets no deformation.
    """
    if method not in PLACEMENT_METHODS:
        raise InputError(f"placement method must be one of {PLACEMENT_METHODS}, got {method!r}")
    contact = []
    for t, placed in zip(frames, hands, strict=True):
        R = torch.as_tensor(avatar.rotation[t]).double()
        transl = torch.as_tensor(avatar.transl[t]).double()
        contact.append(
            ContactFrame(
                avatar.canonical_head(head_model, t, deformed=False).double(),
                [((v.double() - transl) @ R, f) for _, v, f in placed],
            )
        )
    if method == "contact":
        deformation = avatar.deformation
        found = fit_hand_deformation(contact, head_model.faces, deformation.basis,
                                     replace(config or HandDeformationConfig(), progress=progress),
                                     decoder=deformation.decoder)  # fmt: skip
        return found.displacements()
    regions = face_regions_for(head_model.num_vertices)
    out = torch.zeros(len(contact), head_model.num_vertices, 3, dtype=torch.float64)
    for i, frame in enumerate(tqdm(contact, desc="press", unit="frame", disable=not progress)):
        if frame.hands:
            colliders = [Collider(v, f.long()) for v, f in frame.hands]
            out[i] = deform(frame.head_vertices, head_model.faces, regions.stiffness, colliders,
                            contact_mask=regions.outer_surface).displacement  # fmt: skip
    return out
