"""The result type of video capture: :class:`Sequence`, one compact record per tracked frame.

A sequence holds what ``handface track`` recovers from a video, in the camera frame (DESIGN.md:
metres, OpenCV axes; the camera is fixed and is the world frame): one head shape and one hand
shape per side for the whole clip, and per frame the head's pose and expression, each hand's
pose and articulation, the detector's status per hand (detected, bridged across a gap where the
detector lost it, seen by the network only, or missing), the touching verdicts and touched
areas, the per-vertex contact of face and hands, and the deformation ``D`` (head canonical
frame). Per-vertex arrays are stored sparsely (only vertices with contact or with ``|D|`` above
a micrometre), so a long clip stays small: meshes are posed from the parameters on demand
(:func:`posed_meshes`, the one place that does it: ``handface export`` and ``handface view``
call it).

Saving to a folder (``sequence.npz``, ``timeline.json``, ...) is
:func:`handface.io.sequence_folder.save_sequence`.

Example:
    >>> sequence = handface.track("clip.mp4")                    # doctest: +SKIP
    >>> [f["hands"]["right"]["touching"] for f in sequence.timeline()][:4]  # doctest: +SKIP
    [False, False, True, True]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from jaxtyping import Bool, Float, Int

from handface.capture import Capture
from handface.errors import InputError

if TYPE_CHECKING:
    from handface.models.base import HandModel, HeadModel

SEQUENCE_SCHEMA_VERSION = 1
"""Version of ``sequence.npz`` / ``timeline.json``; bumped whenever a field changes meaning."""
HAND_STATUSES = ("missing", "detected", "bridged", "network")
"""Per frame and hand: not found; found by the detector; interpolated across a short gap
where the detector lost it near the face; seen only by the network (``--method hybrid``)."""
HAND_SIDES = ("left", "right")
CONTACT_FLOOR = 0.01
"""Contact probabilities at or below this are stored as 0 (sparse storage)."""
DEFORMATION_FLOOR = 1e-6
"""Deformations (metres) at or below this length are stored as 0."""
HEAD_POSE = ("global_orient", "transl", "expression")
"""The head parameters stored per frame (the shape is the sequence's)."""
HAND_POSE = ("global_orient", "transl", "articulation")
"""A hand's parameters stored per frame (the shape is the sequence's)."""
POSE_CHUNK = 32
"""Frames posed per forward pass of a model (:func:`posed_meshes`)."""


@dataclass
class SparseRows:
    """Rows of a per-vertex array that are not zero: ``values[k]`` belongs to vertex
    ``indices[k]``."""

    indices: Int[np.ndarray, " K"]
    values: Float[np.ndarray, "K ..."]

    @classmethod
    def from_dense(cls, dense: np.ndarray, floor: float) -> SparseRows:
        """Keep the rows whose value (or vector length) exceeds ``floor``.

        Example:
            >>> rows = SparseRows.from_dense(np.array([0.0, 0.7, 0.005]), 0.01)
            >>> rows.indices.tolist(), rows.to_dense(3).tolist()
            ([1], [0.0, 0.699999988079071, 0.0])
        """
        dense = np.asarray(dense, dtype=np.float32)
        size = np.abs(dense) if dense.ndim == 1 else np.linalg.norm(dense, axis=-1)
        keep = np.flatnonzero(size > floor)
        return cls(indices=keep.astype(np.int32), values=dense[keep])

    def to_dense(self, num: int) -> np.ndarray:
        out = np.zeros((num, *self.values.shape[1:]), dtype=np.float32)
        out[self.indices] = self.values
        return out

    @classmethod
    def empty(cls, width: int | None = None) -> SparseRows:
        shape = (0,) if width is None else (0, width)
        return cls(np.zeros(0, np.int32), np.zeros(shape, np.float32))


@dataclass
class FrameHand:
    """One hand in one frame."""

    status: str
    """One of :data:`HAND_STATUSES` (never ``"missing"``: missing hands are not stored)."""
    params: dict[str, np.ndarray]
    """``global_orient`` (3,), ``transl`` (3,), ``articulation`` (A,) (camera frame)."""
    touching: bool
    """The temporally consistent verdict: within 5 mm of the deformed face."""
    min_distance_mm: float
    """Signed distance of the closest hand vertex to the deformed face (negative inside)."""
    regions: list[str]
    """Named face areas this hand touches."""
    contact: SparseRows
    """Per-vertex contact probability of the hand."""


@dataclass
class SequenceFrame:
    """One tracked frame (compact: parameters and sparse per-vertex values)."""

    index: int
    """Frame index in the video (0-based, before ``--start``/``--stride``)."""
    time_s: float
    face_detected: bool
    """The detector found the face in this frame (else the head is carried over, or absent)."""
    head: dict[str, np.ndarray] | None
    """``global_orient`` (3,), ``transl`` (3,), ``expression`` (E,); None before the first face."""
    hands: dict[str, FrameHand] = field(default_factory=dict)
    face_contact: SparseRows = field(default_factory=SparseRows.empty)
    deformation: SparseRows = field(default_factory=lambda: SparseRows.empty(3))
    """``D`` in the head's canonical frame (deformed = undeformed + D rotated to the camera)."""
    touched_regions: list[str] = field(default_factory=list)
    penetration: dict[str, float] = field(default_factory=dict)

    def hand_status(self, side: str) -> str:
        return self.hands[side].status if side in self.hands else "missing"

    @property
    def max_deformation_mm(self) -> float:
        values = self.deformation.values
        return 1000.0 * float(np.linalg.norm(values, axis=-1).max()) if len(values) else 0.0


@dataclass
class Sequence:
    """Everything recovered from one video (see the module docstring)."""

    image_size: tuple[int, int]
    """(width, height) of the (upright) frames."""
    K: Float[np.ndarray, "3 3"]
    camera_source: str
    fps: float
    method: str
    """``fit`` or ``hybrid``."""
    head_shape: np.ndarray | None
    """The head's shape parameters, shared by every frame."""
    frames: list[SequenceFrame] = field(default_factory=list)
    hand_shapes: dict[str, np.ndarray] = field(default_factory=dict)
    """Per side, the hand's shape parameters, shared by every frame."""
    source: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.frames)

    def touching(self, side: str) -> np.ndarray:
        """Per frame, whether the ``side`` hand touches the face."""
        return np.array(
            [side in f.hands and f.hands[side].touching for f in self.frames], dtype=bool
        )

    def timeline(self) -> list[dict[str, Any]]:
        """Per frame: touching per hand, areas touched, detector status (``timeline.json``)."""
        seen = sorted({side for f in self.frames for side in f.hands})
        out = []
        for f in self.frames:
            hands = {}
            for side in seen:
                hand = f.hands.get(side)
                hands[side] = {
                    "status": f.hand_status(side),
                    "touching": bool(hand is not None and hand.touching),
                    "regions": [] if hand is None else list(hand.regions),
                    "min_distance_mm": (
                        None
                        if hand is None or not np.isfinite(hand.min_distance_mm)
                        else round(float(hand.min_distance_mm), 2)
                    ),
                }
            out.append(
                {
                    "frame": int(f.index),
                    "time_s": round(float(f.time_s), 4),
                    "face": "detected" if f.face_detected else "missing",
                    "hands": hands,
                    "touched_regions": list(f.touched_regions),
                    "max_deformation_mm": round(f.max_deformation_mm, 3),
                }
            )
        return out


