"""DICE inference: a photo -> :class:`~handface.capture.Capture` (the same result as fitting).

``DicePredictor(checkpoint)(image)``:

1. load the image and run MediaPipe (faces, hands, person mask): the detections frame the crop
   (:func:`~handface.dice.crops.crop_box` over the face landmarks and hand keypoints, the rule
   training uses on the labels) and say which hands exist;
2. run the network on the crop and its mirror (:func:`~handface.dice.mirror.predict_both_hands`)
   -> face, right hand, left hand in the head-centred frame, a weak-perspective camera;
3. place them in the photo's camera: the head centre's depth is ``f_crop / s`` with
   ``f_crop = 2 f / crop side`` (the weak-perspective scale of a pinhole camera), its image
   position the camera's ``(tx, ty)`` mapped back from the crop;
4. settle each hand on the network's touch verdict (:class:`~handface.dice.model.TouchHead`):
   a hand judged touching that floats, or judged not touching that reaches the skin, slides
   along the camera ray through its centroid by the least depth change that agrees with the
   verdict (:func:`~handface.geometry.settle.settle_offset`), within ±20 %;
5. assemble the capture as fitting does (:mod:`handface.capture_parts`): contact
   probabilities are the network's, ``touching`` and penetration figures come from the
   placed meshes by the rule of :mod:`handface.geometry.contact`.

A checkpoint is ``model.pt`` of a training run (or ``checkpoint.pt``), loaded with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import roma
import torch
from jaxtyping import Float
from torch import Tensor

from handface.capture import Capture
from handface.capture_parts import (
    captured_face,
    captured_hand,
    in_image_pixels,
    penetration_figures,
)
from handface.detect.images import image_input
from handface.dice.config import DiceConfig
from handface.dice.crops import Crop, CropConfig, crop_box
from handface.dice.dataset import image_tensor
from handface.dice.mirror import DicePrediction, HandPrediction, predict_both_hands
from handface.dice.model import DiceNet
from handface.dice.projection import CropCamera
from handface.dice.trainer import load_checkpoint
from handface.errors import InputError
from handface.geometry.camera import resized_intrinsics
from handface.geometry.contact import (
    in_contact,
    surface_signed_distance,
    touching,
)
from handface.geometry.settle import SETTLE_RANGE, settle_offset
from handface.models.face_areas import touched_areas
from handface.models.regions import face_regions_for

CHECKPOINT_FORMAT = "handface-dice-1"


SHIPPED_CHECKPOINT = Path(__file__).parent / "assets" / "dice_small.pt"
"""The trained ``dice-small`` network that ships with handface (model card:
``docs/dice_small_model_card.md``)."""


def shipped_checkpoint() -> Path:
    """:data:`SHIPPED_CHECKPOINT`, or a one-line error where this install has none."""
    if not SHIPPED_CHECKPOINT.is_file():
        raise InputError(
            f"this handface has no trained DICE network ({SHIPPED_CHECKPOINT} is missing); "
            "train one with `handface train` and pass --checkpoint RUN/model.pt"
        )
    return SHIPPED_CHECKPOINT


def half_precision_weights(checkpoint: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write ``checkpoint``'s network (config + weights) with float16 weights to ``out``.

    What ships in the package (:data:`SHIPPED_CHECKPOINT`): half the size of ``model.pt`` (the
    repository keeps every version forever); :func:`load_network` reads it back into float32.
    Non-float tensors (counters of batch norm) keep their type.
    """
    from handface.io.files import atomic_write_bytes

    state = load_checkpoint(Path(checkpoint))
    if "model" not in state:
        raise InputError(f"{checkpoint} holds no DICE network weights (no 'model' entry)")
    weights = {
        name: value.half() if value.is_floating_point() else value
        for name, value in state["model"].items()
    }
    shipped = {"config": state.get("config"), "model": weights, "format": state.get("format")}
    import io

    buffer = io.BytesIO()
    torch.save(shipped, buffer)
    atomic_write_bytes(Path(out), buffer.getvalue())
    return Path(out)


