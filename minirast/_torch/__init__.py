"""Torch backend of minirast: one module per op, mirroring :mod:`minirast._triton`.

- :mod:`minirast._torch.rasterize`: visibility by tiled, memory-bounded edge tests,
  then differentiable barycentrics and depth (autograd gives the gradients);
- :mod:`minirast._torch.interpolate`: gather-and-weight over the covered pixels;
- :mod:`minirast._torch.antialias`: the analytic silhouette blending (torch only).

Plain differentiable torch on any device: the CPU path (``backend="torch"``) and
the reference the Triton kernels are tested against. Inputs arrive validated by
the public layer (``minirast/_validate.py``).
"""