def frame_record(
    capture: Capture,
    index: int,
    time_s: float,
    status: dict[str, str],
    face_detected: bool,
    hand_regions: dict[str, list[str]],
) -> SequenceFrame:
    """The compact record of one frame's capture (``status``: per hand side, its status)."""
    head = None
    face_contact, deformation = SparseRows.empty(), SparseRows.empty(3)
    if capture.face is not None:
        params = capture.face.params
        head = {name: np.asarray(params[name], np.float32) for name in HEAD_POSE}
        face_contact = SparseRows.from_dense(capture.face.contact, CONTACT_FLOOR)
        deformation = SparseRows.from_dense(capture.face.deformation, DEFORMATION_FLOOR)
    hands = {
        side: FrameHand(
            status=status.get(side, "detected"),
            params={name: np.asarray(hand.params[name], np.float32) for name in HAND_POSE},
            touching=bool(hand.touching),
            min_distance_mm=float(hand.min_distance_mm),
            regions=list(hand_regions.get(side, [])),
            contact=SparseRows.from_dense(hand.contact, CONTACT_FLOOR),
        )
        for side, hand in sorted(capture.hands.items())
    }
    return SequenceFrame(
        index=index,
        time_s=time_s,
        face_detected=face_detected,
        head=head,
        hands=hands,
        face_contact=face_contact,
        deformation=deformation,
        touched_regions=list(capture.touched_regions),
        penetration=dict(capture.penetration),
    )


