"""Weak supervision from unlabelled photos (DICE's in-the-wild branch).

A folder of images (``--wild DIR``) trains with what a photo can say without 3D labels: the
MediaPipe 2D face landmarks (their 68-point subset) and hand keypoints, an optional depth map
per image (``<name>.depth.npy``, metres or relative, from whatever monocular estimator the user
trusts: only depth *ratios* are used, by the scale-invariant depth loss), and the
label-free terms (touch, collision, adversarial). MediaPipe runs once per image; its
detections are cached in ``DIR/handface_keypoints.json`` (rewritten when images change).

Items carry the same keys as :class:`~handface.dice.dataset.DiceTrainingSet`'s, with
``has_3d = 0`` (and zero placeholders) so the two mix in one batch; the objective masks the
terms a wild item has no label for. The crop and its camera follow the training rule: the box
around the detections, the photo's camera from :mod:`handface.fit.camera` (EXIF or default).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from handface.dice.crops import CropConfig, crop_box
from handface.dice.dataset import (
    AugmentConfig,
    crop_targets,
    empty_hand_targets,
    image_tensor,
    jittered_crop,
    photometric,
)
from handface.errors import InputError
from handface.io.files import atomic_write_bytes
from handface.models.landmarks import MEDIAPIPE_INDEX_OF_68
from handface.models.mesh_sampling import MirrorMaps

CACHE_FILE = "handface_keypoints.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
DEPTH_SUFFIX = ".depth.npy"


def detect_folder(root: Path, detector=None, progress: bool = True) -> dict[str, dict]:
    """MediaPipe detections of every image in ``root`` (cached in :data:`CACHE_FILE`)."""
    from tqdm import tqdm

    from handface.detect.images import load_image

    root = Path(root)
    if not root.is_dir():
        raise InputError(f"--wild {root} is not a folder of images")
    images = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InputError(f"--wild {root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    cache_path = root / CACHE_FILE
    cache: dict[str, dict] = {}
    if cache_path.is_file():
        try:
            cache = json.loads(cache_path.read_text())
        except json.JSONDecodeError:
            cache = {}
    stamp = {p.name: p.stat().st_mtime_ns for p in images}
    todo = [p for p in images if cache.get(p.name, {}).get("mtime_ns") != stamp[p.name]]
    if todo:
        if detector is None:
            from handface.detect.mediapipe_detector import MediaPipeDetector

            detector = MediaPipeDetector(segment_person=False)
        for path in tqdm(todo, desc="detect (wild)", unit="image", disable=not progress):
            loaded = load_image(path)
            found = detector(loaded.rgb)
            entry: dict = {"mtime_ns": stamp[path.name], "size": list(loaded.rgb.shape[1::-1])}
            entry["focal_35mm"] = loaded.focal_35mm
            if found.faces:
                entry["face"] = found.faces[0].landmarks[:, :2].round(2).tolist()
            entry["hands"] = {h.side: h.keypoints[:, :2].round(2).tolist() for h in found.hands}
            cache[path.name] = entry
        kept = {name: cache[name] for name in stamp if name in cache}
        atomic_write_bytes(cache_path, json.dumps(kept).encode())
        cache = kept
    return {name: entry for name, entry in cache.items() if name in stamp and "face" in entry}


class WildImageSet(Dataset):
    """Unlabelled photos with their cached detections as DICE training items (see module)."""

    def __init__(
        self,
        root: str | Path,
        mirror: MirrorMaps,
        num_face_vertices: int,
        num_hand_vertices: int,
        num_head_shape: int,
        crop: CropConfig,
        augment: AugmentConfig | None,
        seed: int = 0,
        detector=None,
        progress: bool = True,
    ) -> None:
        self.root = Path(root)
        self.detections = detect_folder(self.root, detector, progress)
        if not self.detections:
            raise InputError(f"--wild {root}: MediaPipe found a face in none of the images")
        self.names = sorted(self.detections)
        self.mirror = mirror
        self.num_face_vertices = num_face_vertices
        self.num_hand_vertices = num_hand_vertices
        self.num_head_shape = num_head_shape
        self.crop_config = crop
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.names)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, Tensor]:

        from handface.detect.images import load_image
        from handface.fit.camera import camera_for_image

        name = self.names[index]
        entry = self.detections[name]
        rng = np.random.default_rng([self.seed, self.epoch, index, 7])
        landmarks = np.asarray(entry["face"], np.float64)
        face = landmarks[list(MEDIAPIPE_INDEX_OF_68)]
        hands = {side: np.asarray(k, np.float64) for side, k in entry["hands"].items()}
        sides = sorted(hands)
        side = "right" if not sides else sides[int(rng.integers(0, len(sides)))]
        # framed from all 478 landmarks, as synthetic training and inference frame their crops
        crop = crop_box(np.concatenate([landmarks, *hands.values()]), self.crop_config)
        crop = jittered_crop(crop, side, rng, self.augment)
        loaded = load_image(self.root / name)
        pixels = crop.apply(loaded.rgb)
        if self.augment is not None:
            pixels = photometric(pixels, rng, self.augment)
        width, height = entry["size"]
        K = camera_for_image(width, height, exif_focal_35mm=entry.get("focal_35mm")).K.float()
        face2d = torch.from_numpy(crop.to_normalised(face)).float()
        if crop.flipped:
            face2d = face2d[self.mirror.landmarks68]
        nf = self.num_face_vertices
        item = {
            "image": image_tensor(pixels),
            "has_3d": torch.tensor(0.0),
            "face_vertices": torch.zeros(nf, 3),
            "face_vertices_deformed": torch.zeros(nf, 3),
            "deformation": torch.zeros(nf, 3),
            "face_contact": torch.zeros(nf),
            "face_keypoints3d": torch.zeros(68, 3),
            "face_keypoints2d": face2d,
            "head_rotation": torch.eye(3),
            "face_params_valid": torch.tensor(0.0),
            "head_expression": torch.zeros(self.mirror.expression.shape[0]),
            "head_shape": torch.zeros(self.num_head_shape),
            **crop_targets(crop, K),
            "has_hand": torch.tensor(float(side in hands)),
            **empty_hand_targets(self.num_hand_vertices),
        }
        if side in hands:
            item["hand_keypoints2d"] = torch.from_numpy(crop.to_normalised(hands[side])).float()
        depth = self._depth(name, face, hands.get(side))
        if crop.flipped:  # the face points are re-indexed with the mirror, so are their depths
            order = torch.cat([torch.arange(21), 21 + self.mirror.landmarks68])
            depth = {k: v[order] for k, v in depth.items()}
        item.update(depth)
        return item

    def _depth(self, name: str, face: np.ndarray, hand: np.ndarray | None) -> dict[str, Tensor]:
        """Depth-map readings at the 21 hand and 68 face keypoints (0 / invalid without)."""
        depth = torch.zeros(21 + 68)
        valid = torch.zeros(21 + 68)
        path = self.root / (Path(name).stem + DEPTH_SUFFIX)
        if path.is_file():
            try:
                values = np.load(path, allow_pickle=False)
            except ValueError as error:
                raise InputError(f"cannot read {path} as a depth map: {error}") from None
            points = [np.full((21, 2), np.nan) if hand is None else hand, face]
            points = np.concatenate(points)
            height, width = values.shape[:2]
            if [width, height] != list(self.detections[name]["size"]):
                raise InputError(
                    f"{path} is {width}x{height} but its photo is "
                    f"{'x'.join(map(str, self.detections[name]['size']))}; give an aligned map"
                )
            inside = np.isfinite(points).all(1)
            col = np.clip(np.nan_to_num(points[:, 0]).round().astype(int), 0, width - 1)
            row = np.clip(np.nan_to_num(points[:, 1]).round().astype(int), 0, height - 1)
            read = values[row, col].astype(np.float32)
            ok = inside & np.isfinite(read) & (read > 0)
            depth = torch.from_numpy(np.where(ok, read, 0.0).astype(np.float32))
            valid = torch.from_numpy(ok.astype(np.float32))
        return {"keypoint_depth": depth, "keypoint_depth_valid": valid}


class MixedDataset(Dataset):
    """Synthetic items followed by wild ones, with one ``set_epoch`` for both."""

    def __init__(self, *parts: Dataset) -> None:
        self.parts = parts
        self.offsets = np.cumsum([0, *[len(p) for p in parts]])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def set_epoch(self, epoch: int) -> None:
        for part in self.parts:
            if hasattr(part, "set_epoch"):
                part.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        part = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return self.parts[part][index - int(self.offsets[part])]
