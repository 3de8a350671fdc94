"""The stand-in head's cache: built once, kept as safetensors in the user cache.

The file lives in ``$MINIRAST_CACHE`` or ``$XDG_CACHE_HOME/minirast`` or
``~/.cache/minirast``, is written atomically, and is named after the
construction's :data:`.build.VERSION` and a hash of the package's content (every
``.py`` file of ``flame/standin/``, name and bytes, in sorted order), so editing,
adding or renaming any stage makes a new one. A damaged cache is rebuilt; a
read-only home keeps the head in memory.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..model import FlameModel
from ..storage import read_safetensors, save_model
from .build import VERSION, build_standin

#: The folder of the package whose content keys the cache.
PACKAGE_DIR = Path(__file__).resolve().parent


def package_digest(folder: str | os.PathLike = PACKAGE_DIR) -> str:
    """SHA-256 (first 12 hex digits) of the ``.py`` files directly in ``folder``:
    for each, in sorted order by name, its name, its length and its bytes."""
    h = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.py"), key=lambda p: p.name):
        data = path.read_bytes()
        h.update(f"{path.name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:12]


def cache_path() -> Path:
    """Where the generated stand-in head is cached: named after :data:`.build.VERSION`
    and :func:`package_digest` of this package."""
    root = os.environ.get("MINIRAST_CACHE")
    if root:
        base = Path(root)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "minirast"
    digest = package_digest()
    return base / f"flame_standin_v{VERSION}_{digest}.safetensors"


@lru_cache(maxsize=1)
def _cached() -> FlameModel:
    """The head from the cache file, else built (and saved, when the folder is writable)."""
    path = cache_path()
    if path.is_file():
        try:
            arrays, meta = read_safetensors(path)
            model = FlameModel.from_arrays(arrays, meta).validate()
            if model.metadata.get("version") == VERSION and model.has_uvs:
                return model
        except Exception:  # a damaged cache is rebuilt below
            pass
    model = build_standin()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_model(model, path)
    except OSError:  # read-only home: keep the in-memory copy
        pass
    return model


def bundled_model() -> FlameModel:
    """The stand-in head (a fresh copy each call; built once, then cached)."""
    m = _cached()
    arrays = {k: np.array(v, copy=True) for k, v in m.to_arrays().items()}
    return FlameModel.from_arrays(arrays, dict(m.metadata))
