"""The top-level API: handface.reconstruct(image) as `handface reconstruct` does it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import handface
from handface.errors import InputError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hand_touching_ear.jpg"


def test_reconstruct_a_path_and_the_same_pixels_as_an_array():
    from_path = handface.reconstruct(EXAMPLE)
    assert from_path.face is not None and from_path.source == str(EXAMPLE)
    rgb = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    from_array = handface.reconstruct(rgb, focal=float(from_path.K[0, 0]))
    # same pixels and focal length: the same face (the array has no EXIF, so the focal is given)
    assert np.allclose(from_array.face.vertices_deformed, from_path.face.vertices_deformed,
                       atol=1e-4)  # fmt: skip
    assert sorted(from_array.hands) == sorted(from_path.hands)


def test_bad_options_are_refused():
    with pytest.raises(InputError, match="method must be one of"):
        handface.make_reconstructor("magic")
    with pytest.raises(InputError, match="checkpoint goes with"):
        handface.make_reconstructor("fit", checkpoint="model.pt")
    with pytest.raises(InputError, match="DICE takes RGB"):
        handface.reconstruct(EXAMPLE, "dice", depth=np.zeros((4, 4)))
