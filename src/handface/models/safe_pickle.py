"""Reading pickles that users hand us (FLAME / MANO model files, Decaf annotations) safely.

A pickle can run arbitrary code when it is loaded, so files from users go through
:class:`RestrictedUnpickler`, which resolves only an allow-list of globals:

- numpy arrays, scalars and dtypes (the reconstructors numpy itself pickles with);
- plain containers (``dict``, ``list``, ``tuple``, ``set``, ``OrderedDict``), ``object`` and the
  two helpers Python 2 / protocol-2 pickles use to rebuild objects and byte strings;
- ``scipy.sparse`` CSC/CSR matrices (``J_regressor`` in the official files), read as inert
  records of their state and turned into dense arrays by :func:`to_array`;
- ``chumpy`` objects: the official FLAME / MANO pickles store some arrays (``shapedirs``) as
  ``chumpy.ch.Ch`` objects. chumpy is not needed: every ``chumpy.*`` global becomes an inert
  :class:`Captured` record of the pickled state, and :func:`to_array` reads a plain ``Ch``'s
  array from the ``x`` entry its ``__setstate__`` would receive.

Any other global (``os.system``, ``builtins.eval``, a class of some other package) stops the load
with a one-line error before it is called. ``.npz`` files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import codecs
import collections
import copyreg
import io
import pickle
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from handface.errors import HandfaceError, ModelFileError


class Captured:
    """An inert stand-in for a global we do not want to run (chumpy, sparse matrices, torch).

    It records what the pickle tried to do with it (constructor arguments and the state passed to
    ``__setstate__``) and nothing else.
    """

    source: str = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<captured {self.source}>"


def _captured_class(source: str) -> type[Captured]:
    return type("Captured_" + source.replace(".", "_"), (Captured,), {"source": source})


def _numpy_reconstructors() -> dict[tuple[str, str], Any]:
    """The functions numpy pickles arrays and scalars with, under every module path in use."""
    reconstruct = np.zeros(1).__reduce__()[0]
    scalar = np.float64(1.0).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    table: dict[tuple[str, str], Any] = {}
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        table[(f"{core}.multiarray", "scalar")] = scalar
        table[(f"{core}.numeric", "_frombuffer")] = frombuffer
    table[("numpy", "ndarray")] = np.ndarray
    table[("numpy", "dtype")] = np.dtype
    return table


_BUILTINS = {
    name: getattr(__import__("builtins"), name)
    for name in ("object", "dict", "list", "tuple", "set", "frozenset", "bytearray", "complex")
}
_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    **_numpy_reconstructors(),
    **{(module, name): value for module in ("builtins", "__builtin__")
       for name, value in _BUILTINS.items()},
    ("copyreg", "_reconstructor"): copyreg._reconstructor,  # type: ignore[attr-defined]
    ("copy_reg", "_reconstructor"): copyreg._reconstructor,  # type: ignore[attr-defined]
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("_codecs", "encode"): codecs.encode,
}  # fmt: skip

_SPARSE_MODULES = ("scipy.sparse",)
_SPARSE_FORMATS = {
    "csc_matrix": "csc", "csr_matrix": "csr", "csc_array": "csc", "csr_array": "csr",
}  # fmt: skip


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the allow-listed globals described in the module doc.

    ``capture`` names extra top-level packages whose globals become inert :class:`Captured`
    records (``chumpy`` always is); ``label`` names the file in error messages.
    """

    def __init__(
        self,
        stream: Any,
        *,
        label: str = "pickle",
        capture: Iterable[str] = (),
        error: type[HandfaceError] = ModelFileError,
    ) -> None:
        super().__init__(stream, encoding="latin1")
        self._label = label
        self._capture = {"chumpy", *capture}
        self._error = error
        self._classes: dict[str, type[Captured]] = {}

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[key]
        top = module.split(".")[0]
        if (
            any(module == m or module.startswith(m + ".") for m in _SPARSE_MODULES)
            and name in _SPARSE_FORMATS
        ) or top in self._capture:
            source = f"{module}.{name}"
            if source not in self._classes:
                self._classes[source] = _captured_class(source)
            return self._classes[source]
        raise self._error(
            f"{self._label}: refusing to load '{module}.{name}' from a pickle (only numpy, "
            "scipy.sparse and chumpy arrays are allowed); re-save the data as plain numpy arrays"
        )


