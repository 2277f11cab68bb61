"""A :class:`~handface.sequence.Sequence` as a folder, and back.

```
OUT/
  timeline.json         what a person or a script reads first (schema-versioned): the video,
                        camera and method, a summary, and per frame: touching per hand, the
                        areas touched, the detector's status per hand
  sequence.npz          every per-frame array (parameters, verdicts, statuses; per-vertex
                        contact and deformation stored sparsely: <name>_offsets (T+1),
                        <name>_index, <name>_value, frame t's rows in offsets[t]:offsets[t+1])
  overlay.mp4           the video with meshes and contact heat map, and a side view
  contact_timeline.png  contact per hand and per face area over time
  meshes/000123_face.ply, 000123_hand_right.ply ...   with --meshes: every frame's meshes
```

``handface track`` writes overlay.mp4 and the meshes while it tracks, into a staging folder
that becomes ``OUT`` only when everything is complete (:func:`~handface.io.files.
atomic_output_dir`): an interrupted or failed run leaves nothing behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from handface.errors import InputError
from handface.io.capture_folder import contact_colors, hand_file, result_json
from handface.io.mesh import save_ply
from handface.sequence import (
    HAND_SIDES,
    HAND_STATUSES,
    SEQUENCE_SCHEMA_VERSION,
    FrameHand,
    Sequence,
    SequenceFrame,
    SparseRows,
)

TIMELINE_FILE = "timeline.json"
ARRAYS_FILE = "sequence.npz"
OVERLAY_VIDEO = "overlay.mp4"
TIMELINE_PLOT = "contact_timeline.png"
MESH_FOLDER = "meshes"


def frame_meshes(folder: Path, index: int, capture) -> None:
    """Write one frame's meshes (``--meshes``): deformed face and hands, contact as colour."""
    folder.mkdir(exist_ok=True)
    if capture.face is not None:
        face = capture.face
        save_ply(folder / f"{index:06d}_face.ply", face.vertices_deformed, face.faces,
                 contact_colors(face.contact))  # fmt: skip
    for side, hand in capture.hands.items():
        save_ply(folder / f"{index:06d}_{hand_file(side)}", hand.vertices, hand.faces,
                 contact_colors(hand.contact))  # fmt: skip


def _ragged(rows: list[SparseRows], name: str) -> dict[str, np.ndarray]:
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(r.indices) for r in rows])
    width = rows[0].values.shape[1:] if rows else ()
    index = np.concatenate([r.indices for r in rows]) if rows else np.zeros(0, np.int32)
    value = np.concatenate([r.values for r in rows]) if rows else np.zeros((0, *width), np.float32)
    return {
        f"{name}_offsets": offsets,
        f"{name}_index": index.astype(np.int32),
        f"{name}_value": value.astype(np.float16 if value.ndim == 1 else np.float32),
    }


def _unragged(arrays: dict[str, np.ndarray], name: str, t: int) -> SparseRows:
    offsets = arrays[f"{name}_offsets"]
    start, end = int(offsets[t]), int(offsets[t + 1])
    return SparseRows(
        indices=arrays[f"{name}_index"][start:end].astype(np.int32),
        values=arrays[f"{name}_value"][start:end].astype(np.float32),
    )


def sequence_arrays(sequence: Sequence) -> dict[str, np.ndarray]:
    """The arrays of ``sequence.npz`` (layout: module docstring)."""
    frames = sequence.frames
    count = len(frames)
    width, height = sequence.image_size
    out: dict[str, np.ndarray] = {
        "schema_version": np.array(SEQUENCE_SCHEMA_VERSION),
        "fps": np.array(sequence.fps, np.float64),
        "K": np.asarray(sequence.K, np.float32),
        "image_size": np.array([width, height], np.int64),
        "frame_index": np.array([f.index for f in frames], np.int64),
        "time_s": np.array([f.time_s for f in frames], np.float64),
        "face_detected": np.array([f.face_detected for f in frames], bool),
    }
    heads = [f.head for f in frames]
    template = next((h for h in heads if h is not None), None)
    out["head_present"] = np.array([h is not None for h in heads], bool)
    if template is not None:
        for name, value in template.items():
            stack = np.zeros((count, *np.shape(value)), np.float32)
            for t, head in enumerate(heads):
                if head is not None:
                    stack[t] = head[name]
            out[f"head_{name}"] = stack
    if sequence.head_shape is not None:
        out["head_shape"] = np.asarray(sequence.head_shape, np.float32)
    out.update(_ragged([f.face_contact for f in frames], "face_contact"))
    out.update(_ragged([f.deformation for f in frames], "deformation"))
    for side in HAND_SIDES:
        hands = [f.hands.get(side) for f in frames]
        template = next((h for h in hands if h is not None), None)
        if template is None:
            continue
        prefix = f"hand_{side}"
        out[f"{prefix}_status"] = np.array(
            [HAND_STATUSES.index(f.hand_status(side)) for f in frames], np.int8
        )
        out[f"{prefix}_touching"] = np.array([h is not None and h.touching for h in hands], bool)
        out[f"{prefix}_min_distance_mm"] = np.array(
            [np.nan if h is None else h.min_distance_mm for h in hands], np.float64
        )
        for name, value in template.params.items():
            stack = np.zeros((count, *np.shape(value)), np.float32)
            for t, hand in enumerate(hands):
                if hand is not None:
                    stack[t] = hand.params[name]
            out[f"{prefix}_{name}"] = stack
        if side in sequence.hand_shapes:
            out[f"{prefix}_shape"] = np.asarray(sequence.hand_shapes[side], np.float32)
        out.update(
            _ragged(
                [h.contact if h is not None else SparseRows.empty() for h in hands],
                f"{prefix}_contact",
            )  # fmt: skip
        )
    return out


