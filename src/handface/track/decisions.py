"""Temporally consistent touching verdicts.

A per-frame decision (the fit's contact gate, or DICE's touch probability) flickers where the
evidence is borderline. A verdict only changes when the evidence holds for ``min_run`` frames:
shorter runs of either verdict take their neighbours' value, unless their evidence is
``strong`` (mean score at least ``strong`` away from 0.5: a quick, clear tap survives).
Runs are merged shortest first, so a long contact with one borderline frame stays one contact.

Example:
    >>> stable_verdicts(np.array([0.0, 0.0, 0.6, 0.0, 0.0, 0.9, 0.9, 0.9, 0.9]), min_run=3)
    array([False, False, False, False, False,  True,  True,  True,  True])
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Bool, Float


def _runs(verdicts: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of runs of equal values (end exclusive)."""
    edges = np.flatnonzero(verdicts[1:] != verdicts[:-1]) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(verdicts)]])
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def stable_verdicts(
    scores: Float[np.ndarray, " T"],
    *,
    threshold: float = 0.5,
    min_run: int = 3,
    strong: float = 0.4,
    valid: Bool[np.ndarray, " T"] | None = None,
) -> Bool[np.ndarray, " T"]:
    """Per-frame touching verdicts from per-frame scores in [0, 1] (module docstring).

    Args:
        scores: evidence per frame that the hand touches (> ``threshold``: touching).
        min_run: the shortest run of one verdict kept on weak evidence.
        strong: a short run whose mean score is at least this far from ``threshold`` is kept.
        valid: frames where the hand exists; the others are not touching and split runs.
    """
    scores = np.asarray(scores, dtype=np.float64)
    frames = scores.shape[0]
    valid = np.ones(frames, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    verdicts = (scores > threshold) & valid
    if frames == 0 or min_run <= 1:
        return verdicts
    # segments of valid frames are smoothed independently
    t = 0
    while t < frames:
        if not valid[t]:
            t += 1
            continue
        end = t
        while end < frames and valid[end]:
            end += 1
        verdicts[t:end] = _smooth_segment(
            verdicts[t:end], scores[t:end], threshold, min_run, strong
        )
        t = end
    return verdicts


def _smooth_segment(
    verdicts: np.ndarray, scores: np.ndarray, threshold: float, min_run: int, strong: float
) -> np.ndarray:
    verdicts = verdicts.copy()
    while True:
        runs = _runs(verdicts)
        if len(runs) <= 1:
            return verdicts
        weak = [
            (end - start, start, end)
            for start, end in runs
            if end - start < min_run and abs(scores[start:end].mean() - threshold) < strong
        ]
        if not weak:
            return verdicts
        _, start, end = min(weak)
        verdicts[start:end] = ~verdicts[start]


def continued_verdicts(
    scores: Float[np.ndarray, " T"],
    valid: Bool[np.ndarray, " T"],
    history: Float[np.ndarray, " H"] | None,
    *,
    min_run: int = 3,
) -> Bool[np.ndarray, " T"]:
    """:func:`stable_verdicts` of a window whose preceding frames' scores are ``history``
    (already committed, all valid): they give the window's first frames their context."""
    if history is None or not len(history):
        return stable_verdicts(scores, min_run=min_run, valid=valid)
    full = np.concatenate([history, scores])
    full_valid = np.concatenate([np.ones(len(history), bool), valid])
    return stable_verdicts(full, min_run=min_run, valid=full_valid)[len(history) :]
