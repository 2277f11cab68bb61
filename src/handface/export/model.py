"""The DICE network as one file for other engines: ONNX (onnxruntime, TensorRT, ...) or TorchScript.

:func:`export_dice_model` loads a trained :class:`~handface.dice.model.DiceNet` (the shipped
``dice-small`` or a checkpoint, through :func:`handface.dice.predictor.load_network`), wraps it
so that the file has one plain tensor in and named plain tensors out, writes it, then *checks*
it: the written file (onnxruntime for ONNX, :func:`torch.jit.load` for TorchScript) and the
PyTorch network run on the same seeded random crops, which were not used to trace the graph,
and every output must agree within ``tolerance * max(1, max |torch output|)``. The file and its
sidecar ``<out>.json`` appear only when the check passes (temporary file + rename).

**Input** ``image``: ``(B, 3, S, S)`` float32, RGB in ``[0, 1]`` (``uint8 / 255``), ``S`` the
network's crop size (224 for ``dice-small``): the square crop the predictor cuts around the
face landmarks and hand keypoints (:func:`handface.dice.crops.crop_box`: the points' bounding
square grown 1.2 times, bilinear, black outside the photo). The ImageNet normalisation happens
*inside* the graph; do not apply it again.

**Outputs** (batch first; 3D in the network's head-centred camera-aligned frame, metres: OpenCV
camera axes, origin at the centre of the undeformed face, see :mod:`handface.dice.model`):

=========================  ================  ===================================================
name                       shape             meaning
=========================  ================  ===================================================
face_vertices              (B, Vf, 3)        the deformed face ``V_F = V*_F + D``
face_vertices_undeformed   (B, Vf, 3)        the parametric face ``V*_F``
face_deformation           (B, Vf, 3)        the deformation ``D``
face_contact               (B, Vf)           per-vertex face contact probability
face_landmarks68           (B, 68, 3)        iBUG 68 landmarks of the undeformed face
head_rotation              (B, 3, 3)         head canonical frame -> network frame
head_global_orient ...     (B, 3) ...        the head model's parameters (``HeadParams``)
hand_vertices              (B, Vh, 3)        the right hand ``V_H``
hand_keypoints             (B, 21, 3)        its 21 keypoints (MediaPipe order)
hand_contact               (B, Vh)           per-vertex hand contact probability
hand_rotation              (B, 3, 3)         hand canonical frame -> network frame
hand_global_orient ...     (B, 3) ...        the hand model's parameters (``HandParams``)
hand_presence              (B,)              probability that the right hand is in the crop
hand_touch                 (B,)              probability that the right hand touches the face
camera                     (B, 3)            weak-perspective ``(s, tx, ty)``
=========================  ================  ===================================================

(``Vf`` = 4538, ``Vh`` = 1609 with the Anny models; outputs a backend does not produce are left
out.) The network sees the *right* hand; the predictor gets the left hand by running the
horizontally flipped crop and mirroring the result back, averages the two faces, and caps the
contact probabilities by the touch verdicts (:mod:`handface.dice.mirror`) -- steps outside this
graph.

**Batch.** The ONNX file has a dynamic batch axis. A TorchScript file is traced, which bakes the
batch size in: it accepts only ``batch_size`` crops per call (default 2, what the predictor
runs: the crop and its mirror).

**Exporter.** ONNX goes through ``torch.onnx.export(dynamo=True)``; the legacy TorchScript-based
exporter (``dynamo=False``) cannot translate ``linalg_solve`` (in the body models' rest-pose
fit, roma's Horn rotation) and bakes the batch size into reshapes. Two ops get their own ONNX
translation (:func:`onnx_translations`): the small batched linear solve (Cramer's rule, in
float64) and ``acos`` in float64 (onnxruntime has only float32; the inverse iterations that
follow it refine the result). While tracing, :func:`traceable` swaps three helpers for
equivalent traceable ones; the check compares the file against the untouched network.

Example:
    >>> report = export_dice_model(Path("dice.onnx"))  # doctest: +SKIP
    >>> report.max_abs_diff["face_vertices"] < 1e-4  # doctest: +SKIP
    True
    >>> import onnxruntime  # doctest: +SKIP
    >>> session = onnxruntime.InferenceSession("dice.onnx")  # doctest: +SKIP
    >>> face = session.run(["face_vertices"], {"image": crops})[0]  # (B, 4538, 3)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor, nn

from handface.errors import HandfaceError, InputError
from handface.io.files import atomic_write_bytes, refuse_existing

if TYPE_CHECKING:
    from handface.dice.model import DiceNet, DiceOutput

ModelFormat = Literal["onnx", "torchscript"]
FORMATS: tuple[ModelFormat, ...] = ("onnx", "torchscript")
SUFFIXES: dict[str, ModelFormat] = {".onnx": "onnx", ".pt": "torchscript"}
"""File suffix -> format (the default when no format is given)."""
ONNX_OPSET = 18
"""ONNX opset of the exported graph (the dynamo exporter's own; at least 17 for LayerNorm)."""
DEFAULT_TOLERANCE = 1e-4
"""Allowed ``max |exported - torch|`` per output, times ``max(1, max |torch output|)``."""
DEFAULT_BATCH = 2
"""Crops per call in the trace (the TorchScript file's fixed batch size) and in the check."""
TRACE_SEED = 0
"""Seed of the random crops the graph is traced with."""
CHECK_SEED = 1234
"""Seed of the (different) random crops the check runs."""
INPUT_NAME = "image"


class ModelExportError(HandfaceError):
    """The network could not be exported, or the exported file does not compute what it does."""


# --------------------------------------------------------------------------- the exported graph


@dataclass(frozen=True)
class OutputField:
    """One named output of the exported graph."""

    name: str
    description: str
    get: Callable[[DiceOutput], Tensor | None]


def _param(which: str, name: str) -> Callable[[DiceOutput], Tensor | None]:
    def get(out: DiceOutput) -> Tensor | None:
        params = out.head_params if which == "head" else out.hand_params
        return None if params is None else getattr(params, name)

    return get


OUTPUT_FIELDS: tuple[OutputField, ...] = (
    OutputField("face_vertices", "deformed face V_F = V*_F + D (metres, network frame)",
                lambda o: o.face_vertices),
    OutputField("face_vertices_undeformed", "parametric (undeformed) face V*_F",
                lambda o: o.face_vertices_undeformed),
    OutputField("face_deformation", "per-vertex face deformation D (network frame)",
                lambda o: o.face_deformation),
    OutputField("face_contact", "per-vertex face contact probability",
                lambda o: torch.sigmoid(o.face_contact_logits)),
    OutputField("face_landmarks68", "iBUG 68 landmarks of the undeformed face",
                lambda o: o.face_landmarks68),
    OutputField("head_rotation", "rotation head canonical frame -> network frame",
                lambda o: o.head_rotation),
    OutputField("head_global_orient", "HeadParams.global_orient (axis-angle)",
                _param("head", "global_orient")),
    OutputField("head_transl", "HeadParams.transl (metres)", _param("head", "transl")),
    OutputField("head_neck", "HeadParams.neck (axis-angle)", _param("head", "neck")),
    OutputField("head_jaw", "HeadParams.jaw (axis-angle)", _param("head", "jaw")),
    OutputField("head_expression", "HeadParams.expression (head model's expression_labels)",
                _param("head", "expression")),
    OutputField("head_shape", "HeadParams.shape (head model's shape_labels)",
                _param("head", "shape")),
    OutputField("hand_vertices", "right hand V_H (metres, network frame)",
                lambda o: o.hand_vertices),
    OutputField("hand_keypoints", "21 right-hand keypoints, MediaPipe order",
                lambda o: o.hand_keypoints),
    OutputField("hand_contact", "per-vertex right-hand contact probability",
                lambda o: torch.sigmoid(o.hand_contact_logits)),
    OutputField("hand_rotation", "rotation hand canonical frame -> network frame",
                lambda o: o.hand_rotation),
    OutputField("hand_global_orient", "HandParams.global_orient (axis-angle)",
                _param("hand", "global_orient")),
    OutputField("hand_transl", "HandParams.transl (metres)", _param("hand", "transl")),
    OutputField("hand_articulation", "HandParams.articulation (hand model's pose latent)",
                _param("hand", "articulation")),
    OutputField("hand_shape", "HandParams.shape (hand model's shape_labels)",
                _param("hand", "shape")),
    OutputField("hand_presence", "probability that the right hand is in the crop",
                lambda o: torch.sigmoid(o.hand_presence_logits)),
    OutputField("hand_touch", "probability that the right hand touches the face",
                lambda o: torch.sigmoid(o.hand_touch_logits)),
    OutputField("camera", "weak-perspective camera (s, tx, ty): crop coords = s*(x, y) + (tx, ty)",
                lambda o: o.camera),
)  # fmt: skip
"""Every output the exported graph can have, in its order (see the module docstring)."""


class ExportableDice(nn.Module):
    """:class:`~handface.dice.model.DiceNet` with one tensor in and plain tensors out.

    ``forward(image (B, 3, S, S) in [0, 1]) -> tuple`` of the ``fields``' tensors in order (or a
    ``name -> tensor`` dict with ``as_dict``, what the TorchScript file returns).

    Example:
        >>> wrapped = ExportableDice(net, output_fields(net)).eval()  # doctest: +SKIP
        >>> wrapped(torch.rand(2, 3, 224, 224))[0].shape  # doctest: +SKIP
        torch.Size([2, 4538, 3])
    """

    def __init__(
        self, net: DiceNet, fields: tuple[OutputField, ...], as_dict: bool = False
    ) -> None:
        super().__init__()
        self.net = net
        self.fields = fields
        self.as_dict = as_dict

    def forward(self, image: Float[Tensor, "B 3 S S"]) -> tuple[Tensor, ...] | dict[str, Tensor]:
        out = self.net(image)
        values = [f.get(out) for f in self.fields]
        missing = [f.name for f, v in zip(self.fields, values, strict=True) if v is None]
        if missing:
            raise ValueError(f"the network produced no {missing}")
        if self.as_dict:
            return {f.name: v for f, v in zip(self.fields, values, strict=True)}
        return tuple(values)  # type: ignore[arg-type]


def output_fields(net: DiceNet) -> tuple[OutputField, ...]:
    """The :data:`OUTPUT_FIELDS` ``net`` produces (a backend may lack a parameter, e.g. a jaw)."""
    size = net.config.input_size
    with torch.no_grad():
        out = net(torch.zeros(1, 3, size, size))
    return tuple(f for f in OUTPUT_FIELDS if isinstance(f.get(out), Tensor))


# ------------------------------------------------------------------ making the network traceable


def _traceable_interpolation(
    value: Float[Tensor, " B"], anchors: Float[Tensor, " N"], extrapolate: bool = False
) -> Float[Tensor, "B N"]:
    """``anny.utils.interpolation.linear_interpolation_coefficients`` without ``len(value)``
    (which fixes the batch in a trace), ``searchsorted`` (no ONNX op) and in-place indexing."""
    n = anchors.shape[0]
    if not extrapolate:
        value = torch.where(value < anchors[0], anchors[0], value)
        value = torch.where(value > anchors[-1], anchors[-1], value)
    index = (anchors < value[:, None]).sum(dim=-1).clamp(1, n - 1)  # searchsorted, side="left"
    lower, upper = anchors[index - 1], anchors[index]
    alpha = ((value - lower) / (upper - lower))[:, None]
    columns = torch.arange(n, device=anchors.device)
    return torch.where(
        columns == index[:, None] - 1,
        1.0 - alpha,
        torch.where(columns == index[:, None], alpha, alpha.new_zeros(())),
    )


def _horn_eigenvector_forward(M: Tensor, gradient_eps: float) -> Tensor:
    """roma's Horn eigenvector without its ``autograd.Function`` (which TorchScript cannot
    save): the function's forward pass, the same values."""
    import roma.mappings

    return roma.mappings._horn_eigenvector(M)


@contextlib.contextmanager
def traceable() -> Iterator[None]:
    """Within the block, DiceNet (with Anny's models) traces with a free batch size.

    Swaps in equivalent forward-only helpers (:func:`_traceable_interpolation`,
    :func:`_horn_eigenvector_forward`) and turns off the fused fast path of
    ``nn.TransformerEncoderLayer`` (an op without ONNX translation). Every change is undone on
    exit.
    """
    import anny.utils.interpolation
    import roma.mappings

    patches = [
        (anny.utils.interpolation, "linear_interpolation_coefficients", _traceable_interpolation),
        (roma.mappings, "_horn_eigenvector_apply", _horn_eigenvector_forward),
    ]
    saved = [(module, name, getattr(module, name)) for module, name, _ in patches
             if hasattr(module, name)]  # fmt: skip
    fastpath = torch.backends.mha.get_fastpath_enabled()
    try:
        torch.backends.mha.set_fastpath_enabled(False)
        for module, name, replacement in patches:
            if hasattr(module, name):
                setattr(module, name, replacement)
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)
        torch.backends.mha.set_fastpath_enabled(fastpath)


