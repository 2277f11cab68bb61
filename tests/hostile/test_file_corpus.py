"""Hostile-input corpus, data and model files (issue 14): FLAME / MANO pickles that run commands,
checkpoints that hold callables or are cut short, broken synthetic datasets, mismatched
evaluation folders, bad ``synth`` options, outputs that cannot be written and a full disk.

Every input is generated here (nothing binary is committed). Each case asserts the contract of
``tests/hostile/hostile.py``: exit code 2 and one ``handface: error:`` line, no traceback, no
partial or overwritten output, and (with a marker file a hostile pickle would create) nothing
executed. Python API cases count as refused when they raise a one-line ``HandfaceError``.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import pickle
import shutil
import subprocess
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch

from handface.errors import HandfaceError
from hostile import Result, assert_refused, leftovers, record, run_cli, tree_digest

SHIPPED = Path(__file__).resolve().parents[2] / "src/handface/dice/assets/dice_small.pt"


class Reduce:
    """Pickles as the call ``func(*args)``: what a hostile file makes a plain unpickler run."""

    def __init__(self, func: Callable, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def touch_with_os_system(marker: Path) -> Reduce:
    return Reduce(os.system, f"touch {marker}")


def as_seen(text: str) -> str:
    """``text`` as a terminal shows it: a carriage return goes back to the start of the line, so
    a progress bar that is redrawn and then cleared (tqdm ``leave=False``) leaves nothing, and
    one left standing still counts as a line."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def cli(args: list) -> Result:
    """:func:`run_cli` in this process, its output as a terminal shows it (:func:`as_seen`); an
    exception that escapes the entry point becomes the traceback a user would see (recorded as
    such instead of aborting the test before ``record``)."""
    try:
        result = run_cli(args)
    except Exception:  # noqa: BLE001 - the bug being measured
        return Result(1, "", traceback.format_exc())
    return Result(result.code, as_seen(result.out), as_seen(result.err))


def call_api(call: Callable[[], object]) -> Result:
    """A Python API call as the CLI would report it: a ``HandfaceError`` is the one error line."""
    try:
        call()
    except HandfaceError as error:
        return Result(2, "", f"handface: error: {error}\n")
    except Exception:  # noqa: BLE001
        return Result(1, "", traceback.format_exc())
    return Result(0, "", "")


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("file_corpus")


@pytest.fixture(scope="module")
def dataset(work) -> Path:
    """Two samples at 64 px (read-only here: cases break copies of it)."""
    from handface.synth import generate

    return generate(work / "data", num=2, seed=3, size=64, progress=False)


@pytest.fixture(scope="module")
def broken(work, dataset) -> Callable[[str, Callable[[Path], None]], Path]:
    """``broken(name, mutate)``: a copy of the dataset with ``mutate(copy)`` applied."""

    def make(name: str, mutate: Callable[[Path], None]) -> Path:
        copy = work / "broken" / name
        shutil.copytree(dataset, copy)
        mutate(copy)
        return copy

    return make


@pytest.fixture(scope="module")
def image(work) -> Path:
    from PIL import Image

    path = work / "photo.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def blocker(work) -> Path:
    """A regular file: nothing can ever be created under it (even as root)."""
    path = work / "file.txt"
    path.write_text("a file, not a folder\n")
    return path


@pytest.fixture
def marker(work, request) -> Path:
    path = work / "markers" / f"{request.node.name}.MARKER".replace("/", "_")
    path.parent.mkdir(exist_ok=True)
    assert not path.exists()
    return path


@pytest.fixture
def runs(work, request) -> Path:
    """An empty folder for the outputs of one case (its listing proves nothing partial)."""
    path = work / "runs" / request.node.name.replace("/", "_")
    path.mkdir(parents=True)
    return path


@pytest.fixture
def load_only(monkeypatch):
    """``handface view`` loads its folder but never serves it."""
    import handface.view

    def serve(path, *, host, port, index, gt):  # noqa: ARG001
        handface.view.load_scene(path, index=index, gt=gt)
        raise AssertionError(f"view accepted {path} and would serve it")

    monkeypatch.setattr(handface.view, "serve", serve)


@contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``folder`` (skips where mounting is not allowed)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


TRAIN = ["--max-steps", "1", "--batch-size", "2", "--checkpoint-minutes", "60"]


# ---------------------------------------------------------------------------- FLAME / MANO
def flame_like(hostile) -> dict:
    return {"v_template": np.zeros((4, 3)), "f": np.array([[0, 1, 2]], np.uint32),
            "shapedirs": hostile, "kintree_table": np.zeros((2, 5), np.int64)}  # fmt: skip


