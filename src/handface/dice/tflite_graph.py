"""TensorFlow Lite models as trainable PyTorch modules (the MediaPipe networks in its wheel).

The ``mediapipe==0.10.21`` wheel bundles Apache-2.0 ``.tflite`` networks trained on real photos
of hands and faces, which DICE's synthetic renders lack. :func:`read_tflite` parses such a file
with the ``tflite`` flatbuffer bindings (no TensorFlow: none is installed) and
:class:`TFLiteGraph` runs its operators in order on PyTorch tensors, with every weight an
``nn.Parameter``, so a trunk can be cut at any tensor and fine-tuned.

Conventions of the rebuild (each chosen so the result matches TFLite's kernels exactly):

* Four-dimensional tensors live in PyTorch's ``NCHW`` layout (TFLite's are ``NHWC``); inputs
  and returned 4D tensors are ``NCHW``, tensors of other ranks keep TFLite's layout. Ops whose
  meaning depends on the layout (``RESHAPE``, ``FULLY_CONNECTED``, ``MEAN``, ``PAD``, ...)
  translate their axes or go through ``NHWC`` for the step.
* ``SAME`` padding is computed from the actual input size as TFLite does: the total
  ``max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)`` is split with the smaller half
  before, so a stride-2 convolution on an even size pads only bottom and right.
* Weights stored as float16 (what MediaPipe ships, each behind a ``DEQUANTIZE`` op) or as
  int8 / uint8 with scales are dequantized once at load time to float32, as TFLite's float
  kernels (XNNPACK) do before running.
* The batch dimension is free: shapes stored with batch 1 are run at any batch size.
* Convolutions and fully connected layers are ``nn.Conv2d`` / ``nn.Linear`` subclasses, so
  :func:`~handface.dice.flops.count_flops` counts them.

Only the operators the MediaPipe models use are implemented (:data:`SUPPORTED_OPS`); any other,
including MediaPipe's custom ops, raises :class:`UnsupportedOpError` naming it, unless the
graph is cut before it.

Example:
    >>> path = mediapipe_model_path("hand_landmark/hand_landmark_full.tflite")
    >>> graph = TFLiteGraph.from_file(path)
    >>> [out.shape for out in graph(torch.rand(2, 3, 224, 224))]  # landmarks, presence, ...
    [torch.Size([2, 63]), torch.Size([2, 1]), torch.Size([2, 1]), torch.Size([2, 63])]
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from handface.errors import InputError

MEDIAPIPE_MODULES = "modules"
"""Folder of the mediapipe package that holds its bundled ``.tflite`` files."""


class UnsupportedOpError(InputError):
    """The model uses an operator (or an option of one) that :class:`TFLiteGraph` lacks."""


# ---------------------------------------------------------------------------- locating files


def mediapipe_model_path(relative: str) -> Path:
    """Path of a ``.tflite`` file bundled in the installed mediapipe wheel.

    Found through ``importlib.util.find_spec`` so that mediapipe itself is not imported (only
    ``handface.detect`` imports it).

    Args:
        relative: path below ``mediapipe/modules``, e.g.
            ``"hand_landmark/hand_landmark_full.tflite"``.

    Raises:
        InputError: mediapipe is not installed or its wheel lacks the file.
    """
    spec = importlib.util.find_spec("mediapipe")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root) / MEDIAPIPE_MODULES / relative
        if path.is_file():
            return path
    where = f" (looked in {roots[0]}/{MEDIAPIPE_MODULES})" if roots else ""
    raise InputError(
        f"MediaPipe model {relative} not found{where}: "
        "run `pip install mediapipe==0.10.21`, the last release whose wheel bundles its models"
    )


# ---------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of the model: static shape (TFLite's NHWC), type and constant value."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    """Numpy name of TFLite's type (``"float32"``, ``"float16"``, ``"int32"``, ...)."""
    data: np.ndarray | None = field(default=None, repr=False, compare=False)
    """The constant's value (float weights already dequantized to float32); None for
    activations."""
    sparse: bool = False
    """A constant stored in TFLite's sparse format (not densified: ``data`` is None)."""

    @property
    def is_constant(self) -> bool:
        return self.data is not None or self.sparse


