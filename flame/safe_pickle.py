"""A restricted unpickler for FLAME's files: arrays in, nothing executed.

The official ``generic_model.pkl`` is a Python 2 pickle of a dict whose
arrays are numpy arrays, chumpy ``Ch`` objects and a scipy sparse matrix;
DECA's ``landmark_embedding.npy`` is a pickled dict (some values torch
tensors) inside an object ``.npy``. A pickle can name any importable callable
and have it called, so plain ``pickle.load`` / ``np.load(allow_pickle=True)``
would run whatever the file says. :func:`load_pickle` instead resolves only a
short allow-list of array reconstruction functions (each wrapped so that it
only builds data), turns chumpy and scipy-sparse objects into inert stand-ins
that merely record their state, and converts everything to numpy at the end.
Any other global in the stream stops the load with :class:`UnsafePickleError`
before anything is called.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import collections
import io
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for something that is not plain array data."""


# ----------------------------------------------------------------- stand-ins
class _Recorded:
    """Base of the inert stand-ins: remembers the pickled state, runs nothing."""

    source = "?"

    def __new__(cls, *args: Any, **kwargs: Any):
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _ChumpyObject(_Recorded):
    """Any chumpy class; a plain ``Ch`` holds its value in ``state['x']``."""


class _SparseMatrix(_Recorded):
    """A scipy.sparse matrix; rebuilt from (data, indices, indptr, shape) only."""


_CHUMPY_CLASSES: dict[str, type] = {}
_SPARSE_CLASSES: dict[str, type] = {}


def _stand_in(table: dict[str, type], base: type, module: str, name: str) -> type:
    key = f"{module}.{name}"
    if key not in table:
        table[key] = type(name, (base,), {"source": key})
    return table[key]


# ----------------------------------------------------------- safe callables
_TEXT_CODECS = {codecs.lookup("latin-1").name, codecs.lookup("utf-8").name}


def _codecs_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it: str -> bytes, nothing else."""
    if not isinstance(obj, str) or codecs.lookup(encoding).name not in _TEXT_CODECS:
        raise UnsafePickleError(f"_codecs.encode is allowed only on text, got {type(obj)}")
    return obj.encode(encoding, errors)


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    """``copyreg._reconstructor`` limited to our stand-ins and numpy types."""
    if base is not object or state is not None:
        raise UnsafePickleError(f"copyreg._reconstructor with base {base!r} is not allowed")
    if isinstance(cls, type) and issubclass(cls, _Recorded):
        return cls.__new__(cls)
    raise UnsafePickleError(f"copyreg._reconstructor of {cls!r} is not allowed")


def _load_torch_storage(data: bytes) -> Any:
    """``torch.storage._load_from_bytes`` through torch's weights-only loader."""
    import torch

    return torch.load(io.BytesIO(data), weights_only=True)


def _rebuild_tensor(storage: Any, offset: int, size: Any, stride: Any, *rest: Any) -> Any:
    """Tensor view of a storage (``torch._utils._rebuild_tensor[_v2]``), hooks ignored."""
    import torch

    if not isinstance(storage, torch.UntypedStorage | torch.TypedStorage):
        raise UnsafePickleError(f"a torch tensor needs a storage, got {type(storage)}")
    t = torch.empty(0, dtype=storage.dtype) if isinstance(storage, torch.TypedStorage) else None
    if t is None:
        raise UnsafePickleError("untyped torch storages are not supported in these files")
    return t.set_(storage, int(offset), tuple(size), tuple(stride))


_NP_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]
_NP_SCALAR = np.float64(0).__reduce__()[0]

_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _NP_RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _NP_RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _NP_SCALAR,
    ("numpy._core.multiarray", "scalar"): _NP_SCALAR,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "object"): object,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("_codecs", "encode"): _codecs_encode,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _load_torch_storage,
}