@pytest.mark.parametrize(
    ("case", "kind", "make"),
    [
        ("flame-pickle-os-system", "flame", lambda m: touch_with_os_system(m)),
        ("mano-pickle-os-system", "mano", lambda m: touch_with_os_system(m)),
        ("flame-pickle-builtins-eval", "flame",
         lambda m: Reduce(builtins.eval, f"__import__('os').system('touch {m}')")),
        ("mano-pickle-subprocess-popen", "mano", lambda m: Reduce(subprocess.Popen, ["touch", m])),
    ],
)  # fmt: skip
def test_model_pickle_runs_nothing(case, kind, make, work, marker):
    from handface.models import FlameHeadModel, ManoHandModel

    path = work / f"{case}.pkl"
    path.write_bytes(pickle.dumps(flame_like(make(marker)), protocol=2))
    model = FlameHeadModel if kind == "flame" else ManoHandModel
    result = call_api(lambda: model(path))
    assert_refused(case, result, match="refusing to load", executed=marker.exists())


def test_flame_landmark_embedding_object_npy(work, marker):
    from handface.models import load_flame_landmark_embedding

    path = work / "landmark_embedding.npy"
    np.save(path, np.array(touch_with_os_system(marker), dtype=object), allow_pickle=True)
    result = call_api(lambda: load_flame_landmark_embedding(path))
    assert_refused("flame-embedding-npy-os-system", result, match="refusing to load",
                   executed=marker.exists())  # fmt: skip


def test_flame_pickle_truncated(work):
    from handface.models import FlameHeadModel

    path = work / "flame_truncated.pkl"
    path.write_bytes(pickle.dumps(flame_like(np.zeros((4, 3, 2))), protocol=2)[:60])
    result = call_api(lambda: FlameHeadModel(path))
    assert_refused("flame-pickle-truncated", result, match="not a readable pickle")


# ---------------------------------------------------------------------------- checkpoints
def hostile_checkpoint(path: Path, payload) -> Path:
    torch.save({"format": "handface-dice-1", "model": {}, "hook": payload}, path)
    return path


def test_checkpoint_os_system_reconstruct_dice(work, image, marker, runs):
    """In a fresh interpreter, as a user's shell runs it."""
    checkpoint = hostile_checkpoint(work / "system.pt", touch_with_os_system(marker))
    result = run_cli(["reconstruct", image, "--out", runs / "out", "--method", "dice",
                      "--checkpoint", checkpoint], in_subprocess=True)  # fmt: skip
    assert_refused("ckpt-os-system-reconstruct-dice", result, match="'posix.system'",
                   partial=bool(leftovers(runs, set())), executed=marker.exists())  # fmt: skip


def test_checkpoint_custom_callable_train_init_from(work, dataset, marker, runs):
    checkpoint = hostile_checkpoint(work / "touch.pt", Reduce(Path.touch, marker))
    result = cli(["train", "--data", dataset, "--out", runs / "run", "--init-from", checkpoint,
                  *TRAIN])  # fmt: skip
    assert_refused("ckpt-path-touch-train-init-from", result, match="which is refused",
                   partial=bool(leftovers(runs, set())), executed=marker.exists())  # fmt: skip


def test_checkpoint_exec_train_resume(dataset, marker, runs):
    run = runs / "run"
    run.mkdir()
    hostile_checkpoint(run / "checkpoint.pt",
                       Reduce(builtins.exec, f"open({str(marker)!r}, 'w').close()"))  # fmt: skip
    before = tree_digest(run)
    result = cli(["train", "--data", dataset, "--out", run, "--resume", *TRAIN])
    assert_refused("ckpt-builtins-exec-train-resume", result, match="which is refused",
                   partial=tree_digest(run) != before, executed=marker.exists())  # fmt: skip


def test_checkpoint_popen_export_model(work, marker, runs):
    checkpoint = hostile_checkpoint(work / "popen.pt", Reduce(subprocess.Popen, ["touch", marker]))
    result = cli(["export-model", "--out", runs / "dice.onnx", "--checkpoint", checkpoint])
    assert_refused("ckpt-popen-export-model", result, match="Popen', which is refused",
                   partial=bool(leftovers(runs, set())), executed=marker.exists())  # fmt: skip


def test_checkpoint_custom_class_python_api(work, image, marker):
    import handface

    checkpoint = hostile_checkpoint(work / "api.pt", Reduce(Path.write_text, marker, "ran"))
    result = call_api(lambda: handface.reconstruct(image, method="dice", checkpoint=checkpoint))
    assert_refused("ckpt-write-text-python-api", result, match="which is refused",
                   executed=marker.exists())  # fmt: skip


