"""``handface reconstruct``: capture several images into one Capture folder each.

``OUT/<image name without suffix>/`` receives ``result.json``, ``face.ply``, ``hand_*.ply``,
``params.npz`` and ``overlay.png`` (:func:`handface.io.capture_folder.save_capture`). Every
input path and every output folder is checked before the first image is processed, so a typo
or an existing result stops the call with nothing written. An image that cannot be captured
(unreadable, no face and no hand) is reported in one line and the others still go through.

Interruptions: each folder appears whole when its image is done, so a Ctrl-C or SIGTERM keeps
the finished images' folders and leaves nothing of the one under way. ``resume=True``
(``--resume``) skips every image whose folder is complete
(:func:`handface.io.capture_folder.capture_complete`) and captures the rest. ``out`` is locked
for the call (:func:`handface.io.files.output_lock`): a second batch into it is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from handface.capture import Capture
from handface.detect.images import missing_file_message
from handface.errors import HandfaceError, InputError
from handface.fit.single_image import ReconstructConfig, Reconstructor
from handface.io.files import output_lock, refuse_existing


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
    skipped: list[Path] = field(default_factory=list)
    """Images left out by ``resume`` because their folder was already complete."""

    @property
    def failed(self) -> list[ImageOutcome]:
        return [o for o in self.outcomes if o.error is not None]


def load_depth(path: Path, scale: float) -> np.ndarray:
    """A depth map in metres: ``.npy`` (metres) or a 16-bit PNG (units of ``scale`` metres).
    NaN, infinite and negative values are kept: the capture sets them to 0 (no depth) with a
    warning (:class:`~handface.fit.single_image.Reconstructor`)."""
    if not path.is_file():
        raise InputError(f"no such depth file: {path}")
    if path.suffix.lower() == ".npy":
        try:
            depth = np.load(path, allow_pickle=False)
        except Exception as error:  # empty, truncated, pickled objects, not an .npy at all
            reason = " ".join(str(error).split()) or type(error).__name__
            raise InputError(f"cannot read {path} as a depth map: {reason}") from None
        if depth.ndim == 3 and depth.shape[2] == 1:
            depth = depth[..., 0]
        if depth.ndim != 2 or not (
            np.issubdtype(depth.dtype, np.floating) or np.issubdtype(depth.dtype, np.integer)
        ):
            raise InputError(f"{path} holds a {depth.dtype} array of shape {depth.shape}; a "
                             "depth map is (H, W) numbers in metres")  # fmt: skip
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


def output_folders(
    images: Sequence[Path], out: Path, overwrite: bool, resume: bool = False
) -> list[Path]:
    """The Capture folder of each image; raises before anything is written on a clash (with
    ``resume``, a complete folder is no clash: its image is skipped)."""
    from handface.io.capture_folder import capture_complete

    folders = [out / image.stem for image in images]
    seen: dict[Path, Path] = {}
    for image, folder in zip(images, folders, strict=True):
        if folder in seen:
            raise InputError(
                f"{seen[folder]} and {image} would both write {folder}; rename one of them"
            )
        seen[folder] = image
        if not (resume and capture_complete(folder)):
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
    resume: bool = False,
) -> BatchReport:
    """Capture each image into ``out/<stem>/`` (rules: module docstring)."""
    if resume and overwrite:
        raise InputError("--resume keeps the finished results and --overwrite replaces them; "
                         "give one of them")  # fmt: skip
    images = [Path(image) for image in images]
    if not images:
        raise InputError("give at least one image")
    for image in images:
        if not image.exists():
            raise InputError(missing_file_message(str(image)))
        if image.is_dir():
            raise InputError(f"{image} is a folder; give image files (e.g. {image}/*.jpg)")
    if depth is not None and len(images) != 1:
        raise InputError("--depth goes with exactly one image")
    depth_map = None if depth is None else load_depth(Path(depth), depth_scale)
    from handface.io.capture_folder import capture_complete

    with output_lock(Path(out)):
        folders = output_folders(images, Path(out), overwrite, resume)
        result = BatchReport()
        todo = []
        for image, folder in zip(images, folders, strict=True):
            if resume and capture_complete(folder):
                result.skipped.append(image)
            else:
                todo.append((image, folder))
        if result.skipped and progress:
            tqdm.write(f"{len(result.skipped)} of {len(images)} images already done in {out} "
                       f"(--resume); capturing the other {len(todo)}")  # fmt: skip
        if todo:
            reconstructor = reconstructor or Reconstructor(config)
            _capture_each(todo, reconstructor, depth_map, overwrite, progress, report, result)
    return result


def _capture_each(todo, reconstructor, depth_map, overwrite, progress, report, result) -> None:
    from handface.io.capture_folder import save_capture

    for image, folder in tqdm(
        todo, desc="reconstruct", unit="image", disable=not progress or len(todo) == 1
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
