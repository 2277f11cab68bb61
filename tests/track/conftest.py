"""Fixtures shared by the tracking tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """One synthetic approach -> press -> hold -> release sequence of 8 frames."""
    from handface.synth import generate

    return generate(tmp_path_factory.mktemp("clip") / "data", num=1, seed=5, frames=8,
                    size=256, progress=False)  # fmt: skip