@dataclass(frozen=True)
class OperatorSpec:
    """One operator: its kind, tensor indices (-1: optional input left out) and options."""

    index: int
    kind: str
    """Builtin name (``"CONV_2D"``) or ``"CUSTOM:<name>"``."""
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class TFLiteModel:
    """The main subgraph of a ``.tflite`` file, with constants folded (see :func:`read_tflite`)."""

    path: Path
    tensors: tuple[TensorSpec, ...]
    operators: tuple[OperatorSpec, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def tensor_index(self, key: int | str) -> int:
        """Index of a tensor given by index or by its exact name."""
        return _tensor_index(key, {t.index: t.name for t in self.tensors}, self.path)

    def producers(self) -> dict[int, OperatorSpec]:
        """The operator writing each activation tensor."""
        return {out: op for op in self.operators for out in op.outputs}


def _tensor_index(key: int | str, names: dict[int, str], path: Path) -> int:
    if isinstance(key, int):
        if key not in names:
            raise InputError(f"{path.name} has no tensor {key}")
        return key
    matches = [index for index, name in names.items() if name == key]
    if len(matches) != 1:
        problem = "no" if not matches else "more than one"
        raise InputError(f"{path.name} has {problem} tensor named {key!r}")
    return matches[0]


_FLOAT_TYPES = {"float32", "float16", "float64"}
_QUANTIZED_TYPES = {"int8", "uint8", "int16"}


def read_tflite(path: str | Path) -> TFLiteModel:
    """Parse a ``.tflite`` file: tensors, constants, operators and their options.

    ``DEQUANTIZE`` operators whose input is a constant (MediaPipe's float16 weights) are folded
    away: their output becomes a float32 constant. Quantized int8 / uint8 constants with
    scales are dequantized the same way.

    Raises:
        InputError: the file is missing or is not a TFLite flatbuffer.
    """
    import tflite  # the flatbuffer bindings (imported here: ~0.2 s, only needed to load)

    path = Path(path)
    if not path.is_file():
        raise InputError(f"TFLite model {path} not found: check the path")
    buf = path.read_bytes()
    if buf[4:8] != b"TFL3":
        raise InputError(f"{path} is not a TFLite model (no TFL3 identifier)")
    model = tflite.Model.GetRootAs(buf, 0)
    if model.SubgraphsLength() < 1:
        raise InputError(f"{path} holds no subgraph")
    graph = model.Subgraphs(0)
    names = _enum_names(tflite.BuiltinOperator)
    type_names = _enum_names(tflite.TensorType)
    kinds = [_op_kind(model.OperatorCodes(i), names) for i in range(model.OperatorCodesLength())]

    tensors = [
        _read_tensor(graph.Tensors(i), i, model, buf, type_names)
        for i in range(graph.TensorsLength())
    ]
    operators = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        kind = kinds[op.OpcodeIndex()]
        operators.append(
            OperatorSpec(
                index=i,
                kind=kind,
                inputs=tuple(int(v) for v in op.InputsAsNumpy()) if op.InputsLength() else (),
                outputs=tuple(int(v) for v in op.OutputsAsNumpy()) if op.OutputsLength() else (),
                options=_read_options(op, kind, tflite),
            )
        )
    tensors, operators = _fold_dequantize(tensors, operators)
    return TFLiteModel(
        path=path,
        tensors=tuple(tensors),
        operators=tuple(operators),
        inputs=tuple(int(v) for v in graph.InputsAsNumpy()),
        outputs=tuple(int(v) for v in graph.OutputsAsNumpy()),
    )


def _enum_names(enum: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if k.isupper() and isinstance(v, int)}


def _op_kind(code, names: dict[int, str]) -> str:
    # Schema 3a keeps codes < 127 in the deprecated int8 field as well; the larger one wins.
    value = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    name = names.get(value, f"BUILTIN_{value}")
    if name == "CUSTOM":
        return "CUSTOM:" + (code.CustomCode() or b"?").decode()
    return name


def _read_tensor(tensor, index: int, model, buf: bytes, type_names: dict[int, str]) -> TensorSpec:
    dtype = type_names.get(tensor.Type(), f"type{tensor.Type()}").lower()
    shape = tuple(int(v) for v in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    name = tensor.Name().decode(errors="replace") if tensor.Name() else f"tensor_{index}"
    if tensor.Sparsity() is not None:
        return TensorSpec(index=index, name=name, shape=shape, dtype=dtype, sparse=True)
    data = None
    buffer = model.Buffers(tensor.Buffer())
    raw = None
    if buffer is not None and buffer.DataLength() > 0:
        raw = buffer.DataAsNumpy().tobytes()
    elif buffer is not None and buffer.Offset() > 1:  # files over 2 GB keep data outside
        raw = buf[buffer.Offset() : buffer.Offset() + buffer.Size()]
    if raw is not None:
        data = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
        quant = tensor.Quantization()
        if dtype in _QUANTIZED_TYPES and quant is not None and quant.ScaleLength() > 0:
            data = _dequantize(data, quant)
            dtype = "float32"
        elif dtype in _FLOAT_TYPES:
            data = data.astype(np.float32)
        else:
            data = data.copy()
    return TensorSpec(index=index, name=name, shape=shape, dtype=dtype, data=data)


def _dequantize(data: np.ndarray, quant) -> np.ndarray:
    """``scale * (q - zero_point)``, per tensor or per channel along the quantized dimension."""
    scale = quant.ScaleAsNumpy().astype(np.float32)
    zero = quant.ZeroPointAsNumpy() if quant.ZeroPointLength() else np.zeros_like(scale)
    if scale.size > 1:
        view = [1] * data.ndim
        view[quant.QuantizedDimension()] = -1
        scale, zero = scale.reshape(view), zero.reshape(view)
    return ((data.astype(np.float32) - zero.astype(np.float32)) * scale).astype(np.float32)


def _fold_dequantize(
    tensors: list[TensorSpec], operators: list[OperatorSpec]
) -> tuple[list[TensorSpec], list[OperatorSpec]]:
    kept = []
    for op in operators:
        if op.kind == "DEQUANTIZE" and tensors[op.inputs[0]].data is not None:
            source, target = tensors[op.inputs[0]], tensors[op.outputs[0]]
            tensors[target.index] = TensorSpec(
                target.index, target.name, target.shape, "float32", source.data.astype(np.float32)
            )
        else:
            kept.append(op)
    return tensors, kept


_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_PADDINGS = {0: "SAME", 1: "VALID"}


def _read_options(op, kind: str, tflite) -> dict:
    """The options of the operators :class:`TFLiteGraph` supports, as plain values."""
    readers: dict[str, tuple[str, Callable[[object], dict]]] = {
        "CONV_2D": ("Conv2DOptions", _conv_options),
        "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptions", _conv_options),
        "MAX_POOL_2D": ("Pool2DOptions", _pool_options),
        "AVERAGE_POOL_2D": ("Pool2DOptions", _pool_options),
        "ADD": ("AddOptions", _activation_option),
        "MUL": ("MulOptions", _activation_option),
        "CONCATENATION": (
            "ConcatenationOptions",
            lambda o: {"axis": o.Axis(), **_activation_option(o)},
        ),
        "FULLY_CONNECTED": (
            "FullyConnectedOptions",
            lambda o: {
                "keep_num_dims": bool(o.KeepNumDims()),
                "weights_format": o.WeightsFormat(),
                **_activation_option(o),
            },
        ),
        "MEAN": ("ReducerOptions", lambda o: {"keep_dims": bool(o.KeepDims())}),
        "RESIZE_BILINEAR": (
            "ResizeBilinearOptions",
            lambda o: {
                "align_corners": bool(o.AlignCorners()),
                "half_pixel_centers": bool(o.HalfPixelCenters()),
            },
        ),
        "STRIDED_SLICE": (
            "StridedSliceOptions",
            lambda o: {
                "begin_mask": o.BeginMask(),
                "end_mask": o.EndMask(),
                "ellipsis_mask": o.EllipsisMask(),
                "new_axis_mask": o.NewAxisMask(),
                "shrink_axis_mask": o.ShrinkAxisMask(),
                "offset": bool(o.Offset()),
            },
        ),
    }
    if kind not in readers:
        return {}
    class_name, reader = readers[kind]
    options = getattr(tflite, class_name)()
    table = op.BuiltinOptions()
    if table is None:  # all defaults: read them from an empty table
        return reader(_Defaults())
    options.Init(table.Bytes, table.Pos)
    return reader(options)


class _Defaults:
    """Stands in for an absent options table: every field reads as its schema default (0)."""

    def __getattr__(self, name: str) -> Callable[[], int]:
        return lambda: 0


def _activation_option(o) -> dict:
    return {"activation": _ACTIVATIONS.get(o.FusedActivationFunction(), "?")}


def _conv_options(o) -> dict:
    options = {
        "padding": _PADDINGS.get(o.Padding(), "?"),
        "stride": (o.StrideH(), o.StrideW()),
        "dilation": (max(o.DilationHFactor(), 1), max(o.DilationWFactor(), 1)),
        **_activation_option(o),
    }
    if hasattr(o, "DepthMultiplier"):
        options["depth_multiplier"] = o.DepthMultiplier()
    return options


def _pool_options(o) -> dict:
    return {
        "padding": _PADDINGS.get(o.Padding(), "?"),
        "stride": (o.StrideH(), o.StrideW()),
        "filter": (o.FilterHeight(), o.FilterWidth()),
        **_activation_option(o),
    }


# ---------------------------------------------------------------------------- layout helpers

NHWC_TO_NCHW_AXIS = (0, 2, 3, 1)
"""Where each NHWC axis lives in NCHW."""


def _nchw(x: Tensor) -> Tensor:
    return x.permute(0, 3, 1, 2)


def _nhwc(x: Tensor) -> Tensor:
    return x.permute(0, 2, 3, 1)


def _constant_for_nchw(value: np.ndarray) -> Tensor:
    """A constant operand broadcast against a 4D activation, moved to NCHW.

    NumPy-style broadcasting aligns trailing axes, so ``[C]`` or ``[1, 1, C]`` in NHWC is first
    padded to four axes and then permuted.
    """
    value = np.asarray(value, np.float32)
    value = value.reshape((1,) * (4 - value.ndim) + value.shape)
    return torch.from_numpy(np.ascontiguousarray(value.transpose(0, 3, 1, 2)))


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TFLite's SAME padding of one axis: (before, after), the extra pixel after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _pad_same(
    x: Tensor,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
    value: float = 0.0,
) -> Tensor:
    top, bottom = _same_padding(x.shape[2], kernel[0], stride[0], dilation[0])
    left, right = _same_padding(x.shape[3], kernel[1], stride[1], dilation[1])
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), value=value)


