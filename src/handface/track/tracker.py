"""``handface track``: a video in, a temporally coherent capture of every frame out.

Frames stream from the reader (:class:`~handface.detect.video.FrameReader`); MediaPipe runs in
its video mode. Frames are processed in overlapping windows of ``window`` frames, so memory
stays flat however long the video is:

1. detection runs ``lookahead`` frames ahead of the window, so a hand the detector loses near
   the face can be bridged from the frames after the gap (:mod:`~handface.track.bridge`);
2. stage I, the head over the window (:mod:`~handface.track.head_track`; one shape for the
   clip, fixed after the first window);
3. stage II, each hand side over the window (:mod:`~handface.track.hand_track`);
4. stage III, the hands' placement with the interaction terms and temporally consistent touching
   verdicts (:mod:`~handface.track.interaction_track`);
5. per frame, the soft-tissue solver (warm-started from the previous frame's deformation) and
   the capture (:meth:`~handface.fit.single_image.Reconstructor.assemble`).

Only the first ``window - overlap`` frames of a window are kept; the last ``overlap`` are solved
again at the start of the next window, whose smoothness terms are anchored to the two frames
before it. Frames without a face are captured hands-only, or skipped when nothing is seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor
from tqdm import tqdm

from handface import interrupt
from handface.capture import Capture
from handface.capture_parts import touched_regions_by_hand
from handface.detect.mediapipe_detector import Detections, FaceDetection, HandDetection
from handface.detect.video import VideoFrame
from handface.errors import InputError
from handface.fit.camera import CameraEstimate, camera_for_image
from handface.fit.evidence import hand_face_evidence, hand_mask
from handface.fit.hand_fit import HandFit, HandFitConfig
from handface.fit.head_fit import HeadFit, HeadFitConfig, fit_layout, landmark_weights
from handface.fit.single_image import HandInput, ReconstructConfig, Reconstructor
from handface.geometry.contact import face_size
from handface.geometry.settle import settle_offset
from handface.models.base import HandParams, HeadParams
from handface.render.rasterizer import rasterize
from handface.sequence import Sequence, SequenceFrame, frame_record
from handface.track.bridge import bridge_gaps, near_face
from handface.track.hand_track import HandTrackConfig, track_hand
from handface.track.head_track import HeadTrack, HeadTrackConfig, track_head
from handface.track.interaction_track import (
    HandFrames,
    HeadFrames,
    InteractionTrackConfig,
    track_interaction,
)

SIDES = ("left", "right")


@dataclass
class TrackConfig:
    """Settings of :class:`Tracker`."""

    window: int = 24
    """Frames optimised together."""
    overlap: int = 6
    """Frames at the end of a window that are solved again in the next one (at least
    ``interaction.min_run`` so verdicts see ahead, and 2 for the smoothness anchors)."""
    max_gap: int = 8
    """Longest run of frames without a detected hand (near the face at both ends) bridged."""
    map_side: int = 480
    """Long side (pixels) of the per-frame maps used by the depth-order term."""
    focal: float | None = None
    """Focal length in pixels (default: a 35 mm-equivalent of 35 mm)."""
    head: HeadTrackConfig = field(default_factory=HeadTrackConfig)
    hand: HandTrackConfig = field(default_factory=HandTrackConfig)
    interaction: InteractionTrackConfig = field(default_factory=InteractionTrackConfig)
    head_fit: HeadFitConfig = field(default_factory=HeadFitConfig)
    hand_fit: HandFitConfig = field(default_factory=HandFitConfig)


@dataclass
class _Observed:
    """What the detector said about one frame (small: no images but the frame itself)."""

    frame: VideoFrame
    face: FaceDetection | None
    hands: dict[str, HandDetection]
    person_bytes: np.ndarray | None
    """MediaPipe's person probability in steps of 1/255 (uint8): a quarter of the float's
    memory, for each of the frames a window holds (8 MB less per 1080p frame)."""
    detect_s: float
    depth: np.ndarray | None = None
    learned: object | None = None
    """The network's output for this frame (``--method hybrid|dice``), computed once: the
    frames a window shares with the next are solved twice."""

    @property
    def person_mask(self) -> np.ndarray | None:
        """The person probability as float32 in ``[0, 1]`` (made anew on each call)."""
        if self.person_bytes is None:
            return None
        return self.person_bytes.astype(np.float32) * np.float32(1.0 / 255.0)

    def detections(self) -> Detections:
        """What the detector found, as it returned it (for the networks)."""
        return Detections(
            image_size=self.frame.rgb.shape[:2],
            faces=[self.face] if self.face is not None else [],
            hands=list(self.hands.values()),
            person_mask=self.person_mask,
        )


def probability_bytes(probability: np.ndarray | None) -> np.ndarray | None:
    """Probabilities in ``[0, 1]`` as uint8 in steps of 1/255 (rounded), ``None`` kept.

    Example:
        >>> probability_bytes(np.array([0.0, 0.499, 0.502, 1.0])).tolist()
        [0, 127, 128, 255]
    """
    if probability is None:
        return None
    return np.rint(np.clip(probability, 0.0, 1.0) * 255.0).astype(np.uint8)


FrameSink = Callable[[VideoFrame, Capture, dict[str, str]], None]
"""``sink(frame, capture, status)`` for every captured frame, in order (overlays, meshes);
``capture.extras["person_mask"]`` is MediaPipe's person probability for the frame (or None)."""


