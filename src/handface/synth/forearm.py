"""A forearm for synthetic renders: a tapered elliptic tube attached at the hand's wrist.

The hand models end at the wrist; a hand floating with an open cut looks like no photograph,
and MediaPipe's palm detector expects an arm. The forearm is drawn (and labelled as part of
its hand in the segmentation) but takes no part in contact or deformation.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float, Int
from torch import Tensor

# Wrist opening of the Anny hands in their canonical frame (metres): centre and semi-axes
# across the palm normal (x) and across the palm (z).
_WRIST_CENTRE = (-0.002, -0.002)
_WRIST_SEMI_AXES = (0.018, 0.027)
_ELBOW_SEMI_AXES = (0.03, 0.04)


def forearm_mesh(
    length: float = 0.26, segments: int = 20, rings: int = 8
) -> tuple[Float[Tensor, "V 3"], Int[Tensor, "F 3"]]:
    """Tube from just inside the wrist (y = +8 mm) to ``length`` down the arm (-y), closed at the
    far end, in the hand's canonical frame (outward-wound)."""
    vertices, faces = [], []
    for ring in range(rings + 1):
        t = ring / rings
        y = 0.008 - t * length
        ax = _WRIST_SEMI_AXES[0] + t * (_ELBOW_SEMI_AXES[0] - _WRIST_SEMI_AXES[0])
        az = _WRIST_SEMI_AXES[1] + t * (_ELBOW_SEMI_AXES[1] - _WRIST_SEMI_AXES[1])
        for k in range(segments):
            angle = 2 * math.pi * k / segments
            vertices.append(
                (
                    _WRIST_CENTRE[0] + ax * math.cos(angle),
                    y,
                    _WRIST_CENTRE[1] + az * math.sin(angle),
                )
            )
    for ring in range(rings):
        for k in range(segments):
            a = ring * segments + k
            b = ring * segments + (k + 1) % segments
            faces += [(a, a + segments, b), (b, a + segments, b + segments)]
    end = len(vertices)
    vertices.append((_WRIST_CENTRE[0], 0.008 - length, _WRIST_CENTRE[1]))
    last = rings * segments
    for k in range(segments):
        faces.append((last + k, end, last + (k + 1) % segments))
    return torch.tensor(vertices, dtype=torch.float32), torch.tensor(faces, dtype=torch.int64)
