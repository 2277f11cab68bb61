"""``handface reconstruct``: capture several images into one Capture folder each.

``OUT/<image name without suffix>/`` receives ``result.json``, ``face.ply``, ``hand_*.ply``,
``params.npz`` and ``overlay.png`` (:func:`handface.io.capture_folder.save_capture`). Every
input path and every output folder is checked before the first image is processed, so a typo
or an existing result stops the call with nothing written. An image that cannot be captured
(unreadable, no face and no hand) is reported in one line and the others still go through.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from handface.capture import Capture
from handface.errors import HandfaceError, InputError
from handface.fit.single_image import ReconstructConfig, Reconstructor
from handface.io.files import refuse_existing


@dataclass
class ImageOutcome:
    """What happened to one input image."""

    source: Path
    folder: Path | None = None
    """The Capture folder written, or ``None`` when the image failed."""
    error: str | None = None
    seconds: float = 0.0
    """Wall time of capture and saving."""
    summary: str = ""


@dataclass
class BatchReport:
    outcomes: list[ImageOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[ImageOutcome]:
        return [o for o in self.outcomes if o.error is not None]


def load_depth(path: Path, scale: float) -> np.ndarray:
    """A depth map in metres: ``.npy`` (metres) or a 16-bit PNG (units of ``scale`` metres)."""
    if not path.is_file():
        raise InputError(f"no such depth file: {path}")
    if path.suffix.lower() == ".npy":
        try:
            depth = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise InputError(f"cannot read {path} as a depth map: {error}") from None
        return np.asarray(depth, dtype=np.float64)
    import cv2

    depth = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH)
    if depth is None or depth.ndim != 2:
        raise InputError(f"cannot read {path} as a one-channel depth image (.npy or 16-bit PNG)")
    return depth.astype(np.float64) * scale


def describe(capture: Capture) -> str:
    """One line for the terminal: what was found and whether it touches."""
    found = (["face"] if capture.face is not None else []) + [
        f"{side} hand" for side in sorted(capture.hands)
    ]
    touching = [side for side, hand in capture.hands.items() if hand.touching]
    if touching:
        where = ", ".join(capture.touched_regions) or "the face"
        verdict = f"{' and '.join(touching)} hand touching {where}"
    else:
        verdict = "no contact"
    return f"{' + '.join(found)}; {verdict}"


def output_folders(images: Sequence[Path], out: Path, overwrite: bool) -> list[Path]:
    """The Capture folder of each image; raises before anything is written on a clash."""
    folders = [out / image.stem for image in images]
    seen: dict[Path, Path] = {}
    for image, folder in zip(images, folders, strict=True):
        if folder in seen:
            raise InputError(
                f"{seen[folder]} and {image} would both write {folder}; rename one of them"
            )
        seen[folder] = image
        refuse_existing(folder, overwrite)
    return folders


def reconstruct_files(
    images: Sequence[Path],
    out: Path,
    *,
    config: ReconstructConfig | None = None,
    overwrite: bool = False,
    depth: Path | None = None,
    depth_scale: float = 0.001,
    reconstructor: Reconstructor | None = None,
    progress: bool = True,
    report: Callable[[ImageOutcome], None] | None = None,
) -> BatchReport:
    """Capture each image into ``out/<stem>/`` (rules: module docstring)."""
    from handface.io.capture_folder import save_capture

    images = [Path(image) for image in images]
    if not images:
        raise InputError("give at least one image")
    for image in images:
        if not image.exists():
            raise InputError(f"no such file: {image}")
        if image.is_dir():
            raise InputError(f"{image} is a folder; give image files (e.g. {image}/*.jpg)")
    if depth is not None and len(images) != 1:
        raise InputError("--depth goes with exactly one image")
    depth_map = None if depth is None else load_depth(Path(depth), depth_scale)
    folders = output_folders(images, Path(out), overwrite)
    reconstructor = reconstructor or Reconstructor(config)
    result = BatchReport()
    for image, folder in tqdm(
        list(zip(images, folders, strict=True)),
        desc="reconstruct",
        unit="image",
        disable=not progress or len(images) == 1,
    ):
        start = time.perf_counter()
        outcome = ImageOutcome(source=image)
        try:
            capture = reconstructor(image, depth=depth_map)
            save_capture(capture, folder, overwrite=overwrite)
            outcome.folder = folder
            outcome.summary = describe(capture)
        except HandfaceError as error:
            outcome.error = str(error)
        outcome.seconds = time.perf_counter() - start
        result.outcomes.append(outcome)
        if report is not None:
            report(outcome)
    return result