def _activate(x: Tensor, activation: str) -> Tensor:
    if activation == "NONE":
        return x
    if activation == "RELU":
        return F.relu(x)
    if activation == "RELU6":
        return F.hardtanh(x, 0.0, 6.0)
    if activation == "RELU_N1_TO_1":
        return F.hardtanh(x, -1.0, 1.0)
    if activation == "TANH":
        return torch.tanh(x)
    raise AssertionError(activation)  # rejected when the op was built


def _check_activation(op: OperatorSpec, path: Path) -> str:
    activation = op.options.get("activation", "NONE")
    if activation not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1", "TANH"):
        raise UnsupportedOpError(
            f"{path.name}: op {op.index} {op.kind} has fused activation {activation}, "
            "which TFLiteGraph does not implement"
        )
    return activation


# ---------------------------------------------------------------------------- operators


class _Op(nn.Module):
    """Base of the rebuilt operators: which tensors it reads and writes."""

    def __init__(self, spec: OperatorSpec, runtime_inputs: Sequence[int]) -> None:
        super().__init__()
        self.op_index = spec.index
        self.kind = spec.kind
        self.inputs = tuple(runtime_inputs)
        self.output = spec.outputs[0]


class TFLiteConv2d(nn.Conv2d):
    """``CONV_2D`` / ``DEPTHWISE_CONV_2D``: TFLite's padding, then a (grouped) convolution.

    Weights are ``[O, KH, KW, I]`` in TFLite (``[1, KH, KW, I * M]`` depthwise, output channel
    ``i * M + m``); PyTorch's ``[O, I / groups, KH, KW]`` with ``groups = I`` orders the
    depthwise outputs the same way.
    """

    def __init__(
        self,
        spec: OperatorSpec,
        weight: np.ndarray,
        bias: np.ndarray | None,
        depthwise: bool,
        in_channels: int,
    ) -> None:
        if depthwise:  # the depth multiplier M is out / in channels (the option may be unset)
            _, kh, kw, cout = weight.shape
            groups = in_channels
            torch_weight = weight.transpose(3, 0, 1, 2)  # [I*M, 1, KH, KW]
        else:
            cout, kh, kw, cin = weight.shape
            groups = 1
            torch_weight = weight.transpose(0, 3, 1, 2)
        cin = torch_weight.shape[1] * groups
        stride, dilation = spec.options["stride"], spec.options["dilation"]
        same = spec.options["padding"] == "SAME"
        # At stride 1, SAME pads (k - 1) * d in all, whatever the size: when even, the
        # convolution's own symmetric padding does it without a padded copy of the input.
        totals = [(k - 1) * d for k, d in zip((kh, kw), dilation, strict=True)]
        fixed = same and stride == (1, 1) and all(t % 2 == 0 for t in totals)
        super().__init__(
            cin,
            cout,
            (kh, kw),
            stride=stride,
            padding=tuple(t // 2 for t in totals) if fixed else 0,
            dilation=dilation,
            groups=groups,
            bias=bias is not None,
        )
        self.op_index, self.kind = spec.index, spec.kind
        self.inputs, self.output = (spec.inputs[0],), spec.outputs[0]
        self.same = same and not fixed
        """Whether SAME padding is computed per input size (strided or even kernels)."""
        self.activation = spec.options["activation"]
        with torch.no_grad():
            self.weight.copy_(torch.from_numpy(np.ascontiguousarray(torch_weight)))
            if bias is not None:
                self.bias.copy_(torch.from_numpy(bias))

    def forward(self, x: Float[Tensor, "B I H W"]) -> Float[Tensor, "B O h w"]:
        if self.same:
            x = _pad_same(x, self.kernel_size, self.stride, self.dilation)
        return _activate(self._conv_forward(x, self.weight, self.bias), self.activation)


class TFLiteLinear(nn.Linear):
    """``FULLY_CONNECTED``: weights ``[out, in]`` as in PyTorch; a 4D input is flattened in
    TFLite's NHWC order."""

    def __init__(
        self, spec: OperatorSpec, weight: np.ndarray, bias: np.ndarray | None, input_rank: int
    ) -> None:
        super().__init__(weight.shape[1], weight.shape[0], bias=bias is not None)
        self.op_index, self.kind = spec.index, spec.kind
        self.inputs, self.output = (spec.inputs[0],), spec.outputs[0]
        self.activation = spec.options["activation"]
        self.input_rank = input_rank
        self.keep_num_dims = spec.options["keep_num_dims"]
        with torch.no_grad():
            self.weight.copy_(torch.from_numpy(weight))
            if bias is not None:
                self.bias.copy_(torch.from_numpy(bias))

    def forward(self, x: Tensor) -> Tensor:
        if self.input_rank == 4:
            x = _nhwc(x)
        if not self.keep_num_dims:
            x = x.reshape(-1, self.in_features)
        y = _activate(F.linear(x, self.weight, self.bias), self.activation)
        return _nchw(y) if self.keep_num_dims and self.input_rank == 4 else y


class _Binary(_Op):
    """``ADD`` / ``MUL`` with NumPy broadcasting; a constant operand is a parameter."""

    def __init__(self, spec: OperatorSpec, model: TFLiteModel, activation: str) -> None:
        specs = [model.tensors[i] for i in spec.inputs]
        runtime = [t.index for t in specs if not t.is_constant]
        super().__init__(spec, runtime)
        self.activation = activation
        self.ranks = tuple(len(t.shape) for t in specs)
        self.constant_slot = next((k for k, t in enumerate(specs) if t.is_constant), None)
        self.out_rank = len(model.tensors[spec.outputs[0]].shape)
        if self.constant_slot is not None:
            value = specs[self.constant_slot].data
            tensor = (
                _constant_for_nchw(value) if self.out_rank == 4 else torch.from_numpy(value.copy())
            )
            self.constant = nn.Parameter(tensor)

    def _operand(self, x: Tensor, rank: int) -> Tensor:
        if self.out_rank == 4 and rank < 4:  # broadcast a lower-rank activation against NCHW
            return _nchw(x.reshape((1,) * (4 - rank) + tuple(x.shape)))
        return x

    def forward(self, *xs: Tensor) -> Tensor:
        operands = list(xs)
        if self.constant_slot is not None:
            operands.insert(self.constant_slot, self.constant)
        a, b = (
            self._operand(x, r) if k != self.constant_slot else x
            for k, (x, r) in enumerate(zip(operands, self.ranks, strict=True))
        )
        y = a + b if self.kind == "ADD" else a * b
        return _activate(y, self.activation)


class _PRelu(_Op):
    """``PRELU``: ``x`` where ``x >= 0``, else ``alpha * x`` (alpha trainable, broadcast)."""

    def __init__(self, spec: OperatorSpec, model: TFLiteModel) -> None:
        super().__init__(spec, spec.inputs[:1])
        alpha = model.tensors[spec.inputs[1]].data
        rank = len(model.tensors[spec.inputs[0]].shape)
        self.alpha = nn.Parameter(
            _constant_for_nchw(alpha) if rank == 4 else torch.from_numpy(alpha.copy())
        )
        self.per_channel = rank == 4 and self.alpha.numel() == self.alpha.shape[1]

    def forward(self, x: Tensor) -> Tensor:
        if self.per_channel:  # PyTorch's fused kernel: x + alpha * 0 = x exactly for x >= 0
            return F.prelu(x, self.alpha.view(-1))
        return torch.where(x >= 0, x, x * self.alpha)


_UNARY: dict[str, Callable[[Tensor], Tensor]] = {
    "LOGISTIC": torch.sigmoid,
    "RELU": F.relu,
    "RELU6": lambda x: F.hardtanh(x, 0.0, 6.0),
    "TANH": torch.tanh,
    "HARD_SWISH": F.hardswish,
}


class _Unary(_Op):
    """Elementwise activations (``LOGISTIC``, ``RELU``, ``RELU6``, ``TANH``, ``HARD_SWISH``)."""

    def __init__(self, spec: OperatorSpec) -> None:
        super().__init__(spec, spec.inputs[:1])

    def forward(self, x: Tensor) -> Tensor:
        return _UNARY[self.kind](x)


class _Pool(_Op):
    """``MAX_POOL_2D`` / ``AVERAGE_POOL_2D``. SAME padding is never counted: max pooling pads
    with -inf; average pooling divides by the number of real pixels under the window."""

    def __init__(self, spec: OperatorSpec, activation: str) -> None:
        super().__init__(spec, spec.inputs[:1])
        self.filter = spec.options["filter"]
        self.stride = spec.options["stride"]
        self.same = spec.options["padding"] == "SAME"
        self.activation = activation

    def forward(self, x: Float[Tensor, "B C H W"]) -> Float[Tensor, "B C h w"]:
        if self.kind == "MAX_POOL_2D":
            if self.same:
                x = _pad_same(x, self.filter, self.stride, value=-math.inf)
            y = F.max_pool2d(x, self.filter, self.stride)
        elif not self.same:
            y = F.avg_pool2d(x, self.filter, self.stride)
        else:
            ones = torch.ones_like(x[:1, :1])
            total = F.avg_pool2d(_pad_same(x, self.filter, self.stride), self.filter, self.stride)
            share = F.avg_pool2d(
                _pad_same(ones, self.filter, self.stride), self.filter, self.stride
            )
            y = total / share
        return _activate(y, self.activation)


class _Pad(_Op):
    """``PAD`` with zeros (paddings constant ``[rank, 2]``, NHWC axes)."""

    def __init__(self, spec: OperatorSpec, model: TFLiteModel) -> None:
        super().__init__(spec, spec.inputs[:1])
        pads = model.tensors[spec.inputs[1]].data.astype(int).tolist()
        order = (2, 1, 3, 0) if len(pads) == 4 else tuple(reversed(range(len(pads))))
        self.pads = tuple(v for axis in order for v in pads[axis])  # F.pad: last axis first

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x, self.pads)


