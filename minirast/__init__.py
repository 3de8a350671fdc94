"""minirast: a small differentiable rasterizer for faces (Triton on GPU, torch on CPU).

Public API:

- :func:`rasterize` -> :class:`Fragments` (triangle id, perspective-correct
  barycentrics, depth per pixel), :func:`interpolate`, :func:`antialias`,
  :func:`texture` (nvdiffrast's texture sampling: nearest, bilinear, mipmapped) with
  :func:`texture_mipmaps`;
- helpers: :func:`vertex_normals`, :func:`shade_lambert`, :func:`shade_sh`,
  :func:`sh_basis`, :func:`normals_to_rgb`, :func:`to_uint8_image`, :func:`save_image`,
  :func:`uv_sphere`, :func:`icosphere`;
- :mod:`minirast.reference` (imported on its own): the simple float64 reference
  rasterizer the backends are tested against (small scenes only).

Conventions and the backend contract: ``docs/design.md`` sections 2 and 4 and
``minirast/CONTRACT.md``.

Layout (ppcam's is the same, with a plain-torch reference in ``ppcam/_torch/`` where
minirast has ``_cpu/``): public functions live in
``minirast/<topic>.py`` and start with one ``*_inputs`` call of ``minirast/_validate.py``
(all input checks), then dispatch on the backend; ``minirast/_cpu/<op>.py`` is the
CPU backend of an op (``backend="torch"``: optimised torch, any device);
``minirast/reference.py`` is the float64 reference rasterizer both backends are
tested against; ``minirast/_triton/<op>.py`` holds the op's Triton kernels, then its
host functions, then its ``torch.autograd.Function``, with what several ops share
in ``minirast/_triton/common.py``; the large ops (rasterize, antialias) keep their
kernels apart, in ``minirast/_triton/<op>_kernels.py``.
"""

from ._constants import BACKGROUND_DEPTH, EPS_W
from .antialias import antialias
from .fragments import Fragments
from .image import save_image, to_uint8_image
from .primitives import icosphere, uv_sphere
from .raster import interpolate, rasterize
from .shading import normals_to_rgb, sh_basis, shade_lambert, shade_sh, vertex_normals
from .texture import texture, texture_mipmaps

__version__ = "0.1.0"

__all__ = [
    "BACKGROUND_DEPTH",
    "EPS_W",
    "Fragments",
    "antialias",
    "icosphere",
    "interpolate",
    "normals_to_rgb",
    "rasterize",
    "save_image",
    "sh_basis",
    "shade_lambert",
    "shade_sh",
    "texture",
    "texture_mipmaps",
    "to_uint8_image",
    "uv_sphere",
    "vertex_normals",
]