def restricted_loads(
    data: bytes | io.BufferedIOBase,
    *,
    label: str = "pickle",
    capture: Iterable[str] = (),
    error: type[HandfaceError] = ModelFileError,
) -> Any:
    """Unpickle ``data`` (bytes or a binary stream) with :class:`RestrictedUnpickler`."""
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    try:
        return RestrictedUnpickler(stream, label=label, capture=capture, error=error).load()
    except HandfaceError:
        raise
    except Exception as exc:  # corrupt or truncated data: pickle raises many kinds of errors
        raise error(f"{label}: not a readable pickle ({type(exc).__name__}: {exc})") from None


def restricted_load(
    path: str | Path,
    *,
    capture: Iterable[str] = (),
    error: type[HandfaceError] = ModelFileError,
    what: str = "file",
) -> Any:
    """Unpickle the file at ``path`` safely; a missing file raises ``error`` naming the path."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path} does not exist (expected a {what})")
    with open(path, "rb") as stream:
        return restricted_loads(stream, label=str(path), capture=capture, error=error)


def load_npy_object(
    path: str | Path,
    *,
    capture: Iterable[str] = (),
    error: type[HandfaceError] = ModelFileError,
    what: str = "file",
) -> Any:
    """Read an ``.npy`` file, including one that holds pickled objects, without ``allow_pickle``.

    Object arrays (``np.save`` of a dict, as in DECA's ``landmark_embedding.npy``) are unpickled
    with :class:`RestrictedUnpickler`; a 0-d object array is returned as its single item.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path} does not exist (expected a {what})")
    with open(path, "rb") as stream:
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                _, _, dtype = np.lib.format.read_array_header_1_0(stream)
            else:
                _, _, dtype = np.lib.format.read_array_header_2_0(stream)
        except ValueError as exc:
            raise error(f"{path}: not an .npy file ({exc})") from None
        if not dtype.hasobject:
            return np.load(path, allow_pickle=False)
        value = restricted_loads(stream, label=str(path), capture=capture, error=error)
    if isinstance(value, np.ndarray) and value.dtype.hasobject and value.ndim == 0:
        return value.item()
    return value


def to_array(value: Any, *, label: str = "value", error: type[HandfaceError] = ModelFileError):
    """A dense numpy array from a loaded value: arrays, lists, chumpy ``Ch`` or sparse records."""
    if isinstance(value, Captured):
        source = value.source
        state = value.state if isinstance(value.state, Mapping) else {}
        if source.rsplit(".", 1)[-1] in _SPARSE_FORMATS and source.startswith("scipy.sparse"):
            return _sparse_to_dense(state, source, label, error)
        if source.startswith("chumpy") and "x" in state:
            return np.asarray(state["x"])
        raise error(
            f"{label} is a '{source}' object that cannot be read without running its code; "
            "convert the file to plain numpy arrays"
        )
    if hasattr(value, "toarray"):  # a real scipy.sparse matrix (e.g. from an .npz we built)
        return np.asarray(value.toarray())
    return np.asarray(value)


def _sparse_to_dense(
    state: Mapping[str, Any], source: str, label: str, error: type[HandfaceError]
) -> np.ndarray:
    import scipy.sparse

    fmt = _SPARSE_FORMATS[source.rsplit(".", 1)[-1]]
    try:
        parts = (
            np.asarray(state["data"]),
            np.asarray(state["indices"]),
            np.asarray(state["indptr"]),
        )
        shape = tuple(int(n) for n in state["_shape"])
    except KeyError as exc:
        raise error(f"{label}: sparse matrix without its {exc} field") from None
    builder = scipy.sparse.csc_matrix if fmt == "csc" else scipy.sparse.csr_matrix
    return np.asarray(builder(parts, shape=shape).toarray())


def load_array_dict(
    path: str | Path,
    *,
    error: type[HandfaceError] = ModelFileError,
    what: str = "model file",
) -> dict[str, Any]:
    """The top-level dict of a ``.pkl`` (restricted) or ``.npz`` (no pickles) model file."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path} does not exist (expected a {what})")
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                return {key: np.asarray(data[key]) for key in data.files}
        except ValueError as exc:
            raise error(f"{path}: cannot read the .npz without pickles ({exc})") from None
        except OSError as exc:
            raise error(f"{path}: not a readable .npz file ({exc})") from None
    content = restricted_load(path, error=error, what=what)
    if not isinstance(content, Mapping):
        raise error(f"{path}: expected a dict of arrays, found {type(content).__name__}")
    return dict(content)
