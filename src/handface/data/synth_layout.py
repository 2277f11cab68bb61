"""The on-disk layout of a synthetic dataset (format ``handface-synth``, version 1).

```
DIR/
  meta.json                 format, version, generator options, the layout description below,
                            and one entry per item (key, sequence, frame, family, contact, ...)
  topology.npz              face_faces (F,3), hand_left_faces, hand_right_faces,
                            face_region_labels (V,), face_region_names, face_stiffness (V,)
  images/<key>.png          RGB, 8 bit
  depth/<key>.png           metric depth along the optical axis, 16 bit, units of
                            meta["depth_scale_m"] (0.1 mm); 0 = background
  segmentation/<key>.png    8 bit labels: 0 background, 1 head (and hair), 2 left hand,
                            3 right hand, 4 body (neck, shoulders, clothes)
  labels/<key>.npz          every label of the item (float32 unless noted), listed in LABEL_KEYS
  shards/<I>-of-<N>.json    datasets made in shards (`handface synth --shard I/N`): each shard's
                            options and items; meta.json appears when all N are in
```
Keys are ``"000042"`` for single samples and ``"000042_0007"`` for frame 7 of sequence 42.
Frames follow DESIGN.md: vertices in the camera frame (which is also the world frame: ``R = I,
t = 0``), ``deformation`` in the head's canonical frame (deformed = undeformed + D, rotated by
``head_rotation``), contact = within 5 mm after deformation.
"""

from __future__ import annotations

from pathlib import Path

FORMAT_NAME = "handface-synth"
FORMAT_VERSION = 1
DEPTH_SCALE_M = 1e-4
"""Metres per unit of the 16-bit depth PNGs."""

LABEL_KEYS: dict[str, str] = {
    "K": "(3, 3) intrinsics",
    "R": "(3, 3) world-to-camera rotation (identity: the camera is the world frame)",
    "t": "(3,) world-to-camera translation (zero)",
    "image_size": "(2,) int64 width, height",
    "head_global_orient": "(3,) axis-angle, head canonical -> camera",
    "head_transl": "(3,) metres",
    "head_expression": "(52,) ARKit facial actions in [0, 1] (order: the head model's labels)",
    "head_shape": "(9,) phenotypes in [0, 1] (order: the head model's shape labels)",
    "head_rotation": "(3, 3) rotation matrix of head_global_orient",
    "face_vertices": "(V, 3) undeformed head vertices, camera frame",
    "face_vertices_deformed": "(V, 3) deformed head vertices, camera frame",
    "deformation": "(V, 3) D in the head's canonical frame",
    "face_contact": "(V,) uint8, 1 = within 5 mm of a hand after deformation",
    "face_landmarks3d": "(478, 3) MediaPipe face-mesh landmarks on the deformed head",
    "face_landmarks2d": "(478, 2) their projections (pixels, pixel centres at integers)",
    "face_keypoints68_3d": "(68, 3) the 68-point layout",
    "face_keypoints68_2d": "(68, 2)",
    "hand_<side>_global_orient": "(3,) axis-angle, hand canonical -> camera",
    "hand_<side>_transl": "(3,)",
    "hand_<side>_articulation": "(20,) compact joint-limited latent (handface.models.hand_pose)",
    "hand_<side>_finger_angles": "(20,) the joint angles of that latent, radians",
    "hand_<side>_shape": "(6,) phenotypes in [0, 1]",
    "hand_<side>_vertices": "(Vh, 3) camera frame",
    "hand_<side>_contact": "(Vh,) uint8, 1 = within 5 mm of the deformed face",
    "hand_<side>_keypoints3d": "(21, 3) MediaPipe order",
    "hand_<side>_keypoints2d": "(21, 2)",
}
"""Arrays of ``labels/<key>.npz``; ``<side>`` is ``left`` or ``right`` for each hand present."""


def item_key(sequence: int, frame: int | None) -> str:
    """``"000042"`` for a single sample, ``"000042_0007"`` for frame 7 of sequence 42."""
    return f"{sequence:06d}" if frame is None else f"{sequence:06d}_{frame:04d}"


def missing_shards(root: Path) -> list[str]:
    """Shards (``"I/N"``) of a dataset made in shards whose records are not in ``root/shards``.

    Example:
        >>> missing_shards(Path("/nonexistent"))
        []
    """
    records = list((Path(root) / "shards").glob("*-of-*.json"))
    if not records:
        return []
    count = int(records[0].stem.split("-of-")[1])
    done = {int(path.stem.split("-of-")[0]) for path in records}
    return [f"{i}/{count}" for i in range(count) if i not in done]
