"""The words under every picture of a capture: one line per hand, its verdict and its detector.

``"right hand touching: left cheek"``, ``"left hand (bridged) not touching (34 mm away)"``,
``"no hand found"``. Used by the capture sheet (``overlay.png``), the frames of
``overlay.mp4`` and the viewer, so a capture reads the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from handface.capture import Capture
from handface.capture_parts import touched_regions_by_hand
from handface.geometry.contact import FAR

STATUS_COLORS = {
    "detected": (255, 255, 255),
    "network": (140, 215, 255),
    "bridged": (255, 190, 50),
    "missing": (165, 165, 165),
}
"""Caption colour of a hand's line by its detector status."""
HAND_SIDES = ("right", "left")

Line = tuple[str, tuple[int, int, int]]


def hand_status(capture: Capture, status: Mapping[str, str] | None, side: str) -> str | None:
    """``"detected"``, ``"network"``, ``"bridged"``, ``"missing"`` or ``None`` (no such hand):
    from ``status`` when it names the side, else from ``CapturedHand.found_by``."""
    if status is not None and side in status:
        return str(status[side])
    hand = capture.hands.get(side)
    if hand is None:
        return None
    return "network" if hand.found_by == "network" else "detected"


def _regions_by_hand(capture: Capture) -> dict[str, list[str]] | None:
    given = capture.extras.get("touched_regions_by_hand")
    if isinstance(given, Mapping):
        return {str(side): list(regions) for side, regions in given.items()}
    try:
        return touched_regions_by_hand(capture)
    except (ValueError, RuntimeError):  # a mesh the contact rule cannot measure
        return None


def verdict_lines(capture: Capture, status: Mapping[str, str] | None = None) -> list[Line]:
    """``(text, RGB colour)`` per caption line: one per hand, plus notes.

    ``status`` maps a hand side to its detector status (``"detected"``, ``"bridged"``,
    ``"network"``, ``"missing"``); without it a hand's status comes from
    ``CapturedHand.found_by``. A detected hand's line carries no status; lines are coloured by
    status (:data:`STATUS_COLORS`). A touching hand's line names the areas it touches
    (``capture.extras["touched_regions_by_hand"]`` when given, else
    :func:`~handface.capture_parts.touched_regions_by_hand`); when those cannot be told apart,
    the areas go on a line of their own. A hand that does not touch says how far it is
    (or "far from the face" beyond the reach of the distance query, :data:`FAR`).

    Example:
        >>> [text for text, _ in verdict_lines(capture, {"right": "bridged"})]  # doctest: +SKIP
        ['right hand (bridged) touching: left cheek']
    """
    white = STATUS_COLORS["detected"]
    sides = [*HAND_SIDES, *sorted(set(capture.hands) - set(HAND_SIDES))]
    shown = [side for side in sides if hand_status(capture, status, side) is not None]
    lines: list[Line] = []
    if capture.face is None:
        lines.append(("no face found" if shown else "no face or hand found", white))
    elif not shown:
        lines.append(("no hand found", white))
    touching = [side for side in shown if side in capture.hands and capture.hands[side].touching]
    by_hand = _regions_by_hand(capture) if touching else None
    by_hand = by_hand or None
    for side in shown:
        kind = hand_status(capture, status, side)
        name = f"{side} hand" if kind == "detected" else f"{side} hand ({kind})"
        color = STATUS_COLORS.get(kind, white)
        hand = capture.hands.get(side)
        if hand is None:
            text = f"{side} hand missing" if kind == "missing" else f"{name}: not fitted"
        elif hand.touching:
            if by_hand is not None and by_hand.get(side):
                regions = list(by_hand[side])
            elif len(touching) == 1:
                regions = list(capture.touched_regions)
            else:  # both hands touch: the regions go on a line of their own
                regions = []
            where = ", ".join(regions) if regions else ("" if len(touching) > 1 else "the face")
            text = f"{name} touching: {where}" if where else f"{name} touching"
        else:
            text = f"{name} not touching"
            distance = hand.min_distance_mm
            if distance is not None and math.isfinite(distance) and distance >= 1000.0 * FAR:
                text += " (far from the face)"  # beyond the distance query's reach
            elif distance is not None and math.isfinite(distance) and distance > 0:
                text += f" ({distance:.0f} mm away)"
        lines.append((text, color))
    if len(touching) > 1 and by_hand is None:
        where = ", ".join(capture.touched_regions) or "the face"
        lines.append((f"touched: {where}", white))
    return lines


def frame_caption(capture: Capture, status: Mapping[str, str] | None = None) -> list[str]:
    """The texts of :func:`verdict_lines`.

    Example:
        >>> frame_caption(capture, {"right": "bridged"})  # doctest: +SKIP
        ['right hand (bridged) touching: left cheek']
    """
    return [text for text, _ in verdict_lines(capture, status)]
