"""Torch backend of ppcam: one module per op, mirroring :mod:`ppcam._triton`.

- :mod:`ppcam._torch.project`: the projection (and clip coordinates) in plain
  differentiable torch: any device, any floating dtype, higher-order gradients.
  It is the CPU path (``backend="torch"``) and the reference the Triton kernels
  are tested against.
"""
