"""Triton backend of minirast: one module per op, as Liger-Kernel's ``ops/``.

- :mod:`minirast._triton.rasterize`, :mod:`minirast._triton.interpolate`,
  :mod:`minirast._triton.antialias` and :mod:`minirast._triton.texture`: each op's entry
  points: its host functions that launch the kernels, then its
  ``torch.autograd.Function`` (``RasterizeFunction``, ``InterpolateFunction``,
  ``AntialiasFunction``, ``TextureFunction``), then its ``codegen_specs()``. The
  small interpolate op keeps its kernels in the same module, before the host code
  (as ``ppcam/_triton/project.py``); the large ops have theirs in a module of
  their own, :mod:`minirast._triton.rasterize_kernels`,
  :mod:`minirast._triton.antialias_kernels` and :mod:`minirast._triton.texture_kernels`
  (``@triton.jit`` code only);
- :mod:`minirast._triton.bary_derivatives`: the screen-space derivatives of the
  barycentrics per pixel (``BaryDerivativesFunction``), which ``interpolate`` turns
  into its ``derivatives=True`` output with the interpolate kernels;
- :mod:`minirast._triton.common`: what the ops share (constants, jit helpers, the
  named slots of the per-triangle setup record, tile bins, segmented sums).

The torch backend (``backend="torch"``, the CPU path) mirrors it in
:mod:`minirast._cpu`; the kernels are tested against it and against the float64
reference rasterizer :mod:`minirast.reference`. The public functions in ``minirast/*.py``
validate (``minirast/_validate.py``) and dispatch. Every module that launches
kernels has a ``codegen_specs()`` (signatures derived from the kernels by
:func:`_common.codegen.kernel_spec`); :func:`codegen_specs` gathers them for
``python -m bench.kernel_resources minirast._triton``.
"""

from __future__ import annotations

from _common.codegen import gather_specs

#: The modules of this package that launch kernels (each has a ``codegen_specs()``;
#: ``rasterize``, ``antialias`` and ``texture`` import theirs from ``<op>_kernels``).
KERNEL_MODULES = ("common", "rasterize", "interpolate", "bary_derivatives", "antialias", "texture")


def codegen_specs() -> list[dict]:
    """Every kernel configuration of the Triton rasterizer, for GPU code-generation checks."""
    return gather_specs(__name__, KERNEL_MODULES)