# ---------------------------------------------------------------- ONNX translations of three ops


def _onnx_solve(A, B, left: bool = True, check_errors: bool = False):
    """``aten._linalg_solve_ex`` for small square systems: Cramer's rule with determinants by
    cofactor expansion (memoised over column subsets), in the input's dtype.

    ONNX has no solve; its ``Det`` has no float64 kernel in onnxruntime. The systems here are
    roma's 4 x 4 float64 inverse iterations (nearly singular by design: only the direction of
    the solution matters, which the adjugate gives accurately).
    """
    import onnx
    from onnxscript import opset18 as op

    if not left:
        raise ModelExportError("linalg.solve(left=False) has no ONNX translation here")
    n = A.shape[-1] if A.shape is not None else None
    if not isinstance(n, int) or n > 6:
        raise ModelExportError(f"linalg.solve of a {n} x {n} system has no ONNX translation here")
    vector = len(B.shape) == len(A.shape) - 1
    if vector:
        B = op.Unsqueeze(B, op.Constant(value_ints=[-1]))
    rank = len(A.shape)
    swap = list(range(rank - 2)) + [rank - 1, rank - 2]
    # matrices[..., k, 0] = A; matrices[..., k, 1 + i] = A with column i replaced by B[..., :, k]
    mask = np.zeros((n + 1, 1, n), dtype=bool)
    for i in range(n):
        mask[i + 1, 0, i] = True
    columns = op.Unsqueeze(op.Transpose(B, perm=swap), op.Constant(value_ints=[-3, -1]))
    matrices = op.Where(
        op.Constant(value=onnx.numpy_helper.from_array(mask)),
        columns,
        op.Unsqueeze(A, op.Constant(value_ints=[-4, -3])),
    )

    def entry(row: int, col: int):
        picked = op.Gather(matrices, op.Constant(value_int=row), axis=-2)
        return op.Gather(picked, op.Constant(value_int=col), axis=-1)

    minors: dict[tuple[int, ...], Any] = {}

    def det(cols: tuple[int, ...]):
        if cols not in minors:
            row = n - len(cols)
            if len(cols) == 1:
                minors[cols] = entry(row, cols[0])
            else:
                total = None
                for k, col in enumerate(cols):
                    term = op.Mul(entry(row, col), det(cols[:k] + cols[k + 1 :]))
                    total = term if total is None else (
                        op.Sub(total, term) if k % 2 else op.Add(total, term)
                    )  # fmt: skip
                minors[cols] = total
        return minors[cols]

    dets = det(tuple(range(n)))  # (..., k, n + 1)
    axis = op.Constant(value_ints=[-1])
    x = op.Div(
        op.Slice(dets, op.Constant(value_ints=[1]), op.Constant(value_ints=[n + 1]), axis),
        op.Slice(dets, op.Constant(value_ints=[0]), op.Constant(value_ints=[1]), axis),
    )
    x = op.Transpose(x, perm=swap)  # (..., n, k)
    if vector:
        x = op.Squeeze(x, op.Constant(value_ints=[-1]))
    # LU, pivots and info: unused by the network (the optimiser drops them)
    pivots = op.Cast(op.ReduceSum(A, axis, keepdims=0), to=onnx.TensorProto.INT32)
    info = op.Cast(op.ReduceSum(A, op.Constant(value_ints=[-2, -1]), keepdims=0),
                   to=onnx.TensorProto.INT32)  # fmt: skip
    return x, A, pivots, info