class _Mean(_Op):
    """``MEAN`` over constant axes (NHWC numbering)."""

    def __init__(self, spec: OperatorSpec, model: TFLiteModel) -> None:
        super().__init__(spec, spec.inputs[:1])
        self.rank = len(model.tensors[spec.inputs[0]].shape)
        axes = model.tensors[spec.inputs[1]].data.reshape(-1).astype(int).tolist()
        self.axes = tuple(sorted(a % self.rank for a in axes))
        self.keep_dims = spec.options["keep_dims"]

    def forward(self, x: Tensor) -> Tensor:
        if self.rank == 4 and self.keep_dims:
            return x.mean(dim=tuple(NHWC_TO_NCHW_AXIS[a] for a in self.axes), keepdim=True)
        if self.rank == 4:
            x = _nhwc(x)
        return x.mean(dim=self.axes, keepdim=self.keep_dims)


class _Reshape(_Op):
    """``RESHAPE`` to the output's stored shape, batch kept free; done in NHWC order."""

    def __init__(self, spec: OperatorSpec, model: TFLiteModel) -> None:
        super().__init__(spec, spec.inputs[:1])
        self.in_rank = len(model.tensors[spec.inputs[0]].shape)
        self.shape = (-1, *model.tensors[spec.outputs[0]].shape[1:])

    def forward(self, x: Tensor) -> Tensor:
        if self.in_rank == 4:
            x = _nhwc(x)
        y = x.reshape(self.shape)
        return _nchw(y) if len(self.shape) == 4 else y


