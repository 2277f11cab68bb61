"""``handface avatar render``: an avatar's frames re-rendered as a video."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from handface.errors import InputError, OutputExistsError


def render_video(
    avatar_folder: str | os.PathLike,
    out: str | os.PathLike,
    *,
    start: int = 0,
    end: int | None = None,
    stride: int = 1,
    deformed: bool = True,
    overwrite: bool = False,
    progress: bool = True,
) -> tuple[int, float]:
    """Render frames ``start:end:stride`` of the avatar to the MP4 ``out`` (written atomically);
    returns the frame count and the seconds spent rendering (``render_fps`` = their ratio)."""
    from tqdm import tqdm

    from handface.avatar.folder import load_avatar
    from handface.models import AnnyHandModel, default_head_model
    from handface.viz.sequence_overlay import OverlayVideoWriter

    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise InputError(f"{out}: the avatar video is written as .mp4; name it so")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists; choose another --out or pass --overwrite")
    if stride < 1:
        raise InputError(f"--stride must be at least 1, got {stride}")
    avatar = load_avatar(Path(avatar_folder))
    frames = range(len(avatar))[start:end:stride]
    if not len(frames):
        raise InputError(f"no avatar frame in {start}:{end}:{stride} (it has {len(avatar)})")
    head_model = default_head_model()
    hand_models = {side: AnnyHandModel(side) for side in avatar.hands}
    width, height = avatar.image_size
    seconds = 0.0
    with OverlayVideoWriter(out, avatar.fps / stride) as writer:
        for t in tqdm(frames, desc="avatar render", unit="frame", disable=not progress):
            tick = time.perf_counter()
            image = avatar.render(head_model, hand_models, t, deformed=deformed)
            seconds += time.perf_counter() - tick
            writer.write(_even(image))
    return len(frames), seconds


def _even(image: np.ndarray) -> np.ndarray:
    """Pad to even height and width (H.264's 4:2:0 needs them)."""
    height, width = image.shape[:2]
    return np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
