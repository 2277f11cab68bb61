"""``handface track --method dice``: the network on every frame, made coherent over time.

DICE predicts each frame on its own (:class:`~handface.dice.predictor.DicePredictor`), so its
meshes jitter and its touch verdicts flicker. Over the same overlapping windows as the fit's
tracker (:class:`~handface.track.tracker.Tracker`, whose frame streaming, look-ahead and
Sequence output this reuses), per window:

1. the network's camera-frame estimate of every frame with a face (computed once per frame);
2. every quantity of the face (vertices, deformation in the head's own frame, rotation,
   translation, expression, shape, contact) and of each hand side (vertices, keypoints,
   rotation, translation, articulation, shape, contact) smoothed by the closed-form
   acceleration smoother (:func:`~handface.track.smoothing.smooth_trajectory`), continued
   from the previous window's last two frames;
3. a hand missing for at most ``max_gap`` frames between two frames where it is seen is filled
   from that smooth curve and marked ``bridged``;
4. the touch verdicts from the network's touch probabilities made temporally consistent
   (:func:`~handface.track.decisions.continued_verdicts`);
5. each frame's capture assembled as a single image's (settling a hand along its ray to agree
   with its verdict; :meth:`~handface.dice.predictor.DicePredictor.assemble`).

Frames without a face are not captured (DICE needs one to frame its crop).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from handface.dice.predictor import DiceEstimate, DiceHandEstimate, DicePredictor, dice_estimate
from handface.track.bridge import bridgeable_gaps
from handface.track.decisions import continued_verdicts
from handface.track.smoothing import smooth_rotations, smooth_trajectory
from handface.track.tracker import SIDES, Sequence, TrackConfig, Tracker, _Observed, _RunState


@dataclass
class DiceTrackConfig:
    """Settings of :class:`DiceTracker` beyond :class:`~handface.track.tracker.TrackConfig`."""

    face_strength: float = 10.0
    """Weight of the face's acceleration penalty against its per-frame estimates (the smoother
    halves a wave of period about ``2.7 * strength ** 0.25`` frames; 10: 5 frames)."""
    hand_strength: float = 10.0
    """The same for each hand."""


@dataclass
class _DiceRunState(_RunState):
    anchors: dict = field(default_factory=dict)
    """"face" and each hand side: per smoothed field, its values at the last two kept frames."""
    seen: dict = field(default_factory=dict)
    """Per hand side: whether the network saw it in the last ``max_gap + 1`` kept frames."""


_FACE_FIELDS = ("undeformed", "deformation", "transl", "expression", "shape", "face_contact")
_HAND_FIELDS = ("vertices", "keypoints", "transl", "articulation", "shape", "contact", "touch")


class DiceTracker(Tracker):
    """The network's per-frame estimates, smoothed and made consistent (module docstring).

    Args:
        config: the windows, ``max_gap`` and verdict settings shared with the fit's tracker.
        dice: settings of the smoothing.
        checkpoint: DICE weights (default: the shipped network).
        predictor: an injected :class:`~handface.dice.predictor.DicePredictor` (tests).
    """

    def __init__(
        self,
        config: TrackConfig | None = None,
        dice: DiceTrackConfig | None = None,
        *,
        checkpoint: str | os.PathLike | None = None,
        predictor: DicePredictor | None = None,
        detector=None,
    ) -> None:
        self.predictor = predictor or DicePredictor(checkpoint)
        super().__init__(
            config,
            head_model=self.predictor.net.head_model,
            hand_models={side: self.predictor.hand_model(side) for side in SIDES},
            detector=detector,
        )
        self.method = "dice"
        self.dice_config = dice or DiceTrackConfig()

    def _new_state(self) -> _DiceRunState:
        return _DiceRunState()

    # ------------------------------------------------------------------------------ window
    def _window(self, buffer, sequence: Sequence, state: _DiceRunState, *, final, sink) -> int:
        size, keep = self._span(len(buffer), final)
        frames = buffer[:size]
        state.detect_s += sum(f.detect_s for f in buffer[:keep])
        K = state.camera.K.float()
        # estimates for the look-ahead too (cached): a gap is bridged only if the hand returns
        estimates = [self._estimate(observed, K) for observed in buffer]
        with_face = [e is not None for e in estimates[:size]]
        if not any(with_face):
            state.anchors = {}
            return keep
        state.any_face = True
        face = self._smooth_face(estimates[:size], state)
        hands = {}
        for side in SIDES:
            smoothed = self._smooth_hand(side, buffer, estimates, size, state)
            if smoothed is not None:
                hands[side] = smoothed
                state.any_hand = True
                state.hands_seen.add(side)
        for i in range(keep):
            if estimates[i] is None:
                continue
            estimate = DiceEstimate(
                undeformed=face["undeformed"][i],
                deformed=face["undeformed"][i] + face["deformation"][i] @ face["rotation"][i].T,
                rotation=face["rotation"][i],
                transl=face["transl"][i],
                expression=face["expression"][i],
                shape=face["shape"][i],
                face_contact=face["face_contact"][i].clamp(0.0, 1.0),
                hands={
                    side: _hand_at(values, i)
                    for side, values in hands.items()
                    if values["status"][i] != "missing"
                },
            )
            self._emit(frames[i], estimate, hands, i, state, sequence, sink)
        self._keep_anchors(face, hands, estimates, keep, state)
        return keep

    def _estimate(self, observed: _Observed, K: Tensor) -> DiceEstimate | None:
        if observed.face is None:
            return None
        if observed.learned is None:
            detections = observed.detections()
            placed = self.predictor.predict(observed.frame.rgb, detections, K)
            observed.learned = dice_estimate(placed, set(observed.hands))
        return observed.learned

    def _smooth_face(self, estimates: list[DiceEstimate | None], state: _DiceRunState) -> dict:
        weights = torch.tensor([float(e is not None) for e in estimates], dtype=torch.float64)
        reference = next(e for e in estimates if e is not None)
        anchors = state.anchors.get("face")
        strength = self.dice_config.face_strength
        filled = [e if e is not None else reference for e in estimates]
        series = {name: [_face_value(e, name) for e in filled] for name in _FACE_FIELDS}
        series["rotation"] = [e.rotation for e in filled]
        out = _smoothed(series, weights, strength, anchors)
        if state.shape is None:
            state.shape = out["shape"].mean(0, keepdim=True)
        return out

    def _smooth_hand(self, side, buffer, estimates, size, state: _DiceRunState) -> dict | None:
        """The side's smoothed values and per-frame status over the window, or None."""
        seen = np.array([e is not None and side in e.hands for e in estimates])
        history = state.seen.get(side, np.zeros(0, bool))
        # the network's hands are in the face crop: near the face by construction
        known = np.concatenate([history, seen])
        fill = bridgeable_gaps(known, known, self.config.max_gap)[len(history) :]
        with_face = np.array([e is not None for e in estimates])
        bridged = fill & with_face
        seen, bridged = seen[:size], bridged[:size]
        if not seen.any():
            return None
        reference = next(e.hands[side] for e, s in zip(estimates, seen, strict=False) if s)
        weights = torch.as_tensor(seen, dtype=torch.float64)
        anchors = state.anchors.get(side)
        strength = self.dice_config.hand_strength
        filled = [estimates[i].hands[side] if seen[i] else reference for i in range(size)]
        series = {
            name: None if _hand_value(reference, name) is None else
            [_hand_value(hand, name) for hand in filled]
            for name in _HAND_FIELDS
        }  # fmt: skip
        series["rotation"] = [hand.rotation for hand in filled]
        out = _smoothed(series, weights, strength, anchors)
        detected = np.array([side in buffer[i].hands for i in range(size)])
        out["status"] = np.where(
            seen,
            np.where(detected, "detected", "network"),
            np.where(bridged, "bridged", "missing"),
        )
        out["presence"] = [
            estimates[i].hands[side].presence if seen[i] else float("nan") for i in range(size)
        ]
        # the verdicts weigh the network's own per-frame probabilities (stable_verdicts is made
        # for raw evidence; smoothed ones hover near 0.5 through a contact); bridged frames
        # take the smooth curve's
        raw = np.array(
            [estimates[i].hands[side].touch_probability if seen[i] else np.nan for i in range(size)]
        )
        scores = np.where(seen, raw, out["touch"][:, 0].clamp(0.0, 1.0).numpy())
        out["scores"] = scores
        valid = seen | bridged
        out["touching"] = continued_verdicts(
            scores, valid, state.score_history.get(side),
            min_run=self.config.interaction.min_run,
        )  # fmt: skip
        return out

    def _emit(self, observed, estimate, hands, i, state, sequence, sink) -> None:
        """Assemble, record and hand on the capture of window frame ``i``."""
        verdicts = {side: bool(hands[side]["touching"][i]) for side in estimate.hands}
        status = {side: str(hands[side]["status"][i]) for side in estimate.hands}
        warnings: list[str] = []
        capture = self.predictor.assemble(
            estimate, state.camera.K.float(), observed.detections(), warnings, verdicts
        )
        height, width = observed.frame.rgb.shape[:2]
        capture.image_size = (width, height)
        capture.camera_source = state.camera.source
        self._finish_capture(capture, observed)
        sequence.frames.append(self._record(capture, observed, status))
        if sink is not None:
            sink(observed.frame, capture, status)

    def _keep_anchors(self, face, hands, estimates, keep, state: _DiceRunState) -> None:
        """What the next window continues from: the last two kept frames' smoothed values,
        the recent touch scores and where each hand was seen."""
        config = self.config
        last = [keep - 2, keep - 1]
        state.anchors = {}
        if keep >= 2 and all(estimates[i] is not None for i in last):
            state.anchors["face"] = {name: values[last] for name, values in face.items()}
        for side in SIDES:
            values = hands.get(side)
            if values is None:
                state.score_history.pop(side, None)
                state.seen[side] = np.zeros(0, bool)
                continue
            status = values["status"][:keep]
            valid = status != "missing"
            if keep >= 2 and bool(valid[-2:].all()):
                state.anchors[side] = {
                    name: values[name][last]
                    for name in (*_HAND_FIELDS, "rotation")
                    if values[name] is not None
                }
            scores = values["scores"][:keep][-config.overlap :]
            tail = valid[-config.overlap :]
            # the history must be all valid: keep the run after the last frame without the hand
            start = int(np.flatnonzero(~tail)[-1]) + 1 if (~tail).any() else 0
            state.score_history[side] = scores[start:]
            seen = np.isin(status, ("detected", "network"))
            state.seen[side] = seen[-(config.max_gap + 1) :]


