"""Reader of the synthetic dataset format (``handface synth``; layout in
:mod:`handface.data.synth_layout`).

>>> from handface.data import SynthDataset
>>> data = SynthDataset("outputs/synth")                   # doctest: +SKIP
>>> sample = data[0]; sample.face_vertices.shape           # doctest: +SKIP
torch.Size([4538, 3])
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from handface.data.sample import HAND_SIDES, HandSample, InteractionSample
from handface.data.synth_layout import FORMAT_NAME, FORMAT_VERSION, missing_shards
from handface.errors import InputError

_HAND_PARAM_NAMES = ("global_orient", "transl", "articulation", "finger_angles", "shape")
_HEAD_PARAM_NAMES = ("global_orient", "transl", "expression", "shape")


def read_meta(root: Path) -> dict:
    """``meta.json`` of a synthetic dataset, with the format and version checked."""
    path = Path(root) / "meta.json"
    missing = missing_shards(Path(root))
    if not path.is_file() and missing:
        raise InputError(
            f"{root} is a dataset made in shards and {len(missing)} are not in yet "
            f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); run "
            f"`handface synth --shard I/N` with the same options for each"
        )
    if not path.is_file():
        raise InputError(f"{root} is not a handface synthetic dataset (no meta.json); "
                         "create one with `handface synth --out DIR --num N`")  # fmt: skip
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(
            f"{path} is not valid JSON ({error.msg}); regenerate the dataset"
        ) from None
    except UnicodeDecodeError:
        raise InputError(
            f"{path} is not valid JSON (not UTF-8 text); regenerate the dataset"
        ) from None
    if not isinstance(meta, dict):
        raise InputError(f"{path} holds a JSON {type(meta).__name__}, not the dataset's "
                         "description; regenerate the dataset")  # fmt: skip
    if meta.get("format") != FORMAT_NAME:
        raise InputError(f"{path} describes format {meta.get('format')!r}, not {FORMAT_NAME!r}")
    if meta.get("version") != FORMAT_VERSION:
        raise InputError(
            f"{path} is version {meta.get('version')} of {FORMAT_NAME}; this handface reads "
            f"version {FORMAT_VERSION}: regenerate it with this version's `handface synth`"
        )
    items = meta.get("items")
    if not isinstance(items, list) or not all(
        isinstance(item, dict) and isinstance(item.get("key"), str) for item in items
    ):
        raise InputError(f"{path} has no valid list of items; regenerate the dataset")
    return meta


def read_npz(
    path: Path, what: str = "an .npz of label arrays", names: tuple[str, ...] | None = None
) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` at ``path`` (all, or those of ``names`` it has; no pickles);
    a missing, truncated or otherwise unreadable file, or one holding Python objects, is a
    one-line :class:`InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} is missing; expected {what}")
    try:
        with np.load(path, allow_pickle=False) as data:
            wanted = data.files if names is None else [n for n in names if n in data.files]
            return {name: data[name] for name in wanted}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        reason = f"{type(error).__name__}: {reason}" if reason else type(error).__name__
        raise InputError(f"cannot read {path} ({reason[:160]}); is it {what}?") from None


def _tensor(array: np.ndarray) -> torch.Tensor:
    tensor = torch.from_numpy(np.asarray(array))
    return tensor.float() if tensor.is_floating_point() or tensor.dtype == torch.uint8 else tensor


def load_labels(
    root: Path, key: str, topology: dict[str, np.ndarray] | None = None
) -> InteractionSample:
    """The labels of item ``key`` as an :class:`InteractionSample` (no images)."""
    root = Path(root)
    path = root / "labels" / f"{key}.npz"
    if not path.is_file():
        raise InputError(f"{path} is missing; the dataset at {root} is incomplete")
    return sample_from_npz(path, key, load_topology(root) if topology is None else topology)


def sample_from_npz(
    path: Path, key: str, topology: dict[str, np.ndarray] | None = None
) -> InteractionSample:
    """Build a sample from an ``.npz`` of the label arrays (:data:`LABEL_KEYS`).

    Used for dataset labels and for results that store the same arrays (a ``Capture``'s
    ``params.npz``, network predictions). Triangle lists come from the file itself
    (``face_faces``, ``hand_<side>_faces``) when present, else from ``topology``.
    """
    arrays = {**(topology or {}), **read_npz(path)}

    def need(name: str) -> np.ndarray:
        if name not in arrays:
            raise InputError(
                f"{path} has no array {name!r} (see handface.data.synth_layout.LABEL_KEYS)"
            )
        return arrays[name]

    hands = {}
    for side in HAND_SIDES:
        prefix = f"hand_{side}_"
        if prefix + "vertices" not in arrays:
            continue
        params = {
            name: _tensor(arrays[prefix + name])
            for name in _HAND_PARAM_NAMES
            if prefix + name in arrays
        }
        hands[side] = HandSample(
            side=side,
            vertices=_tensor(need(prefix + "vertices")),
            faces=torch.from_numpy(need(prefix + "faces").astype(np.int64)),
            keypoints3d=_tensor(need(prefix + "keypoints3d")),
            keypoints2d=_tensor(need(prefix + "keypoints2d")),
            contact=_tensor(need(prefix + "contact")),
            params=params,
        )
    width, height = (int(v) for v in need("image_size"))
    head_params = {
        name: _tensor(arrays[f"head_{name}"])
        for name in _HEAD_PARAM_NAMES
        if f"head_{name}" in arrays
    }
    return InteractionSample(
        key=key,
        image_size=(width, height),
        K=_tensor(need("K")),
        R=_tensor(arrays.get("R", np.eye(3, dtype=np.float32))),
        t=_tensor(arrays.get("t", np.zeros(3, dtype=np.float32))),
        face_vertices=_tensor(need("face_vertices")),
        face_vertices_deformed=_tensor(need("face_vertices_deformed")),
        face_faces=torch.from_numpy(need("face_faces").astype(np.int64)),
        deformation=_tensor(need("deformation")),
        head_rotation=_tensor(need("head_rotation")),
        face_contact=_tensor(need("face_contact")),
        face_keypoints3d=_tensor(need("face_landmarks3d")),
        face_keypoints2d=_tensor(need("face_landmarks2d")),
        face_keypoints68_3d=_tensor(need("face_keypoints68_3d")),
        face_keypoints68_2d=_tensor(need("face_keypoints68_2d")),
        head_params=head_params,
        hands=hands,
    )


def load_topology(root: Path) -> dict[str, np.ndarray]:
    path = Path(root) / "topology.npz"
    if not path.is_file():
        raise InputError(f"{path} is missing; the dataset at {root} is incomplete")
    return read_npz(path, "the dataset's topology (.npz)")


def read_image(path: Path) -> torch.Tensor:
    """An RGB PNG as ``(H, W, 3)`` float in [0, 1]."""
    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)


class SynthDataset(Dataset):
    """A ``torch`` Dataset over a folder written by ``handface synth``.

    Items are :class:`InteractionSample` objects in key order (for sequences: sequence, then
    frame). With ``load_images`` the RGB image, metric depth (metres) and segmentation are
    attached. Use ``DataLoader(..., collate_fn=list)`` to batch them as lists.
    """

    def __init__(self, root: str | Path, load_images: bool = True) -> None:
        self.root = Path(root)
        self.meta = read_meta(self.root)
        self.items: list[dict] = self.meta["items"]
        self.keys = [item["key"] for item in self.items]
        self.load_images = load_images
        self._topology = load_topology(self.root)

    def __len__(self) -> int:
        return len(self.items)

    def index_of(self, key: str) -> int:
        return self.keys.index(key)

    def __getitem__(self, index: int) -> InteractionSample:
        item = self.items[index]
        key = item["key"]
        sample = load_labels(self.root, key, self._topology)
        sample.info = dict(item)
        if self.load_images:
            sample.image = read_image(self.root / "images" / f"{key}.png")
            with Image.open(self.root / "depth" / f"{key}.png") as depth:
                sample.depth = torch.from_numpy(
                    np.asarray(depth, dtype=np.float32) * float(self.meta["depth_scale_m"])
                )
            with Image.open(self.root / "segmentation" / f"{key}.png") as segmentation:
                sample.segmentation = torch.from_numpy(np.asarray(segmentation).astype(np.int64))
        return sample

    def image_path(self, index: int) -> Path:
        return self.root / "images" / f"{self.keys[index]}.png"