def _onnx_acos(self):
    """``aten.acos``; float64 goes through float32 (onnxruntime's Acos has only float32)."""
    import onnx
    from onnxscript import opset18 as op

    if self.dtype == onnx.TensorProto.DOUBLE:
        return op.Cast(
            op.Acos(op.Cast(self, to=onnx.TensorProto.FLOAT)), to=onnx.TensorProto.DOUBLE
        )
    return op.Acos(self)


def onnx_translations() -> dict[Callable, Callable]:
    """``custom_translation_table`` for ``torch.onnx.export``: the ops DiceNet needs that the
    exporter lacks (or that onnxruntime cannot run in float64)."""
    return {
        torch.ops.aten._linalg_solve_ex.default: _onnx_solve,
        torch.ops.aten.acos.default: _onnx_acos,
    }


# ---------------------------------------------------------------------------------- the export


@dataclass
class TensorSpec:
    """Name, shape (``"batch"`` for a dynamic axis), dtype and meaning of a graph input/output."""

    name: str
    shape: list[int | str]
    dtype: str
    description: str = ""


@dataclass
class ExportReport:
    """What :func:`export_dice_model` wrote and how well the file agrees with PyTorch."""

    path: Path
    """The model file."""
    sidecar: Path
    """``<path>.json``: this report and the preprocessing, for users of the file."""
    file_format: ModelFormat
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    max_abs_diff: dict[str, float]
    """``max |exported - torch|`` per output, over the check's crops."""
    tolerance: float
    batch_size: int | None
    """The only batch size the file accepts, or None: any (ONNX's dynamic axis)."""
    opset: int | None
    exporter: str
    export_s: float
    check_s: float
    file_bytes: int
    check_batches: list[int] = field(default_factory=list)

    @property
    def max_diff(self) -> float:
        """The largest difference over all outputs."""
        return max(self.max_abs_diff.values(), default=0.0)


