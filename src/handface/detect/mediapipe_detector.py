"""MediaPipe face mesh (478 landmarks with irises), hands (21 keypoints + handedness) and person
segmentation.

``mediapipe==0.10.21`` bundles its models in the wheel (``mp.solutions``), so detection runs
offline. Coordinates are returned in handface's pixel convention (pixel centres at integer
coordinates): MediaPipe's normalised ``x`` maps to ``x * W - 0.5``.

Large images are detected on a copy whose longer side is ``max_side`` (``cv2.INTER_AREA``) and
every output is reported at full resolution: a coordinate scales from the small image to the full
one as ``x_full = (x_small + 0.5) * s - 0.5`` with ``s = W_full / W_small`` (per axis), relative
depths scale by ``s`` of the x axis, and the person mask is upsampled bilinearly (OpenCV's
``resize`` uses the same pixel-centre convention).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Float, UInt8

from handface import interrupt
from handface.console import native_logs_silenced

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIDES = ("left", "right")


@dataclass
class FaceDetection:
    """One face: 478 landmarks in pixels, plus MediaPipe's relative depth (same scale as x)."""

    landmarks: Float[np.ndarray, "478 2"]
    depth: Float[np.ndarray, "478"]


@dataclass
class HandDetection:
    """One hand: 21 keypoints in pixels (MediaPipe order), relative depths and handedness."""

    keypoints: Float[np.ndarray, "21 2"]
    depth: Float[np.ndarray, "21"]
    side: str
    """"left" or "right" as MediaPipe labels it (it assumes a mirrored selfie: see detector)."""
    score: float
    """MediaPipe's handedness confidence for the label it gave."""
    relabeled: bool = False
    """True when MediaPipe gave this hand the other side's label, which a higher-scoring hand
    already held, and the detector moved it to the free side (see :class:`Detections`)."""


@dataclass
class Detections:
    """Everything detected in one image.

    ``hands`` holds at most one hand per side. When MediaPipe labels two hands with the same
    side, the higher-scoring one keeps the label; the other is relabelled to the opposite side
    (``relabeled=True``) only if no hand holds that side, and dropped otherwise. Two hands in
    one image almost always belong to two different sides, and the fitting stage models exactly
    one left and one right hand, so a duplicate label is far more likely a handedness error than
    a second person's hand.
    """

    image_size: tuple[int, int]
    """(height, width) in pixels."""
    faces: list[FaceDetection] = field(default_factory=list)
    hands: list[HandDetection] = field(default_factory=list)
    person_mask: Float[np.ndarray, "H W"] | None = None
    """Per-pixel probability in [0, 1] that the pixel shows a person, at full image resolution;
    None when segmentation is turned off."""
    timing_s: float = 0.0
    """Seconds spent inside MediaPipe (all models, not the resizing)."""

    def hand(self, side: str) -> HandDetection | None:
        """The hand detected on ``side`` ("left" or "right"), or None."""
        if side not in SIDES:
            raise ValueError(f'side must be "left" or "right", got {side!r}')
        return next((hand for hand in self.hands if hand.side == side), None)