_SPARSE_NAMES = ("csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array")


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` serves only the allow-list."""

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (copy_reg, __builtin__) -> Python 3 names.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "chumpy" or module.startswith("chumpy."):
            return _stand_in(_CHUMPY_CLASSES, _ChumpyObject, module, name)
        if module.startswith("scipy.sparse") and name in _SPARSE_NAMES:
            return _stand_in(_SPARSE_CLASSES, _SparseMatrix, module, name)
        raise UnsafePickleError(
            f"refusing to load: the pickle asks for {module}.{name}, which is not array data "
            "(only numpy, scipy.sparse, chumpy and torch tensor reconstruction is allowed); "
            "nothing in the file was executed"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refusing to load: the pickle uses persistent ids")


# ----------------------------------------------------------------- to numpy
def _sparse_to_dense(obj: _SparseMatrix) -> np.ndarray:
    import scipy.sparse as sp

    state = getattr(obj, "state", None)
    if not isinstance(state, dict):
        raise UnsafePickleError(f"unexpected state for {obj.source}")
    shape = state.get("_shape", state.get("shape"))
    fmt = obj.source.rsplit(".", 1)[-1][:3]
    try:
        shape = tuple(int(s) for s in shape)
        if fmt == "coo":
            coords = (np.asarray(state["row"]), np.asarray(state["col"]))
            m = sp.coo_matrix((np.asarray(state["data"]), coords), shape=shape)
        else:
            cls = sp.csc_matrix if fmt == "csc" else sp.csr_matrix
            parts = (
                np.asarray(state["data"]),
                np.asarray(state["indices"]),
                np.asarray(state["indptr"]),
            )
            m = cls(parts, shape=shape)
    except (KeyError, TypeError, ValueError) as err:
        raise UnsafePickleError(f"malformed sparse matrix {obj.source}: {err}") from err
    return np.asarray(m.toarray())


def _chumpy_to_array(obj: _ChumpyObject) -> np.ndarray:
    state = getattr(obj, "state", None)
    x = state.get("x") if isinstance(state, dict) else None
    if isinstance(x, _ChumpyObject):
        return _chumpy_to_array(x)
    if isinstance(x, np.ndarray | int | float):
        return np.asarray(x)
    raise UnsafePickleError(
        f"chumpy object {obj.source} is an unevaluated expression (no stored value 'x'); "
        "re-export the file with plain arrays"
    )


def to_plain(obj: Any) -> Any:
    """Replace stand-ins and torch tensors by numpy arrays, recursively."""
    if isinstance(obj, _ChumpyObject):
        return _chumpy_to_array(obj)
    if isinstance(obj, _SparseMatrix):
        return _sparse_to_dense(obj)
    if isinstance(obj, _Recorded):
        raise UnsafePickleError(f"unexpected object {obj.source}")
    if isinstance(obj, dict):
        return {to_plain(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_plain(v) for v in obj)
    if isinstance(obj, np.ndarray) and obj.dtype.hasobject:
        if obj.ndim == 0:
            return to_plain(obj[()])
        return [to_plain(v) for v in obj.ravel()]
    try:
        import torch

        if isinstance(obj, torch.Tensor):
            return obj.detach().cpu().numpy().copy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return obj


def load_pickle(source: str | Path | BinaryIO) -> Any:
    """Load a pickle (Python 2 or 3) with the restricted unpickler.

    Returns plain Python containers with numpy arrays (chumpy arrays and
    scipy sparse matrices become dense arrays, torch tensors numpy arrays).
    Raises :class:`UnsafePickleError` when the file asks for anything else.
    """
    if isinstance(source, str | Path):
        with open(source, "rb") as f:
            return load_pickle(f)
    obj = RestrictedUnpickler(source, encoding="latin1").load()
    return to_plain(obj)


def load_npy(path: str | Path) -> Any:
    """Load a ``.npy`` file; object arrays go through the restricted unpickler.

    A 0-d object array (how ``np.save`` stores a dict) returns the object itself.
    """
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            _, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            _, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:  # pragma: no cover - numpy only writes 1.0..3.0
            raise ValueError(f"unsupported .npy version {version} in {path}")
        if dtype.hasobject:
            return to_plain(RestrictedUnpickler(f, encoding="latin1").load())
    return np.load(path, allow_pickle=False)
