"""A :class:`~handface.capture.Capture` as a folder, and back.

```
OUT/
  result.json      the summary a person or a script reads first (schema-versioned; no array
                   larger than the 3x3 intrinsics)
  face.ply         the deformed face, vertex colour = contact probability (grey -> red)
  hand_left.ply    each hand found, coloured the same way
  hand_right.ply
  params.npz       every array of the capture under the synthetic-label names
                   (Capture.label_arrays(); what `handface eval` scores)
  overlay.png      the capture sheet (only when the capture holds the photo): the photo with
                   the shaded meshes, contact and the verdict per hand drawn over it (long side
                   at most 1600 px), the scene from the side and from above, the face map of
                   contact and of how far it was pressed in, a legend
                   (handface.viz.capture_sheet)
```

The folder appears whole or not at all (:func:`handface.io.files.atomic_output_dir`), and an
existing folder is replaced only with ``overwrite``.

Example:
    >>> folder = save_capture(capture, Path("out/photo"))        # doctest: +SKIP
    >>> load_capture(folder).touched_regions                      # doctest: +SKIP
    ['left cheek']
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jaxtyping import Float, UInt8

from handface.capture import CAPTURE_SCHEMA_VERSION, Capture, CapturedFace, CapturedHand
from handface.errors import InputError
from handface.geometry.contact import in_contact
from handface.io.files import atomic_output_dir
from handface.io.mesh import save_ply

RESULT_FILE = "result.json"
PARAMS_FILE = "params.npz"
FACE_FILE = "face.ply"
OVERLAY_FILE = "overlay.png"
HAND_SIDES = ("left", "right")

# Arrays of params.npz that are not model parameters (see Capture.label_arrays).
_FACE_ARRAYS = {
    "vertices": "face_vertices",
    "vertices_deformed": "face_vertices_deformed",
    "faces": "face_faces",
    "deformation": "deformation",
    "rotation": "head_rotation",
    "contact": "face_contact",
    "landmarks3d": "face_landmarks3d",
    "landmarks2d": "face_landmarks2d",
    "keypoints68_3d": "face_keypoints68_3d",
    "keypoints68_2d": "face_keypoints68_2d",
    "detected_landmarks2d": "face_detected_landmarks2d",
}
_HAND_ARRAYS = (
    "vertices",
    "faces",
    "contact",
    "keypoints3d",
    "keypoints2d",
    "detected_keypoints2d",
)


def capture_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a finished capture: :func:`save_capture` makes the folder
    appear whole (a rename), so its ``result.json`` and ``params.npz`` being there means every
    file is (what ``handface reconstruct --resume`` skips)."""
    folder = Path(folder)
    return (folder / RESULT_FILE).is_file() and (folder / PARAMS_FILE).is_file()


def hand_file(side: str) -> str:
    """``"hand_left.ply"`` or ``"hand_right.ply"``."""
    return f"hand_{side}.ply"


def _number(value: float | None, digits: int) -> float | None:
    """A JSON-safe float: rounded, ``None`` for NaN/inf/missing."""
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def _mean_distance(a: np.ndarray, b: np.ndarray) -> float | None:
    """Mean 2D distance over the points both arrays know (rows without NaN)."""
    distance = np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=-1)
    distance = distance[np.isfinite(distance)]
    return float(distance.mean()) if distance.size else None


def contact_colors(contact: Float[np.ndarray, " V"]) -> UInt8[np.ndarray, "V 3"]:
    """Per-vertex colours of a contact probability: the ``"contact"`` colour map, grey (0)
    through orange to red (1), as bytes."""
    from handface.render.overlay import colormap, to_uint8

    values = torch.from_numpy(np.asarray(contact, dtype=np.float32).reshape(-1))
    return to_uint8(colormap(values, "contact"))


