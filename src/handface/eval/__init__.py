"""The benchmark metrics of hand-face interaction capture and their tables.

See :mod:`handface.eval.metrics` for the exact definitions (Decaf / DICE protocol).
"""

from handface.eval.metrics import (
    COLLISION_THRESHOLD,
    CONTACT_THRESHOLD,
    DEFORMATION_THRESHOLD,
    SPURIOUS_PENETRATION,
    SUMMARY_KEYS,
    TOUCH_THRESHOLD,
    ContactCounts,
    ContactScores,
    FrameMetrics,
    collides,
    collision_distance,
    contact_scores,
    deformation_error,
    evaluate_frame,
    f_score,
    mpjpe,
    pa_mpjpe,
    penetration_depths,
    pve,
    summarize,
    touches,
)
from handface.eval.tables import PUBLISHED_DECAF_TEST, PUBLISHED_LABEL, format_tables

__all__ = [
    "COLLISION_THRESHOLD",
    "CONTACT_THRESHOLD",
    "DEFORMATION_THRESHOLD",
    "PUBLISHED_DECAF_TEST",
    "PUBLISHED_LABEL",
    "SPURIOUS_PENETRATION",
    "SUMMARY_KEYS",
    "TOUCH_THRESHOLD",
    "ContactCounts",
    "ContactScores",
    "FrameMetrics",
    "collides",
    "collision_distance",
    "contact_scores",
    "deformation_error",
    "evaluate_frame",
    "f_score",
    "format_tables",
    "mpjpe",
    "pa_mpjpe",
    "penetration_depths",
    "pve",
    "summarize",
    "touches",
]