class _Concat(_Op):
    """``CONCATENATION`` along one axis (NHWC numbering, moved for 4D)."""

    def __init__(self, spec: OperatorSpec, model: TFLiteModel, activation: str) -> None:
        if any(model.tensors[i].is_constant for i in spec.inputs):
            raise UnsupportedOpError(
                f"{model.path.name}: op {spec.index} CONCATENATION of a constant is not supported"
            )
        super().__init__(spec, spec.inputs)
        rank = len(model.tensors[spec.outputs[0]].shape)
        axis = spec.options["axis"] % rank
        self.axis = NHWC_TO_NCHW_AXIS[axis] if rank == 4 else axis
        self.activation = activation

    def forward(self, *xs: Tensor) -> Tensor:
        return _activate(torch.cat(xs, dim=self.axis), self.activation)


class _ResizeBilinear(_Op):
    """``RESIZE_BILINEAR`` to a constant size with TFLite's three sampling conventions."""

    def __init__(self, spec: OperatorSpec, model: TFLiteModel) -> None:
        super().__init__(spec, spec.inputs[:1])
        self.size = tuple(int(v) for v in model.tensors[spec.inputs[1]].data.reshape(-1))
        self.align_corners = spec.options["align_corners"]
        self.half_pixel = spec.options["half_pixel_centers"]

    def forward(self, x: Float[Tensor, "B C H W"]) -> Float[Tensor, "B C h w"]:
        if self.align_corners or self.half_pixel:  # PyTorch's two modes are these
            return F.interpolate(x, self.size, mode="bilinear", align_corners=self.align_corners)
        # TFLite's legacy mode: source = target * in / out, clamped at the last pixel.
        x = _lerp_axis(x, 2, self.size[0])
        return _lerp_axis(x, 3, self.size[1])


