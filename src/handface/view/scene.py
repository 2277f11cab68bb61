"""What ``handface view`` shows, independent of the browser: a result folder as named meshes.

:func:`load_scene` reads any result folder into a :class:`ViewScene`: per frame a list of
:class:`ViewMesh` (geometry plus what each colour mode needs), the photographing camera (its
intrinsics and, where there is one, the photo), and the scale of the deformation heat map.

- a Capture folder (``handface reconstruct``): the deformed face and the hands, one frame;
- a Sequence folder (``handface track``): the face and hands of every tracked frame, posed
  from the stored parameters with the default models when a frame is first shown;
- an avatar folder (``handface avatar``): the textured head at rest (``head.obj`` and
  ``texture.png``), per avatar frame with its learned hand deformation;
- a synthetic dataset (``handface synth``): sample ``index``'s ground-truth meshes (for a
  dataset of sequences, every frame of that sample's sequence).

A Capture or Sequence folder can be given a synthetic dataset's ground truth too (``gt``):
sample ``index`` for a Capture, and for a Sequence the frames of sequence ``index`` matched by
frame number.

Everything is in the photographing camera's frame (OpenCV: x right, y down, z forward,
metres), as the result folders store it; the avatar's head, kept in the head model's canonical
frame (z up, the face towards -y), is turned upright and placed 0.6 m in front of the camera.

Example:
    >>> scene = load_scene(Path("out/photo"))                     # doctest: +SKIP
    >>> [mesh.key for mesh in scene.meshes(0)]                    # doctest: +SKIP
    ['prediction/face', 'prediction/left_hand']
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float, Int, UInt8

from handface.capture import Capture
from handface.errors import InputError
from handface.export.gltf import FRAME_TO_GLTF
from handface.io.capture_folder import contact_colors
from handface.io.folders import folder_kind
from handface.render.overlay import deformation_scale_top

PREDICTION = "prediction"
GROUND_TRUTH = "ground_truth"
SOURCES = (PREDICTION, GROUND_TRUTH)
"""Where a mesh comes from: the result that was opened, or a synthetic sample's labels."""
COLOR_MODES = ("contact", "plain", "deformation")
"""``contact``: contact probability (grey, orange, red; a textured mesh keeps its texture);
``plain``: one colour per mesh (or the texture); ``deformation``: the magnitude of ``D`` in the
``viridis`` colour map (dark violet 0 to yellow at the scene's scale), meshes without a
deformation plain."""

PLAIN_COLORS: dict[tuple[str, str], tuple[int, int, int]] = {
    (PREDICTION, "face"): (217, 184, 158),
    (PREDICTION, "hand"): (115, 158, 230),
    (GROUND_TRUTH, "face"): (150, 205, 150),
    (GROUND_TRUTH, "hand"): (90, 170, 120),
}
AVATAR_DISTANCE_M = 0.6
"""How far in front of the camera the avatar's head at rest is placed."""
CANONICAL_TO_CAMERA = FRAME_TO_GLTF["camera"].T @ FRAME_TO_GLTF["canonical"]
"""The head model's canonical frame (z up, face towards -y) -> camera axes (y down, the face
towards the camera at the origin): the turn to glTF's upright frame that ``head.glb`` uses,
then glTF's -> the camera's."""
_CACHE_FRAMES = 64