def timeline_document(sequence: Sequence) -> dict[str, Any]:
    """The content of ``timeline.json``."""
    from handface import __version__

    timeline = sequence.timeline()
    width, height = sequence.image_size
    sides = sorted({side for f in sequence.frames for side in f.hands})
    summary = {
        "frames": len(sequence.frames),
        "touching_frames": {side: int(sequence.touching(side).sum()) for side in sides},
        "bridged_frames": {
            side: sum(f.hand_status(side) == "bridged" for f in sequence.frames) for side in sides
        },
        "areas_touched": sorted({r for f in sequence.frames for r in f.touched_regions}),
    }
    return {
        "schema_version": SEQUENCE_SCHEMA_VERSION,
        "handface_version": __version__,
        "source": sequence.source,
        "method": sequence.method,
        "fps": round(float(sequence.fps), 4),
        "image_size": [int(width), int(height)],
        "camera": {
            "K": [[round(float(v), 4) for v in row] for row in np.asarray(sequence.K)],
            "source": sequence.camera_source,
        },
        "summary": summary,
        "timings": {k: round(float(v), 4) for k, v in sequence.timings.items()},
        "warnings": list(sequence.warnings),
        "frames": timeline,
    }


def write_sequence_files(sequence: Sequence, staging: Path) -> None:
    """``sequence.npz``, ``timeline.json`` and ``contact_timeline.png`` into ``staging``."""
    from handface.viz.sequence_overlay import contact_timeline

    np.savez_compressed(staging / ARRAYS_FILE, **sequence_arrays(sequence))
    (staging / TIMELINE_FILE).write_text(result_json(timeline_document(sequence)), "utf-8")
    contact_timeline(sequence.timeline(), sequence.fps, staging / TIMELINE_PLOT)


def load_sequence(folder: Path) -> Sequence:
    """Read a folder written by ``handface track`` (:func:`write_sequence_files`)."""
    folder = Path(folder)
    arrays_path, timeline_path = folder / ARRAYS_FILE, folder / TIMELINE_FILE
    if not arrays_path.is_file() or not timeline_path.is_file():
        raise InputError(
            f"{folder} is not a handface sequence (no {ARRAYS_FILE} or {TIMELINE_FILE})"
        )
    document = json.loads(timeline_path.read_text("utf-8"))
    version = int(document.get("schema_version", -1))
    if version > SEQUENCE_SCHEMA_VERSION:
        raise InputError(
            f"{folder} was written by a newer handface (sequence schema {version}, this one "
            f"reads up to {SEQUENCE_SCHEMA_VERSION}); upgrade handface"
        )
    with np.load(arrays_path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    entries = document["frames"]
    frames = []
    for t, entry in enumerate(entries):
        head = None
        if bool(arrays["head_present"][t]):
            head = {name: arrays[f"head_{name}"][t] for name in ("global_orient", "transl",
                                                                   "expression")}  # fmt: skip
        hands = {}
        for side, info in entry["hands"].items():
            if info["status"] == "missing":
                continue
            prefix = f"hand_{side}"
            hands[side] = FrameHand(
                status=info["status"],
                params={
                    name: arrays[f"{prefix}_{name}"][t]
                    for name in ("global_orient", "transl", "articulation")
                },  # fmt: skip
                touching=bool(arrays[f"{prefix}_touching"][t]),
                min_distance_mm=float(arrays[f"{prefix}_min_distance_mm"][t]),
                regions=list(info["regions"]),
                contact=_unragged(arrays, f"{prefix}_contact", t),
            )
        frames.append(
            SequenceFrame(
                index=int(arrays["frame_index"][t]),
                time_s=float(arrays["time_s"][t]),
                face_detected=bool(arrays["face_detected"][t]),
                head=head,
                hands=hands,
                face_contact=_unragged(arrays, "face_contact", t),
                deformation=_unragged(arrays, "deformation", t),
                touched_regions=list(entry["touched_regions"]),
            )
        )
    width, height = (int(v) for v in arrays["image_size"])
    return Sequence(
        image_size=(width, height),
        K=arrays["K"].astype(np.float64),
        camera_source=document["camera"]["source"],
        fps=float(arrays["fps"]),
        method=document["method"],
        head_shape=arrays.get("head_shape"),
        frames=frames,
        hand_shapes={
            side: arrays[f"hand_{side}_shape"]
            for side in HAND_SIDES
            if f"hand_{side}_shape" in arrays
        },  # fmt: skip
        source=document.get("source"),
        timings=document.get("timings", {}),
        warnings=document.get("warnings", []),
    )
