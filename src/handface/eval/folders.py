"""Evaluating a folder of results against a synthetic dataset (``handface eval``).

The ground truth is a dataset written by ``handface synth``. Predictions are found per item
key, in this order:

1. ``PRED/labels/<key>.npz`` — another synthetic dataset (or network predictions written in the
   same layout);
2. ``PRED/<key>/params.npz`` — a ``Capture`` folder per image (DESIGN.md), whose ``params.npz``
   stores the same named arrays as the labels (:data:`handface.data.synth_layout.LABEL_KEYS`).

Missing items are an error unless ``allow_missing``: a capture that produced nothing is a
failure of the method, so skipping them must be a visible choice (the count is reported).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from handface.data.synth import load_labels, load_topology, read_meta, sample_from_npz
from handface.errors import InputError
from handface.eval.metrics import FrameMetrics, evaluate_frame, summarize


@dataclass
class FolderEvaluation:
    figures: dict[str, float]
    frames: list[FrameMetrics]
    missing: list[str]


def prediction_path(pred: Path, key: str) -> Path | None:
    """Where the prediction for item ``key`` lives under ``pred``, or ``None``."""
    for candidate in (pred / "labels" / f"{key}.npz", pred / key / "params.npz"):
        if candidate.is_file():
            return candidate
    return None


def _seconds_per_image(pred: Path, keys: list[str]) -> float | None:
    """Median total time of Capture results (``result.json`` ``timings.total_s``), if any."""
    times = []
    for key in keys:
        path = pred / key / "result.json"
        if path.is_file():
            try:
                total = json.loads(path.read_text()).get("timings", {}).get("total_s")
                if total is not None:
                    times.append(float(total))
            except (ValueError, AttributeError, TypeError) as error:  # JSON, shape, number
                raise InputError(
                    f"{path} is not a readable result.json ({type(error).__name__}); "
                    "write the result again with `handface reconstruct`"
                ) from None
    return float(np.median(times)) if times else None


def evaluate_folders(
    pred: Path, gt: Path, *, allow_missing: bool = False, progress: bool = True
) -> FolderEvaluation:
    """Evaluate every item of the synthetic dataset ``gt`` against the results in ``pred``."""
    pred, gt = Path(pred), Path(gt)
    if not pred.is_dir():
        raise InputError(f"--pred {pred} is not a folder")
    meta = read_meta(gt)
    topology = load_topology(gt)
    pred_topology = load_topology(pred) if (pred / "topology.npz").is_file() else topology
    keys = [item["key"] for item in meta["items"]]
    found = {key: prediction_path(pred, key) for key in keys}
    missing = [key for key, path in found.items() if path is None]
    if missing and not allow_missing:
        raise InputError(
            f"{pred} has no result for {len(missing)} of {len(keys)} items (first: {missing[0]}); "
            "pass --allow-missing to score only the others"
        )
    if len(missing) == len(keys):
        raise InputError(f"{pred} has no result for any item of {gt}")
    frames = []
    for key in tqdm(keys, desc="eval", unit="item", disable=not progress):
        if found[key] is None:
            continue
        truth = load_labels(gt, key, topology)
        prediction = sample_from_npz(found[key], key, pred_topology)
        frames.append(evaluate_frame(prediction, truth))
    figures = summarize(frames)
    figures["num_missing"] = len(missing)
    seconds = _seconds_per_image(pred, keys)
    if seconds is not None:
        figures["seconds_per_image"] = seconds
    return FolderEvaluation(figures, frames, missing)
