"""A tracked :class:`~handface.sequence.Sequence` as one animated GLB for Blender and three.js.

The file holds one mesh per tracked part, named as in a Capture's export: ``face`` (deformed by
each frame's ``D``), ``left_hand``, ``right_hand``, posed from each frame's parameters with the
default models (or the ones given) by :func:`~handface.sequence.posed_meshes`, in the camera
frame turned to glTF's (Y up, :data:`~handface.export.gltf.FRAME_TO_GLTF` ``["camera"]``, as
the Capture export).

How it plays: each mesh's base vertices are its first exported frame where it exists; it has one
morph target per exported frame where it exists (named ``frame_000123`` after the video frame),
holding every vertex's offset from the base. One animation, ``sequence``, keys the morph weights
at each exported frame's ``time_s`` (the video's clock, so a clip that starts later starts later)
with STEP interpolation: at time ``t`` exactly that frame's target has weight 1, so the mesh shows
exactly that frame's vertices, held until the next frame. A mesh absent from a frame (a hand the
tracker lost, a head before the first face) is hidden by a STEP ``scale`` channel: 0 where absent,
1 where present. Blender imports the targets as shape keys driven by an action; three.js as
``morphTargetInfluences`` played by ``gltf.animations[0]``.

Colours: ``COLOR_0`` of each mesh is the ``contact`` colour map (grey, orange, red) of that
mesh's **maximum contact probability over the exported frames**: a static map of everywhere the
hand and face touched during the clip (glTF viewers do not animate vertex colours).

Size: each morph target stores 12 bytes per vertex (face 4538, hand 1609 vertices with the Anny
models): about 55 kB per frame for the face and 19 kB per frame and hand, so a 10 s clip at
30 fps with one hand is about 22 MB; ``stride`` keeps every n-th frame, ``start``/``end`` a span.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from jaxtyping import Float

from handface.errors import InputError
from handface.export.gltf import GltfAnimation, GltfMesh, write_glb
from handface.io.capture_folder import contact_colors
from handface.models.base import HandModel, HeadModel
from handface.sequence import MeshTrack, Sequence, posed_meshes

ANIMATION_NAME = "sequence"
"""The name of the GLB's one animation (Blender's action, three.js's clip)."""


def select_frames(
    sequence: Sequence, start: int | None = None, end: int | None = None, stride: int = 1
) -> list[int]:
    """Positions in ``sequence.frames`` of the frames to export: those whose video frame index
    (``frame`` in ``timeline.json``) is in ``[start, end)``, then every ``stride``-th of them.

    Example:
        >>> select_frames(sequence, start=10, end=20, stride=2)  # doctest: +SKIP
        [5, 7, 9]
    """
    if stride < 1:
        raise InputError(f"stride must be 1 or more, got {stride}")
    kept = [
        t
        for t, frame in enumerate(sequence.frames)
        if (start is None or frame.index >= start) and (end is None or frame.index < end)
    ]
    if not kept:
        raise InputError(
            f"no tracked frame in the span [{start if start is not None else 0}, "
            f"{end if end is not None else 'end'}) (the sequence has {len(sequence.frames)} "
            "frames); check --start/--end against the frame numbers of timeline.json"
        )
    return kept[::stride]


def sequence_gltf(
    tracks: list[MeshTrack], times: Float[np.ndarray, " K"], frame_numbers: list[int]
) -> tuple[list[GltfMesh], GltfAnimation]:
    """The GLB's meshes (base = first frame present, one morph target per frame present, colour
    = maximum contact) and its animation (STEP weights, one-hot per keyframe; STEP scale 0 where
    a mesh is absent), keyed at ``times``; ``frame_numbers`` name the targets."""
    count = len(times)
    meshes, weights, scales = [], {}, {}
    for track in tracks:
        if len(track.present) != count or len(frame_numbers) != count:
            raise InputError("every track needs one entry per keyframe")
        present = np.flatnonzero(track.present)
        if not len(present):
            continue
        base = track.vertices[present[0]].astype(np.float64)
        meshes.append(
            GltfMesh(
                track.name,
                base,
                track.faces,
                vertex_colors=contact_colors(track.contact[present].max(axis=0)),
                morph_targets=track.vertices[present].astype(np.float64) - base,
                morph_names=[f"frame_{frame_numbers[j]:06d}" for j in present],
            )
        )
        one_hot = np.zeros((count, len(present)), np.float32)
        one_hot[present, np.arange(len(present))] = 1.0
        weights[track.name] = one_hot
        if not track.present.all():
            scales[track.name] = track.present.astype(np.float32)
    animation = GltfAnimation(ANIMATION_NAME, np.asarray(times, np.float64), weights, scales)
    return meshes, animation


def export_sequence(
    sequence: Sequence,
    path: Path,
    *,
    start: int | None = None,
    end: int | None = None,
    stride: int = 1,
    head_model: HeadModel | None = None,
    hand_models: Mapping[str, HandModel] | None = None,
) -> Path:
    """Write ``sequence`` to ``path`` (atomically) as one animated GLB (module docstring).

    ``start``/``end``: video frame indices (``frame`` in ``timeline.json``, end excluded);
    ``stride``: keep every n-th of those frames.

    Raises:
        InputError: no frame in the span, no face or hand in it, or times that do not increase.
    """
    frames = select_frames(sequence, start, end, stride)
    tracks = posed_meshes(sequence, frames, head_model, hand_models)
    if not tracks:
        raise InputError("the sequence has no face or hand in the exported frames")
    times = np.array([sequence.frames[t].time_s for t in frames], np.float64)
    if np.any(np.diff(times) <= 0):
        raise InputError("the sequence's frame times (time_s) do not increase; cannot animate")
    numbers = [sequence.frames[t].index for t in frames]
    meshes, animation = sequence_gltf(tracks, times, numbers)
    return write_glb(Path(path), meshes, frame="camera", animations=[animation])
