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
