"""Torch backend of minirast: one module per op, mirroring :mod:`minirast._triton`.

- :mod:`minirast._torch.rasterize`: visibility by per-row spans and the contract's
  exact edge test, memory-bounded;
- :mod:`minirast._torch.attributes`: perspective-correct barycentrics and depth of
  the visible faces, with an analytic backward;
- :mod:`minirast._torch.interpolate`: gather-and-weight over the covered pixels;
- :mod:`minirast._torch.antialias`: the analytic silhouette blending;
- :mod:`minirast._torch.compiled`: ``torch.compile`` of the element-wise stages on
  large CPU calls (``MINIRAST_COMPILE``), with the eager stages as the fallback.

Differentiable torch on any device: the CPU path (``backend="torch"``) and the
reference the Triton kernels are tested against. Inputs arrive validated by the
public layer (``minirast/_validate.py``).
"""