def capture_summary(capture: Capture) -> dict[str, Any]:
    """The content of ``result.json``: plain JSON values, rounded, ``None`` for NaN.

    Lengths in millimetres (``*_mm``), image distances in pixels (``*_px``), times in seconds.
    """
    from handface import __version__

    width, height = capture.image_size
    K = np.asarray(capture.K, dtype=np.float64)
    face = None
    if capture.face is not None:
        f = capture.face
        deformation_mm = 1000.0 * np.linalg.norm(np.asarray(f.deformation, np.float64), axis=-1)
        detected = np.isfinite(np.asarray(f.detected_landmarks2d, np.float64)).all(axis=-1)
        face = {
            "detected": bool(detected.any()),
            "num_vertices": int(len(f.vertices)),
            "contact_vertices": int(in_contact(torch.as_tensor(f.contact)).sum()),
            "max_deformation_mm": _number(deformation_mm.max(initial=0.0), 3),
            "landmark_error_px": _number(_mean_distance(f.detected_landmarks2d, f.landmarks2d), 2),
        }
    hands = {
        side: {
            "touching": bool(hand.touching),
            "min_distance_mm": _number(hand.min_distance_mm, 3),
            "contact_vertices": int(in_contact(torch.as_tensor(hand.contact)).sum()),
            "num_vertices": int(len(hand.vertices)),
            "detection_score": _number(hand.detection_score, 4),
            "found_by": hand.found_by,
            "keypoint_error_px": _number(
                _mean_distance(hand.detected_keypoints2d, hand.keypoints2d), 2
            ),
        }
        for side, hand in sorted(capture.hands.items())
    }
    contact = {"any": bool(capture.touching)}
    contact.update(
        {side: bool(side in capture.hands and capture.hands[side].touching) for side in HAND_SIDES}
    )
    files = {"params": PARAMS_FILE}
    if capture.face is not None:
        files["face"] = FACE_FILE
    files.update({f"hand_{side}": hand_file(side) for side in sorted(capture.hands)})
    if capture.image is not None:
        files["overlay"] = OVERLAY_FILE
    return {
        "schema_version": CAPTURE_SCHEMA_VERSION,
        "handface_version": __version__,
        "source": None if capture.source is None else str(capture.source),
        "mode": capture.mode,
        "image_size": [int(width), int(height)],
        "camera": {
            "K": [[_number(v, 4) for v in row] for row in K],
            "focal_px": _number(0.5 * (K[0, 0] + K[1, 1]), 3),
            "source": capture.camera_source,
        },
        "face": face,
        "hands": hands,
        "contact": contact,
        "touched_regions": list(capture.touched_regions),
        "penetration": {name: _number(v, 3) for name, v in capture.penetration.items()},
        "timings": {name: _number(v, 4) for name, v in capture.timings.items()},
        "warnings": list(capture.warnings),
        "files": files,
    }


_NUMBER = r"(?:-?\d[\d.eE+-]*|null)"
# With indent, json.dumps puts each list item on its own line; strings never hold a raw newline,
# so this matches only real lists of numbers.
_NUMBER_LIST = re.compile(rf"\[\n\s*{_NUMBER}(?:,\n\s*{_NUMBER})*\n\s*\]")


def result_json(summary: dict[str, Any]) -> str:
    """Pretty JSON with lists of numbers on one line (``"K": [[fx, 0, cx], ...]``); raises
    ``ValueError`` on NaN or infinity (they must be ``None`` by then)."""
    text = json.dumps(summary, indent=2, allow_nan=False)
    return (
        _NUMBER_LIST.sub(lambda m: re.sub(r"\s+", "", m.group(0)).replace(",", ", "), text) + "\n"
    )


def _check_consistent(capture: Capture) -> None:
    """Per-vertex arrays must match their meshes (a bug in the producer otherwise)."""
    parts = [("face", capture.face)] if capture.face is not None else []
    parts += [(f"{side} hand", hand) for side, hand in capture.hands.items()]
    for name, part in parts:
        num = len(part.vertices)
        if len(part.contact) != num:
            raise ValueError(f"{name} contact has {len(part.contact)} values for {num} vertices")
    if capture.face is not None:
        for field in ("vertices_deformed", "deformation"):
            shape = np.shape(getattr(capture.face, field))
            if shape != np.shape(capture.face.vertices):
                raise ValueError(
                    f"face {field} has shape {shape}, vertices {capture.face.vertices.shape}"
                )