def test_checkpoint_truncated(work, image, runs):
    path = work / "truncated.pt"
    data = SHIPPED.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    result = cli(["reconstruct", image, "--out", runs / "out", "--method", "dice",
                  "--checkpoint", path])  # fmt: skip
    assert_refused("ckpt-truncated-reconstruct-dice", result, match="not a handface checkpoint",
                   partial=bool(leftovers(runs, set())))  # fmt: skip


def test_checkpoint_zero_bytes(work, runs):
    path = work / "empty.pt"
    path.write_bytes(b"")
    result = cli(["export-model", "--out", runs / "dice.onnx", "--checkpoint", path])
    assert_refused("ckpt-zero-bytes-export-model", result, match="empty",
                   partial=bool(leftovers(runs, set())))  # fmt: skip


def test_checkpoint_top_level_tensor(work, runs):
    path = work / "tensor.pt"
    torch.save(torch.zeros(3), path)
    result = cli(["export-model", "--out", runs / "dice.onnx", "--checkpoint", path])
    assert_refused("ckpt-plain-tensor-export-model", result, match="no DICE network weights",
                   partial=bool(leftovers(runs, set())))  # fmt: skip


@pytest.fixture(scope="module")
def shipped_state() -> dict:
    return torch.load(SHIPPED, map_location="cpu", weights_only=True)


def test_checkpoint_missing_and_extra_keys(work, image, runs, shipped_state):
    weights = dict(shipped_state["model"])
    dropped = sorted(weights)[0]
    del weights[dropped]
    weights["surplus.weight"] = torch.zeros(2)
    path = work / "keys.pt"
    torch.save({**shipped_state, "model": weights}, path)
    result = cli(["reconstruct", image, "--out", runs / "out", "--method", "dice",
                  "--checkpoint", path])  # fmt: skip
    assert_refused("ckpt-missing-extra-keys-reconstruct-dice", result, match=dropped,
                   partial=bool(leftovers(runs, set())))  # fmt: skip
    assert "surplus.weight" in result.err


def test_checkpoint_config_of_another_preset(work, image, runs, shipped_state):
    """dice-small weights under a dice-small-cnn config: says what does not fit."""
    from dataclasses import asdict

    from handface.dice.config import get_config

    path = work / "other_config.pt"
    torch.save({**shipped_state, "config": asdict(get_config("dice-small-cnn"))}, path)
    result = cli(["reconstruct", image, "--out", runs / "out", "--method", "dice",
                  "--checkpoint", path])  # fmt: skip
    assert_refused("ckpt-other-config-reconstruct-dice", result, match="dice-small-cnn",
                   partial=bool(leftovers(runs, set())))  # fmt: skip
    assert "missing" in result.err or "unexpected" in result.err, result.err


def test_checkpoint_other_config_train_init_from(work, dataset, runs):
    path = work / "dice_small_copy.pt"
    shutil.copyfile(SHIPPED, path)
    result = cli(["train", "--data", dataset, "--out", runs / "run", "--config",
                  "dice-small-cnn", "--init-from", path, *TRAIN])  # fmt: skip
    assert_refused("ckpt-other-config-train-init-from", result, match="--config dice-small",
                   partial=bool(leftovers(runs, set())))  # fmt: skip


# ---------------------------------------------------------------------------- avatar --basis
def test_avatar_basis_truncated(work, runs):
    path = work / "basis_truncated.npz"
    buffer = io.BytesIO()
    np.savez_compressed(buffer, components=np.zeros((2, 10, 3), np.float32))
    path.write_bytes(buffer.getvalue()[:100])
    result = cli(["avatar", work / "no_video.mp4", "--out", runs / "avatar", "--basis", path])
    assert_refused("avatar-basis-truncated", result, match=str(path),
                   partial=bool(leftovers(runs, set())))  # fmt: skip


def test_avatar_basis_pickled_object(work, runs, marker):
    path = work / "basis_object.npz"
    np.savez(path, components=np.array([touch_with_os_system(marker)], dtype=object))
    result = cli(["avatar", work / "no_video.mp4", "--out", runs / "avatar", "--basis", path])
    assert_refused("avatar-basis-object-pickle", result, match=str(path),
                   partial=bool(leftovers(runs, set())), executed=marker.exists())  # fmt: skip


# ---------------------------------------------------------------------------- broken datasets
def drop_label(root: Path) -> None:
    (root / "labels" / "000001.npz").unlink()