class Tracker:
    """Loads the models and the detector once; call :meth:`run` on a frame stream.

    Args:
        config: tracking settings (:class:`TrackConfig`).
        guide: ``guide(rgb, detections, K) -> InteractionGuide`` per frame (``--method
            hybrid``), or None to track with the fit alone.
        head_model, hand_models, detector: injected for tests; built on first use otherwise.
    """

    def __init__(
        self,
        config: TrackConfig | None = None,
        *,
        guide=None,
        head_model=None,
        hand_models=None,
        detector=None,
    ) -> None:
        self.config = config or TrackConfig()
        if self.config.overlap < max(2, self.config.interaction.min_run):
            raise InputError(
                f"overlap {self.config.overlap} must be at least 2 and at least min_run "
                f"{self.config.interaction.min_run}"
            )
        if self.config.window <= self.config.overlap:
            raise InputError(
                f"window {self.config.window} must be larger than overlap {self.config.overlap}"
            )
        self.guide = guide
        self.method = "fit" if guide is None else "hybrid"
        """Recorded in the Sequence and in every frame's capture."""
        self.capture = Reconstructor(
            ReconstructConfig(interaction=self.config.interaction.interaction),
            head_model=head_model,
            hand_models=hand_models,
            detector=detector,
        )
        self._detector = detector

    @property
    def detector(self):
        if self._detector is None:
            from handface.detect.mediapipe_detector import MediaPipeDetector

            self._detector = MediaPipeDetector(video_mode=True)
        return self._detector

    # ------------------------------------------------------------------------------ run
    def run(
        self,
        frames: Iterable[VideoFrame],
        *,
        fps: float,
        total: int | None = None,
        K: Float[Tensor, "3 3"] | None = None,
        depth: Callable[[int], np.ndarray] | None = None,
        sink: FrameSink | None = None,
        progress: bool = True,
        source: str | None = None,
    ) -> Sequence:
        """Track a stream of frames (in order) and return the :class:`Sequence`.

        Args:
            fps: the frame rate (for the timeline).
            total: how many frames will come (for the progress bar), if known.
            K: known intrinsics (default: the camera rule of single images).
            depth: ``depth(frame_index) -> (H, W)`` metres per frame (RGB-D), or None.
            sink: called with every captured frame (see :data:`FrameSink`).
        """
        config = self.config
        state = self._new_state()
        sequence: Sequence | None = None
        start = time.perf_counter()
        bar = tqdm(total=total, unit="frame", desc="track", disable=not progress, leave=False)
        buffer: list[_Observed] = []
        lookahead = config.max_gap + 1
        try:
            for frame in frames:
                interrupt.raise_if_requested()
                if sequence is None:
                    height, width = frame.rgb.shape[:2]
                    camera = self._camera(width, height, K)
                    sequence = Sequence(
                        image_size=(width, height), K=camera.K.numpy(),
                        camera_source=camera.source, fps=float(fps),
                        method=self.method,
                        head_shape=None, source=source,
                    )  # fmt: skip
                    state.camera = camera
                buffer.append(self._observe(frame, depth))
                while len(buffer) >= config.window + lookahead:
                    done = self._window(buffer, sequence, state, final=False, sink=sink)
                    bar.update(done)
                    del buffer[:done]
            if sequence is None:
                raise InputError(f"{source or 'the video'} has no frames to track")
            while buffer:
                done = self._window(buffer, sequence, state, final=True, sink=sink)
                bar.update(done)
                del buffer[:done]
        finally:
            bar.close()
        if not state.any_face and not state.any_hand:
            raise InputError(
                f"no face or hand found in any frame of {source or 'the video'}; nothing to track"
            )
        sequence.head_shape = None if state.shape is None else state.shape[0].float().numpy()
        sequence.hand_shapes = {
            side: self.capture.hand_model(side).neutral_shape_tensor()[0].numpy()
            for side in sorted(state.hands_seen)
        }
        total_s = time.perf_counter() - start
        count = max(1, len(sequence.frames))
        sequence.timings = {
            "total_s": round(total_s, 3),
            "frames": len(sequence.frames),
            "detect_s_per_frame": round(state.detect_s / count, 4),
            "s_per_frame": round(total_s / count, 4),
        }
        return sequence

    def _new_state(self) -> _RunState:
        return _RunState()

    # ------------------------------------------------------------------------------ frames
    def _camera(self, width: int, height: int, K: Tensor | None) -> CameraEstimate:
        if K is not None:
            return CameraEstimate(torch.as_tensor(K, dtype=torch.float64), "given")
        return camera_for_image(width, height, focal_px=self.config.focal)

    def _observe(self, frame: VideoFrame, depth) -> _Observed:
        tick = time.perf_counter()
        detections: Detections = self.detector(frame.rgb)
        elapsed = time.perf_counter() - tick
        observed = _Observed(
            frame=frame,
            face=detections.faces[0] if detections.faces else None,
            hands={hand.side: hand for hand in detections.hands},
            person_bytes=probability_bytes(detections.person_mask),
            detect_s=elapsed,
        )
        if depth is not None:
            observed.depth = depth(frame.index)
        return observed

    # ------------------------------------------------------------------------------ windows
    def _window(
        self,
        buffer: list[_Observed],
        sequence: Sequence,
        state: _RunState,
        *,
        final: bool,
        sink: FrameSink | None,
    ) -> int:
        """Solve the window at the start of ``buffer``; returns how many frames it kept."""
        config = self.config
        size, keep = self._span(len(buffer), final)
        frames = buffer[:size]
        camera = state.camera
        K = camera.K
        height, width = frames[0].frame.rgb.shape[:2]
        head_model = self.capture.head_model
        layout = fit_layout(head_model)
        state.detect_s += sum(f.detect_s for f in buffer[:keep])

        # hands: detected, or bridged across short gaps (history + window + lookahead)
        hand_rows = {side: self._hand_rows(side, buffer, state) for side in SIDES}

        # --- stage I: the head over the frames with a face
        with_face = [i for i, f in enumerate(frames) if f.face is not None]
        head_track = None
        if with_face:
            state.any_face = True
            landmarks = np.stack([frames[i].face.landmarks for i in with_face])
            depths = np.stack([frames[i].face.depth for i in with_face])
            weights = np.stack(
                [
                    landmark_weights(
                        frames[i].face.landmarks,
                        [
                            hand_mask(rows.keypoints[i], (height, width), frames[i].person_mask)
                            for rows in hand_rows.values()
                            if rows.present[i]
                        ],
                        config.head_fit,
                        layout,
                    )
                    for i in with_face
                ]
            )
            contiguous = with_face == list(range(with_face[0], with_face[-1] + 1))
            head_track = track_head(
                head_model, landmarks, depths, weights, K,
                fit=config.head_fit, config=config.head, shape=state.shape,
                anchors=state.head_anchors if (contiguous and with_face[0] == 0) else None,
            )  # fmt: skip
            if state.shape is None:
                state.shape = head_track.shape
        heads = self._head_meshes(head_track, with_face, len(frames))

        # --- stage II: each hand side
        hand_tracks = {}
        for side, rows in hand_rows.items():
            if not rows.present[:size].any():
                continue
            state.any_hand = True
            state.hands_seen.add(side)
            hand_tracks[side] = track_hand(
                self.capture.hand_model(side),
                rows.keypoints[:size],
                rows.depth[:size],
                K,
                fit=config.hand_fit,
                config=config.hand,
                anchors=state.articulation_anchors.get(side),
            )

        # --- stage III: placement with interaction terms, over frames with a head
        guides = self._guides(frames, K) if self.guide else None
        results = self._interaction(frames, heads, hand_tracks, hand_rows, guides, state, K)

        # --- per frame: deformation and capture
        for i in range(keep):
            capture, status = self._capture(i, frames[i], heads, hand_tracks, hand_rows,
                                            results, state)  # fmt: skip
            if capture is None:
                continue
            sequence.frames.append(self._record(capture, frames[i], status))
            if sink is not None:
                sink(frames[i].frame, capture, status)

        # anchors for the next window: the last two kept frames
        if (
            head_track is not None
            and keep >= 2
            and all(i in with_face for i in (keep - 2, keep - 1))
        ):
            rows = [with_face.index(keep - 2), with_face.index(keep - 1)]
            state.head_anchors = HeadTrack(
                head_track.rotation[rows], head_track.transl[rows],
                head_track.expression[rows], head_track.shape,
            )  # fmt: skip
        else:
            state.head_anchors = None
        for side in SIDES:
            track = hand_tracks.get(side)
            result = results.get(side)
            if track is not None and keep >= 2 and bool(track.present[keep - 2 : keep].all()):
                state.articulation_anchors[side] = track.articulation[keep - 2 : keep]
                if result is not None:
                    centre = track.canonical_keypoints[keep - 2 : keep].mean(1)
                    R = result.rotation[keep - 2 : keep]
                    position = (R @ centre[..., None])[..., 0] + result.transl[keep - 2 : keep]
                    state.pose_anchors[side] = (position, R.flatten(1))
                    state.score_history[side] = result.scores[:keep][-config.overlap :]
            else:
                state.articulation_anchors.pop(side, None)
                state.pose_anchors.pop(side, None)
                state.score_history.pop(side, None)
            # keep the committed keypoints for bridging the next window's gaps
            rows = hand_rows[side]
            state.hand_history[side] = (
                rows.keypoints[:keep][-config.max_gap - 1 :],
                rows.depth[:keep][-config.max_gap - 1 :],
                rows.near[:keep][-config.max_gap - 1 :],
                rows.status[:keep][-config.max_gap - 1 :],
            )
        return keep

    def _span(self, buffered: int, final: bool) -> tuple[int, int]:
        """How many buffered frames the next window solves, and how many of them it keeps."""
        size = min(self.config.window, buffered)
        keep = size if final and size == buffered else size - self.config.overlap
        return size, max(1, keep)

    def _hand_rows(self, side: str, buffer: list[_Observed], state: _RunState) -> _HandRows:
        """Per frame of the buffer, the side's keypoints (detected or bridged) and status."""
        count = len(buffer)
        keypoints = np.full((count, 21, 2), np.nan)
        depth = np.full((count, 21), np.nan)
        near = np.zeros(count, dtype=bool)
        for i, observed in enumerate(buffer):
            hand = observed.hands.get(side)
            if hand is not None:
                keypoints[i], depth[i] = hand.keypoints, hand.depth
                landmarks = None if observed.face is None else observed.face.landmarks
                near[i] = near_face(hand.keypoints, landmarks)
        history = state.hand_history.get(side)
        past = 0
        if history is not None:
            past = len(history[0])
            keypoints = np.concatenate([history[0], keypoints])
            depth = np.concatenate([history[1], depth])
            near = np.concatenate([history[2], near])
        detected = np.isfinite(keypoints).all(axis=(1, 2))
        bridged = bridge_gaps(keypoints, depth, near, self.config.max_gap)
        status = np.where(detected, "detected", np.where(bridged.bridged, "bridged", "missing"))
        if history is not None:
            status[:past] = history[3]
        return _HandRows(
            keypoints=bridged.keypoints[past:],
            depth=bridged.depth[past:],
            near=near[past:],
            status=status[past:],
            present=bridged.present[past:],
        )

    def _head_meshes(self, track: HeadTrack | None, with_face: list[int], count: int) -> _Heads:
        model = self.capture.head_model
        heads = _Heads(count)
        if track is None:
            return heads
        params = HeadParams(
            expression=track.expression.to(model.template_vertices.dtype),
            shape=track.shape.expand(len(with_face), -1).to(model.template_vertices.dtype),
        )
        from handface.fit.head_fit import layout_landmarks

        with torch.no_grad():
            out = model(params)
            landmarks = layout_landmarks(model, out)
        canonical = out.extras["canonical_vertices"].double()
        for row, i in enumerate(with_face):
            R, t = track.rotation[row], track.transl[row]
            heads.fits[i] = HeadFit(
                params=HeadParams(
                    global_orient=_rotvec(R)[None].float(),
                    transl=t.float()[None],
                    expression=track.expression[row : row + 1].float(),
                    shape=track.shape.float(),
                ),
                rotation=R.float(),
                canonical_vertices=canonical[row].float(),
                vertices=(canonical[row] @ R.T + t).float(),
                landmarks=(landmarks[row].double() @ R.T + t).float(),
                landmarks68=(out.landmarks68[row].double() @ R.T + t).float(),
                reprojection_px=float("nan"),
            )
        return heads

    def _guides(self, frames, K) -> list:
        out = []
        for observed in frames:
            if observed.face is None:
                out.append(None)
                continue
            if observed.learned is None:
                observed.learned = self.guide(observed.frame.rgb, observed.detections(), K)
            out.append(observed.learned)
        return out

    def _interaction(self, frames, heads, hand_tracks, hand_rows, guides, state, K) -> dict:
        config = self.config
        with_head = [i for i in range(len(frames)) if heads.fits[i] is not None]
        if not with_head or not hand_tracks:
            return {}
        height, width = frames[0].frame.rgb.shape[:2]
        map_scale = min(1.0, config.map_side / max(height, width))
        map_h, map_w = max(1, round(height * map_scale)), max(1, round(width * map_scale))
        K_map = K.clone().double()
        K_map[:2] *= map_scale
        faces = self.capture.head_model.faces
        count = len(frames)
        depth_maps, silhouettes = [], []
        for i in range(count):
            fit = heads.fits[i]
            if fit is None:
                depth_maps.append(torch.full((map_h, map_w), float("inf")))
                silhouettes.append(np.zeros((map_h, map_w), bool))
                continue
            with torch.no_grad():
                zbuf = rasterize(fit.vertices.float(), faces, K_map.float(), map_h, map_w).zbuf
            depth_maps.append(zbuf)
            silhouettes.append(torch.isfinite(zbuf).numpy())
        head = HeadFrames(
            canonical_vertices=torch.stack(
                [
                    (heads.fits[i] or heads.fits[with_head[0]]).canonical_vertices.double()
                    for i in range(count)
                ]
            ),
            rotation=torch.stack(
                [
                    (heads.fits[i] or heads.fits[with_head[0]]).rotation.double()
                    for i in range(count)
                ]
            ),
            transl=torch.stack(
                [
                    (heads.fits[i] or heads.fits[with_head[0]]).params.transl[0].double()
                    for i in range(count)
                ]
            ),
            faces=faces,
            depth_maps=depth_maps,
            map_scale=map_scale,
            face_px=np.array(
                [
                    face_size(frames[i].face.landmarks[:468]) if frames[i].face is not None else 1.0
                    for i in range(count)
                ]
            ),
        )
        hands = []
        sides = []
        for side, track in hand_tracks.items():
            rows = hand_rows[side]
            present = track.present.clone()
            present &= torch.tensor([heads.fits[i] is not None for i in range(count)])
            overlap, gaps = [], np.full(count, np.inf)
            for i in range(count):
                if not bool(present[i]):
                    overlap.append(None)
                    continue
                mask_small = hand_mask(rows.keypoints[i] * map_scale, (map_h, map_w),
                                       _resize(frames[i].person_mask, (map_h, map_w)))  # fmt: skip
                evidence = hand_face_evidence(mask_small, silhouettes[i])
                overlap.append(evidence.overlap)
                gaps[i] = evidence.gap_px / map_scale
            hands.append(
                HandFrames(
                    side=side,
                    present=present,
                    canonical_vertices=track.canonical_vertices,
                    canonical_keypoints=track.canonical_keypoints,
                    rotation=track.rotation,
                    transl=track.transl,
                    keypoints2d=rows.keypoints[:count],
                    overlap=overlap,
                    gap_px=gaps,
                    guides=None
                    if guides is None
                    else [None if g is None else g.hands.get(side) for g in guides],
                    anchors=state.pose_anchors.get(side),
                    score_history=state.score_history.get(side),
                )
            )
            sides.append(side)
        observed_depth = None
        if any(f.depth is not None for f in frames):
            observed_depth = [
                None if f.depth is None else torch.as_tensor(_resize(f.depth, (map_h, map_w)))
                for f in frames
            ]
        results, head_transl = track_interaction(
            head, hands, K, observed_depth=observed_depth, config=config.interaction
        )
        for i in with_head:
            heads.fits[i] = _moved_head(heads.fits[i], head_transl[i])
        return dict(zip(sides, results, strict=True))

    def _capture(self, i, observed, heads, hand_tracks, hand_rows, results, state):
        """Deformation and capture of window frame ``i`` (None when nothing is seen)."""
        head_fit = heads.fits[i]
        status: dict[str, str] = {}
        hand_fits: list[HandFit] = []
        hands_in: list[HandInput] = []
        for side in SIDES:
            track = hand_tracks.get(side)
            if track is None or not bool(track.present[i]):
                continue
            rows = hand_rows[side]
            result = results.get(side)
            R = (result.rotation[i] if result is not None else track.rotation[i]).float()
            t = (result.transl[i] if result is not None else track.transl[i]).float()
            fit = HandFit(
                side=side,
                params=HandParams(articulation=track.articulation[i : i + 1].float()),
                rotation=R,
                canonical_vertices=track.canonical_vertices[i].float(),
                canonical_keypoints=track.canonical_keypoints[i].float(),
                vertices=track.canonical_vertices[i].float() @ R.T + t,
                keypoints=track.canonical_keypoints[i].float() @ R.T + t,
                reprojection_px=float("nan"),
            ).moved(R, t)
            if result is not None and head_fit is not None:
                # the contact pull and the clearance are soft terms: make the meshes agree
                # with the verdict exactly (the capture's touching is read off the meshes)
                shift = settle_offset(
                    fit.vertices, head_fit.vertices, self.capture.head_model.faces,
                    bool(result.touching[i]),
                )  # fmt: skip
                if bool(shift.any()):
                    fit = fit.moved(R, t + shift)
            detection = observed.hands.get(side)
            if detection is None:  # bridged: the interpolated keypoints stand for a detection
                detection = HandDetection(
                    keypoints=rows.keypoints[i], depth=rows.depth[i], side=side, score=float("nan")
                )
            hand_fits.append(fit)
            hands_in.append(HandInput(side, rows.keypoints[i], rows.depth[i], detection))
            status[side] = str(rows.status[i])
        if head_fit is None and not hand_fits:
            return None, status
        detections = Detections(
            image_size=observed.frame.rgb.shape[:2],
            faces=[observed.face] if observed.face is not None else [],
            hands=[h.detection for h in hands_in],
        )
        warnings: list[str] = []
        initial = None
        if head_fit is not None and state.previous_deformation is not None:
            initial = state.previous_deformation.double() @ head_fit.rotation.double().T
        capture = self.capture.assemble(
            head_fit, hand_fits, hands_in, detections, state.camera,
            (observed.frame.rgb.shape[1], observed.frame.rgb.shape[0]), warnings,
            initial_deformation=initial,
        )  # fmt: skip
        self._finish_capture(capture, observed)
        if capture.face is not None:
            state.previous_deformation = torch.as_tensor(capture.face.deformation)
        return capture, status

    def _finish_capture(self, capture: Capture, observed: _Observed) -> None:
        """The fields every tracked frame's capture carries beyond a single image's: its
        frame, the method, the areas per hand and the person mask (for the sink)."""
        capture.image = observed.frame.rgb
        capture.source = None
        capture.mode = "full" if self.method == "fit" else self.method
        capture.extras["touched_regions_by_hand"] = self._regions_by_hand(capture)
        capture.extras["person_mask"] = observed.person_mask

    def _regions_by_hand(self, capture: Capture) -> dict[str, list[str]]:
        if self.capture.regions.generic:
            return {}
        return touched_regions_by_hand(capture)

    def _record(self, capture: Capture, observed: _Observed, status) -> SequenceFrame:
        return frame_record(
            capture,
            index=observed.frame.index,
            time_s=observed.frame.time_s,
            status=status,
            face_detected=observed.face is not None,
            hand_regions=capture.extras.get("touched_regions_by_hand", {}),
        )


