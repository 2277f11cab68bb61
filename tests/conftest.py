"""Shared fixtures: the Anny models are built once per session (their first build is slow)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED_MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


@pytest.fixture(scope="session")
def head_model():
    from handface.models import AnnyHeadModel

    return AnnyHeadModel()


@pytest.fixture(scope="session")
def head_model64():
    from handface.models import AnnyHeadModel

    return AnnyHeadModel(dtype=torch.float64)


@pytest.fixture(scope="session")
def right_hand():
    from handface.models import AnnyHandModel

    return AnnyHandModel("right")


@pytest.fixture(scope="session")
def left_hand():
    from handface.models import AnnyHandModel

    return AnnyHandModel("left")


@pytest.fixture(scope="session")
def shared_media() -> Path:
    if not SHARED_MEDIA.is_dir():
        pytest.skip("../shared/media is not present")
    return SHARED_MEDIA


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory):
    """Six synthetic samples at 160 px (seed 8: one and two hands, touching, hovering near the
    skin, occluding)."""
    from handface.synth import generate

    return generate(
        tmp_path_factory.mktemp("synth") / "data", num=6, seed=8, size=160, progress=False
    )


@pytest.fixture(scope="session")
def synth_sequence(tmp_path_factory):
    """One synthetic sequence of eight frames at 96 px."""
    from handface.synth import generate

    return generate(
        tmp_path_factory.mktemp("synth_seq") / "data", num=1, seed=5, frames=8, size=96,
        progress=False,
    )  # fmt: skip


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    """One synthetic approach -> press -> hold -> release sequence of 8 frames (256 px), for
    the tracking and avatar tests."""
    from handface.synth import generate

    return generate(tmp_path_factory.mktemp("clip") / "data", num=1, seed=5, frames=8,
                    size=256, progress=False)  # fmt: skip
