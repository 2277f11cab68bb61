"""The default (embedded) models: what a consumer uses when it is not given one.

Consumers (fitting, tracking) take any :class:`~handface.models.base.HeadModel` /
:class:`~handface.models.base.HandModel`; only this factory names the backend of the defaults,
the Anny models (no licensed files needed).

Example:
    >>> head, right = default_head_model(), default_hand_model("right")  # doctest: +SKIP
"""

from __future__ import annotations

import torch

from handface.models.base import HandModel, HandSide, HeadModel


def default_head_model(dtype: torch.dtype = torch.float32) -> HeadModel:
    """The Anny head (4538 vertices, 52 ARKit actions, MediaPipe's 478 landmarks)."""
    from handface.models.anny_backend import AnnyHeadModel

    return AnnyHeadModel(dtype=dtype)


def default_hand_model(side: HandSide, dtype: torch.dtype = torch.float32) -> HandModel:
    """The Anny hand of ``side`` (1609 vertices, 20 joint-limited degrees of freedom)."""
    from handface.models.anny_backend import AnnyHandModel

    return AnnyHandModel(side, dtype=dtype)