@dataclass
class ViewMesh:
    """One mesh of one frame (camera frame, metres)."""

    name: str
    """``face``, ``left_hand``, ``right_hand`` or ``head`` (an avatar)."""
    source: str
    """:data:`PREDICTION` or :data:`GROUND_TRUTH`."""
    vertices: Float[np.ndarray, "V 3"]
    faces: Int[np.ndarray, "F 3"]
    contact_colors: UInt8[np.ndarray, "V 3"] | None = None
    """Per-vertex contact colours (:func:`handface.io.capture_folder.contact_colors`)."""
    deformation_mm: Float[np.ndarray, " V"] | None = None
    """``|D|`` per vertex in millimetres (faces only)."""
    corner_uvs: Float[np.ndarray, "F 3 2"] | None = None
    """Texture coordinates per triangle corner (OBJ convention), with ``texture``."""
    texture: UInt8[np.ndarray, "H W 3"] | None = None

    @property
    def key(self) -> str:
        """``source/name``: the mesh's name in the viewer, unique within a scene."""
        return f"{self.source}/{self.name}"

    @property
    def plain_color(self) -> tuple[int, int, int]:
        return PLAIN_COLORS[(self.source, "face" if self.name in ("face", "head") else "hand")]

    def colors(self, mode: str, scale_mm: float) -> UInt8[np.ndarray, "V 3"] | None:
        """Per-vertex colours in colour ``mode`` (:data:`COLOR_MODES`); ``None`` where the mesh
        shows its texture. ``scale_mm`` is the deformation that maps to the top of the map."""
        if mode not in COLOR_MODES:
            raise InputError(f"colour mode must be one of {', '.join(COLOR_MODES)}, got {mode!r}")
        if mode == "deformation" and self.deformation_mm is not None:
            return heat_colors(self.deformation_mm, scale_mm)
        if self.texture is not None:
            return None
        if mode == "contact" and self.contact_colors is not None:
            return self.contact_colors
        return np.tile(np.array(self.plain_color, np.uint8), (len(self.vertices), 1))


@dataclass
class ViewCamera:
    """The camera that took the photo: at the origin, looking along +z (OpenCV)."""

    K: Float[np.ndarray, "3 3"]
    image_size: tuple[int, int]
    """(width, height) in pixels."""

    @property
    def vertical_fov(self) -> float:
        """Vertical field of view in radians."""
        return 2.0 * math.atan2(0.5 * self.image_size[1], float(self.K[1, 1]))

    @property
    def aspect(self) -> float:
        return self.image_size[0] / self.image_size[1]


@dataclass
class ViewScene:
    """A result folder as frames of named meshes (see the module docstring).

    Frames are built when first asked for (a Sequence poses its meshes with the head and hand
    models) and the last few are kept.
    """

    kind: str
    """``capture``, ``sequence``, ``avatar`` or ``synthetic``."""
    title: str
    mesh_keys: list[str]
    """Every mesh key (``source/name``) some frame holds, in display order."""
    frame_labels: list[str]
    """One caption per frame (``frame 12 (0.48 s)``); one entry for a single result."""
    camera: ViewCamera | None
    deformation_scale_mm: float
    """``|D|`` at the top of the heat map: the largest over the scene, rounded up."""
    fps: float = 10.0
    """Playback rate of a timeline."""
    start: int = 0
    """The frame shown first."""
    _build: Callable[[int], list[ViewMesh]] = field(repr=False, default=lambda t: [])
    _photo: Callable[[int], np.ndarray | None] = field(repr=False, default=lambda t: None)
    _cache: dict[int, list[ViewMesh]] = field(repr=False, default_factory=dict)
    _photos: dict[int, np.ndarray | None] = field(repr=False, default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.frame_labels)

    def meshes(self, t: int = 0) -> list[ViewMesh]:
        """The meshes of frame ``t``."""
        if not 0 <= t < self.num_frames:
            raise InputError(f"frame {t} is outside the scene's {self.num_frames} frames")
        if t not in self._cache:
            if len(self._cache) >= _CACHE_FRAMES:
                self._cache.pop(next(iter(self._cache)))
            self._cache[t] = self._build(t)
        return self._cache[t]

    def photo(self, t: int = 0) -> UInt8[np.ndarray, "H W 3"] | None:
        """The photo (or video frame) of frame ``t``, when it can be found; long side at most
        :data:`PHOTO_SIDE` pixels."""
        if t not in self._photos:
            if len(self._photos) >= _CACHE_FRAMES:
                self._photos.pop(next(iter(self._photos)))
            self._photos[t] = self._photo(t)
        return self._photos[t]

    def centre(self, t: int = 0) -> Float[np.ndarray, " 3"]:
        """Centre of the bounding box of frame ``t``'s meshes (where the viewer looks)."""
        meshes = self.meshes(t)
        if not meshes:
            return np.array([0.0, 0.0, AVATAR_DISTANCE_M])
        points = np.concatenate([m.vertices for m in meshes])
        return 0.5 * (points.min(axis=0) + points.max(axis=0))