def _lerp_axis(x: Tensor, dim: int, out: int) -> Tensor:
    n = x.shape[dim]
    source = torch.arange(out, dtype=x.dtype, device=x.device) * (n / out)
    low = source.floor().long().clamp(max=n - 1)
    high = (low + 1).clamp(max=n - 1)
    shape = [1] * x.ndim
    shape[dim] = out
    weight = (source - low.to(x.dtype)).view(shape)
    return x.index_select(dim, low) * (1 - weight) + x.index_select(dim, high) * weight


class _StridedSlice(_Op):
    """``STRIDED_SLICE`` with constant begin/end/strides and begin/end/shrink masks."""

    def __init__(self, spec: OperatorSpec, model: TFLiteModel) -> None:
        super().__init__(spec, spec.inputs[:1])
        options = spec.options
        if options["ellipsis_mask"] or options["new_axis_mask"]:
            raise UnsupportedOpError(
                f"{model.path.name}: op {spec.index} STRIDED_SLICE with ellipsis/new-axis masks"
            )
        begin, end, strides = (
            model.tensors[i].data.reshape(-1).astype(int).tolist() for i in spec.inputs[1:4]
        )
        self.in_rank = len(model.tensors[spec.inputs[0]].shape)
        self.out_rank = len(model.tensors[spec.outputs[0]].shape)
        index: list[slice | int] = []
        for axis, (b, e, s) in enumerate(zip(begin, end, strides, strict=True)):
            if options["shrink_axis_mask"] >> axis & 1:
                index.append(b)
                continue
            if options["offset"]:
                e = b + e
            start = None if options["begin_mask"] >> axis & 1 else b
            stop = None if options["end_mask"] >> axis & 1 else e
            index.append(slice(start, stop, s))
        if index and isinstance(index[0], slice) and index[0] == slice(0, 1, 1):
            index[0] = slice(None)  # the stored batch of 1 stands for any batch
        self.index = tuple(index)

    def forward(self, x: Tensor) -> Tensor:
        if self.in_rank == 4:
            x = _nhwc(x)
        y = x[self.index]
        return _nchw(y) if self.out_rank == 4 else y


