"""Expression files: new expressions for an avatar's frames (``handface avatar render
--expression FILE``).

::

    {
      "format": "handface-expressions",
      "version": 1,
      "expressions": [                      # one entry per rendered frame (or one for all)
        {"jawOpen": 0.6, "mouthSmileLeft": 0.3},
        {}                                  # this frame keeps its own expression
      ]
    }

Each entry names the head model's expression coefficients (``HeadModel.expression_labels``:
Anny's 52 ARKit facial actions) it sets; the others keep the frame's tracked value. Values must
lie in the model's range (``HeadModel.expression_bounds``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from handface.errors import InputError
from handface.io.files import read_format_json

EXPRESSIONS_FORMAT = "handface-expressions"
EXPRESSIONS_VERSION = 1

ExpressionEdits = list[dict[str, float]]


def read_expressions(
    path: Path, labels: list[str], bounds: tuple[float, float] | None
) -> ExpressionEdits:
    """Read an expression file, checking every name and value.

    Raises:
        InputError: unreadable, another format or a newer version, an unknown coefficient
            name, or a value that is not a finite number within ``bounds``.
    """
    document = read_format_json(path, "expression file", EXPRESSIONS_FORMAT, EXPRESSIONS_VERSION)
    entries = document.get("expressions")
    if not isinstance(entries, list) or not entries:
        raise InputError(f'{path}: "expressions" must be a non-empty list, one entry per frame')
    known = set(labels)
    edits: ExpressionEdits = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InputError(f"{path}: expression {index} must map coefficient names to values")
        unknown = sorted(set(entry) - known)
        if unknown:
            raise InputError(
                f"{path}: expression {index}: unknown coefficient {unknown[0]!r} (the head model "
                f"has e.g. {', '.join(labels[:3])}, ...)"
            )
        for name, value in entry.items():
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise InputError(f"{path}: expression {index} {name}: needs a finite number")
            if bounds is not None and not bounds[0] <= value <= bounds[1]:
                raise InputError(
                    f"{path}: expression {index} {name} = {value} is outside the model's range "
                    f"[{bounds[0]}, {bounds[1]}]"
                )
        edits.append({name: float(value) for name, value in entry.items()})
    return edits


def apply_expression(
    expression: np.ndarray, edit: dict[str, float], labels: list[str]
) -> np.ndarray:
    """``expression`` ((E,)) with the coefficients ``edit`` names set to its values.

    Example:
        >>> apply_expression(np.zeros(3), {"b": 0.5}, ["a", "b", "c"]).tolist()
        [0.0, 0.5, 0.0]
    """
    out = np.array(expression, dtype=np.float32, copy=True)
    for name, value in edit.items():
        out[labels.index(name)] = value
    return out
