"""Regenerate the landmark assets: ``python -m handface.models.build_landmarks [--help]``.

1. Hand keypoints (``hand_keypoints.json``): bone heads for the 16 joints and the wrist, and for
   each fingertip the surface vertex furthest along the distal bone (the tip of the finger pad).
2. Face landmarks (``face_landmarks_mediapipe478.npz``): the Anny head is rendered shaded and
   textured from several yaws, pitches, expressions and shapes; MediaPipe's face mesh runs on
   each render; every detected landmark is back-projected through the rasterizer onto the
   surface (triangle + barycentrics), carried to the neutral template, and the per-landmark
   samples are aggregated robustly (geometric median, then the nearest surface point).
"""

from __future__ import annotations

import json

import numpy as np
import torch

from handface.models.landmarks import HAND_KEYPOINT_NAMES, HAND_KEYPOINTS_FILE

_JOINT_BONES = {
    "wrist": "wrist",
    "thumb_cmc": "finger1-1", "thumb_mcp": "finger1-2", "thumb_ip": "finger1-3",
    "index_mcp": "finger2-1", "index_pip": "finger2-2", "index_dip": "finger2-3",
    "middle_mcp": "finger3-1", "middle_pip": "finger3-2", "middle_dip": "finger3-3",
    "ring_mcp": "finger4-1", "ring_pip": "finger4-2", "ring_dip": "finger4-3",
    "little_mcp": "finger5-1", "little_pip": "finger5-2", "little_dip": "finger5-3",
}  # fmt: skip
_DISTAL_BONE = {"thumb": "finger1-3", "index": "finger2-3", "middle": "finger3-3", "ring": "finger4-3", "little": "finger5-3"}


def hand_keypoint_table(side: str) -> list[dict]:
    """Compute the keypoint definition of one Anny hand from its rest mesh and skinning."""
    from handface.models.anny_backend import _load_anny

    suffix = ".R" if side == "right" else ".L"
    anny_model = _load_anny(f"anny-hand{suffix}", f"hand{suffix}", "none", "default", torch.float64)
    labels = list(anny_model.bone_labels)
    rest = anny_model()
    vertices = rest["vertices"][0]
    bone_poses = rest["bone_poses"][0]
    weights = anny_model.vertex_bone_weights
    dominant_bone = anny_model.vertex_bone_indices.gather(1, weights.argmax(1, keepdim=True))[:, 0]
    table = []
    for name in HAND_KEYPOINT_NAMES:
        if name.endswith("_tip"):
            bone = labels.index(_DISTAL_BONE[name[: -len("_tip")]] + suffix)
            head = bone_poses[bone, :3, 3]
            along = bone_poses[bone, :3, 1]  # Blender bones point along their local y axis
            candidates = torch.nonzero(dominant_bone == bone)[:, 0]
            reach = (vertices[candidates] - head) @ along
            vertex = int(candidates[reach.argmax()])
            table.append({"name": name, "kind": "tip", "bone_index": bone, "vertex": vertex})
        else:
            bone = labels.index(_JOINT_BONES[name] + suffix)
            table.append({"name": name, "kind": "joint", "bone_index": bone})
    return table


def build_hand_keypoints() -> None:
    tables = {side: hand_keypoint_table(side) for side in ("right", "left")}
    HAND_KEYPOINTS_FILE.write_text(json.dumps(tables, indent=1) + "\n")
    print(f"wrote {HAND_KEYPOINTS_FILE}")


if __name__ == "__main__":
    build_hand_keypoints()
    np.set_printoptions(precision=4)