SUPPORTED_OPS = (
    "ADD",
    "AVERAGE_POOL_2D",
    "CONCATENATION",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "HARD_SWISH",
    "LOGISTIC",
    "MAX_POOL_2D",
    "MEAN",
    "MUL",
    "PAD",
    "PRELU",
    "RELU",
    "RELU6",
    "RESHAPE",
    "RESIZE_BILINEAR",
    "STRIDED_SLICE",
    "TANH",
)
"""Operators :class:`TFLiteGraph` rebuilds (plus ``DEQUANTIZE`` of constants, folded at load):
those of MediaPipe's hand/face landmark, palm/face/pose detection, iris and selfie models,
custom ops aside."""


def _build_op(spec: OperatorSpec, model: TFLiteModel) -> nn.Module:
    kind, tensors = spec.kind, model.tensors
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        weight = tensors[spec.inputs[1]]
        bias = tensors[spec.inputs[2]] if len(spec.inputs) > 2 and spec.inputs[2] >= 0 else None
        if not weight.is_constant or (bias is not None and not bias.is_constant):
            raise UnsupportedOpError(
                f"{model.path.name}: op {spec.index} {kind} with runtime weights"
            )
        _check_activation(spec, model.path)
        bias_data = bias.data if bias is not None else None
        if kind == "FULLY_CONNECTED":
            if spec.options["weights_format"] != 0:
                raise UnsupportedOpError(f"{model.path.name}: op {spec.index} shuffled FC weights")
            rank = len(tensors[spec.inputs[0]].shape)
            return TFLiteLinear(spec, weight.data, bias_data, rank)
        if spec.options["padding"] not in ("SAME", "VALID"):
            raise UnsupportedOpError(f"{model.path.name}: op {spec.index} padding")
        depthwise = kind == "DEPTHWISE_CONV_2D"
        channels = tensors[spec.inputs[0]].shape[-1]
        return TFLiteConv2d(spec, weight.data, bias_data, depthwise, channels)
    if kind in ("ADD", "MUL"):
        return _Binary(spec, model, _check_activation(spec, model.path))
    if kind == "PRELU":
        return _PRelu(spec, model)
    if kind in _UNARY:
        return _Unary(spec)
    if kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        return _Pool(spec, _check_activation(spec, model.path))
    if kind == "PAD":
        return _Pad(spec, model)
    if kind == "MEAN":
        return _Mean(spec, model)
    if kind == "RESHAPE":
        return _Reshape(spec, model)
    if kind == "CONCATENATION":
        return _Concat(spec, model, _check_activation(spec, model.path))
    if kind == "RESIZE_BILINEAR":
        return _ResizeBilinear(spec, model)
    if kind == "STRIDED_SLICE":
        return _StridedSlice(spec, model)
    raise AssertionError(kind)  # filtered by _check_supported


# ---------------------------------------------------------------------------- the graph


def _needed_operators(model: TFLiteModel, targets: Sequence[int]) -> list[OperatorSpec]:
    """The operators the target tensors depend on, in file (execution) order."""
    producers = model.producers()
    needed: set[int] = set()
    stack = list(targets)
    seen: set[int] = set()
    while stack:
        tensor = stack.pop()
        if tensor in seen or tensor < 0:
            continue
        seen.add(tensor)
        op = producers.get(tensor)
        if op is not None and op.index not in needed:
            needed.add(op.index)
            stack.extend(op.inputs)
    return [op for op in model.operators if op.index in needed]