@dataclass
class _HandRows:
    keypoints: np.ndarray
    depth: np.ndarray
    near: np.ndarray
    status: np.ndarray
    present: np.ndarray


class _Heads:
    def __init__(self, count: int) -> None:
        self.fits: list[HeadFit | None] = [None] * count


@dataclass
class _RunState:
    camera: CameraEstimate | None = None
    shape: Tensor | None = None
    head_anchors: HeadTrack | None = None
    articulation_anchors: dict = field(default_factory=dict)
    pose_anchors: dict = field(default_factory=dict)
    score_history: dict = field(default_factory=dict)
    hand_history: dict = field(default_factory=dict)
    previous_deformation: Tensor | None = None
    hands_seen: set = field(default_factory=set)
    any_face: bool = False
    any_hand: bool = False
    detect_s: float = 0.0


def _moved_head(fit: HeadFit, transl: Tensor) -> HeadFit:
    """The same head at another translation (stage III moves it along its viewing ray)."""
    shift = (transl.double() - fit.params.transl[0].double()).float()
    params = HeadParams(
        global_orient=fit.params.global_orient,
        transl=(fit.params.transl[0] + shift)[None],
        expression=fit.params.expression,
        shape=fit.params.shape,
    )
    return HeadFit(
        params=params,
        rotation=fit.rotation,
        canonical_vertices=fit.canonical_vertices,
        vertices=fit.vertices + shift,
        landmarks=fit.landmarks + shift,
        landmarks68=fit.landmarks68 + shift,
        reprojection_px=fit.reprojection_px,
    )


def _rotvec(R: Tensor) -> Tensor:
    import roma

    return roma.rotmat_to_rotvec(R)


def _resize(image: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    if image is None:
        return None
    if image.shape[:2] == size:
        return image
    import cv2

    return cv2.resize(image.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
