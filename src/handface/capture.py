"""The one result type of single-image capture: :class:`Capture`.

A capture holds everything ``handface reconstruct`` recovers from one photo, in the camera
frame of that photo (DESIGN.md: metres, OpenCV axes, the camera is the world frame): the head
(parameters, undeformed and deformed vertices, the deformation ``D`` in the head's canonical
frame), zero to two hands (parameters, vertices, per-vertex contact probability), the face's
per-vertex contact probability, penetration figures, timings and warnings.

Array names follow the synthetic-data labels (:data:`handface.data.synth_layout.LABEL_KEYS`), so a
saved capture's ``params.npz`` can be scored by ``handface eval`` like a dataset item.
Saving to a folder is :func:`handface.io.capture_folder.save_capture`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Float, Int

from handface.errors import InputError

CAPTURE_SCHEMA_VERSION = 1
"""Version of ``result.json``; bumped whenever a field changes meaning."""


@dataclass
class CapturedFace:
    """The fitted head of one photo (camera frame, metres)."""

    params: dict[str, np.ndarray]
    """Head-model parameters: ``global_orient`` (3,), ``transl`` (3,), ``expression`` (52,),
    ``shape`` (S,) — names of :class:`handface.models.HeadParams`."""
    vertices: Float[np.ndarray, "V 3"]
    """Undeformed head vertices."""
    vertices_deformed: Float[np.ndarray, "V 3"]
    faces: Int[np.ndarray, "F 3"]
    deformation: Float[np.ndarray, "V 3"]
    """D in the head's canonical frame: ``vertices_deformed = vertices + D @ rotation.T``."""
    rotation: Float[np.ndarray, "3 3"]
    """Head canonical frame -> camera frame."""
    contact: Float[np.ndarray, " V"]
    """Per-vertex contact probability (a vertex is in contact above 0.5)."""
    landmarks3d: Float[np.ndarray, "478 3"]
    """The 478 MediaPipe landmarks on the deformed head."""
    landmarks2d: Float[np.ndarray, "478 2"]
    """Their projections (pixels, pixel centres at integer coordinates)."""
    keypoints68_3d: Float[np.ndarray, "68 3"]
    keypoints68_2d: Float[np.ndarray, "68 2"]
    detected_landmarks2d: Float[np.ndarray, "478 2"]
    """What the detector found, for comparison with ``landmarks2d``."""


@dataclass
class CapturedHand:
    """One fitted hand (camera frame, metres)."""

    side: str
    """``"left"`` or ``"right"``: the person's own hand."""
    params: dict[str, np.ndarray]
    """Hand-model parameters: ``global_orient`` (3,), ``transl`` (3,), ``articulation`` (20,),
    ``shape`` (S,) — names of :class:`handface.models.HandParams`."""
    vertices: Float[np.ndarray, "Vh 3"]
    faces: Int[np.ndarray, "Fh 3"]
    contact: Float[np.ndarray, " Vh"]
    """Per-vertex contact probability."""
    keypoints3d: Float[np.ndarray, "21 3"]
    keypoints2d: Float[np.ndarray, "21 2"]
    detected_keypoints2d: Float[np.ndarray, "21 2"]
    detection_score: float
    """MediaPipe's handedness confidence; for a hand only the network found (``found_by ==
    "network"``), the network's probability that the hand is there."""
    touching: bool
    """The hand is within 5 mm of the (deformed) face."""
    min_distance_mm: float
    """Signed distance of the hand's closest vertex to the deformed face (negative inside)."""
    found_by: str = "detector"
    """``"detector"`` (MediaPipe found it) or ``"network"`` (DICE saw it in the face crop where
    the detector found none: MediaPipe misses hands lying on faces). ``detected_keypoints2d``
    is NaN for the latter."""