def _check_supported(model: TFLiteModel, operators: Sequence[OperatorSpec]) -> None:
    for op in operators:  # first: a sparse weight also leaves its DEQUANTIZE unfolded
        sparse = [model.tensors[i].name for i in op.inputs if i >= 0 and model.tensors[i].sparse]
        if sparse:
            raise UnsupportedOpError(
                f"{model.path.name}: op {op.index} {op.kind} reads sparse weights "
                f"{sparse[0]!r}, which TFLiteGraph does not densify"
            )
    unsupported = sorted({op.kind for op in operators if op.kind not in SUPPORTED_OPS})
    if unsupported:
        raise UnsupportedOpError(
            f"{model.path.name} uses operators TFLiteGraph does not implement: "
            f"{', '.join(unsupported)}; cut the graph before them (outputs=...)"
        )
    for op in operators:
        for index in (*op.inputs, *op.outputs):
            tensor = model.tensors[index] if index >= 0 else None
            if tensor is not None and not tensor.is_constant and tensor.dtype != "float32":
                raise UnsupportedOpError(
                    f"{model.path.name}: op {op.index} {op.kind} runs on {tensor.dtype} "
                    f"tensor {tensor.name!r}; only float models (float16/int8 weights "
                    "allowed) are supported"
                )


class TFLiteGraph(nn.Module):
    """A TFLite model's operators run in order on PyTorch tensors, weights trainable.

    Args:
        model: the parsed file (:func:`read_tflite`).
        outputs: tensors (names or indices) the graph ends at; only the operators they need
            are built (their weights are the module's parameters). Default: the model's
            outputs.

    Raises:
        UnsupportedOpError: a needed operator is not in :data:`SUPPORTED_OPS`.

    Example:
        >>> path = mediapipe_model_path("face_landmark/face_landmark.tflite")
        >>> trunk = TFLiteGraph.from_file(path, outputs=["p_re_lu_12"])  # cut at 1/16
        >>> trunk(torch.rand(1, 3, 192, 192))[0].shape
        torch.Size([1, 128, 12, 12])
    """

    def __init__(self, model: TFLiteModel, outputs: Sequence[int | str] | None = None) -> None:
        super().__init__()
        targets = (
            tuple(model.tensor_index(k) for k in outputs) if outputs is not None else model.outputs
        )
        operators = _needed_operators(model, targets)
        _check_supported(model, operators)
        self.path = model.path
        self.input_indices = model.inputs
        self.output_indices = targets
        self.tensor_names = {t.index: t.name for t in model.tensors}
        self.shapes = {t.index: t.shape for t in model.tensors}
        self.ops = nn.ModuleDict(
            (f"{op.kind.lower()}_{op.index}", _build_op(op, model)) for op in operators
        )
        self._plans: dict[tuple[int, ...], list[nn.Module]] = {}

    @classmethod
    def from_file(cls, path: str | Path, outputs: Sequence[int | str] | None = None) -> TFLiteGraph:
        """Read ``path`` and build the graph up to ``outputs``."""
        return cls(read_tflite(path), outputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self.tensor_names[i] for i in self.output_indices)

    def tensor_index(self, key: int | str) -> int:
        """Index of a tensor of the model given by index or exact name."""
        return _tensor_index(key, self.tensor_names, self.path)

    def _plan(self, targets: tuple[int, ...]) -> list[nn.Module]:
        if targets not in self._plans:
            by_output = {op.output: op for op in self.ops.values()}
            needed: set[int] = set()
            stack = list(targets)
            while stack:
                op = by_output.get(stack.pop())
                if op is not None and op.output not in needed:
                    needed.add(op.output)
                    stack.extend(op.inputs)
            missing = [t for t in targets if t not in by_output and t not in self.input_indices]
            if missing:
                names = ", ".join(repr(self.tensor_names[t]) for t in missing)
                raise InputError(f"{self.path.name}: tensors {names} are beyond this graph's cut")
            self._plans[targets] = [op for op in self.ops.values() if op.output in needed]
        return self._plans[targets]

    def forward(
        self, *inputs: Tensor, outputs: Sequence[int | str] | None = None
    ) -> tuple[Tensor, ...]:
        """Run the graph.

        Args:
            inputs: one tensor per model input; images as ``(B, C, H, W)`` in the range the
                model expects (MediaPipe's landmark models: RGB in ``[0, 1]``).
            outputs: tensors to return (names or indices); default: the graph's outputs.

        Returns:
            The requested tensors in order; 4D ones as ``(B, C, H, W)``.
        """
        if len(inputs) != len(self.input_indices):
            raise InputError(
                f"{self.path.name} takes {len(self.input_indices)} inputs, got {len(inputs)}"
            )
        targets = (
            tuple(self.tensor_index(k) for k in outputs)
            if outputs is not None
            else self.output_indices
        )
        values: dict[int, Tensor] = dict(zip(self.input_indices, inputs, strict=True))
        for op in self._plan(targets):
            values[op.output] = op(*(values[i] for i in op.inputs))
        return tuple(values[t] for t in targets)
