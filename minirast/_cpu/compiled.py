"""Optional ``torch.compile`` of the torch backend's inner stages (CPU speed).

Eager torch runs one pass over memory per operation; the rasterizer's inner
stages (span bounds per pixel row, the exact coverage test per pixel) are
dozens of element-wise operations and gathers over the same index vectors, so
fusing each stage into one loop with the inductor's C++ backend makes it many
times faster. That needs a C++ compiler at run time and a compile of a few tens
of seconds per stage and dtype on first use (cached on disk by torch
afterwards), so it is used only where it pays:

- ``MINIRAST_COMPILE=auto`` (default): compiled on CPU tensors when a C++
  compiler is found and the call renders at least :data:`MIN_COMPILED_PIXELS`
  pixels (``B*H*W``: one image of 181² or more, or the default training step);
  eager otherwise;
- ``MINIRAST_COMPILE=1``: compiled at any size (tests use this);
- ``MINIRAST_COMPILE=0``: always eager.

Both paths compute the same operations in the same order: the inductor keeps
IEEE semantics here (no floating-point contraction, no unsafe math), and the
tests check that the compiled stages give bitwise the results of the eager
ones. A compile that fails (no working compiler, an unsupported torch) warns
once and the stage stays eager for the rest of the process.

The first call of each stage for each kind of input (dtypes, ranks and the integer
arguments) in a process also runs the eager form and checks that the two agree bit
for bit (NaNs aside); if not, it warns and the stage stays eager. Torch's on-disk
compile cache served code built for AVX-512 to a process run with
``ATEN_CPU_CAPABILITY=avx2`` here: garbage triangle boxes and an out-of-bounds pixel
index instead of an image (a cache directory shared between machines is the same
kind of risk).
"""

from __future__ import annotations

import functools
import os
import shutil
import warnings
from collections.abc import Callable

import torch

#: Smallest ``B*H*W`` compiled in ``auto`` mode (181² and up): below this a call costs
#: about 10 ms eager, and a compile (tens of seconds, once per process) rarely pays.
MIN_COMPILED_PIXELS = 1 << 15

#: Compiled graphs per stage (dtype x culling x resolution x ...) before it stays eager.
RECOMPILE_LIMIT = 64

_MODES = {"auto": "auto", "": "auto", "1": "on", "on": "on", "0": "off", "off": "off"}


def compile_mode() -> str:
    """``"auto"``, ``"on"`` or ``"off"`` from ``MINIRAST_COMPILE``."""
    raw = os.environ.get("MINIRAST_COMPILE", "auto").strip().lower()
    if raw not in _MODES:
        raise ValueError(
            f"MINIRAST_COMPILE={raw!r} is not understood; expected auto, 1/on or 0/off"
        )
    return _MODES[raw]


@functools.lru_cache(maxsize=1)
def cxx_compiler() -> str | None:
    """Path of the C++ compiler the inductor would use (``$CXX``, else c++/g++/clang++),
    or None."""
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def want_compiled(device: torch.device, pixels: int) -> bool:
    """Whether a call on ``device`` rendering ``pixels`` (``B*H*W``) should run the
    compiled stages, by ``MINIRAST_COMPILE`` (module docs)."""
    if device.type != "cpu":
        return False
    mode = compile_mode()
    if mode == "off" or cxx_compiler() is None:
        return False
    return mode == "on" or pixels >= MIN_COMPILED_PIXELS


class Stage:
    """An element-wise stage with an eager and a compiled form (see the module docs).

    ``stage(*tensors_and_ints, compiled=flag)`` runs the compiled form when ``flag``
    (from :func:`want_compiled`) is true and compiling has not failed before, else the
    eager function; ``stage.eager`` is the plain function.
    """

    def __init__(self, fn: Callable):
        self.eager = fn
        self.name = fn.__name__
        self._compiled: Callable | None = None
        self._broken = False
        self._verified: set[tuple] = set()
        functools.update_wrapper(self, fn)

    def __call__(self, *args, compiled: bool = False):
        if not compiled or self._broken:
            return self.eager(*args)
        try:
            if self._compiled is None:
                _announce_first_compile()
                self._compiled = torch.compile(self.eager, dynamic=True, fullgraph=True)
            # Each dtype, culling mode and resolution is its own graph: allow more than
            # the default 8 per stage before giving up on compiling it.
            with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
                out = self._compiled(*args)
        except Exception as exc:  # no working compiler, or a torch without the inductor
            self._broken = True
            warnings.warn(
                f"minirast: torch.compile of the torch backend's {self.name} stage failed "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                "using the eager stage (same results, slower). Set MINIRAST_COMPILE=0 to "
                "skip the attempt.",
                RuntimeWarning,
                stacklevel=2,
            )
            return self.eager(*args)
        key = _signature(args)
        if key in self._verified:
            return out
        reference = self.eager(*args)
        if not _same(out, reference):
            self._broken = True
            warnings.warn(
                f"minirast: the compiled {self.name} stage disagrees with its eager form "
                "(torch's compile cache may hold code built for another CPU or thread "
                "count, e.g. a TORCHINDUCTOR_CACHE_DIR shared between machines); using the "
                "eager stage from now on (same results as the contract, slower)",
                RuntimeWarning,
                stacklevel=2,
            )
            return reference
        self._verified.add(key)
        return out


def _signature(args: tuple) -> tuple:
    """What selects a compiled graph: each tensor's dtype and rank, every other value."""
    return tuple((a.dtype, a.dim()) if isinstance(a, torch.Tensor) else a for a in args)


def _same(a, b) -> bool:
    """Bitwise-equal results (tensors or tuples of them; NaN equals NaN, -0 equals +0)."""
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    equal = a == b
    if a.is_floating_point():
        equal |= a.isnan() & b.isnan()
    return bool(equal.all())


class CompileNotice(UserWarning):
    """Said once per process when the first stage is compiled (a pause of up to a minute)."""


_announced = False


def _announce_first_compile() -> None:
    global _announced
    if not _announced:
        _announced = True
        warnings.warn(
            "minirast: compiling the torch backend's CPU stages with torch.compile (about a "
            "minute the first time on a machine, seconds once torch has cached them); "
            "MINIRAST_COMPILE=0 runs them eager instead",
            CompileNotice,
            stacklevel=4,
        )


def stage(fn: Callable) -> Stage:
    """Decorator: ``fn`` as a :class:`Stage`."""
    return Stage(fn)
