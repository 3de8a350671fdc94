"""``torch.compile`` of the torch backend's element-wise stages, where it pays (CPU speed).

Eager torch makes one pass over memory per operation; the rasterizer's stages (triangle
setup, row spans, the per-pixel test, barycentrics and their backward) are dozens of
element-wise operations and gathers, which the inductor's C++ backend fuses into one
loop each: 3-10x faster stages. Compiling costs seconds per stage (tens of seconds on
a machine whose compile cache is empty), so a stage is compiled only once its eager
runs have cost as much as a compile:

- ``MINIRAST_COMPILE=auto`` (default): on CPU calls of at least
  :data:`MIN_COMPILED_PIXELS` pixels (``B*H*W``) with a C++ compiler present, a stage
  runs eager until it has spent :data:`EAGER_BUDGET_S` seconds for one kind of input
  (dtypes, ranks, integer arguments), then is compiled for that kind. A one-off
  render never compiles; a training run compiles within its first few steps.
- ``MINIRAST_COMPILE=1``: compiled on the first call, at any size (tests use this);
- ``MINIRAST_COMPILE=0``: always eager.

Safety. The inductor keeps IEEE semantics (no contraction, no unsafe math), so both
forms compute the same values; still, the first compiled call of each kind of input
also runs the eager form and compares bit for bit (NaNs aside): torch's on-disk cache
once served code built for AVX-512 to a process run with ``ATEN_CPU_CAPABILITY=avx2``
(garbage boxes, an out-of-bounds index). A mismatch or a failed compile warns once and
keeps the stage eager. ``torch.compile`` imports Triton, whose library carries its own
LLVM; loaded into a process where Mesa's shared LLVM is already global (an llvmpipe
OpenGL context: moderngl, pyrender), its initialisers bind to Mesa's LLVM and the
process dies (segmentation fault). So while Triton is not loaded yet and a Mesa LLVM
library is mapped (:func:`mapped_llvm`), the stages stay eager with one warning.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import sys
import time
import warnings
from collections.abc import Callable

import torch

#: Smallest ``B*H*W`` compiled in ``auto`` mode: below it a call costs milliseconds.
MIN_COMPILED_PIXELS = 1 << 15

#: Eager seconds a stage spends on one kind of input before ``auto`` compiles it: about
#: the compile of one stage with a warm torch cache on a 2-core machine.
EAGER_BUDGET_S = 1.0

#: Compiled graphs per stage (dtype x culling x resolution x ...) before it stays eager.
RECOMPILE_LIMIT = 64

_MODES = {"auto": "auto", "": "auto", "1": "on", "on": "on", "0": "off", "off": "off"}
#: Shared libraries whose LLVM clashes with Triton's (Mesa's libLLVM-15.so.1, libgallium).
_LLVM_LIBRARY = re.compile(r"/lib(LLVM|gallium)[-.\w]*\.so[.\d]*$")


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
    """Whether a call on ``device`` rendering ``pixels`` (``B*H*W``) may run compiled
    stages, by ``MINIRAST_COMPILE`` (module docs; in ``auto`` each stage still waits for
    its eager budget)."""
    if device.type != "cpu":
        return False
    mode = compile_mode()
    if mode == "off" or cxx_compiler() is None:
        return False
    return mode == "on" or pixels >= MIN_COMPILED_PIXELS


def mapped_llvm(maps: str = "/proc/self/maps") -> str | None:
    """Path of the first shared LLVM library (``libLLVM*.so*``, ``libgallium*.so*``) in
    the memory map ``maps`` (``/proc/<pid>/maps`` format), or None (also where the file
    cannot be read)."""
    try:
        with open(maps) as f:
            for line in f:
                path = line.rstrip("\n").split(maxsplit=5)[5:]
                if path and _LLVM_LIBRARY.search(path[0]):
                    return path[0]
    except OSError:
        return None
    return None


_clash: str | None = None  # the LLVM library that made compiling unsafe (warned once)
_clock = time.perf_counter  # the eager budget's clock (tests replace it)


def compile_is_safe() -> bool:
    """Whether ``torch.compile`` can load Triton here without a crash (module docs)."""
    global _clash
    if _clash is None:
        if "triton._C.libtriton" in sys.modules or importlib.util.find_spec("triton") is None:
            return True
        lib = mapped_llvm()
        if lib is None:
            return True
        _clash = lib
        warnings.warn(
            f"minirast: not compiling the CPU stages: {lib} (Mesa's LLVM, e.g. from an "
            "OpenGL context) is loaded, and loading Triton's LLVM beside it (torch.compile "
            "does) crashes the process. Rendering stays eager (same results, slower); to "
            "compile, `import torch._dynamo` before creating the OpenGL context. "
            "MINIRAST_COMPILE=0 skips the attempt.",
            RuntimeWarning,
            stacklevel=4,
        )
    return False


class Stage:
    """An element-wise stage with an eager and a compiled form (see the module docs).

    ``stage(*tensors_and_ints, compiled=flag)`` runs the eager function unless ``flag``
    (from :func:`want_compiled`) is true, the stage has used its eager budget for this
    kind of input (or the mode is ``on``), compiling is safe and has not failed; then the
    compiled form. ``stage.eager`` is the plain function.
    """

    def __init__(self, fn: Callable):
        self.eager = fn
        self.name = fn.__name__
        self._compiled: Callable | None = None
        self._broken = False
        self._eager_s: dict[tuple, float] = {}  # eager seconds per kind, until compiled
        self._verified: set[tuple] = set()
        functools.update_wrapper(self, fn)

    def __call__(self, *args, compiled: bool = False):
        if not compiled or self._broken:
            return self.eager(*args)
        key = _signature(args)
        if key not in self._verified:
            spent = self._eager_s.get(key, 0.0)
            if (compile_mode() == "auto" and spent < EAGER_BUDGET_S) or not compile_is_safe():
                start = _clock()
                out = self.eager(*args)
                self._eager_s[key] = spent + _clock() - start
                return out
        try:
            if self._compiled is None:
                _announce_first_compile(self.name)
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
    """Said once per process when the first stage is compiled (a pause of seconds, up to
    a minute with an empty compile cache)."""


_announced = False


def _announce_first_compile(name: str) -> None:
    global _announced
    if not _announced:
        _announced = True
        warnings.warn(
            f"minirast: compiling the torch backend's CPU stages with torch.compile, "
            f"starting with {name} (seconds with torch's compile cache warm, up to a "
            "minute without); MINIRAST_COMPILE=0 keeps them eager",
            CompileNotice,
            stacklevel=4,
        )


def stage(fn: Callable) -> Stage:
    """Decorator: ``fn`` as a :class:`Stage`."""
    return Stage(fn)
