"""Atomic file writes: the file at ``path`` is either the old one or the complete
new one, never half-written, whatever happens to the process while it writes.

Every writer of the project (checkpoints, data shards, metrics logs, reports,
figures, benchmark results, FLAME model files) goes through :func:`atomic_path`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``.

    The temporary name keeps ``path``'s suffix (``.png``, ``.safetensors``), so
    writers that infer the format from the name (``matplotlib.savefig``) work.
    It is created in the same folder (``os.replace`` is atomic only within one
    file system) and removed if the body raises. Missing parent folders are
    created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield str(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def write_json(path: str | os.PathLike, payload: object, *, indent: int | None = 2) -> None:
    """Write ``payload`` as JSON (trailing newline) to ``path`` atomically."""
    write_text(path, json.dumps(payload, indent=indent) + "\n")
