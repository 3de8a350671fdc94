"""minirast: a small differentiable rasterizer for faces (Triton on GPU, torch on CPU).

The rasterizer API (rasterize, interpolate, antialias) lands with its own
issue; this package also hosts the helpers shared by ppcam and flame.
"""

__version__ = "0.1.0"
