"""Ctrl-C, SIGTERM and concurrent runs of the long commands, as real subprocesses.

Each run is stopped once its first item is complete (the output folder is polled). What must
hold (DESIGN.md, long jobs): the process exits with 128 + the signal number and one line, no
traceback; the finished items are whole and nothing of the interrupted one is left; running
again (``--resume`` where the command has it) continues without redoing the finished work; a
second process given the same ``--out`` is refused at once (:func:`handface.io.output_lock`).
The stop of `handface track` leaving nothing and Ctrl-C in `handface train` are tested in
tests/track/test_tracker.py and tests/dice/test_training.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from handface.errors import OutputBusyError
from handface.io.files import lock_path, output_lock

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SYNTH_OPTIONS = ["--num", "6", "--size", "64", "--seed", "3"]
ITEM_FOLDERS = ("images", "depth", "segmentation", "labels")


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "handface", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "handface", *args], capture_output=True, text=True, timeout=600
    )


def _wait_until(ready, process: subprocess.Popen, seconds: float = 300) -> None:
    """Poll until ``ready()``; the process must still be running then."""
    deadline = time.monotonic() + seconds
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"the process ended before it could be stopped: {process.communicate()}")
        assert time.monotonic() < deadline, "the first item never appeared"
        time.sleep(0.05)
    assert process.poll() is None, "the process ended before it could be stopped"


@contextlib.contextmanager
def _paused(process: subprocess.Popen) -> Iterator[None]:
    """Suspend ``process`` (SIGSTOP) for the block, so it cannot finish meanwhile."""
    process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        process.send_signal(signal.SIGCONT)


def _stop(process: subprocess.Popen, signum: int) -> str:
    """Send ``signum``; check the exit status and the one line; return stderr."""
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr
    lines = [line.strip() for line in stderr.replace("\r", "\n").splitlines() if line.strip()]
    # the progress bar shares stderr; the stop is one line, the last one
    last = lines[-1]
    assert last.startswith(("handface: interrupted", "handface: terminated", "training stopped"))
    assert sum(line == last for line in lines) == 1
    return last


def _leftovers(root: Path) -> list[str]:
    """Staging folders, temporary files and lock files under ``root`` and beside it."""
    found = []
    for path in [*root.rglob("*"), *root.parent.glob(f".{root.name}*"), lock_path(root)]:
        name = path.name
        if name.endswith((".partial", ".tmp", ".lock", ".old")) or name.startswith(".item-"):
            if path.exists():
                found.append(str(path))
    return found


def _identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


# ------------------------------------------------------------------------------ synth


@pytest.fixture(scope="module")
def straight_synth(tmp_path_factory):
    """The dataset of SYNTH_OPTIONS made in one uninterrupted run."""
    from handface.synth import generate

    return generate(tmp_path_factory.mktemp("straight") / "data", num=6, seed=3, size=64,
                    progress=False)  # fmt: skip


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_synth_stopped_keeps_whole_samples_and_the_same_command_continues(
    tmp_path, straight_synth, signum
):
    out = tmp_path / "data"
    process = _start("synth", "--out", str(out), *SYNTH_OPTIONS)
    _wait_until(lambda: any((out / "progress").glob("*.json")), process)
    if signum == signal.SIGKILL:  # no chance to clean up: the rerun must cope
        process.kill()
        process.communicate(timeout=60)
    else:
        assert "the same command" in _stop(process, signum)
        assert _leftovers(out) == []
    assert not (out / "meta.json").exists()  # no reader takes it for a dataset yet
    finished = sorted(path.stem for path in (out / "progress").glob("*.json"))
    if signum != signal.SIGKILL:
        # every file belongs to a finished sample, and every finished sample has all its files
        for folder in ITEM_FOLDERS:
            assert sorted(p.name.split(".")[0] for p in (out / folder).iterdir()) == finished
    kept = {key: _identity(out / "images" / f"{key}.png") for key in finished}

    again = _run("synth", "--out", str(out), *SYNTH_OPTIONS)
    assert again.returncode == 0, again.stderr
    assert f"{len(finished)} of 6 samples already in" in again.stdout
    assert {key: _identity(out / "images" / f"{key}.png") for key in finished} == kept
    assert _leftovers(out) == [] and not (out / "progress").exists()
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in straight_synth.iterdir())
    # continued bit for bit: the dataset of one uninterrupted run
    assert (out / "meta.json").read_bytes() == (straight_synth / "meta.json").read_bytes()
    for key in [f"{i:06d}" for i in range(6)]:
        assert (out / "images" / f"{key}.png").read_bytes() == (
            straight_synth / "images" / f"{key}.png"
        ).read_bytes()
        with np.load(out / "labels" / f"{key}.npz") as a, np.load(
            straight_synth / "labels" / f"{key}.npz"
        ) as b:  # fmt: skip
            assert all(np.array_equal(a[name], b[name]) for name in b.files)


def test_a_second_synth_into_the_same_out_is_refused_at_once(tmp_path):
    out = tmp_path / "data"
    first = _start("synth", "--out", str(out), *SYNTH_OPTIONS)
    _wait_until(lambda: any((out / "progress").glob("*.json")), first)
    with _paused(first):  # still holding its output, whatever the machine's speed
        second = _run("synth", "--out", str(out), *SYNTH_OPTIONS)
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert second.stderr.strip() == (
        f"handface: error: {out} is being written by another handface process (pid "
        f"{first.pid}); wait for it or choose another --out"
    )
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    meta = json.loads((out / "meta.json").read_text())
    assert [item["key"] for item in meta["items"]] == [f"{i:06d}" for i in range(6)]
    for folder in ITEM_FOLDERS:
        assert len(list((out / folder).iterdir())) == 6
    assert _leftovers(out) == []


# ------------------------------------------------------------------------------ reconstruct


@pytest.fixture
def photos(tmp_path) -> list[Path]:
    """Three small real photos under names of their own."""
    folder = tmp_path / "photos"
    folder.mkdir()
    sources = sorted(EXAMPLES.glob("*.jpg"))
    assert len(sources) >= 3
    return [
        Path(shutil.copy(source, folder / f"photo{i}.jpg")) for i, source in enumerate(sources[:3])
    ]


def _reconstruct(photos: list[Path], out: Path, *extra: str) -> list[str]:
    return ["reconstruct", *map(str, photos), "--out", str(out), "--method", "dice", *extra]


def _complete_captures(out: Path) -> list[str]:
    names = []
    for folder in sorted(out.iterdir()):
        files = {p.name for p in folder.iterdir()}
        assert {"result.json", "params.npz", "overlay.png", "face.ply"} <= files, folder
        json.loads((folder / "result.json").read_text())
        names.append(folder.name)
    return names


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_reconstruct_stopped_keeps_finished_folders_and_resume_does_the_rest(
    tmp_path, photos, signum
):
    out = tmp_path / "out"
    process = _start(*_reconstruct(photos, out))
    _wait_until(lambda: (out / "photo0" / "result.json").is_file(), process)
    assert "--resume" in _stop(process, signum)
    finished = _complete_captures(out)  # only whole folders: no staging, no lock file
    assert "photo0" in finished and len(finished) < 3 and _leftovers(out) == []
    if signum == signal.SIGINT:
        return  # the state is the same; resuming is tested once
    kept = _identity(out / "photo0" / "params.npz")
    again = _run(*_reconstruct(photos, out, "--resume"))
    assert again.returncode == 0, again.stderr
    assert f"{len(finished)} of 3 images already done" in again.stdout
    assert again.stdout.count("overlay:") == 3 - len(finished)  # the others only
    assert _complete_captures(out) == ["photo0", "photo1", "photo2"]
    assert _identity(out / "photo0" / "params.npz") == kept
    assert _leftovers(out) == []


# ------------------------------------------------------------------------------ train


def test_train_sigterm_saves_and_resume_continues_from_the_saved_step(synth_dataset, tmp_path):
    from handface.dice.trainer import load_checkpoint

    run = tmp_path / "run"
    command = ["train", "--config", "dice-small-cnn", "--data", str(synth_dataset), "--out",
               str(run), "--batch-size", "2"]  # fmt: skip
    process = _start(*command, "--max-steps", "2000")
    _wait_until(lambda: (run / "log.jsonl").is_file(), process)  # 10 steps done
    assert "--resume" in _stop(process, signal.SIGTERM)
    # saved on the way out (the periodic save comes every 5 minutes)
    saved = int(load_checkpoint(run / "checkpoint.pt")["step"])
    assert 10 <= saved < 2000 and _leftovers(run) == []

    again = _run(*command, "--max-steps", str(saved + 3), "--resume")
    assert again.returncode == 0, again.stderr
    assert int(load_checkpoint(run / "checkpoint.pt")["step"]) == saved + 3
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    # from the saved step on, not from 0: no step logged twice, the last one is the new end
    assert steps == sorted(set(steps)) and steps[-1] == saved + 3
    assert _leftovers(run) == []


# ------------------------------------------------------------------------------ track


def test_track_refuses_a_second_run_leaves_nothing_when_stopped_and_runs_again(clip, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    images = sorted((clip / "images").glob("*.png"))
    for repeat in range(4):  # 32 frames: long enough to be stopped mid-run
        for i, image in enumerate(images):
            shutil.copy(image, frames / f"{repeat * len(images) + i:04d}.png")
    out = tmp_path / "out"
    first = _start("track", str(frames), "--out", str(out))
    _wait_until(lambda: any(tmp_path.glob(".out.*.partial")), first)
    with _paused(first):
        second = _run("track", str(frames), "--out", str(out))
    assert second.returncode == 2, second.stderr
    assert f"is being written by another handface process (pid {first.pid})" in second.stderr
    _stop(first, signal.SIGTERM)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # no folder, no lock

    again = _run("track", str(frames), "--out", str(out), "--end", "3")
    assert again.returncode == 0, again.stderr
    timeline = json.loads((out / "timeline.json").read_text())
    assert len(timeline["frames"]) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "out"]


# ------------------------------------------------------------------------------ the lock


@pytest.mark.parametrize("command", ["reconstruct", "train", "avatar"])
def test_an_output_held_by_another_process_is_refused_in_one_line(command, request, tmp_path):
    out = tmp_path / "out"
    if command == "avatar":  # refused before the video is opened: the lock comes first
        args = ["avatar", str(tmp_path / "clip.mp4"), "--out", str(out)]
    elif command == "train":
        data = request.getfixturevalue("synth_dataset")
        args = ["train", "--data", str(data), "--out", str(out)]
    else:
        args = _reconstruct(sorted(EXAMPLES.glob("*.jpg"))[:1], out)
    with output_lock(out):  # this test process holds it
        refused = _run(*args)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"handface: error: {out} is being written by another handface process (pid "
        f"{os.getpid()}); wait for it or choose another --out"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def _hold_as_another_process(out: Path, mode: int = fcntl.LOCK_EX, pid: int = 4242) -> int:
    """Lock ``out`` through a descriptor of its own, as another process would."""
    descriptor = os.open(lock_path(out), os.O_RDWR | os.O_CREAT)
    fcntl.flock(descriptor, mode | fcntl.LOCK_NB)
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"{pid}\n".encode())
    return descriptor


def test_the_lock_refuses_a_holder_and_takes_over_a_stale_file(tmp_path):
    out = tmp_path / "out"
    descriptor = _hold_as_another_process(out)
    with pytest.raises(OutputBusyError, match=r"out is being written .* \(pid 4242\)"):
        with output_lock(out):
            pass
    os.close(descriptor)  # the holder died: its file stays, its lock is gone
    assert lock_path(out).read_text() == "4242\n"
    with output_lock(out):
        assert lock_path(out).read_text() == f"{os.getpid()}\n"
        with output_lock(out):  # re-entrant within a process
            pass
        assert lock_path(out).exists()
    assert sorted(tmp_path.iterdir()) == []


def test_shared_holders_exclude_only_an_exclusive_one(tmp_path):
    out = tmp_path / "out"
    other = _hold_as_another_process(out, fcntl.LOCK_SH)
    with output_lock(out, shared=True):  # another shard of the same dataset
        pass
    assert lock_path(out).exists()  # the other holder is still there
    with pytest.raises(OutputBusyError):
        with output_lock(out):
            pass
    os.close(other)
    with output_lock(out, shared=True):
        pass
    assert sorted(tmp_path.iterdir()) == []  # the last holder removed it


def test_folders_made_for_the_lock_go_when_nothing_was_written(tmp_path):
    with output_lock(tmp_path / "a" / "b" / "out"):
        assert lock_path(tmp_path / "a" / "b" / "out").is_file()
    assert sorted(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ deferred stops


def test_a_stop_inside_a_deferred_block_is_raised_when_it_ends(monkeypatch):
    from handface import interrupt

    monkeypatch.setattr(interrupt, "_requested", None)
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with interrupt.deferred():
            interrupt._handler(signal.SIGINT, None)  # what the installed handler receives
            steps.append("moved")  # the block is not cut in half
            interrupt._handler(signal.SIGINT, None)
            steps.append("recorded")
    assert steps == ["moved", "recorded"]


def test_the_stop_line_says_how_to_continue(monkeypatch):
    from handface import interrupt

    monkeypatch.setattr(interrupt, "_hint", None)
    assert interrupt.message(signal.SIGTERM) == interrupt.MESSAGES[signal.SIGTERM]
    interrupt.resume_hint("rerun with --resume")
    assert interrupt.message(signal.SIGINT) == (
        "handface: interrupted; no partial output was kept; rerun with --resume"
    )