@dataclass
class Capture:
    """Everything recovered from one image.

    Example:
        >>> capture = handface.reconstruct("photo.jpg")          # doctest: +SKIP
        >>> capture.touched_regions, capture.hands["right"].touching  # doctest: +SKIP
        (['left cheek'], True)
    """

    image_size: tuple[int, int]
    """(width, height) in pixels."""
    K: Float[np.ndarray, "3 3"]
    """Intrinsics used for the fit (OpenCV pinhole)."""
    camera_source: str
    """Where the focal length came from: ``"--focal"``, ``"exif"``, ``"default"``, ``"given"``."""
    face: CapturedFace | None
    hands: dict[str, CapturedHand] = field(default_factory=dict)
    touched_regions: list[str] = field(default_factory=list)
    """Named face areas with contact, e.g. ``["left cheek", "chin"]``."""
    penetration: dict[str, float] = field(default_factory=dict)
    """``max_before_mm`` (deepest hand vertex inside the undeformed face after fitting),
    ``max_after_mm`` (inside the deformed face), ``collision_distance_mm`` (Decaf's per-frame
    figure), ``max_deformation_mm``."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per stage (``detect_s``, ``fit_head_s``, ``fit_hands_s``, ``interaction_s``,
    ``deform_s``, ``total_s``)."""
    warnings: list[str] = field(default_factory=list)
    source: str | None = None
    """The image file (or ``None`` for an in-memory image)."""
    image: np.ndarray | None = field(default=None, repr=False)
    """The RGB photo (H, W, 3) uint8, for the overlay; not saved in ``params.npz``."""
    mode: str = "full"
    """``"full"`` (interaction terms and deformation) or ``"separate"``."""
    extras: dict[str, Any] = field(default_factory=dict, repr=False)
    """Diagnostics (detections, contact evidence) for overlays and debugging."""

    @property
    def touching(self) -> bool:
        """Some hand touches the face."""
        return any(hand.touching for hand in self.hands.values())

    # Shortcuts to the layers above (export, view): imported when called, so importing this
    # module loads neither (tests/test_layering.py allows exactly these two).
    def export(self, path: str | os.PathLike, file_format: str | None = None) -> Path:
        """Write the deformed face and the hands, coloured by contact, as one ``.glb``,
        ``.obj`` or ``.ply`` file (format from the suffix unless given; camera frame; GLB is
        Y up). Same as ``handface export`` of the capture's folder.

        Example:
            >>> handface.reconstruct("photo.jpg").export("photo.glb")     # doctest: +SKIP
        """
        from handface.export.capture import export_capture

        path = Path(path)
        file_format = (file_format or path.suffix.lstrip(".")).lower()
        if file_format not in ("glb", "obj", "ply"):
            raise InputError(f"{path}: give a .glb, .obj or .ply file (or file_format=)")
        return export_capture(self, path, file_format)

    def show(self, *, host: str = "127.0.0.1", port: int = 8080) -> None:
        """Open this capture in the 3D viewer (``handface view``): prints the address and
        serves until Ctrl-C. ``host`` other than 127.0.0.1 exposes it to the network.

        Example:
            >>> handface.reconstruct("photo.jpg").show()   # http://127.0.0.1:8080  # doctest: +SKIP
        """
        from handface.view.scene import capture_scene
        from handface.view.server import serve_scene

        name = Path(self.source).stem if self.source else "capture"
        serve_scene(capture_scene(self, name), host=host, port=port)

    def label_arrays(self) -> dict[str, np.ndarray]:
        """The arrays of ``params.npz``: synthetic-label names (see the module docstring)."""
        width, height = self.image_size
        out: dict[str, np.ndarray] = {
            "K": self.K.astype(np.float32),
            "R": np.eye(3, dtype=np.float32),
            "t": np.zeros(3, np.float32),
            "image_size": np.array([width, height], dtype=np.int64),
        }
        if self.face is not None:
            face = self.face
            out.update(
                {
                    "face_vertices": face.vertices,
                    "face_vertices_deformed": face.vertices_deformed,
                    "face_faces": face.faces.astype(np.int64),
                    "deformation": face.deformation,
                    "head_rotation": face.rotation,
                    "face_contact": face.contact,
                    "face_landmarks3d": face.landmarks3d,
                    "face_landmarks2d": face.landmarks2d,
                    "face_keypoints68_3d": face.keypoints68_3d,
                    "face_keypoints68_2d": face.keypoints68_2d,
                    "face_detected_landmarks2d": face.detected_landmarks2d,
                }
            )
            out.update({f"head_{name}": value for name, value in face.params.items()})
        for side, hand in self.hands.items():
            out.update(
                {
                    f"hand_{side}_vertices": hand.vertices,
                    f"hand_{side}_faces": hand.faces.astype(np.int64),
                    f"hand_{side}_contact": hand.contact,
                    f"hand_{side}_keypoints3d": hand.keypoints3d,
                    f"hand_{side}_keypoints2d": hand.keypoints2d,
                    f"hand_{side}_detected_keypoints2d": hand.detected_keypoints2d,
                }
            )
            out.update({f"hand_{side}_{name}": value for name, value in hand.params.items()})
        return {
            name: (value.astype(np.float32) if value.dtype == np.float64 else value)
            for name, value in out.items()
        }
