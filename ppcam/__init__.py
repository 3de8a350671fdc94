"""ppcam: the pseudo-perspective camera of Chong & Nakajima (arXiv 2603.04958).

``u = S p_x / (1 + rho p_z)``: orthographic at rho = 0, exactly a pinhole
camera with ``f = S / rho`` and ``t_z = 1 / rho`` for rho > 0. Fused Triton
forward/backward kernels on GPU, a torch reference everywhere. Conventions in
docs/design.md section 2: camera frame x right, y down, z forward; NDC output with
(-1, -1) the top-left image corner.

Layout (the same in ``ppcam`` and ``minirast``): public functions live in
``ppcam/<topic>.py`` and start with one ``*_inputs`` call of ``ppcam/_validate.py``
(all input checks), then dispatch on the backend; ``ppcam/_torch/<op>.py`` is the
torch implementation of an op (the CPU path and the reference the kernels are
tested against; :func:`project_reference` is its public name, without input
checks, for benchmarks and tests); ``ppcam/_triton/<op>.py`` holds the op's Triton
kernels, then its host functions, then its ``torch.autograd.Function``, with what
several ops share in ``ppcam/_triton/common.py``.
"""

from ppcam._torch.project import project_reference
from ppcam.camera import PseudoPerspectiveCamera
from ppcam.conversion import equivalent_distance, pinhole_to_pseudo, pseudo_to_pinhole
from ppcam.frames import flame_to_camera
from ppcam.prior import PAPER_RHO_PRIOR, RhoPrior, hmc_rho_prior, rho_prior_loss
from ppcam.projection import DEFAULT_MIN_W, ortho_project, pinhole_project, project, to_clip

__all__ = [
    "DEFAULT_MIN_W",
    "PAPER_RHO_PRIOR",
    "PseudoPerspectiveCamera",
    "RhoPrior",
    "equivalent_distance",
    "flame_to_camera",
    "hmc_rho_prior",
    "ortho_project",
    "pinhole_project",
    "pinhole_to_pseudo",
    "project",
    "project_reference",
    "pseudo_to_pinhole",
    "rho_prior_loss",
    "to_clip",
]