def cut_label(root: Path) -> None:
    path = root / "labels" / "000001.npz"
    path.write_bytes(path.read_bytes()[:2000])


def newer_meta(root: Path) -> None:
    meta = json.loads((root / "meta.json").read_text())
    (root / "meta.json").write_text(json.dumps({**meta, "version": 99}))


def binary_meta(root: Path) -> None:
    (root / "meta.json").write_bytes(b"\xff\xfe\x00PK\x03\x04 not json at all")


def list_meta(root: Path) -> None:
    (root / "meta.json").write_text("[1, 2, 3]")


def text_meta(root: Path) -> None:
    (root / "meta.json").write_text('{"format": "handface-synth", "version": 1, "items": [')


def empty_folder(root: Path) -> None:
    shutil.rmtree(root)
    root.mkdir()


BROKEN = {
    "missing-label": (drop_label, "000001.npz"),
    "corrupt-label": (cut_label, "000001.npz"),
    "meta-newer-version": (newer_meta, "version 99"),
    "meta-binary": (binary_meta, "meta.json"),
    "meta-json-list": (list_meta, "meta.json"),
    "meta-not-json": (text_meta, "not valid JSON"),
    "empty-folder": (empty_folder, "no meta.json"),
}


@pytest.mark.parametrize(
    ("command", "broken_kind"),
    [
        ("eval", "missing-label"), ("pca", "missing-label"), ("train", "missing-label"),
        ("view", "missing-label"),
        ("eval", "corrupt-label"), ("pca", "corrupt-label"), ("train", "corrupt-label"),
        ("eval", "meta-newer-version"), ("pca", "meta-newer-version"),
        ("train", "meta-newer-version"),
        ("view", "meta-binary"), ("eval", "meta-binary"),
        ("pca", "meta-json-list"), ("train", "meta-json-list"),
        ("eval", "meta-not-json"), ("view", "meta-not-json"),
        ("eval", "empty-folder"), ("pca", "empty-folder"), ("train", "empty-folder"),
        ("view", "empty-folder"),
    ],
)  # fmt: skip
def test_broken_dataset(command, broken_kind, broken, dataset, runs, load_only):
    mutate, match = BROKEN[broken_kind]
    root = broken(f"{command}-{broken_kind}", mutate)
    before = tree_digest(root)
    if command == "eval":
        args = ["eval", "--pred", dataset, "--gt", root, "--json"]
    elif command == "pca":
        args = ["pca", "--data", root, "--out", runs / "basis.npz"]
    elif command == "train":
        args = ["train", "--data", root, "--out", runs / "run", *TRAIN]
    else:
        args = ["view", root, "--index", "1"]
    result = cli(args)
    if broken_kind == "empty-folder" and command == "view":
        match = "neither"  # view cannot know what an empty folder was meant to be
    assert_refused(f"{command}-dataset-{broken_kind}", result, match=match,
                   partial=bool(leftovers(runs, set())) or tree_digest(root) != before)  # fmt: skip


# ---------------------------------------------------------------------------- eval folders
def pred_with(work: Path, name: str, dataset: Path, keys: dict[str, str]) -> Path:
    """A prediction folder holding ``dataset``'s labels of ``keys`` (source -> name)."""
    pred = work / "pred" / name
    (pred / "labels").mkdir(parents=True)
    for source, key in keys.items():
        shutil.copyfile(dataset / "labels" / f"{source}.npz", pred / "labels" / f"{key}.npz")
    return pred


def test_eval_mismatched_keys(work, dataset):
    pred = pred_with(work, "renamed", dataset, {"000000": "100000", "000001": "100001"})
    result = cli(["eval", "--pred", pred, "--gt", dataset])
    assert_refused("eval-pred-mismatched-keys", result, match="--allow-missing")
    assert "2 of 2" in result.err


def test_eval_mismatched_keys_allow_missing(work, dataset):
    pred = pred_with(work, "renamed-allow", dataset, {"000000": "100000", "000001": "100001"})
    result = cli(["eval", "--pred", pred, "--gt", dataset, "--allow-missing"])
    assert_refused("eval-pred-no-key-allow-missing", result, match="no result for any item")


