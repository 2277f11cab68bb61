"""Capture evaluated through the real detector: synthetic images -> reconstruct -> eval.

Renders (or reuses) a synthetic dataset, captures every image with the real MediaPipe detector
and the known intrinsics of the synthetic camera (as Decaf's evaluation uses its calibrated
cameras), saves each result as a Capture folder, and scores the folders with the benchmark
metrics (:mod:`handface.eval.folders`) — once per mode (``separate``: independent head and
hand fits; ``full``: interaction terms and deformation).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from handface.errors import HandfaceError
from handface.fit.single_image import ReconstructConfig, Reconstructor

REPORTED_KEYS: tuple[str, ...] = (
    "pve_mm",
    "col_dist_mm",
    "non_collision",
    "touchness",
    "f_score",
    "contact_f1_face",
    "contact_f1_hand",
    "deform_err_mm",
    "rel_trans_mm",
    "false_touch_rate",
)
"""The figures ``handface bench fit`` prints per mode."""


def capture_dataset(
    data: Path,
    out: Path,
    mode: str,
    *,
    reconstructor: Reconstructor | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Capture every image of the synthetic dataset ``data`` into ``out/<key>/``.

    ``reconstructor``: any callable ``(image, K=...) -> Capture`` (fit, DICE, hybrid).
    Returns timing and coverage figures: ``s_per_image`` (median wall time of capture and
    saving over images where one hand was found; ``s_per_image_all``: over every saved
    image), ``network_s`` (median of the captures'
    ``network_s`` timing, where they report one), ``num_images``, ``num_captured``,
    ``num_failed`` (neither face nor hand found), ``num_no_face`` (not saved: unscorable).
    """
    from handface.data.synth import read_meta
    from handface.io.capture_folder import save_capture

    meta = read_meta(data)
    reconstructor = reconstructor or Reconstructor(ReconstructConfig(mode=mode))
    one_hand_times, all_times, network_times, failed, no_face = [], [], [], 0, 0
    for item in tqdm(meta["items"], desc=f"capture ({mode})", unit="image", disable=not progress):
        key = item["key"]
        K = torch.as_tensor(np.load(data / "labels" / f"{key}.npz")["K"], dtype=torch.float64)
        start = time.perf_counter()
        try:
            capture = reconstructor(data / "images" / f"{key}.png", K=K)
        except HandfaceError:
            failed += 1
            continue
        if capture.face is None:
            # The metrics are head-centred: a hand-only capture cannot be scored; it counts
            # as missing, and is reported as such.
            no_face += 1
            continue
        save_capture(capture, out / key, overwrite=True)
        seconds = time.perf_counter() - start
        if "network_s" in capture.timings:
            network_times.append(capture.timings["network_s"])
        all_times.append(seconds)
        if len(capture.hands) == 1:
            one_hand_times.append(seconds)
    return {
        "s_per_image": statistics.median(one_hand_times) if one_hand_times else float("nan"),
        "s_per_image_all": statistics.median(all_times) if all_times else float("nan"),
        "network_s": statistics.median(network_times) if network_times else float("nan"),
        "num_images": len(meta["items"]),
        "num_captured": len(meta["items"]) - failed,
        "num_failed": failed,
        "num_no_face": no_face,
    }


def evaluate_modes(
    data: Path,
    out: Path,
    modes: Sequence[str] = ("separate", "full"),
    *,
    progress: bool = True,
) -> dict[str, float]:
    """Capture and score ``data`` in each mode; flat figures ``<mode>_<metric>``."""
    from handface.eval.folders import evaluate_folders

    figures: dict[str, float] = {}
    reconstructor = Reconstructor()
    for mode in modes:
        reconstructor.config = ReconstructConfig(mode=mode)
        folder = out / mode
        timing = capture_dataset(data, folder, mode, reconstructor=reconstructor, progress=progress)
        scores = evaluate_folders(folder, data, allow_missing=True, progress=progress).figures
        for key in REPORTED_KEYS:
            figures[f"{mode}_{key}"] = float(scores[key])
        figures[f"{mode}_num_scored"] = float(scores["num_frames"])
        figures[f"{mode}_num_no_touch_frames"] = float(scores["num_no_touch_frames"])
        figures[f"{mode}_s_per_image"] = timing["s_per_image"]
        figures[f"{mode}_num_failed"] = float(timing["num_failed"])
        figures[f"{mode}_num_no_face"] = float(timing["num_no_face"])
    if "full" in modes:
        figures["s_per_image"] = figures["full_s_per_image"]
    return figures