PHOTO_SIDE = 1024
"""Long side (pixels) of the photo shown in the camera frustum."""


def heat_colors(deformation_mm: Float[np.ndarray, " V"], scale_mm: float) -> np.ndarray:
    """``|D|`` (mm) as ``viridis`` colours (bytes), 0 -> dark violet, ``scale_mm`` -> yellow."""
    from handface.render.overlay import deformation_colors, to_uint8

    return to_uint8(deformation_colors(deformation_mm, scale_mm))


def _photo_array(rgb: np.ndarray) -> np.ndarray:
    rgb = np.ascontiguousarray(np.asarray(rgb)[..., :3])
    if rgb.dtype != np.uint8:
        rgb = (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    height, width = rgb.shape[:2]
    if max(height, width) <= PHOTO_SIDE:
        return rgb
    from PIL import Image

    scale = PHOTO_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))


def _mm(deformation: np.ndarray) -> np.ndarray:
    return 1000.0 * np.linalg.norm(np.asarray(deformation, np.float64), axis=-1)


def _np(value) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


# --- ground truth: a synthetic dataset ------------------------------------------------------


def _sample_meshes(sample) -> list[ViewMesh]:
    """A synthetic sample's labels as ground-truth meshes."""
    out = [
        ViewMesh("face", GROUND_TRUTH, _np(sample.face_vertices_deformed).astype(np.float32),
                 _np(sample.face_faces).astype(np.int64),
                 contact_colors=contact_colors(_np(sample.face_contact)),
                 deformation_mm=_mm(_np(sample.deformation)))
    ]  # fmt: skip
    for side, hand in sorted(sample.hands.items()):
        out.append(ViewMesh(f"{side}_hand", GROUND_TRUTH, _np(hand.vertices).astype(np.float32),
                            _np(hand.faces).astype(np.int64),
                            contact_colors=contact_colors(_np(hand.contact))))  # fmt: skip
    return out


def _sample_keys(dataset, indices: list[int]) -> list[str]:
    sides = set()
    for i in indices:
        sides.update(s for s in ("left", "right") if f"hand_{s}" in _item_hands(dataset, i))
    return [f"{GROUND_TRUTH}/face"] + [f"{GROUND_TRUTH}/{s}_hand" for s in sorted(sides)]


def _item_hands(dataset, index: int) -> set[str]:
    """Hand label prefixes (``hand_left``) of item ``index``, from its label file's names."""
    key = dataset.keys[index]
    try:
        with np.load(dataset.root / "labels" / f"{key}.npz") as data:
            names = data.files
    except (OSError, ValueError) as error:
        raise InputError(
            f"cannot read the labels of sample {key} in {dataset.root} ({error})"
        ) from None
    return {name.removesuffix("_vertices") for name in names
            if name.startswith("hand_") and name.endswith("_vertices")}  # fmt: skip