def load_network(
    checkpoint: str | os.PathLike | None = None, head_model=None, hand_model=None
) -> DiceNet:
    """A trained :class:`DiceNet` from ``model.pt`` / ``checkpoint.pt`` of a run (eval mode);
    ``None``: the shipped network (:func:`shipped_checkpoint`)."""
    from handface.models.defaults import default_hand_model, default_head_model

    path = Path(checkpoint) if checkpoint is not None else shipped_checkpoint()
    state = load_checkpoint(path)
    if "model" not in state:
        raise InputError(f"{path} holds no DICE network weights (no 'model' entry)")
    config_dict = state.get("config")
    if config_dict is None:
        config_file = path.parent / "config.json"
        if not config_file.is_file():
            raise InputError(f"{path} has no network config and there is no {config_file}")
        import json

        config_dict = json.loads(config_file.read_text())["network"]
    try:
        config = DiceConfig.from_dict(config_dict)
    except (TypeError, ValueError) as error:
        raise InputError(f"{path}: its network config is not understood ({error})") from None
    net = DiceNet(
        config, head_model or default_head_model(), hand_model or default_hand_model("right")
    )
    if not isinstance(state["model"], dict):
        raise InputError(f"{path}: its 'model' entry is a {type(state['model']).__name__}, "
                         "not the network's weights")  # fmt: skip
    try:
        net.load_state_dict(state["model"])
    except (RuntimeError, TypeError, AttributeError) as error:
        detail = weights_mismatch(net.state_dict(), state["model"]) or str(error).splitlines()[0]
        raise InputError(f"{path} does not fit the {config.name} network ({detail})") from None
    return net.eval()


def weights_mismatch(own: dict, weights: dict, shown: int = 2) -> str:
    """What keeps ``weights`` from loading into a network whose state dict is ``own``: the
    missing, unexpected and wrongly shaped names (the first ``shown`` of each), or ``""``.

    Example:
        >>> weights_mismatch({"a": torch.zeros(2), "b": torch.zeros(1)}, {"a": torch.zeros(3)})
        'missing b; wrong shape a'
    """
    shapes = sorted(
        name for name in set(own) & set(weights)
        if tuple(getattr(weights[name], "shape", ())) != tuple(own[name].shape)
    )  # fmt: skip
    parts = []
    for label, keys in (("missing", sorted(set(own) - set(weights))),
                        ("unexpected", sorted(set(weights) - set(own))),
                        ("wrong shape", shapes)):  # fmt: skip
        if keys:
            more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
            parts.append(f"{label} {', '.join(keys[:shown])}{more}")
    return "; ".join(parts)


def _camera_placement(
    camera: Float[Tensor, "3"], crop: Crop, K: Float[Tensor, "3 3"]
) -> Float[Tensor, "3"]:
    """Camera-frame position of the head centre (the rule training projects with)."""
    one = torch.ones(1)
    crop_camera = CropCamera(
        K.float()[None], torch.as_tensor(crop.centre, dtype=torch.float32)[None],
        crop.side * one, crop.angle * one, float(crop.flipped) * one,
    )  # fmt: skip
    return crop_camera.head_centre(camera.float()[None])[0]


def _first(value: Tensor | None) -> Tensor | None:
    return None if value is None else value[0]


@dataclass
class PlacedPrediction:
    """The network's output for one image, with the crop it saw and where the head sits."""

    prediction: DicePrediction
    crop: Crop
    centre: Float[Tensor, "3"]
    """Camera-frame position of the head centre; add it to the network's 3D outputs."""


HAND_PRESENCE_THRESHOLD = 0.5
"""A hand the detector missed is reported when the network's presence probability for its side
reaches this (MediaPipe loses hands that lie on faces, exactly the contact case)."""


@dataclass
class DiceHandEstimate:
    """One hand as the network places it in the camera frame (metres)."""

    vertices: Float[Tensor, "Vh 3"]
    keypoints: Float[Tensor, "21 3"]
    rotation: Float[Tensor, "3 3"]
    transl: Float[Tensor, "3"]
    articulation: Float[Tensor, " A"] | None
    """None for a backend whose left-hand articulation cannot be mirrored."""
    shape: Float[Tensor, " S"] | None
    contact: Float[Tensor, " Vh"]
    """Per-vertex contact probability."""
    presence: float
    touch_probability: float

    @property
    def touches(self) -> bool:
        """The network's own verdict (:func:`~handface.geometry.contact.in_contact`)."""
        return bool(in_contact(torch.tensor(self.touch_probability)))


@dataclass
class DiceEstimate:
    """The network's face and hands for one image, placed in the camera frame (metres): what a
    capture is assembled from, and what a video tracker smooths over frames."""

    undeformed: Float[Tensor, "V 3"]
    deformed: Float[Tensor, "V 3"]
    rotation: Float[Tensor, "3 3"]
    transl: Float[Tensor, "3"]
    expression: Float[Tensor, " E"]
    shape: Float[Tensor, " S"]
    face_contact: Float[Tensor, " V"]
    hands: dict[str, DiceHandEstimate]
    """The sides the detector found or the network sees (presence at least
    :data:`HAND_PRESENCE_THRESHOLD`)."""


