"""`handface export-model`: the DICE network as ONNX / TorchScript, checked against PyTorch.

The exported files run on fresh crops (not the ones traced or checked during the export) and
must agree with the PyTorch network; names, shapes and the sidecar are what the docs promise;
a failed export leaves nothing behind.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from handface.dice.model import IMAGENET_MEAN, IMAGENET_STD
from handface.errors import InputError, OutputExistsError
from handface.export import model as export_model
from handface.export.model import (
    OUTPUT_FIELDS,
    ExportableDice,
    ModelExportError,
    export_dice_model,
    model_format,
)

TOLERANCE = 1e-4
CORE_OUTPUTS = {
    "face_vertices", "face_vertices_undeformed", "face_deformation", "face_contact",
    "hand_vertices", "hand_keypoints", "hand_contact", "hand_presence", "hand_touch", "camera",
}  # fmt: skip


@pytest.fixture(scope="module")
def net(head_model, right_hand):
    from handface.dice.predictor import load_network

    return load_network(None, head_model, right_hand)


@pytest.fixture(scope="module")
def onnx_export(net, tmp_path_factory):
    return export_dice_model(tmp_path_factory.mktemp("onnx") / "dice.onnx", net=net)


@pytest.fixture(scope="module")
def session(onnx_export):
    import onnxruntime

    return onnxruntime.InferenceSession(str(onnx_export.path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def torchscript_export(net, tmp_path_factory):
    return export_dice_model(tmp_path_factory.mktemp("ts") / "dice.pt", net=net)


def _reference(net, names: list[str], image: torch.Tensor) -> dict[str, np.ndarray]:
    fields = tuple(f for f in OUTPUT_FIELDS if f.name in names)
    with torch.no_grad():
        values = ExportableDice(net, fields).eval()(image)
    return {f.name: v.numpy() for f, v in zip(fields, values, strict=True)}


def _assert_close(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name].shape == value.shape, name
        allowed = TOLERANCE * max(1.0, float(np.abs(value).max()))
        assert np.abs(got[name] - value).max() <= allowed, name


def _crops(batch: int, seed: int) -> torch.Tensor:
    return torch.rand(batch, 3, 224, 224, generator=torch.Generator().manual_seed(seed))


def test_onnx_runs_in_onnxruntime_like_torch_at_any_batch(session, net):
    names = [o.name for o in session.get_outputs()]
    for batch, seed in ((3, 77), (1, 78)):  # batch 3 was neither traced nor checked
        image = _crops(batch, seed)
        got = dict(zip(names, session.run(None, {"image": image.numpy()}), strict=True))
        _assert_close(got, _reference(net, names, image))
        assert got["face_vertices"].shape == (batch, 4538, 3)


def test_onnx_names_shapes_and_sidecar(onnx_export, session):
    import onnx

    (image,) = session.get_inputs()
    assert (image.name, image.shape, image.type) == ("image", ["batch", 3, 224, 224],
                                                     "tensor(float)")  # fmt: skip
    outputs = {o.name: o.shape for o in session.get_outputs()}
    assert CORE_OUTPUTS <= set(outputs)
    assert outputs["face_vertices"] == ["batch", 4538, 3]
    assert outputs["hand_contact"] == ["batch", 1609]
    assert outputs["hand_touch"] == ["batch"]
    assert min(o.version for o in onnx.load(str(onnx_export.path)).opset_import
               if o.domain in ("", "ai.onnx")) >= 17  # fmt: skip

    sidecar = json.loads(onnx_export.sidecar.read_text())
    assert onnx_export.sidecar.name == "dice.onnx.json"
    assert [o["name"] for o in sidecar["outputs"]] == list(outputs)
    assert [o["shape"] for o in sidecar["outputs"]] == list(outputs.values())
    assert sidecar["inputs"][0]["shape"] == ["batch", 3, 224, 224]
    assert sidecar["batch_size"] == "dynamic"
    pre = sidecar["preprocessing"]
    assert pre["channel_order"] == "RGB" and pre["value_range"] == [0.0, 1.0]
    assert pre["crop"]["size"] == 224
    assert pre["normalization"]["inside_model"] is True
    assert np.allclose(pre["normalization"]["mean"], IMAGENET_MEAN)
    assert np.allclose(pre["normalization"]["std"], IMAGENET_STD)
    diffs = sidecar["check"]["max_abs_diff"]
    assert set(diffs) == set(outputs) and max(diffs.values()) <= TOLERANCE
    assert sidecar["versions"]["torch"] == torch.__version__


def test_onnx_contact_outputs_are_probabilities(session):
    got = session.run(
        ["face_contact", "hand_contact", "hand_touch"], {"image": _crops(2, 5).numpy()}
    )
    for value in got:
        assert value.min() >= 0.0 and value.max() <= 1.0


def test_torchscript_reloads_and_matches_torch(torchscript_export, net):
    module = torch.jit.load(str(torchscript_export.path))
    image = _crops(2, 91)  # the file's batch size, fresh pixels
    with torch.no_grad():
        got = {name: value.numpy() for name, value in module(image).items()}
    assert list(got) == [o.name for o in torchscript_export.outputs]
    assert CORE_OUTPUTS <= set(got)
    _assert_close(got, _reference(net, list(got), image))
    sidecar = json.loads(torchscript_export.sidecar.read_text())
    assert sidecar["format"] == "torchscript" and sidecar["batch_size"] == 2
    assert sidecar["inputs"][0]["shape"] == [2, 3, 224, 224]


def test_a_failed_check_leaves_nothing(net, tmp_path, monkeypatch):
    real_run = export_model._run_exported

    def off_by_a_millimetre(path, file_format, image):
        assert path.is_file() and path.parent == tmp_path  # the candidate, next to the target
        got = real_run(path, file_format, image)
        got["face_vertices"] = got["face_vertices"] + 1e-3
        return got

    monkeypatch.setattr(export_model, "_run_exported", off_by_a_millimetre)
    with pytest.raises(ModelExportError, match="face_vertices"):
        export_dice_model(tmp_path / "dice.pt", net=net)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_exporter_leaves_nothing(net, tmp_path, monkeypatch):
    def broken(wrapped, example, path):
        path.write_bytes(b"half a model")
        raise RuntimeError("unsupported operator\nmore lines")

    monkeypatch.setattr(export_model, "_export_torchscript", broken)
    with pytest.raises(ModelExportError, match="unsupported operator"):
        export_dice_model(tmp_path / "dice.pt", net=net)
    assert list(tmp_path.iterdir()) == []


def test_model_format_from_suffix_and_refusals(tmp_path):
    assert model_format(tmp_path / "a.onnx") == "onnx"
    assert model_format(tmp_path / "a.PT") == "torchscript"
    assert model_format(tmp_path / "a.bin", "onnx") == "onnx"
    with pytest.raises(InputError, match=r"\.onnx or \.pt"):
        model_format(tmp_path / "a.bin")
    with pytest.raises(InputError, match="tflite"):
        model_format(tmp_path / "a.onnx", "tflite")
    (tmp_path / "a.onnx").write_bytes(b"x")
    with pytest.raises(OutputExistsError):
        export_dice_model(tmp_path / "a.onnx")


def test_traceable_helpers_equal_the_originals_and_are_undone():
    import anny.utils.interpolation as interpolation
    import roma.mappings

    import handface.models.base as base

    originals = (base._batch_of, interpolation.linear_interpolation_coefficients,
                 roma.mappings._horn_eigenvector_apply)  # fmt: skip
    anchors = torch.tensor([0.0, 0.25, 0.5, 1.0])
    values = torch.tensor([-0.3, 0.0, 0.1, 0.25, 0.4, 0.5, 0.99, 1.0, 1.7])
    expected = interpolation.linear_interpolation_coefficients(values, anchors)
    matrices = torch.randn(5, 3, 3, generator=torch.Generator().manual_seed(0))
    rotations = roma.special_procrustes(matrices)
    with export_model.traceable():
        assert not torch.backends.mha.get_fastpath_enabled()
        got = interpolation.linear_interpolation_coefficients(values, anchors)
        assert torch.allclose(got, expected, atol=1e-7)
        assert torch.allclose(roma.special_procrustes(matrices), rotations, atol=1e-6)
        assert base._batch_of(torch.zeros(1, 3), torch.zeros(4, 2), None) == 4
    after = (base._batch_of, interpolation.linear_interpolation_coefficients,
             roma.mappings._horn_eigenvector_apply)  # fmt: skip
    assert after == originals
    assert torch.backends.mha.get_fastpath_enabled()


def test_cli_writes_model_and_sidecar_and_refuses_bad_requests(net, tmp_path, capsys, monkeypatch):
    import handface.dice.predictor
    from handface.cli import entrypoint

    requested = []
    real_load_network = handface.dice.predictor.load_network

    def load_network(checkpoint=None, head_model=None, hand_model=None):
        requested.append(checkpoint)
        return net

    monkeypatch.setattr(handface.dice.predictor, "load_network", load_network)
    out = tmp_path / "dice.pt"
    entrypoint(["export-model", "--out", str(out)])
    printed = capsys.readouterr().out.strip().splitlines()
    assert requested == [None]  # the shipped network
    assert out.is_file() and (tmp_path / "dice.pt.json").is_file()
    assert len(printed) == 1 and str(out) in printed[0] and "max |difference|" in printed[0]
    diff = float(printed[0].rsplit(" ", 1)[1])
    assert diff <= TOLERANCE
    before = out.stat().st_mtime_ns

    for argv, message in (
        (["--out", str(out)], "already exists"),
        (["--out", str(tmp_path / "dice.bin")], ".onnx or .pt"),
        (["--out", str(tmp_path / "x.onnx"), "--checkpoint", str(tmp_path / "no.pt")],
         "does not exist"),
    ):  # fmt: skip
        monkeypatch.setattr(handface.dice.predictor, "load_network", real_load_network)
        with pytest.raises(SystemExit) as exit_info:
            entrypoint(["export-model", *argv])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert out.stat().st_mtime_ns == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dice.pt", "dice.pt.json"]