def load_labels_arrays(dataset, index: int, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Some arrays of item ``index``'s label file."""
    key = dataset.keys[index]
    try:
        with np.load(dataset.root / "labels" / f"{key}.npz") as data:
            return {name: data[name] for name in names}
    except (OSError, ValueError, KeyError) as error:
        raise InputError(
            f"cannot read the labels of sample {key} in {dataset.root} ({error})"
        ) from None


def _dataset(path: Path):
    from handface.data.synth import SynthDataset

    return SynthDataset(path)


def _sample_photo(dataset, index: int) -> np.ndarray | None:
    path = dataset.image_path(index)
    if not path.is_file():
        return None
    from PIL import Image

    with Image.open(path) as image:
        return _photo_array(np.asarray(image.convert("RGB")))


def _check_index(index: int, count: int, what: str) -> None:
    if not 0 <= index < count:
        raise InputError(f"--index {index} is outside the {count} {what} (0 to {count - 1})")


def _sequence_items(dataset, index: int) -> list[int]:
    """Items of the sequence that item ``index`` belongs to, in frame order."""
    sequence = dataset.items[index].get("sequence")
    items = [i for i, item in enumerate(dataset.items) if item.get("sequence") == sequence]
    return sorted(items, key=lambda i: dataset.items[i].get("frame") or 0) or [index]


def _synthetic_scene(path: Path, index: int) -> ViewScene:
    dataset = _dataset(path)
    _check_index(index, len(dataset), f"samples of {path}")
    items = _sequence_items(dataset, index)  # a dataset of sequences: the sample's sequence
    labels = [
        f"sample {dataset.keys[i]}"
        + (f" (frame {dataset.items[i].get('frame')})" if len(items) > 1 else "")
        for i in items
    ]
    scale = max(float(dataset.items[i].get("max_deformation_mm") or 0.0) for i in items)
    first = dataset.items[items[0]]
    labels_of_first = load_labels_arrays(dataset, items[0], ("K", "image_size"))
    width, height = (int(v) for v in labels_of_first["image_size"])
    return ViewScene(
        kind="synthetic",
        title=f"{path.name}: sample {dataset.keys[index]}"
        + (f" (sequence {first.get('sequence')})" if len(items) > 1 else ""),
        mesh_keys=_sample_keys(dataset, items),
        frame_labels=labels,
        camera=ViewCamera(labels_of_first["K"].astype(np.float64), (width, height)),
        deformation_scale_mm=deformation_scale_top(scale),
        fps=float(dataset.meta.get("fps") or 10.0),
        start=items.index(index),
        _build=lambda t: _sample_meshes(dataset[items[t]]),
        _photo=lambda t: _sample_photo(dataset, items[t]),
    )


# --- a Capture folder -----------------------------------------------------------------------


def _capture_photo(folder: Path, source: str | None, size: tuple[int, int]) -> np.ndarray | None:
    """The captured photo (its file, when it is still there), else the folder's overlay when
    it has the photo's shape (``size``: the capture's (width, height))."""
    candidates = []
    if source and Path(source).is_file():
        from handface.detect.images import load_image

        try:
            candidates.append(load_image(source).rgb)
        except InputError:
            pass
    overlay = folder / "overlay.png"
    if not candidates and overlay.is_file():
        from PIL import Image

        with Image.open(overlay) as image:
            candidates.append(np.asarray(image.convert("RGB")))
    for rgb in candidates:
        height, width = rgb.shape[:2]
        if abs(width / height - size[0] / size[1]) < 0.02 * size[0] / size[1]:
            return _photo_array(rgb)
    return None


def capture_scene(
    capture: Capture,
    name: str,
    photo: Callable[[int], np.ndarray | None] | None = None,
    truth: list[ViewMesh] | None = None,
) -> ViewScene:
    """An in-memory :class:`~handface.capture.Capture` as a one-frame scene named ``name``:
    its deformed face (with ``|D|``) and hands in contact colours, the camera with ``photo``
    (default: the capture's own image) and optional ground-truth meshes."""
    from handface.export.capture import capture_meshes

    meshes = []
    for mesh in capture_meshes(capture):
        deformation = None
        if mesh.name == "face" and capture.face is not None:
            deformation = _mm(capture.face.deformation)
        meshes.append(ViewMesh(mesh.name, PREDICTION, np.asarray(mesh.vertices, np.float32),
                               np.asarray(mesh.faces, np.int64), mesh.vertex_colors,
                               deformation))  # fmt: skip
    truth = list(truth or [])
    if photo is None:
        image = None if capture.image is None else _photo_array(np.asarray(capture.image))
        photo = lambda t: image  # noqa: E731
    scale = max([float(m.deformation_mm.max(initial=0.0)) for m in meshes + truth
                 if m.deformation_mm is not None], default=0.0)  # fmt: skip
    return ViewScene(
        kind="capture",
        title=f"{name}: capture" + (f" (source {Path(capture.source).name})"
                                   if capture.source else ""),
        mesh_keys=[m.key for m in meshes + truth],
        frame_labels=[name],
        camera=ViewCamera(np.asarray(capture.K, np.float64), tuple(capture.image_size)),
        deformation_scale_mm=deformation_scale_top(scale),
        _build=lambda t: meshes + truth,
        _photo=photo,
    )  # fmt: skip


def _capture_scene(path: Path, gt: Path | None, index: int) -> ViewScene:
    from handface.io.capture_folder import load_capture

    capture = load_capture(path)
    photo: Callable[[int], np.ndarray | None] = lambda t: _capture_photo(
        path, capture.source, capture.image_size
    )
    truth: list[ViewMesh] = []
    if gt is not None:
        dataset = _dataset(gt)
        _check_index(index, len(dataset), f"samples of {gt}")
        truth = _sample_meshes(dataset[index])
        if not capture.source or not Path(capture.source).is_file():
            photo = lambda t: _sample_photo(dataset, index)  # noqa: E731
    return capture_scene(capture, path.name, photo, truth)


# --- a Sequence folder ----------------------------------------------------------------------


@dataclass
class SceneModels:
    """The head and hand models a Sequence's frames are posed with (default: the Anny
    models, built when first needed)."""

    head: object | None = None
    hands: dict[str, object] = field(default_factory=dict)

    def head_model(self):
        if self.head is None:
            from handface.models import default_head_model

            self.head = default_head_model()
        return self.head

    def hand_model(self, side: str):
        if side not in self.hands:
            from handface.models import default_hand_model

            self.hands[side] = default_hand_model(side)
        return self.hands[side]


def _sequence_frame_meshes(sequence, t: int, models: SceneModels) -> list[ViewMesh]:
    """Frame ``t`` of a Sequence posed: deformed face and hands, contact and ``|D|``."""
    from handface.sequence import posed_meshes

    frame = sequence.frames[t]
    head = models.head_model() if frame.head is not None else None
    hands = {side: models.hand_model(side) for side in frame.hands}
    return [
        ViewMesh(track.name, PREDICTION, track.vertices[0], track.faces,
                 contact_colors=contact_colors(track.contact[0]),
                 deformation_mm=None if track.deformation is None else _mm(track.deformation[0]))
        for track in posed_meshes(sequence, [t], head, hands)
    ]  # fmt: skip


class VideoFrames:
    """Frames of the tracked video (or image folder) by index, read forward from an open
    decoder, so a timeline played in order decodes each frame once; going back reopens it.
    ``None`` for every frame when the source is gone or unreadable."""

    def __init__(self, source: str | None) -> None:
        self.source = source if source and Path(source).exists() else None
        self._reader = self._frames = None
        self._last = -1

    def __call__(self, index: int) -> np.ndarray | None:
        if self.source is None:
            return None
        from handface.detect.video import FrameReader

        try:
            if self._frames is None or index <= self._last:
                self.close()
                self._reader = FrameReader(self.source, start=index)
                self._frames = iter(self._reader)
            for frame in self._frames:
                self._last = frame.index
                if frame.index >= index:
                    return _photo_array(frame.rgb) if frame.index == index else None
        except InputError:
            pass
        self.close()
        return None

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self._reader = self._frames = None
        self._last = -1


def _sequence_scene(
    path: Path, gt: Path | None, index: int, models: SceneModels | None
) -> ViewScene:
    from handface.io.sequence_folder import load_sequence

    sequence = load_sequence(path)
    if not sequence.frames:
        raise InputError(f"{path} is a Sequence folder without frames; track a longer video")
    models = models or SceneModels()
    keys = []
    if any(f.head is not None for f in sequence.frames):
        keys.append(f"{PREDICTION}/face")
    sides = sorted({side for f in sequence.frames for side in f.hands})
    keys += [f"{PREDICTION}/{side}_hand" for side in sides]
    scale = max((f.max_deformation_mm for f in sequence.frames), default=0.0)
    truth: dict[int, int] = {}  # tracked frame -> dataset item
    dataset = None
    if gt is not None:
        dataset = _dataset(gt)
        sequences = sorted({item.get("sequence") for item in dataset.items})
        _check_index(index, len(sequences), f"sequences of {gt}")
        by_frame = {item.get("frame") or 0: i for i, item in enumerate(dataset.items)
                    if item.get("sequence") == sequences[index]}  # fmt: skip
        truth = {t: by_frame[f.index] for t, f in enumerate(sequence.frames) if f.index in by_frame}
        if truth:
            keys += _sample_keys(dataset, sorted(set(truth.values())))
            scale = max([scale] + [float(dataset.items[i].get("max_deformation_mm", 0.0) or 0.0)
                                   for i in truth.values()])  # fmt: skip

    def build(t: int) -> list[ViewMesh]:
        meshes = _sequence_frame_meshes(sequence, t, models)
        if dataset is not None and t in truth:
            meshes += _sample_meshes(dataset[truth[t]])
        return meshes

    video = VideoFrames(sequence.source)

    def photo(t: int) -> np.ndarray | None:
        image = video(sequence.frames[t].index)
        if image is None and dataset is not None and t in truth:
            image = _sample_photo(dataset, truth[t])
        return image

    return ViewScene(
        kind="sequence",
        title=f"{path.name}: {len(sequence)} tracked frames",
        mesh_keys=keys,
        frame_labels=[f"frame {f.index} ({f.time_s:.2f} s)" for f in sequence.frames],
        camera=ViewCamera(np.asarray(sequence.K, np.float64), tuple(sequence.image_size)),
        deformation_scale_mm=deformation_scale_top(scale),
        fps=float(sequence.fps) if sequence.fps > 0 else 10.0,
        _build=build,
        _photo=photo,
    )


# --- an avatar folder -----------------------------------------------------------------------


def read_textured_obj(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(vertices (V, 3), faces (F, 3), corner_uvs (F, 3, 2))`` of a triangle OBJ with UVs
    (``f v/vt ...``, as ``head.obj`` of an avatar folder); vertices keep the file's order."""
    vertices, uvs, faces, corners = [], [], [], []
    try:
        with open(path, encoding="utf-8") as file:
            for line in file:
                parts = line.split()
                if not parts:
                    continue
                if parts[0] == "v":
                    vertices.append([float(x) for x in parts[1:4]])
                elif parts[0] == "vt":
                    uvs.append([float(x) for x in parts[1:3]])
                elif parts[0] == "f":
                    refs = [p.split("/") for p in parts[1:4]]
                    faces.append([int(r[0]) - 1 for r in refs])
                    corners.append([int(r[1]) - 1 if len(r) > 1 and r[1] else 0 for r in refs])
    except (OSError, UnicodeDecodeError, ValueError, IndexError) as error:
        raise InputError(f"cannot read {path} as an OBJ mesh ({error})") from None
    if not vertices or not faces:
        raise InputError(f"{path} holds no triangles; rebuild the avatar")
    vertex_array = np.array(vertices, np.float64)
    face_array = np.array(faces, np.int64)
    uv_array = np.array(uvs, np.float64) if uvs else np.zeros((1, 2))
    corner_uvs = uv_array[np.clip(np.array(corners, np.int64), 0, len(uv_array) - 1)]
    if face_array.min() < 0 or face_array.max() >= len(vertex_array):
        raise InputError(f"{path} has faces that name missing vertices; rebuild the avatar")
    return vertex_array, face_array, corner_uvs


def _avatar_scene(path: Path) -> ViewScene:
    from PIL import Image

    from handface.avatar.folder import load_avatar

    avatar = load_avatar(path)
    obj = path / "head.obj"
    if not obj.is_file():
        raise InputError(f"{path}: head.obj is missing; the avatar folder is incomplete")
    rest, faces, corner_uvs = read_textured_obj(obj)
    with Image.open(path / "texture.png") as image:
        texture = np.asarray(image.convert("RGB"))
    displacements = avatar.deformation.displacements().double().numpy()  # (T, V, 3) canonical
    if displacements.shape[1] != len(rest):
        raise InputError(f"{path}: head.obj has {len(rest)} vertices but the deformation basis "
                         f"{displacements.shape[1]}; the folder mixes two avatars")  # fmt: skip
    centre = 0.5 * (rest.min(axis=0) + rest.max(axis=0))
    offset = np.array([0.0, 0.0, AVATAR_DISTANCE_M]) - centre @ CANONICAL_TO_CAMERA.T

    def build(t: int) -> list[ViewMesh]:
        D = displacements[t]
        vertices = (rest + D) @ CANONICAL_TO_CAMERA.T + offset
        return [
            ViewMesh(
                "head",
                PREDICTION,
                vertices.astype(np.float32),
                faces,
                deformation_mm=_mm(D),
                corner_uvs=corner_uvs,
                texture=texture,
            )
        ]
        # fmt: skip

    frames = np.asarray(avatar.frame_index)
    fps = float(avatar.fps) if avatar.fps and avatar.fps > 0 else 10.0
    return ViewScene(
        kind="avatar",
        title=f"{path.name}: avatar ({len(avatar)} frames)",
        mesh_keys=[f"{PREDICTION}/head"],
        frame_labels=[f"frame {int(i)} ({int(i) / fps:.2f} s)" for i in frames],
        camera=None,
        deformation_scale_mm=deformation_scale_top(float(_mm(displacements).max(initial=0.0))),
        fps=fps,
        _build=build,
    )


# --- any folder (its kind: :func:`handface.io.folders.folder_kind`) -------------------------


def load_scene(
    path: Path, *, index: int = 0, gt: Path | None = None, models: SceneModels | None = None
) -> ViewScene:
    """Read the result folder ``path`` into a :class:`ViewScene` (see the module docstring).

    Args:
        path: a Capture, Sequence, avatar or synthetic dataset folder.
        index: the sample of a synthetic dataset to show (``path``'s, or ``gt``'s; for a
            Sequence with ``gt``: the dataset's sequence).
        gt: a synthetic dataset whose ground truth is shown with a Capture or Sequence.
        models: the models a Sequence is posed with (default: the Anny models).

    Raises:
        InputError: an unknown or broken folder, ``gt`` with an avatar or dataset, ``index``
            out of range.
    """
    path = Path(path)
    kind = folder_kind(path)
    if gt is not None:
        if kind not in ("capture", "sequence"):
            raise InputError(
                f"--gt goes with a Capture or Sequence folder; {path} is "
                f"{'an avatar' if kind == 'avatar' else 'a synthetic dataset'}"
            )
            # fmt: skip
        gt = Path(gt)
        if folder_kind(gt) != "synthetic":
            raise InputError(f"--gt {gt} is not a synthetic dataset (no meta.json); make one with "
                             "`handface synth`")  # fmt: skip
    if index < 0:
        raise InputError(f"--index must be 0 or more, got {index}")
    try:
        if kind == "capture":
            return _capture_scene(path, gt, index)
        if kind == "sequence":
            return _sequence_scene(path, gt, index, models)
        if kind == "avatar":
            return _avatar_scene(path)
        return _synthetic_scene(path, index)
    except (KeyError, ValueError, OSError, json.JSONDecodeError) as error:
        raise InputError(f"{path} looks like a {kind} folder but cannot be read ({error!r}); "
                         "write it again with this handface") from None  # fmt: skip