def model_format(path: Path, file_format: str | None = None) -> ModelFormat:
    """The format to write ``path`` in: ``file_format`` if given, else from its suffix.

    Raises:
        InputError: an unknown format or suffix.
    """
    if file_format is None:
        suffix = Path(path).suffix.lower()
        if suffix not in SUFFIXES:
            raise InputError(
                f"{path}: name the file .onnx or .pt, or give --format onnx|torchscript"
            )
        return SUFFIXES[suffix]
    if file_format not in FORMATS:
        raise InputError(f"unknown model format {file_format!r}; choose onnx or torchscript")
    return file_format  # type: ignore[return-value]


def _random_crops(batch: int, size: int, seed: int) -> Float[Tensor, "B 3 S S"]:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """Hide the exporters' Python logs and warnings (progress, skipped foldings, missing
    torchvision) unless handface runs verbose."""
    from handface import console

    if console.is_verbose():
        yield
        return
    names = ("onnxscript", "onnx_ir", "torch.onnx", "torch.export", "torch._export", "torch.fx")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _export_onnx(wrapped: ExportableDice, example: Tensor, path: Path, opset: int) -> None:
    """``torch.onnx.export(dynamo=True)`` with a dynamic batch axis, then one pass of
    onnxscript's optimiser (constant folding, dead code: 10.8k -> 3.4k nodes, 44 -> 35 MB;
    its default two passes with shape inference take 3x longer for 13 % fewer nodes)."""
    import onnxscript.optimizer

    names = [f.name for f in wrapped.fields]
    with traceable(), torch.no_grad(), _quiet_logs():
        program = torch.onnx.export(
            wrapped,
            (example,),
            None,
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=names,
            opset_version=opset,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            custom_translation_table=onnx_translations(),
            verbose=False,
            optimize=False,
        )
        program.model = onnxscript.optimizer.optimize(
            program.model, num_iterations=1, onnx_shape_inference=False
        )
    program.save(str(path), external_data=False)


