"""``handface avatar render``: an avatar's frames re-rendered as a video."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from handface.errors import InputError
from handface.io.files import refuse_existing


def render_video(
    avatar_folder: str | os.PathLike,
    out: str | os.PathLike,
    *,
    start: int = 0,
    end: int | None = None,
    stride: int = 1,
    deformed: bool = True,
    hand_poses: str | os.PathLike | None = None,
    placement: str = "physics",
    expressions: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> tuple[int, float]:
    """Render frames ``start:end:stride`` of the avatar to the MP4 ``out`` (written atomically);
    returns the frame count and the seconds spent rendering (``render_fps`` = their ratio).

    ``hand_poses``: a hand pose file (:mod:`handface.avatar.hand_poses`) whose hands replace
    the frames' own, one entry per rendered frame (or one for all); their deformation is found
    anew by ``placement`` (``physics`` or ``contact``, see
    :func:`~handface.avatar.hand_poses.placement_deformation`; counted in the seconds).
    ``expressions``: an expression file (:mod:`handface.avatar.expressions`) setting
    coefficients of the rendered frames' expressions, one entry per frame (or one for all)."""
    from tqdm import tqdm

    from handface.avatar.folder import load_avatar
    from handface.models import AnnyHandModel, default_head_model
    from handface.viz.sequence_overlay import OverlayVideoWriter

    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise InputError(f"{out}: the avatar video is written as .mp4; name it so")
    refuse_existing(out, overwrite)
    if stride < 1:
        raise InputError(f"--stride must be at least 1, got {stride}")
    avatar = load_avatar(Path(avatar_folder))
    frames = range(len(avatar))[start:end:stride]
    if not len(frames):
        raise InputError(f"no avatar frame in {start}:{end}:{stride} (it has {len(avatar)})")
    head_model = default_head_model()
    hand_models = {side: AnnyHandModel(side) for side in ("left", "right")}
    if expressions is not None:
        avatar = _with_expressions(avatar, head_model, list(frames), Path(expressions))
    placed, displacements = None, None
    seconds = 0.0
    if hand_poses is not None:
        tick = time.perf_counter()
        placed, displacements = _placements(
            avatar, head_model, hand_models, list(frames), Path(hand_poses), deformed, placement,
            progress,
        )  # fmt: skip
        seconds += time.perf_counter() - tick
    with OverlayVideoWriter(out, avatar.fps / stride) as writer:
        for i, t in enumerate(tqdm(frames, desc="avatar render", unit="frame",
                                   disable=not progress)):  # fmt: skip
            tick = time.perf_counter()
            if placed is None:
                image = avatar.render(head_model, hand_models, t, deformed=deformed)
            else:
                image = avatar.render(head_model, hand_models, t, deformed=deformed,
                                      displacement=displacements[i], hands=placed[i])  # fmt: skip
            seconds += time.perf_counter() - tick
            writer.write(_even(image))
    return len(frames), seconds


def _with_expressions(avatar, head_model, frames, path):
    """The avatar with the expression file's coefficients set on the rendered frames."""
    from dataclasses import replace

    from handface.avatar.expressions import apply_expression, read_expressions

    labels = list(head_model.expression_labels)
    edits = read_expressions(path, labels, head_model.expression_bounds)
    if len(edits) == 1:
        edits = edits * len(frames)
    if len(edits) != len(frames):
        raise InputError(f"{path} has {len(edits)} expressions for {len(frames)} rendered "
                         "frames; give one per frame or one for all")  # fmt: skip
    expression = np.array(avatar.expression, dtype=np.float32, copy=True)
    for t, edit in zip(frames, edits, strict=True):
        expression[t] = apply_expression(expression[t], edit, labels)
    return replace(avatar, expression=expression)


def _placements(avatar, head_model, hand_models, frames, path, deformed, method, progress):
    """The hands of a hand pose file on each rendered frame, and their deformation."""
    import torch

    from handface.avatar.hand_poses import placed_hands, placement_deformation, read_hand_poses

    sizes = {model.num_articulation for model in hand_models.values()}
    poses = read_hand_poses(path, sizes.pop() if sizes else 0)
    if len(poses) == 1:
        poses = poses * len(frames)
    if len(poses) != len(frames):
        raise InputError(f"{path} has {len(poses)} poses for {len(frames)} rendered frames; give "
                         "one per frame or one for all")  # fmt: skip
    placed = [placed_hands(avatar, hand_models, t, pose)
              for t, pose in zip(frames, poses, strict=True)]  # fmt: skip
    if not deformed:
        zero = torch.zeros(len(frames), int(avatar.deformation.basis.components.shape[1]), 3)
        return placed, zero
    return placed, placement_deformation(avatar, head_model, frames, placed, method,
                                         progress=progress).float()  # fmt: skip


def _even(image: np.ndarray) -> np.ndarray:
    """Pad to even height and width (H.264's 4:2:0 needs them)."""
    height, width = image.shape[:2]
    return np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
