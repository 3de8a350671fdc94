"""Backend selection shared by every kernel of the project (ppcam, minirast).

Each kernel has two implementations behind one function: ``"torch"`` (plain
torch, any device, the CPU path: ppcam's is also its reference, minirast's is
an optimised CPU backend in ``minirast/_cpu/`` with a separate float64 reference,
``minirast/reference.py``) and ``"triton"`` (GPU; on CPU only under
``TRITON_INTERPRET=1``, which the tests use). ``"auto"`` picks triton for CUDA
tensors when triton is importable, else torch.
"""

from __future__ import annotations

import functools
import os

import torch

BACKENDS = ("auto", "torch", "triton")


@functools.lru_cache(maxsize=1)
def triton_available() -> bool:
    """True when ``import triton`` works (Linux wheels only)."""
    try:
        import triton  # noqa: F401
    except Exception:  # pragma: no cover - depends on the platform
        return False
    return True


def triton_interpreted() -> bool:
    """True when Triton kernels run in the CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def resolve_backend(backend: str, device: torch.device) -> str:
    """Turn a user's backend choice into ``"torch"`` or ``"triton"``.

    Raises ``ValueError`` for an unknown name, and ``RuntimeError`` when triton
    is asked for but cannot run on ``device`` (not installed, or a CPU tensor
    without ``TRITON_INTERPRET=1``).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "triton" if device.type == "cuda" and triton_available() else "torch"
    if backend == "triton":
        if not triton_available():
            raise RuntimeError("backend='triton' was requested but triton is not installed")
        if device.type == "cuda":
            return "triton"
        if device.type == "cpu" and triton_interpreted():
            return "triton"
        raise RuntimeError(
            f"backend='triton' needs CUDA tensors (got device {device}); on CPU it runs only "
            "in the interpreter: set TRITON_INTERPRET=1 before triton is imported, "
            "or use backend='torch'"
        )
    return backend