def dice_estimate(placed: PlacedPrediction, detected_sides: set[str]) -> DiceEstimate:
    """The camera-frame estimate of one image from the network's placed prediction."""
    prediction, centre = placed.prediction, placed.centre
    face = prediction.face
    hands = {}
    for side in ("right", "left"):
        predicted: HandPrediction = prediction.right if side == "right" else prediction.left
        presence = float(predicted.presence[0])
        if side not in detected_sides and presence < HAND_PRESENCE_THRESHOLD:
            continue
        hands[side] = DiceHandEstimate(
            vertices=predicted.vertices[0] + centre,
            keypoints=predicted.keypoints[0] + centre,
            rotation=predicted.rotation[0],
            transl=predicted.params.transl[0] + centre,
            articulation=_first(predicted.params.articulation),
            shape=_first(predicted.params.shape),
            contact=predicted.contact[0],
            presence=presence,
            touch_probability=float(predicted.touch[0]),
        )
    return DiceEstimate(
        undeformed=face.vertices_undeformed[0] + centre,
        deformed=face.vertices[0] + centre,
        rotation=face.rotation[0],
        transl=face.params.transl[0] + centre,
        expression=face.params.expression[0],
        shape=face.params.shape[0],
        face_contact=face.contact[0],
        hands=hands,
    )