def _export_torchscript(wrapped: ExportableDice, example: Tensor, path: Path) -> None:
    """``torch.jit.trace`` (a ``name -> tensor`` dict out; the batch size is baked in)."""
    with traceable(), torch.no_grad(), _quiet_logs():
        traced = torch.jit.trace(wrapped, (example,), check_trace=False, strict=False)
    traced.save(str(path))


def _run_exported(path: Path, file_format: ModelFormat, image: Tensor) -> dict[str, np.ndarray]:
    if file_format == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        names = [o.name for o in session.get_outputs()]
        values = session.run(names, {INPUT_NAME: image.numpy()})
        return dict(zip(names, values, strict=True))
    module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return {name: value.numpy() for name, value in module(image).items()}


def _check(
    wrapped: ExportableDice,
    path: Path,
    file_format: ModelFormat,
    batches: list[int],
    size: int,
    tolerance: float,
) -> tuple[dict[str, float], dict[str, tuple[tuple[int, ...], str]]]:
    """Run the file and the untouched PyTorch network on fresh crops; raise on disagreement.

    Returns ``max |exported - torch|`` and the (shape without batch, dtype) of each output."""
    diffs = {f.name: 0.0 for f in wrapped.fields}
    specs = {}
    for k, batch in enumerate(batches):
        image = _random_crops(batch, size, CHECK_SEED + k)
        with torch.no_grad():
            reference = wrapped(image)
        try:
            got = _run_exported(path, file_format, image)
        except Exception as error:  # noqa: BLE001 - any runtime failure means a broken file
            raise ModelExportError(
                f"the exported {file_format} file does not run ({_first_line(error)})"
            ) from None
        for f, expected in zip(wrapped.fields, reference, strict=True):  # type: ignore[arg-type]
            value = got.get(f.name)
            if value is None or tuple(value.shape) != tuple(expected.shape):
                shape = None if value is None else tuple(value.shape)
                raise ModelExportError(f"the exported {file_format} file gives {f.name} of shape "
                                       f"{shape}, PyTorch {tuple(expected.shape)}")  # fmt: skip
            diff = float(np.abs(value.astype(np.float64) - expected.double().numpy()).max())
            diffs[f.name] = max(diffs[f.name], diff)
            specs[f.name] = (tuple(expected.shape[1:]), str(expected.dtype).removeprefix("torch."))
            allowed = tolerance * max(1.0, float(expected.abs().max()))
            if not diff <= allowed:  # also catches NaN
                raise ModelExportError(
                    f"the exported {file_format} file differs from PyTorch on {f.name} by "
                    f"{diff:.3g} (allowed {allowed:.3g}); nothing was written"
                )
    return diffs, specs