class MediaPipeDetector:
    """Run MediaPipe's face mesh, hand landmarker and selfie segmentation on RGB images.

    Args:
        max_hands: most hands MediaPipe looks for.
        min_confidence: MediaPipe's minimum detection confidence (faces and hands).
        mirrored_handedness: MediaPipe's handedness assumes a front-camera (mirrored) image; with
            True (ordinary photos) the label is swapped so that "right" is the person's right.
        segment_person: also compute :attr:`Detections.person_mask`.
        max_side: images whose longer side exceeds this are detected on a downscaled copy;
            None never downscales.
        video_mode: frames of one video, in order: MediaPipe tracks the face and hands from
            the previous frame instead of detecting them afresh (faster, steadier). Give the
            frames in order and use one detector per video.

    Example:
        >>> detector = MediaPipeDetector()
        >>> detections = detector(np.zeros((64, 64, 3), np.uint8))
        >>> detections.faces, detections.hands
        ([], [])
    """

    def __init__(
        self,
        max_hands: int = 2,
        min_confidence: float = 0.3,
        mirrored_handedness: bool = True,
        *,
        segment_person: bool = True,
        max_side: int | None = 1280,
        video_mode: bool = False,
    ) -> None:
        if max_side is not None and max_side < 16:
            raise ValueError(f"max_side must be at least 16 pixels, got {max_side}")
        # a Ctrl-C or SIGTERM while the graphs load waits until they are built: raised inside
        # MediaPipe's native code, it ended the process at once, leaving partial outputs
        with interrupt.deferred(), native_logs_silenced():  # TFLite and absl log on stderr
            self._build(max_hands, min_confidence, video_mode, segment_person)
            # The graphs open their calculators on worker threads after construction returns,
            # and those log then: one blank frame through each waits until all are open, so
            # their lines land inside the silenced block.
            blank = np.zeros((32, 32, 3), np.uint8)
            for solution in (self._face_mesh, self._hands, self._segmenter):
                if solution is not None:
                    solution.process(blank)
        self._mirrored_handedness = mirrored_handedness
        self.max_side = max_side
        self._seconds = 0.0

    def _build(
        self, max_hands: int, min_confidence: float, video_mode: bool, segment_person: bool
    ) -> None:
        import mediapipe as mp

        self._face_mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=not video_mode,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=min_confidence,
        )
        self._hands = mp.solutions.hands.Hands(
            static_image_mode=not video_mode,
            max_num_hands=max_hands,
            min_detection_confidence=min_confidence,
        )
        # model_selection=0 is the general model (256x256 input); 1 is the landscape model
        # (144x256), tuned for video calls. Photos of hands on faces are often portrait and the
        # hand boundary matters, so the general model's square, higher-resolution input fits.
        self._segmenter = (
            mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
            if segment_person
            else None
        )

    # ------------------------------------------------------------------ public entry points

    def detect_face(self, image: UInt8[np.ndarray, "H W 3"]) -> FaceDetection | None:
        small, full_size = self._prepare(image)
        return self._face(small, full_size)

    def detect_hands(self, image: UInt8[np.ndarray, "H W 3"]) -> list[HandDetection]:
        small, full_size = self._prepare(image)
        return self._hand_list(small, full_size)

    def segment_person(self, image: UInt8[np.ndarray, "H W 3"]) -> Float[np.ndarray, "H W"]:
        """Person probability per pixel at full resolution (needs ``segment_person=True``)."""
        if self._segmenter is None:
            raise RuntimeError("this detector was built with segment_person=False")
        small, full_size = self._prepare(image)
        return self._mask(small, full_size)

    def __call__(self, image: UInt8[np.ndarray, "H W 3"]) -> Detections:
        """Detect the face, the hands and (optionally) the person mask.

        ``image`` is RGB uint8; grayscale (H, W) / (H, W, 1) and RGBA / LA (composited over
        white) are converted. Raises ValueError for other dtypes or shapes.
        """
        small, full_size = self._prepare(image)
        self._seconds = 0.0
        face = self._face(small, full_size)
        hands = self._hand_list(small, full_size)
        mask = None if self._segmenter is None else self._mask(small, full_size)
        return Detections(
            image_size=full_size,
            faces=[] if face is None else [face],
            hands=hands,
            person_mask=mask,
            timing_s=self._seconds,
        )

    def close(self) -> None:
        """Release MediaPipe's graphs (the detector cannot be used afterwards)."""
        with native_logs_silenced():
            for solution in (self._face_mesh, self._hands, self._segmenter):
                if solution is not None:
                    solution.close()

    def __enter__(self) -> MediaPipeDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _prepare(self, image) -> tuple[np.ndarray, tuple[int, int]]:
        """Validated RGB uint8 copy for MediaPipe (downscaled if large) and the full (H, W)."""
        rgb = as_rgb_uint8(image)
        height, width = rgb.shape[:2]
        longer = max(height, width)
        if self.max_side is None or longer <= self.max_side:
            return rgb, (height, width)
        import cv2

        scale = self.max_side / longer
        small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(rgb, small_size, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(small), (height, width)

    def _process(self, solution, small: np.ndarray):
        with native_logs_silenced():  # the graphs' first runs log warnings from C++
            start = time.perf_counter()
            result = solution.process(small)
            self._seconds += time.perf_counter() - start
        return result

    @staticmethod
    def _to_full(
        points: np.ndarray, small_hw: tuple[int, int], full_hw: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Normalised MediaPipe (x, y, z) -> full-resolution pixels (N, 2) and depth (N,)."""
        from handface.geometry.camera import resized_pixels

        (small_h, small_w), (full_h, full_w) = small_hw, full_hw
        scale_x, scale_y = full_w / small_w, full_h / small_h
        x_small = points[:, 0] * small_w - 0.5
        y_small = points[:, 1] * small_h - 0.5
        pixels = resized_pixels(np.stack([x_small, y_small], 1), scale_x, scale_y)
        return pixels, points[:, 2] * small_w * scale_x

    def _face(self, small: np.ndarray, full_size: tuple[int, int]) -> FaceDetection | None:
        result = self._process(self._face_mesh, small)
        if not result.multi_face_landmarks:
            return None
        points = np.array(
            [[p.x, p.y, p.z] for p in result.multi_face_landmarks[0].landmark], dtype=np.float64
        )
        landmarks, depth = self._to_full(points, small.shape[:2], full_size)
        return FaceDetection(landmarks=landmarks, depth=depth)

    def _hand_list(self, small: np.ndarray, full_size: tuple[int, int]) -> list[HandDetection]:
        result = self._process(self._hands, small)
        hands = []
        for landmarks, handedness in zip(
            result.multi_hand_landmarks or [], result.multi_handedness or [], strict=True
        ):
            points = np.array([[p.x, p.y, p.z] for p in landmarks.landmark], dtype=np.float64)
            label = handedness.classification[0].label.lower()
            if self._mirrored_handedness:
                label = {"left": "right", "right": "left"}[label]
            keypoints, depth = self._to_full(points, small.shape[:2], full_size)
            hands.append(
                HandDetection(
                    keypoints=keypoints,
                    depth=depth,
                    side=label,
                    score=float(handedness.classification[0].score),
                )
            )
        return one_hand_per_side(hands)

    def _mask(self, small: np.ndarray, full_size: tuple[int, int]) -> np.ndarray:
        result = self._process(self._segmenter, small)
        mask = np.asarray(result.segmentation_mask, dtype=np.float32)
        if mask.shape != full_size:
            import cv2

            mask = cv2.resize(mask, (full_size[1], full_size[0]), interpolation=cv2.INTER_LINEAR)
        return np.clip(mask, 0.0, 1.0)


def same_hand(a: HandDetection, b: HandDetection, fraction: float = 0.25) -> bool:
    """Two detections of one hand: their keypoints lie, on average, within ``fraction`` of the
    hand's size (wrist to middle knuckle) of each other. MediaPipe's video mode can report a
    tracked hand and a fresh detection of it side by side."""
    size = max(
        float(np.linalg.norm(a.keypoints[9] - a.keypoints[0])),
        float(np.linalg.norm(b.keypoints[9] - b.keypoints[0])),
        1.0,
    )
    return float(np.linalg.norm(a.keypoints - b.keypoints, axis=1).mean()) < fraction * size


def one_hand_per_side(hands: list[HandDetection]) -> list[HandDetection]:
    """Keep at most one hand per side (see :class:`Detections` for the rule), in input order;
    a second detection of the same hand (:func:`same_hand`) is dropped first."""
    order = sorted(range(len(hands)), key=lambda i: -hands[i].score)
    distinct: list[int] = []
    for index in order:
        if not any(same_hand(hands[index], hands[k]) for k in distinct):
            distinct.append(index)
    hands = [hand for index, hand in enumerate(hands) if index in distinct]
    owner: dict[str, int] = {}
    for index in sorted(range(len(hands)), key=lambda i: -hands[i].score):
        owner.setdefault(hands[index].side, index)
    kept = set(owner.values())
    for index in sorted(set(range(len(hands))) - kept, key=lambda i: -hands[i].score):
        other = "left" if hands[index].side == "right" else "right"
        if other not in owner:
            owner[other] = index
            hands[index].side, hands[index].relabeled = other, True
            kept.add(index)
    return [hand for index, hand in enumerate(hands) if index in kept]


def as_rgb_uint8(image) -> UInt8[np.ndarray, "H W 3"]:
    """RGB uint8 (H, W, 3), C-contiguous, from RGB, grayscale (H, W) / (H, W, 1), or RGBA / LA
    (composited over white). Raises ValueError for other dtypes or shapes."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(
            f"expected a uint8 image with values 0..255, got dtype {array.dtype}; "
            "convert it with (image * 255).round().astype(np.uint8) or load it with load_image"
        )
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected an (H, W), (H, W, 1|2|3|4) image, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"the image has no pixels (shape {array.shape})")
    if array.shape[2] in (2, 4):
        from handface.detect.images import composite_over_white

        array = composite_over_white(array[..., :-1], array[..., -1])
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array)