def save_capture(capture: Capture, out: Path, *, overwrite: bool = False) -> Path:
    """Write ``capture`` to the folder ``out`` (layout: module docstring) and return it.

    Atomic: the files are written into a temporary folder next to ``out`` that is renamed into
    place only when all of them are complete; on any error nothing is left behind and an
    existing ``out`` is untouched. Raises :class:`~handface.errors.OutputExistsError` if
    ``out`` exists and ``overwrite`` is false. ``overlay.png`` is written only when
    ``capture.image`` holds the photo.
    """
    out = Path(out)
    _check_consistent(capture)
    summary = capture_summary(capture)
    text = result_json(summary)
    with atomic_output_dir(out, overwrite=overwrite) as staging:
        (staging / RESULT_FILE).write_text(text, encoding="utf-8")
        np.savez_compressed(staging / PARAMS_FILE, **capture.label_arrays())
        if capture.face is not None:
            face = capture.face
            save_ply(
                staging / FACE_FILE,
                face.vertices_deformed,
                face.faces,
                contact_colors(face.contact),
            )
        for side, hand in capture.hands.items():
            save_ply(
                staging / hand_file(side), hand.vertices, hand.faces, contact_colors(hand.contact)
            )
        if capture.image is not None:
            from handface.render.overlay import save_png
            from handface.viz.capture_sheet import capture_sheet

            save_png(staging / OVERLAY_FILE, capture_sheet(capture))
    return out


def _float_or_nan(value: Any) -> float:
    return math.nan if value is None else float(value)


def load_capture(folder: Path) -> Capture:
    """Read a folder written by :func:`save_capture` back into a :class:`Capture`.

    Arrays come from ``params.npz`` (exactly as saved: float32), the rest from
    ``result.json`` (rounded as written there; ``null`` becomes NaN). The photo is not stored,
    so ``image`` is ``None``; ``extras`` is empty.
    """
    folder = Path(folder)
    result_path, params_path = folder / RESULT_FILE, folder / PARAMS_FILE
    for path in (result_path, params_path):
        if not path.is_file():
            raise InputError(f"{folder} is not a capture folder ({path.name} is missing)")
    try:
        summary = json.loads(result_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"{result_path} is not valid JSON ({error.msg})") from None
    version = summary.get("schema_version")
    if not isinstance(version, int) or version > CAPTURE_SCHEMA_VERSION:
        raise InputError(
            f"{result_path} has schema version {version!r}; this handface reads versions up to "
            f"{CAPTURE_SCHEMA_VERSION}: update handface"
        )
    try:
        with np.load(params_path) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read {params_path} ({error})") from None

    def need(name: str) -> np.ndarray:
        if name not in arrays:
            raise InputError(f"{params_path} has no array {name!r}; the folder is incomplete")
        return arrays[name]

    face = None
    if "face_vertices" in arrays:
        taken = set(_FACE_ARRAYS.values())
        face = CapturedFace(
            params={
                name[len("head_") :]: value
                for name, value in arrays.items()
                if name.startswith("head_") and name not in taken
            },
            **{field: need(name) for field, name in _FACE_ARRAYS.items()},
        )
    hands = {}
    for side in HAND_SIDES:
        prefix = f"hand_{side}_"
        if prefix + "vertices" not in arrays:
            continue
        facts = summary.get("hands", {}).get(side, {})
        taken = {prefix + name for name in _HAND_ARRAYS}
        hands[side] = CapturedHand(
            side=side,
            params={
                name[len(prefix) :]: value
                for name, value in arrays.items()
                if name.startswith(prefix) and name not in taken
            },
            **{name: need(prefix + name) for name in _HAND_ARRAYS},
            detection_score=_float_or_nan(facts.get("detection_score")),
            touching=bool(facts.get("touching", False)),
            min_distance_mm=_float_or_nan(facts.get("min_distance_mm")),
            found_by=str(facts.get("found_by", "detector")),
        )
    width, height = (int(v) for v in need("image_size"))
    return Capture(
        image_size=(width, height),
        K=need("K"),
        camera_source=str(summary.get("camera", {}).get("source", "given")),
        face=face,
        hands=hands,
        touched_regions=list(summary.get("touched_regions", [])),
        penetration={k: _float_or_nan(v) for k, v in summary.get("penetration", {}).items()},
        timings={k: _float_or_nan(v) for k, v in summary.get("timings", {}).items()},
        warnings=list(summary.get("warnings", [])),
        source=summary.get("source"),
        mode=str(summary.get("mode", "full")),
    )