@dataclass
class MeshTrack:
    """One mesh of a sequence posed over some frames (camera frame, metres)."""

    name: str
    """``face``, ``left_hand`` or ``right_hand``."""
    faces: Int[np.ndarray, "F 3"]
    vertices: Float[np.ndarray, "K V 3"]
    """Per frame, the posed (face: deformed) vertices; zeros where absent."""
    present: Bool[np.ndarray, " K"]
    """Per frame, whether the mesh exists there."""
    contact: Float[np.ndarray, "K V"]
    """Per frame, the per-vertex contact probability (0 where absent)."""
    deformation: Float[np.ndarray, "K V 3"] | None = None
    """The face's ``D`` per frame (head canonical frame, as stored); None for a hand."""


def posed_meshes(
    sequence: Sequence,
    frames: list[int] | None = None,
    head_model: HeadModel | None = None,
    hand_models: Mapping[str, HandModel] | None = None,
) -> list[MeshTrack]:
    """The face and each hand over ``frames`` (positions in ``sequence.frames``, default all),
    posed from the stored parameters, :data:`POSE_CHUNK` frames per model call: the face is
    the head model's output plus ``D`` turned by the head's rotation (``vertices + D @ R.T``),
    a hand the hand model's output. Meshes absent from every one of those frames are left out;
    models not given are the defaults (the Anny head and hands), built only when needed.

    Example:
        >>> [track.name for track in posed_meshes(sequence, [0, 1])]  # doctest: +SKIP
        ['face', 'right_hand']

    Raises:
        InputError: stored per-vertex values address vertices the model does not have.
    """
    from handface.models import default_hand_model, default_head_model

    chosen = [sequence.frames[t] for t in (range(len(sequence)) if frames is None else frames)]
    tracks = []
    present = np.array([f.head is not None for f in chosen], bool)
    if present.any():
        items = [(f.head, f.face_contact, f.deformation) for f in chosen if f.head is not None]
        model = head_model or default_head_model()
        tracks.append(_track("face", model, present, items, sequence.head_shape))
    for side in HAND_SIDES:
        present = np.array([side in f.hands for f in chosen], bool)
        if present.any():
            items = [(f.hands[side].params, f.hands[side].contact, None) for f in chosen
                     if side in f.hands]  # fmt: skip
            model = (hand_models or {}).get(side) or default_hand_model(side)
            tracks.append(_track(f"{side}_hand", model, present, items,
                                 sequence.hand_shapes.get(side)))  # fmt: skip
    return tracks


def _track(name: str, model, present: np.ndarray, items: list, shape) -> MeshTrack:
    """One :class:`MeshTrack`; ``items``: per frame where ``present``, its pose parameters,
    contact and (the face) deformation."""
    import roma
    import torch

    from handface.models import HandParams, HeadParams

    params_type, names = (HeadParams, HEAD_POSE) if name == "face" else (HandParams, HAND_POSE)
    stacked = {n: torch.as_tensor(np.stack([np.asarray(pose[n], np.float32).reshape(-1)
                                            for pose, _, _ in items])) for n in names}  # fmt: skip
    if shape is not None:
        shape = torch.as_tensor(np.asarray(shape, np.float32).reshape(1, -1))
    posed = []
    with torch.no_grad():
        for begin in range(0, len(items), POSE_CHUNK):
            batch = {n: value[begin : begin + POSE_CHUNK] for n, value in stacked.items()}
            posed.append(model(params_type(**batch, shape=shape)).vertices.double().numpy())
    posed = np.concatenate(posed)
    count = posed.shape[1]
    vertices = np.zeros((len(present), count, 3), np.float32)
    contact = np.zeros((len(present), count), np.float32)
    deformation = np.zeros_like(vertices) if name == "face" else None
    rotation = roma.rotvec_to_rotmat(stacked["global_orient"].double()).numpy()
    for k, j in enumerate(np.flatnonzero(present)):
        _, rows, deformation_rows = items[k]
        contact[j] = _dense(rows, count, f"{name.replace('_', ' ')} contact")
        vertices[j] = posed[k]
        if deformation is not None:
            deformation[j] = _dense(deformation_rows, count, "deformation")
            vertices[j] = posed[k] + deformation[j].astype(np.float64) @ rotation[k].T
    return MeshTrack(name, np.asarray(model.faces, np.int64), vertices, present, contact,
                     deformation)  # fmt: skip


def _dense(rows: SparseRows, count: int, what: str) -> np.ndarray:
    if len(rows.indices) and int(rows.indices.max()) >= count:
        raise InputError(
            f"the sequence's {what} addresses vertex {int(rows.indices.max())} but the model has "
            f"{count}; use the models it was tracked with"
        )
    return rows.to_dense(count)
