"""``--method hybrid``: DICE guides fitting, so each covers the other's weakness.

Fitting aligns meshes to the detected landmarks to the pixel but decides "touching or a few
centimetres in front" from size priors alone; DICE learned that decision (and where hands sit
relative to faces) from data, but its meshes are a network's regression. The hybrid
(:class:`~handface.fit.single_image.Reconstructor` with a DICE guide):

1. runs DICE on the face crop (:class:`~handface.dice.predictor.DicePredictor`);
2. places each fitted hand at DICE's depth relative to the face (the fit's depth is a size
   prior), and adds the hands DICE sees that the detector missed, fitted to DICE's keypoints;
3. lets DICE's touch verdict decide whether a hand touches at all (replacing the size-prior
   gate) and its per-vertex contact probabilities which hand vertices the contact term pulls
   onto the skin;
4. then fitting as usual: landmarks, depth order, collision, and the soft-tissue solver for D.

Example:
    >>> from handface.hybrid import HybridReconstructor             # doctest: +SKIP
    >>> capture = HybridReconstructor("model.pt")("photo.jpg")     # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from dataclasses import replace

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from handface.dice.predictor import HAND_PRESENCE_THRESHOLD, DicePredictor
from handface.fit.guide import HandGuide, InteractionGuide
from handface.fit.single_image import ReconstructConfig, Reconstructor
from handface.geometry.camera import project_points
from handface.geometry.contact import in_contact

GUIDED_HAND_DEPTH_SIGMA = 0.05
"""Relative uncertainty of a hand's depth once DICE placed it (the size prior's: 0.15)."""


def dice_guide(predictor: DicePredictor):
    """A :data:`~handface.fit.guide.GuideFunction` from a DICE predictor."""

    def guide(rgb: np.ndarray, detections, K: Float[Tensor, "3 3"]) -> InteractionGuide:
        start = time.perf_counter()
        placed = predictor.predict(rgb, detections, torch.as_tensor(K).float())
        prediction, centre = placed.prediction, placed.centre
        face_centre = prediction.face.vertices_undeformed[0].mean(0)
        detected = {hand.side for hand in detections.hands}
        hands = {}
        for side, hand in (("right", prediction.right), ("left", prediction.left)):
            presence = float(hand.presence[0])
            if side not in detected and presence < HAND_PRESENCE_THRESHOLD:
                continue
            keypoints = hand.keypoints[0] + centre
            contact = hand.contact[0]
            hands[side] = HandGuide(
                side=side,
                offset_from_face=(hand.keypoints[0].mean(0) - face_centre).double(),
                contact=contact,
                touching=bool(in_contact(hand.touch[0])),
                touch_probability=float(hand.touch[0]),
                presence=presence,
                keypoints2d=project_points(keypoints.double(), torch.as_tensor(K).double())
                .float()
                .numpy(),
                keypoint_depth=relative_keypoint_depth(keypoints, K),
            )
        return InteractionGuide(
            hands=hands,
            face_contact=prediction.face.contact[0],
            seconds=time.perf_counter() - start,
        )

    return guide


def relative_keypoint_depth(
    keypoints: Float[Tensor, "21 3"], K: Float[Tensor, "3 3"]
) -> Float[np.ndarray, " 21"]:
    """Keypoint depths as MediaPipe reports them: relative to the wrist, in pixel units.

    Example:
        >>> K = torch.tensor([[500.0, 0, 100], [0, 500.0, 100], [0, 0, 1]])
        >>> points = torch.zeros(21, 3); points[:, 2] = 0.5; points[1, 2] = 0.51
        >>> float(relative_keypoint_depth(points, K)[1])
        10.0
    """
    keypoints = torch.as_tensor(keypoints).double()
    focal = float(torch.as_tensor(K)[0, 0])
    depth = (keypoints[:, 2] - keypoints[0, 2]) * focal / float(keypoints[:, 2].mean())
    return depth.float().numpy()


class HybridReconstructor(Reconstructor):
    """Fitting guided by DICE (method: module docstring).

    Args:
        checkpoint: DICE weights (``model.pt``); default: the checkpoint shipped with handface.
        config: fitting settings; the hands' depth prior is tightened to DICE's placement.
        focal, detector, head_model, hand_models: as for the fit (injected for tests).
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike | None = None,
        config: ReconstructConfig | None = None,
        *,
        detector=None,
        head_model=None,
        hand_models=None,
    ) -> None:
        config = config or ReconstructConfig()
        config = replace(
            config,
            interaction=replace(config.interaction, hand_depth_sigma=GUIDED_HAND_DEPTH_SIGMA),
        )
        self.dice = DicePredictor(
            checkpoint,
            focal=config.focal,
            detector=detector,
            head_model=head_model,
            hand_models=hand_models,
        )
        super().__init__(
            config,
            guide=dice_guide(self.dice),
            head_model=self.dice.net.head_model,
            hand_models={"right": self.dice.net.hand_model, **(hand_models or {})},
            detector=detector,
        )

    @property
    def detector(self):
        return self.dice.detector

    def __call__(self, image, **kwargs):
        capture = super().__call__(image, **kwargs)
        capture.mode = "hybrid"
        return capture