class DicePredictor:
    """Loads the network and the detector once; call it on images.

    Args:
        checkpoint: ``model.pt`` of a training run; None: the shipped network.
        focal: focal length in pixels (default: EXIF, else a 35 mm-equivalent of 35 mm).
        detector, head_model, hand_models: injected for tests; built on first use otherwise.
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike | None = None,
        *,
        focal: float | None = None,
        detector=None,
        head_model=None,
        hand_models: dict | None = None,
    ) -> None:
        hand_models = hand_models or {}
        self.net = load_network(checkpoint, head_model, hand_models.get("right"))
        self.crop_config = CropConfig(size=self.net.config.input_size)
        self.focal = focal
        self._detector = detector
        self._left = hand_models.get("left")

    @property
    def detector(self):
        if self._detector is None:
            from handface.detect.mediapipe_detector import MediaPipeDetector

            self._detector = MediaPipeDetector()
        return self._detector

    def hand_model(self, side: str):
        if side == "right":
            return self.net.hand_model
        if self._left is None:
            from handface.models.defaults import default_hand_model

            self._left = default_hand_model("left")
        return self._left

    def predict_crop(self, pixels: np.ndarray) -> DicePrediction:
        """The network's prediction for one ``S x S`` RGB crop (uint8)."""
        with torch.no_grad():
            return predict_both_hands(self.net, image_tensor(pixels)[None])

    def __call__(
        self,
        image: str | os.PathLike | np.ndarray,
        *,
        K: Float[Tensor, "3 3"] | None = None,
        depth: np.ndarray | None = None,
    ) -> Capture:
        """Capture one image (a path or an RGB uint8 array); ``K`` overrides the camera."""
        from handface.fit.camera import camera_for_image

        if depth is not None:
            raise InputError("a depth map is used by --method fit only; DICE takes RGB")
        start = time.perf_counter()
        timings: dict[str, float] = {}
        warnings: list[str] = []
        loaded = image_input(image)
        rgb, source, focal_35mm = loaded.rgb, loaded.source, loaded.focal_35mm
        warnings.extend(loaded.warnings)
        height, width = rgb.shape[:2]  # the working copy's (the image's own up to 16 MP)
        if K is not None:
            photo_K, camera_source = torch.as_tensor(K, dtype=torch.float64), "given"
        else:
            full_height, full_width = loaded.image_size
            estimate = camera_for_image(
                full_width, full_height, focal_px=self.focal, exif_focal_35mm=focal_35mm
            )
            photo_K, camera_source = estimate.K, estimate.source
        K = resized_intrinsics(photo_K, *loaded.scale)
        tick = time.perf_counter()
        detections = self.detector(rgb)
        timings["detect_s"] = time.perf_counter() - tick
        name = source or "the image"
        if not detections.faces:
            raise InputError(f"no face found in {name}; DICE needs a face to reconstruct")
        tick = time.perf_counter()
        placed = self.predict(rgb, detections, K.float())
        timings["network_s"] = time.perf_counter() - tick
        crop = placed.crop

        tick = time.perf_counter()
        estimate = dice_estimate(placed, {hand.side for hand in detections.hands})
        capture = self.assemble(estimate, K.float(), detections, warnings)
        timings["assemble_s"] = time.perf_counter() - tick
        timings["total_s"] = time.perf_counter() - start
        capture.image_size = (width, height)
        capture.camera_source = camera_source
        capture.timings = {k: round(v, 4) for k, v in timings.items()}
        capture.source = source
        capture.image = rgb
        capture.extras["detections"] = detections  # in the pixels of capture.image
        capture.extras["crop"] = crop
        if loaded.full_size is not None:
            capture = in_image_pixels(capture, loaded.image_size[::-1], photo_K.numpy())
        return capture

    def predict(self, rgb: np.ndarray, detections, K: Float[Tensor, "3 3"]) -> PlacedPrediction:
        """The network on the crop framed by ``detections`` (a face needed), placed in camera."""
        points = [detections.faces[0].landmarks[:, :2]]
        points += [hand.keypoints[:, :2] for hand in detections.hands]
        crop = crop_box(np.concatenate(points), self.crop_config)
        prediction = self.predict_crop(crop.apply(rgb))
        return PlacedPrediction(prediction, crop, _camera_placement(prediction.camera[0], crop, K))

    def assemble(
        self,
        estimate: DiceEstimate,
        K: Tensor,
        detections,
        warnings: list[str],
        verdicts: dict[str, bool] | None = None,
    ) -> Capture:
        """The capture of one image from the network's estimate (steps 4-5 of the module
        docstring); ``verdicts`` (per side) replace the network's own touch verdicts (a video
        tracker's temporally consistent ones)."""
        head_model = self.net.head_model
        undeformed, deformed, rotation = estimate.undeformed, estimate.deformed, estimate.rotation
        head_params = {
            "global_orient": roma.rotmat_to_rotvec(rotation),
            "transl": estimate.transl,
            "expression": estimate.expression,
            "shape": estimate.shape,
        }
        detected = {hand.side: hand for hand in detections.hands}
        reported = []
        for side in ("right", "left"):
            hand = estimate.hands.get(side)
            if hand is None:
                continue
            detection = detected.get(side)
            if detection is None:
                warnings.append(
                    f"{side} hand seen by DICE only (the detector found none there; presence "
                    f"{hand.presence:.2f}): its pose is the network's alone"
                )
            touches = hand.touches if verdicts is None else bool(verdicts.get(side, False))
            reported.append((side, hand, detection, touches))
        if not any(touches for *_, touches in reported):
            # no hand judged touching: nothing presses the face in
            deformed = undeformed
        hands = {}
        sdfs = []
        for side, hand, detection, touches in reported:
            model = self.hand_model(side)
            vertices = hand.vertices
            sdf = surface_signed_distance(vertices, deformed, head_model.faces)
            shift = vertices.new_zeros(3)
            if bool(touching(sdf)) != touches:
                shift = settle_offset(vertices, deformed, head_model.faces, touches)
                vertices = vertices + shift
                sdf = surface_signed_distance(vertices, deformed, head_model.faces)
            if bool(touching(sdf)) != touches:
                verdict = "touching" if touches else "not touching"
                warnings.append(
                    f"{side} hand judged {verdict} by DICE (probability "
                    f"{hand.touch_probability:.2f}) but no placement within "
                    f"{SETTLE_RANGE:.0%} of its depth agrees; the meshes decide"
                )
            sdfs.append(sdf)
            params = {
                "global_orient": roma.rotmat_to_rotvec(hand.rotation),
                "transl": hand.transl + shift,
                # None for a backend whose left-hand articulation cannot be mirrored
                "articulation": hand.articulation,
                "shape": hand.shape,
            }
            hands[side] = captured_hand(
                model,
                params,
                vertices,
                hand.keypoints + shift,
                hand.contact,
                sdf,
                K,
                detection,
                presence=hand.presence,
            )
        captured = captured_face(
            head_model,
            head_params,
            undeformed,
            deformed,
            rotation,
            estimate.face_contact,
            K,
            detections.faces[0].landmarks,
        )
        penetration = {
            "max_deformation_mm": round(
                1000.0 * float((deformed - undeformed).norm(dim=-1).max()), 3
            )
        }
        penetration.update(penetration_figures(sdfs))
        touched: list[str] = []
        if not face_regions_for(head_model.num_vertices).generic:
            touched = touched_areas(captured.contact)
        return Capture(
            image_size=(0, 0),
            K=K.numpy(),
            camera_source="",
            face=captured,
            hands=hands,
            touched_regions=touched,
            penetration=penetration,
            warnings=warnings,
            mode="dice",
        )
