"""Triton backend of ppcam: one module per op, as Liger-Kernel's ``ops/``.

- :mod:`ppcam._triton.project`: the fused forward/backward kernels of the
  projection, then the host functions that launch them, then its
  ``torch.autograd.Function`` (``ProjectFunction``).

With one op there is nothing shared, so no ``common.py`` (minirast has one). The
torch backend (CPU path, and the reference the kernels are tested against)
mirrors it in :mod:`ppcam._torch`; the public functions in ``ppcam/projection.py``
validate (``ppcam/_validate.py``) and dispatch. Every module here has a
``codegen_specs()`` (signatures derived from the kernels by
:func:`_common.codegen.kernel_spec`); :func:`codegen_specs` gathers them for
``python -m bench.kernel_resources ppcam._triton``.
"""

from __future__ import annotations

from _common.codegen import gather_specs

#: The modules of this package that hold kernels.
KERNEL_MODULES = ("project",)


def codegen_specs() -> list[dict]:
    """Every kernel configuration of the Triton projection, for GPU code-generation checks."""
    return gather_specs(__name__, KERNEL_MODULES)
