"""Our on-disk layout of a :class:`FlameModel`: ``.safetensors`` (arrays plus string
metadata) or ``.npz`` (arrays only), written atomically, read without pickles.

Kept apart from :mod:`flame.io` (which reads every other format) so that the
stand-in head can cache itself without importing the loaders that load it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from _common.atomic import atomic_path

from .model import FlameModel


def save_model(model: FlameModel, path: str | Path) -> None:
    """Write ``model`` as ``.safetensors`` (or ``.npz``) in our layout, atomically."""
    model.validate()
    path = Path(path)
    if path.suffix.lower() not in (".safetensors", ".npz"):
        raise ValueError(f"save_model writes .safetensors or .npz, got {path.suffix!r}")
    arrays = model.to_arrays()
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".safetensors":
            from safetensors.numpy import save_file

            save_file(arrays, tmp, metadata={"format": "minirast-flame-1", **model.metadata})
        else:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)


def read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The arrays and the metadata (without our ``format`` tag) of a ``.safetensors`` file."""
    from safetensors import safe_open

    arrays: dict[str, np.ndarray] = {}
    with safe_open(str(path), framework="np") as f:
        meta = dict(f.metadata() or {})
        for key in f.keys():
            arrays[key] = f.get_tensor(key)
    meta.pop("format", None)
    return arrays, meta


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file, read without pickles."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
