"""CPU backend of minirast (``backend="torch"``): one module per op, mirroring
:mod:`minirast._triton`.

- :mod:`minirast._cpu.rasterize`: visibility by per-row spans and the contract's
  exact edge test, memory-bounded;
- :mod:`minirast._cpu.attributes`: perspective-correct barycentrics and depth of
  the visible faces, with an analytic backward;
- :mod:`minirast._cpu.interpolate`: gather-and-weight over the covered pixels;
- :mod:`minirast._cpu.antialias`: the analytic silhouette blending;
- :mod:`minirast._cpu.compiled`: ``torch.compile`` of the element-wise stages on
  large CPU calls once their eager runs have cost about a compile
  (``MINIRAST_COMPILE``), with the eager stages as the fallback.

Optimised for the CPU (per-row spans, packed 64-bit depth/id keys, stages compiled
by ``torch.compile``) but plain differentiable torch, so it also runs on CUDA tensors:
the tests compare the Triton kernels with it there and in the interpreter. It is not
the reference: the simple float64 reference rasterizer both backends are tested
against is :mod:`minirast.reference`. Inputs arrive validated by the public layer
(``minirast/_validate.py``).
"""