def _smoothed(series: dict, weights: Tensor, strength: float, anchors: dict | None) -> dict:
    """Each named per-frame series (a list of tensors, or None for a quantity the backend does
    not have) smoothed over the window, continued from ``anchors``; ``rotation`` stays a
    rotation."""
    out = {}
    for name, values in series.items():
        if values is None:
            out[name] = None
            continue
        smooth = smooth_rotations if name == "rotation" else smooth_trajectory
        out[name] = smooth(
            torch.stack([v.double() for v in values]), weights, strength=strength,
            anchors=None if anchors is None else anchors[name],
        ).float()  # fmt: skip
    return out


def _face_value(estimate: DiceEstimate, name: str) -> Tensor:
    if name == "deformation":  # in the head's own frame, so smoothing the rotation cannot skew it
        return (estimate.deformed - estimate.undeformed) @ estimate.rotation
    return getattr(estimate, name)


def _hand_value(hand: DiceHandEstimate, name: str) -> Tensor:
    if name == "touch":
        return torch.tensor([hand.touch_probability])
    return getattr(hand, name)


def _hand_at(values: dict, i: int) -> DiceHandEstimate:
    def at(name):
        return None if values[name] is None else values[name][i]

    return DiceHandEstimate(
        vertices=values["vertices"][i],
        keypoints=values["keypoints"][i],
        rotation=values["rotation"][i],
        transl=values["transl"][i],
        articulation=at("articulation"),
        shape=at("shape"),
        contact=values["contact"][i].clamp(0.0, 1.0),
        presence=float(values["presence"][i]),
        touch_probability=float(values["touch"][i, 0].clamp(0.0, 1.0)),
    )
