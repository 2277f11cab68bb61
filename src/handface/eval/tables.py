"""Plain-text benchmark tables shaped like DICE's Table 1 and Table 2.

:func:`format_tables` prints the figures of :func:`handface.eval.metrics.summarize` as

* Table 1: PVE, MPJPE, PA-MPJPE, collision distance (mm), non-collision, touchness and
  F-score (%), and the time per image when any row has one;
* Table 2: per-vertex contact F-score, precision, recall and accuracy for face and hand;

optionally followed by reference rows such as :data:`PUBLISHED_DECAF_TEST` (the numbers the
DICE paper reports on the Decaf test split). Missing or nan values print as ``-``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["PUBLISHED_DECAF_TEST", "PUBLISHED_LABEL", "format_tables"]

PUBLISHED_LABEL = "published, Decaf test split"
"""Heading of the reference rows in the tables."""

PUBLISHED_DECAF_TEST: dict[str, dict[str, float]] = {
    "Decaf": {
        "pve_mm": 9.65,
        "col_dist_mm": 1.03,
        "non_collision": 83.6,
        "touchness": 96.6,
        "f_score": 89.6,
        "seconds_per_image": 19.59,
        "contact_f1_face": 0.57,
        "contact_precision_face": 0.69,
        "contact_recall_face": 0.49,
        "contact_accuracy_face": 0.99,
        "contact_f1_hand": 0.47,
        "contact_precision_hand": 0.62,
        "contact_recall_hand": 0.39,
        "contact_accuracy_hand": 0.98,
    },
    "Benchmark (MediaPipe + FLAME fit)": {
        "pve_mm": 17.7,
        "col_dist_mm": 19.3,
        "non_collision": 64.2,
        "touchness": 73.2,
        "f_score": 68.4,
        "seconds_per_image": 16.40,
    },
    "PIXIE (hand+face)": {
        "pve_mm": 26.3,
        "col_dist_mm": 7.04,
        "non_collision": 75.9,
        "touchness": 75.1,
        "f_score": 75.5,
    },
    "PIXIE (whole body)": {
        "pve_mm": 39.7,
        "col_dist_mm": 0.11,
        "non_collision": 97.1,
        "touchness": 51.8,
        "f_score": 67.6,
        "seconds_per_image": 0.070,
    },
    "PIXIE-R": {
        "pve_mm": 11.0,
        "mpjpe_mm": 22.0,
        "pa_mpjpe_mm": 21.2,
        "col_dist_mm": 0.27,
        "non_collision": 62.6,
        "touchness": 83.0,
        "f_score": 72.0,
        "seconds_per_image": 0.070,
    },
    "METRO*": {
        "pve_mm": 11.8,
        "mpjpe_mm": 15.4,
        "pa_mpjpe_mm": 11.9,
        "col_dist_mm": 0.08,
        "non_collision": 80.7,
        "touchness": 54.8,
        "f_score": 65.2,
        "seconds_per_image": 0.103,
    },
    "FastMETRO*": {
        "pve_mm": 9.27,
        "mpjpe_mm": 11.8,
        "pa_mpjpe_mm": 9.41,
        "col_dist_mm": 0.09,
        "non_collision": 82.2,
        "touchness": 55.5,
        "f_score": 66.2,
        "seconds_per_image": 0.110,
    },
    "DICE": {
        "pve_mm": 8.32,
        "mpjpe_mm": 9.95,
        "pa_mpjpe_mm": 7.27,
        "col_dist_mm": 0.16,
        "non_collision": 66.6,
        "touchness": 79.9,
        "f_score": 72.7,
        "seconds_per_image": 0.088,
        "contact_f1_face": 0.61,
        "contact_precision_face": 0.64,
        "contact_recall_face": 0.57,
        "contact_accuracy_face": 1.00,
        "contact_f1_hand": 0.50,
        "contact_precision_hand": 0.55,
        "contact_recall_hand": 0.45,
        "contact_accuracy_hand": 0.98,
    },
}
"""DICE paper (arXiv 2406.17988) Tables 1 and 2, Decaf test split (view 108, subjects S1, S3,
S6), with the keys of :func:`handface.eval.metrics.summarize`; absent keys were not reported
("*": retrained by the DICE authors)."""


@dataclass(frozen=True)
class _Column:
    key: str
    header: str
    decimals: int


_TABLE1 = (
    _Column("pve_mm", "PVE (mm)", 2),
    _Column("mpjpe_mm", "MPJPE (mm)", 2),
    _Column("pa_mpjpe_mm", "PA-MPJPE (mm)", 2),
    _Column("col_dist_mm", "Col. Dist. (mm)", 2),
    _Column("non_collision", "Non-Col. (%)", 1),
    _Column("touchness", "Touchness (%)", 1),
    _Column("f_score", "F-Score (%)", 1),
)
_TIME = _Column("seconds_per_image", "Time (s/img)", 3)
_CONTACT_FIELDS = (
    ("f1", "F-Score"),
    ("precision", "Precision"),
    ("recall", "Recall"),
    ("accuracy", "Accuracy"),
)


def _contact_columns(part: str) -> tuple[_Column, ...]:
    return tuple(_Column(f"contact_{name}_{part}", header, 2) for name, header in _CONTACT_FIELDS)


def _cell(row: Mapping[str, float], column: _Column) -> str:
    value = row.get(column.key)
    if value is None:
        return "-"
    value = float(value)
    if math.isnan(value):
        return "-"
    return f"{value:.{column.decimals}f}"


def _has_any(rows: Mapping[str, Mapping[str, float]], columns: tuple[_Column, ...]) -> bool:
    return any(_cell(row, c) != "-" for row in rows.values() for c in columns)


def _render(
    title: str,
    ours: Mapping[str, Mapping[str, float]],
    references: Mapping[str, Mapping[str, float]],
    columns: tuple[_Column, ...],
    groups: tuple[tuple[str, int], ...] = (),
) -> str:
    """Label column left-aligned, value columns right-aligned; ``groups`` are spanning
    headers ``(name, number of columns)`` over the value columns."""
    indent = "  "
    labels = ["method", *ours, *(indent + name for name in references)]
    label_width = max(len(s) for s in labels)
    widths = [
        max(
            len(c.header),
            *(len(_cell(r, c)) for r in ours.values()),
            *(len(_cell(r, c)) for r in references.values()),
        )
        for c in columns
    ]
    gap = "  "

    def line(label: str, cells: list[str]) -> str:
        values = gap.join(cell.rjust(w) for cell, w in zip(cells, widths, strict=True))
        return (label.ljust(label_width) + gap + values).rstrip()

    out = [title]
    if groups:
        parts, start = [], 0
        for name, span in groups:
            span_width = sum(widths[start : start + span]) + len(gap) * (span - 1)
            parts.append(name.center(span_width, "-"))
            start += span
        out.append((" " * label_width + gap + gap.join(parts)).rstrip())
    header = line("method", [c.header for c in columns])
    out.append(header)
    out.append("=" * len(header))
    for name, row in ours.items():
        out.append(line(name, [_cell(row, c) for c in columns]))
    if references:
        out.append("-" * len(header))
        out.append(PUBLISHED_LABEL + ":")
        for name, row in references.items():
            out.append(line(indent + name, [_cell(row, c) for c in columns]))
    return "\n".join(out)


def format_tables(
    figures: Mapping[str, float],
    references: Mapping[str, Mapping[str, float]] | None = None,
    *,
    name: str = "handface",
) -> str:
    """Two aligned plain-text tables of the benchmark figures.

    Args:
        figures: the dict of :func:`handface.eval.metrics.summarize` (missing keys print as
            ``-``; ``seconds_per_image`` adds a time column).
        references: extra rows printed beneath ours under the heading
            ``"published, Decaf test split:"``, e.g. :data:`PUBLISHED_DECAF_TEST`. Table 2
            lists only the references that report contact figures.
        name: the label of our row.

    Example:
        >>> text = format_tables({"pve_mm": 8.5, "f_score": 70.0}, PUBLISHED_DECAF_TEST)
        >>> "PVE (mm)" in text and "8.50" in text and "8.32" in text
        True
    """
    references = dict(references or {})
    ours = {name: figures}
    table1 = _TABLE1
    if _has_any(ours, (_TIME,)) or _has_any(references, (_TIME,)):
        table1 = (*table1, _TIME)
    count = ""
    if "num_frames" in figures:
        count = f" ({int(figures['num_frames'])} frames"
        if "num_touch_frames" in figures:
            count += f", {int(figures['num_touch_frames'])} with ground-truth touch"
        count += ")"
    first = _render(
        f"Table 1. Reconstruction and interaction plausibility{count}",
        ours,
        references,
        table1,
    )
    contact = _contact_columns("face") + _contact_columns("hand")
    contact_refs = {k: v for k, v in references.items() if _has_any({k: v}, contact)}
    second = _render(
        "Table 2. Contact estimation (per vertex, probability > 0.5)",
        ours,
        contact_refs,
        contact,
        groups=((" Face ", 4), (" Hand ", 4)),
    )
    return first + "\n\n" + second + "\n"
