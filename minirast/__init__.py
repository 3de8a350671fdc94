"""minirast: a small differentiable rasterizer for faces (Triton on GPU, torch on CPU).

Public API:

- :func:`rasterize` -> :class:`Fragments` (triangle id, perspective-correct
  barycentrics, depth per pixel), :func:`interpolate`, :func:`antialias`;
- helpers: :func:`vertex_normals`, :func:`shade_lambert`, :func:`shade_sh`,
  :func:`normals_to_rgb`, :func:`to_uint8_image`, :func:`save_image`,
  :func:`uv_sphere`, :func:`icosphere`.

Conventions and the backend contract: ``DESIGN.md`` sections 2 and 4 and
``minirast/CONTRACT.md``. This package also hosts the helpers shared by ppcam
and flame (``minirast._checks``, ``minirast._backend``).
"""

from ._constants import BACKGROUND_DEPTH, EPS_W
from .fragments import Fragments
from .primitives import icosphere, uv_sphere
from .raster import interpolate, rasterize

__version__ = "0.1.0"

__all__ = [
    "BACKGROUND_DEPTH",
    "EPS_W",
    "Fragments",
    "icosphere",
    "interpolate",
    "rasterize",
    "uv_sphere",
]
