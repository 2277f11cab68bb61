"""Expression files: names and values checked, edits applied by name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handface.avatar.expressions import apply_expression, read_expressions
from handface.errors import InputError

LABELS = ["jawOpen", "mouthSmileLeft", "eyeBlinkLeft"]


def _write(tmp_path, document) -> object:
    path = tmp_path / "expressions.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def _document(expressions) -> dict:
    return {"format": "handface-expressions", "version": 1, "expressions": expressions}


def test_read_and_apply(tmp_path):
    path = _write(tmp_path, _document([{"jawOpen": 0.6}, {}, {"eyeBlinkLeft": 1}]))
    edits = read_expressions(path, LABELS, (0.0, 1.0))
    assert edits == [{"jawOpen": 0.6}, {}, {"eyeBlinkLeft": 1.0}]
    tracked = np.array([0.1, 0.2, 0.3], np.float32)
    assert np.allclose(apply_expression(tracked, edits[0], LABELS), [0.6, 0.2, 0.3])
    assert np.allclose(apply_expression(tracked, edits[1], LABELS), tracked)
    assert np.allclose(tracked, [0.1, 0.2, 0.3])  # the frame's own is not changed in place


@pytest.mark.parametrize(
    "document, message",
    [
        ("[", "not a JSON expression file"),
        ({"expressions": [{}]}, "not an expression file"),
        ({**_document([{}]), "version": 3}, "version 3"),
        (_document([]), "non-empty list"),
        (_document([["jawOpen", 1]]), "must map coefficient names"),
        (_document([{"jawopen": 0.5}]), "unknown coefficient 'jawopen'"),
        (_document([{"jawOpen": "wide"}]), "needs a finite number"),
        (_document([{"jawOpen": 1.5}]), "outside the model's range"),
    ],
)
def test_malformed_files_are_refused(tmp_path, document, message):
    with pytest.raises(InputError, match=message):
        read_expressions(_write(tmp_path, document), LABELS, (0.0, 1.0))


def test_unbounded_models_take_any_finite_value(tmp_path):
    path = _write(tmp_path, _document([{"jawOpen": -3.0}]))
    assert read_expressions(path, LABELS, None) == [{"jawOpen": -3.0}]
    with pytest.raises(InputError, match="does not exist"):
        read_expressions(tmp_path / "none.json", LABELS, None)