def test_eval_allow_missing_scores_the_rest(work, dataset):
    """The documented behaviour: with --allow-missing the items present are scored and the
    count of the others is reported (exit 0)."""
    pred = pred_with(work, "half", dataset, {"000000": "000000"})
    result = cli(["eval", "--pred", pred, "--gt", dataset, "--allow-missing"])
    handled = result.code == 0 and "1 items had no prediction" in result.out
    record("eval-pred-half-allow-missing", handled=handled, traceback=result.has_traceback)
    assert handled, (result.code, result.out[-1000:], result.err[-2000:])
    refused = cli(["eval", "--pred", pred, "--gt", dataset])
    assert_refused("eval-pred-half-no-allow-missing", refused, match="1 of 2")


def test_eval_capture_result_json_corrupt(work, dataset):
    pred = work / "pred" / "captures"
    for key in ("000000", "000001"):
        (pred / key).mkdir(parents=True)
        shutil.copyfile(dataset / "labels" / f"{key}.npz", pred / key / "params.npz")
        (pred / key / "result.json").write_text('{"timings": {"total_s": ')
    result = cli(["eval", "--pred", pred, "--gt", dataset, "--json"])
    assert_refused("eval-pred-result-json-corrupt", result, match="result.json")


def test_eval_prediction_with_pickled_object(work, dataset, marker):
    pred = pred_with(work, "object", dataset, {"000000": "000000"})
    np.savez(pred / "labels" / "000001.npz",
             face_vertices=np.array([touch_with_os_system(marker)], dtype=object))  # fmt: skip
    result = cli(["eval", "--pred", pred, "--gt", dataset, "--json"])
    assert_refused("eval-pred-object-pickle", result, match="000001.npz",
                   executed=marker.exists())  # fmt: skip


# ---------------------------------------------------------------------------- synth options
def test_synth_existing_folder_is_kept(work):
    out = work / "kept"
    (out / "images").mkdir(parents=True)
    (out / "notes.txt").write_text("my notes\n")
    (out / "images" / "a.png").write_bytes(b"not really a png")
    before, names = tree_digest(out), set(os.listdir(work))
    result = cli(["synth", "--out", out, "--num", "1", "--size", "64"])
    changed = tree_digest(out) != before or bool(leftovers(work, names))
    assert_refused("synth-out-existing-folder", result, match="--overwrite", partial=changed)


@pytest.mark.parametrize(
    ("case", "options", "match"),
    [
        ("synth-num-zero", ["--num", "0"], "--num must be at least 1"),
        ("synth-num-negative", ["--num=-3"], "--num must be at least 1"),
        ("synth-shard-out-of-range", ["--num", "4", "--shard", "3/2"], "--shard 3/2"),
        ("synth-shard-not-a-fraction", ["--num", "4", "--shard", "x"], "--shard must look like"),
    ],
)  # fmt: skip
def test_synth_bad_options(case, options, match, runs):
    result = cli(["synth", "--out", runs / "data", "--size", "64", *options])
    assert_refused(case, result, match=match, partial=bool(leftovers(runs, set())))


def test_synth_api_num_zero(runs):
    from handface.synth import generate

    result = call_api(lambda: generate(runs / "data", num=0, size=64, progress=False))
    assert_refused("synth-api-num-zero", result, match="--num must be at least 1",
                   partial=bool(leftovers(runs, set())))  # fmt: skip


# ---------------------------------------------------------------------------- unwritable outputs
@pytest.mark.parametrize("command", ["synth", "train", "pca", "export-model"])
def test_output_under_a_file(command, blocker, dataset, work):
    out = blocker / "out"
    args = {
        "synth": ["synth", "--out", out, "--num", "1", "--size", "64"],
        "train": ["train", "--data", dataset, "--out", out, *TRAIN],
        "pca": ["pca", "--data", dataset, "--out", out / "basis.npz"],
        "export-model": ["export-model", "--out", out / "dice.onnx"],
    }[command]
    before = set(os.listdir(work))
    result = cli(args)
    changed = bool(leftovers(work, before)) or blocker.read_text() != "a file, not a folder\n"
    assert_refused(f"{command}-out-under-a-file", result, match="not a folder", partial=changed)


# ---------------------------------------------------------------------------- full disk
def test_synth_disk_full(work):
    with small_disk(work / "disk_synth", "64k") as disk:
        result = cli(["synth", "--out", disk / "data", "--num", "1", "--size", "64"])
        left = leftovers(disk, set())
    assert_refused("synth-disk-full", result, match="no space left on device", partial=bool(left))


def test_pca_disk_full(work, dataset):
    with small_disk(work / "disk_pca", "8k") as disk:
        result = cli(["pca", "--data", dataset, "--out", disk / "basis.npz"])
        left = leftovers(disk, set())
    assert_refused("pca-disk-full", result, match="no space left on device", partial=bool(left))
