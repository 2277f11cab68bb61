"""A small Sequence built by hand (no video, no tracking) for the tests of posing and export:
per frame, a head or none and any set of hands, each with its own parameters, contact and
deformation, so a test can tell frames apart."""

from __future__ import annotations

import numpy as np

from handface.sequence import FrameHand, Sequence, SequenceFrame, SparseRows


def synthetic_sequence(present: list[tuple[bool, set[str]]], seed: int = 3) -> Sequence:
    """Frame ``t`` has a head when ``present[t][0]`` and the hands ``present[t][1]``.

    Values that tests rely on: frame ``t`` is video frame ``10 + 2t`` at ``t / 15`` s; its
    head turns by about ``0.1t`` rad; its face contact is ``0.2t`` at vertex 100 and 0.6 at
    ``200 + t``; its deformation is ``0.002t`` m on every axis of vertices ``50 + t .. 59 + t``;
    each hand's contact is ``0.3t / 4`` at vertex 5 and 0.9 at ``40 + t``; the hands of frame
    3 touch.
    """
    generator = np.random.default_rng(seed)
    frames = []
    for t, (has_head, sides) in enumerate(present):
        head = None
        if has_head:
            expression = np.zeros(52, np.float32)
            expression[[3, 17, 24]] = 0.2 * t
            head = {"global_orient": np.array([0.1 * t, 0.6 - 0.2 * t, 0.05], np.float32),
                    "transl": np.array([0.01 * t, -0.05, 0.6], np.float32),
                    "expression": expression}  # fmt: skip
        hands = {}
        for side in sorted(sides):
            sign = 1.0 if side == "right" else -1.0
            hands[side] = FrameHand(
                status="detected",
                params={"global_orient": np.array([0.3, sign * 0.2 * t, 0.1], np.float32),
                        "transl": np.array([sign * 0.08, 0.02 * t, 0.55], np.float32),
                        "articulation": generator.normal(0, 0.3, 20).astype(np.float32)},
                touching=t == 3, min_distance_mm=4.0 - t, regions=[],
                contact=SparseRows(np.array([5, 40 + t], np.int32),
                                   np.array([0.3 * t / 4, 0.9], np.float32)),
            )  # fmt: skip
        frames.append(SequenceFrame(
            index=10 + 2 * t, time_s=t / 15, face_detected=has_head, head=head, hands=hands,
            face_contact=SparseRows(np.array([100, 200 + t], np.int32),
                                    np.array([0.2 * t, 0.6], np.float32)),
            deformation=SparseRows(np.arange(50, 60, dtype=np.int32) + t,
                                   np.full((10, 3), 0.002 * t, np.float32)),
        ))  # fmt: skip
    return Sequence(
        image_size=(320, 240), K=np.array([[500.0, 0, 160], [0, 500, 120], [0, 0, 1]]),
        camera_source="given", fps=15.0, method="fit", head_shape=np.full(9, 0.4, np.float32),
        frames=frames, hand_shapes={"right": np.full(6, 0.5, np.float32),
                                    "left": np.full(6, 0.45, np.float32)},
    )  # fmt: skip
