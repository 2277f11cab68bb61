"""Plain-text benchmark tables: headers, numbers, reference rows, alignment."""

from __future__ import annotations

import doctest
import math

from handface.eval import PUBLISHED_DECAF_TEST, PUBLISHED_LABEL, SUMMARY_KEYS, format_tables
from handface.eval import tables as tables_module

FIGURES = {
    "pve_mm": 12.345,
    "mpjpe_mm": 15.5,
    "pa_mpjpe_mm": 9.876,
    "col_dist_mm": 0.42,
    "non_collision": 80.0,
    "touchness": 90.0,
    "f_score": 84.70588,
    "contact_f1_face": 0.4321,
    "contact_precision_face": 0.5,
    "contact_recall_face": 0.38,
    "contact_accuracy_face": 0.991,
    "contact_f1_hand": math.nan,
    "contact_precision_hand": math.nan,
    "contact_recall_hand": 0.0,
    "contact_accuracy_hand": 0.97,
    "deform_err_mm": 1.5,
    "num_frames": 12,
    "num_touch_frames": 7,
}


def test_doctests_of_tables_module():
    result = doctest.testmod(tables_module)
    assert result.attempted >= 1 and result.failed == 0


def test_tables_contain_headers_and_our_numbers():
    text = format_tables(FIGURES, name="ours")
    for header in (
        "PVE (mm)",
        "MPJPE (mm)",
        "PA-MPJPE (mm)",
        "Col. Dist. (mm)",
        "Non-Col. (%)",
        "Touchness (%)",
        "F-Score (%)",
        "Precision",
        "Recall",
        "Accuracy",
        "Face",
        "Hand",
    ):
        assert header in text, header
    row1 = next(line for line in text.splitlines() if line.startswith("ours"))
    assert row1.split()[1:] == ["12.35", "15.50", "9.88", "0.42", "80.0", "90.0", "84.7"]
    row2 = [line for line in text.splitlines() if line.startswith("ours")][1]
    # nan prints as "-".
    assert row2.split()[1:] == ["0.43", "0.50", "0.38", "0.99", "-", "-", "0.00", "0.97"]
    assert "12 frames, 7 with ground-truth touch" in text
    assert PUBLISHED_LABEL not in text
    assert "Time (s/img)" not in text


def test_tables_show_published_rows_beneath_ours():
    text = format_tables(FIGURES, PUBLISHED_DECAF_TEST)
    lines = text.splitlines()
    assert lines.count(PUBLISHED_LABEL + ":") == 2  # once per table
    ours = lines.index(next(line for line in lines if line.startswith("handface")))
    dice = next(i for i, line in enumerate(lines) if line.strip().startswith("DICE"))
    assert ours < lines.index(PUBLISHED_LABEL + ":") < dice
    dice_row = lines[dice].split()
    assert dice_row[1:] == ["8.32", "9.95", "7.27", "0.16", "66.6", "79.9", "72.7", "0.088"]
    # Decaf did not report MPJPE: "-"; and Table 2 lists only the rows with contact figures.
    decaf_rows = [line.split() for line in lines if line.strip().startswith("Decaf")]
    assert decaf_rows[0][1:4] == ["9.65", "-", "-"]
    assert decaf_rows[1][1:] == ["0.57", "0.69", "0.49", "0.99", "0.47", "0.62", "0.39", "0.98"]
    table2 = text.split("Table 2")[1]
    assert "METRO" not in table2 and "DICE" in table2


def test_columns_are_aligned():
    text = format_tables(FIGURES, PUBLISHED_DECAF_TEST)
    table1 = text.split("\n\n")[0].splitlines()
    header = table1[1]
    # Every value ends where its header ends (right-aligned columns).
    pve_end = header.index("PVE (mm)") + len("PVE (mm)")
    fscore_end = header.index("F-Score (%)") + len("F-Score (%)")
    for line in table1[3:]:
        if line.startswith(("-", PUBLISHED_LABEL)):
            continue
        assert line[pve_end - 1] != " " and line[pve_end] == " ", line
        assert line[fscore_end - 1] != " ", line


def test_published_constants_use_summary_keys():
    for figures in PUBLISHED_DECAF_TEST.values():
        known = set(SUMMARY_KEYS) | {
            "seconds_per_image",
            "contact_precision_face",
            "contact_recall_face",
            "contact_accuracy_face",
            "contact_precision_hand",
            "contact_recall_hand",
            "contact_accuracy_hand",
        }
        assert set(figures) <= known
    assert PUBLISHED_DECAF_TEST["DICE"]["pve_mm"] == 8.32
    assert PUBLISHED_DECAF_TEST["Decaf"]["f_score"] == 89.6
