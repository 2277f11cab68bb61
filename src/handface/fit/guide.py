"""Guidance for fitting from a learned prediction (``--method hybrid``).

Fitting alone decides "touching or a few centimetres in front" from size priors; a network that
learned those decisions from data (DICE) can guide it instead. A guide says, per hand side,
where the hand sits relative to the face, whether it touches and which of its vertices do, and
keypoints for hands the detector missed; :class:`~handface.fit.single_image.Reconstructor`
then initialises the hands there, lets the guide decide where the contact term pulls and
whether a hand touches at all, and aligns everything to the landmarks as usual. The guide is
produced by a caller to the right of ``fit`` (``handface.hybrid``), so ``fit`` does not
depend on any network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Float
from torch import Tensor


@dataclass
class HandGuide:
    """What the guide predicts for one hand (camera frame, metres)."""

    side: str
    offset_from_face: Float[Tensor, "3"]
    """Hand keypoint centroid minus face vertex centroid (the relative placement)."""
    contact: Float[Tensor, " Vh"]
    """Per-vertex contact probability of the hand."""
    touching: bool
    """Whether the hand touches the face (decides the contact term)."""
    presence: float
    """Probability that the hand is in the image at all."""
    keypoints2d: Float[np.ndarray, "21 2"]
    """The guide's hand keypoints in the image (used for hands the detector missed)."""
    keypoint_depth: Float[np.ndarray, " 21"]
    """Their depths relative to the wrist in pixel units, as MediaPipe reports them."""
    touch_probability: float | None = None
    """The probability behind ``touching`` (a video tracker weighs it over frames)."""


@dataclass
class InteractionGuide:
    """A guide for one image: per hand side, and what it says about the face."""

    hands: dict[str, HandGuide] = field(default_factory=dict)
    face_contact: Float[Tensor, " V"] | None = None
    """Per-vertex contact probability of the face."""
    seconds: float = 0.0
    """Time the guide took (reported in the capture's timings)."""


GuideFunction = Callable[..., InteractionGuide]
"""``guide(rgb, detections, K) -> InteractionGuide``."""