def _preprocessing(net: DiceNet) -> dict[str, Any]:
    from handface.dice.crops import CropConfig

    crop = CropConfig(size=net.config.input_size)
    return {
        "input": f"{INPUT_NAME}: float32 (B, 3, {crop.size}, {crop.size}), NCHW",
        "channel_order": "RGB",
        "value_range": [0.0, 1.0],
        "scale": "uint8 pixel / 255",
        "normalization": {
            "inside_model": True,
            "note": "the graph applies (x - mean) / std itself; feed [0, 1] RGB",
            "mean": [round(float(v), 6) for v in net.pixel_mean.flatten()],
            "std": [round(float(v), 6) for v in net.pixel_std.flatten()],
        },
        "crop": {
            "size": crop.size,
            "rule": "square around the face landmarks and hand keypoints in the photo "
            "(handface.dice.crops.crop_box): centre of their bounding box, side = "
            f"{crop.scale} x its larger side (at least {crop.min_side_px} px), resampled "
            "bilinearly, black outside the photo",
            "scale": crop.scale,
            "min_side_px": crop.min_side_px,
        },
        "left_hand": "the network predicts the right hand; run the horizontally flipped crop "
        "and negate x of its hand to get the left hand (handface.dice.mirror)",
        "frame": "3D outputs: OpenCV camera axes (x right, y down, z forward), metres, origin at "
        "the centre of the undeformed face; head centre depth = f_crop / s with f_crop = "
        "2 f / crop side (pixels)",
    }


def export_dice_model(
    path_out: Path,
    file_format: ModelFormat | None = None,
    checkpoint: Path | None = None,
    *,
    net: DiceNet | None = None,
    overwrite: bool = False,
    batch_size: int = DEFAULT_BATCH,
    opset: int = ONNX_OPSET,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ExportReport:
    """Write the DICE network to ``path_out`` as ONNX or TorchScript, checked against PyTorch.

    Args:
        path_out: the model file; its sidecar goes to ``<path_out>.json``.
        file_format: ``"onnx"`` or ``"torchscript"``; None: from the suffix (.onnx, .pt).
        checkpoint: ``model.pt`` / ``checkpoint.pt`` of a training run; None: the shipped
            network (:func:`handface.dice.predictor.load_network`).
        net: a network already in memory, instead of ``checkpoint``.
        overwrite: replace an existing ``path_out`` (and sidecar).
        batch_size: crops per call of the trace; the TorchScript file accepts only this many
            (and is checked at it), the ONNX file any number (checked at 2 and 1).
        opset: ONNX opset (at least 17).
        tolerance: allowed ``max |exported - torch|`` per output, times
            ``max(1, max |torch output|)``.

    Returns:
        The :class:`ExportReport` (also written, with the preprocessing, to the sidecar).

    Raises:
        InputError: a bad suffix/format, a missing or unreadable checkpoint.
        OutputExistsError: ``path_out`` exists and ``overwrite`` is false.
        ModelExportError: the exporter failed, or the file disagrees with PyTorch (then
            nothing is written).

    Example:
        >>> report = export_dice_model(Path("dice.onnx"))  # doctest: +SKIP
        >>> report.outputs[0].name, report.outputs[0].shape  # doctest: +SKIP
        ('face_vertices', ['batch', 4538, 3])
    """
    path_out = Path(path_out)
    fmt = model_format(path_out, file_format)
    sidecar = path_out.with_name(path_out.name + ".json")
    refuse_existing(path_out, overwrite)
    refuse_existing(sidecar, overwrite)
    if net is not None and checkpoint is not None:
        raise InputError("give a checkpoint or a network, not both")
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    if fmt == "onnx" and opset < 17:
        raise InputError(f"ONNX opset {opset} is too old; the network needs 17 or later")
    if net is None:
        from handface.dice.predictor import load_network

        net = load_network(checkpoint)
    net = net.eval()
    size = net.config.input_size
    fields = output_fields(net)
    wrapped = ExportableDice(net, fields).eval()
    example = _random_crops(batch_size, size, TRACE_SEED)

    path_out.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path_out.parent, prefix=f".{path_out.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        start = time.perf_counter()
        try:
            if fmt == "onnx":
                _export_onnx(wrapped, example, temporary, opset)
            else:
                _export_torchscript(ExportableDice(net, fields, as_dict=True), example, temporary)
        except HandfaceError:
            raise
        except Exception as error:  # noqa: BLE001 - the exporters raise many kinds
            raise ModelExportError(
                f"the {fmt} exporter failed on the {net.config.name} network ({_first_line(error)})"
            ) from None
        export_s = time.perf_counter() - start
        start = time.perf_counter()
        dynamic = fmt == "onnx"
        check_batches = [2, 1] if dynamic else [batch_size]
        diffs, specs = _check(wrapped, temporary, fmt, check_batches, size, tolerance)
        check_s = time.perf_counter() - start
        batch_dim: int | str = "batch" if dynamic else batch_size
        report = ExportReport(
            path=path_out,
            sidecar=sidecar,
            file_format=fmt,
            inputs=[
                TensorSpec(
                    INPUT_NAME,
                    [batch_dim, 3, size, size],
                    "float32",
                    "RGB crop in [0, 1], NCHW (see preprocessing)",
                )
            ],  # fmt: skip
            outputs=[
                TensorSpec(f.name, [batch_dim, *specs[f.name][0]], specs[f.name][1], f.description)
                for f in fields
            ],
            max_abs_diff=diffs,
            tolerance=tolerance,
            batch_size=None if dynamic else batch_size,
            opset=opset if fmt == "onnx" else None,
            exporter="torch.onnx.export(dynamo=True)" if fmt == "onnx" else "torch.jit.trace",
            export_s=round(export_s, 2),
            check_s=round(check_s, 2),
            file_bytes=temporary.stat().st_size,
            check_batches=check_batches,
        )
        sidecar_data = _sidecar(report, net, checkpoint)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path_out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    try:
        atomic_write_bytes(sidecar, (json.dumps(sidecar_data, indent=2) + "\n").encode())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            path_out.unlink()
        raise
    return report


def _sidecar(report: ExportReport, net: DiceNet, checkpoint: Path | None) -> dict[str, Any]:
    import handface

    versions = {"torch": torch.__version__, "handface": getattr(handface, "__version__", None)}
    if report.file_format == "onnx":
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    return {
        "format": report.file_format,
        "file": report.path.name,
        "network": net.config.name,
        "checkpoint": str(checkpoint) if checkpoint is not None else "shipped dice_small.pt",
        "exporter": report.exporter,
        "opset": report.opset,
        "versions": versions,
        "batch_size": report.batch_size if report.batch_size is not None else "dynamic",
        "inputs": [asdict(spec) for spec in report.inputs],
        "outputs": [asdict(spec) for spec in report.outputs],
        "preprocessing": _preprocessing(net),
        "check": {
            "max_abs_diff": report.max_abs_diff,
            "max_diff": report.max_diff,
            "tolerance": report.tolerance,
            "rule": "max |exported - torch| <= tolerance * max(1, max |torch|), per output, "
            "on seeded random crops not used for tracing",
            "batches": report.check_batches,
        },
        "file_bytes": report.file_bytes,
        "export_s": report.export_s,
        "check_s": report.check_s,
    }
