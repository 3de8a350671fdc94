"""The photometric fit's posterior around its optimum: rho's interval, as the landmark
fit's (:mod:`train.fit.posterior`), from a Laplace approximation in log rho.

The variables are the photometric fit's geometry (:mod:`train.fit.photo_objective`):
per capture the shape (prior stds) and log rho, per frame expression, jaw, eyelids
(prior stds), head rotation (radians), log scale and translation (NDC). The appearance
(albedo map and SH lighting) is held at its closed-form solve: the interval is
conditional on it (it would widen a little with the appearance integrated out too).

The Hessian is Gauss-Newton on whitened residuals, per frame:

- the photo's pixels, with the Cauchy penalty's IRLS weights at the optimum
  ``w_p = mask_p / (1 + |e_p|^2 / c^2)`` held fixed: ``r_pc = sqrt(PHOTO_WEIGHT w_p /
  count) e_pc / c`` (``c = ROBUST_SCALE``, ``count`` the frame's compared pixels), whose
  ``1/2 |r|^2`` has the photometric term's gradient and Gauss-Newton curvature there;
- the 68 landmarks, ``(u - target) / sigma``;
- the priors' diagonal (unit in the prior-std variables, ``1 / pose_std^2`` on the
  rotation, none on scale, translation and log rho).

The photometric term is a tempered likelihood: ``PHOTO_WEIGHT`` says the photo counts
as that many independent pixels of noise ``ROBUST_SCALE``, whatever its size, because
neighbouring pixels' errors are not independent (the albedo, the lighting and the
model's shape err over whole regions). Its curvature is therefore about independent of
the render's size, and the Jacobian is taken on a small render of the optimum
(``LAPLACE_SIZE`` pixels, the albedo map box-filtered to match), which keeps the
interval cheap: ``S + L`` renders per frame (S shared, L per-frame variables) by
forward differences in float64 (the rasterizer's autograd Functions have no second
derivative). The per-frame blocks are eliminated by the Schur complement
(:mod:`train.fit.laplace`), so rho's variance has every other variable integrated out.

Calibration: the tempered likelihood's scale is a modelling choice, not a measured
noise, so the variance of log rho is multiplied by ``VARIANCE_INFLATION``, the factor
that brings the 95 % interval's coverage to about 95 % on textured synthetic captures
(docs/fitting.md gives the measurement), and the interval is Student's t with the
landmarks' residual degrees of freedom.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F

from train.fit import laplace
from train.fit.photo_objective import (
    Fixed,
    Level,
    make_level,
    objective,
    quadratic_weights,
)
from train.fit.posterior import LEVEL, Posterior, student_t

#: the render side of the Jacobian (pixels of the photo's centred square)
LAPLACE_SIZE = 64
#: finite-difference step in the fit's variables (prior stds, radians, log units, NDC):
#: small against their posterior spread, large enough that float64 rounding is far below
#: the differences
STEP = 1e-6
#: one-sided differences that disagree by more than this fraction of their sizes (plus
#: ``STEP``, a derivative of 1 in whitened units) mark a discontinuity (:func:`jacobian`)
DISAGREE = 0.2
#: the calibration of the variance of log rho (module docstring)
VARIANCE_INFLATION = 16.0
#: frames whose Jacobian is taken at once (bounds memory: frames x (S + L) renders)
FRAMES_PER_CHUNK = 4

SHARED = ("z_shape", "log_rho")
LOCAL = ("z_expression", "z_jaw", "z_eyelids", "global_pose", "log_scale", "trans")


def jacobian(fun, x: torch.Tensor, which: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(r [n, M], J [n, M, D])``: residuals ``fun(x, which)`` at ``x [n, D]`` and their
    Jacobian by central differences, each entry zero where the forward and the backward
    difference disagree (``DISAGREE``).

    A render is continuous in the geometry except where a pixel changes surface without
    the antialiasing's blend (an occlusion inside the head, a triangle seen edge-on):
    there one of the two differences jumps by the colour difference over ``STEP``
    (about 1e5 times a real derivative) and would swamp ``J^T J``. Such an entry (38 of
    2.6 million in a 4-frame capture at 64 px) carries no usable curvature and is left
    out."""
    n, d = x.shape
    with torch.no_grad():
        r = fun(x, which)
        eye = torch.eye(d, dtype=x.dtype, device=x.device) * STEP
        rows = which.repeat_interleave(d)
        plus = fun((x[:, None] + eye).reshape(n * d, d), rows).reshape(n, d, -1) - r[:, None]
        minus = r[:, None] - fun((x[:, None] - eye).reshape(n * d, d), rows).reshape(n, d, -1)
    bad = (plus - minus).abs() > (DISAGREE * (plus.abs() + minus.abs()) + STEP)
    jac = torch.where(bad, torch.zeros_like(plus), (plus + minus) / (2 * STEP))
    return r, jac.transpose(1, 2)


def laplace_size(resolution: int) -> int:
    """The render side of the Jacobian for a fit at ``resolution``."""
    return min(resolution, LAPLACE_SIZE)


class PhotoProblem:
    """The photometric fit's problem at its optimum, in float64 on the CPU (minirast's
    Triton kernels compute in float32, too coarse for differences), one frame per row:
    ``residuals(x [n, S+L], which [n])`` for :func:`jacobian`.
    ``v`` the fit's variables, ``fixed`` and ``level`` (at the Jacobian's size) what its
    objective reads; ``texture_size`` the albedo map's side on that level."""

    def __init__(self, v: dict, fixed: Fixed, level: Level, texture_size: int):
        def cpu(t: torch.Tensor) -> torch.Tensor:
            t = t.detach().cpu()
            return t.to(torch.float64) if t.is_floating_point() else t

        self.fixed = fixed._replace(
            layer=copy.deepcopy(fixed.layer).to("cpu", torch.float64),
            target=cpu(fixed.target),
            sigma=cpu(fixed.sigma),
            groups=cpu(fixed.groups),
            expression_std=cpu(fixed.expression_std),
            jaw_std=cpu(fixed.jaw_std),
            skin=cpu(fixed.skin),
        )
        self.level = Level(level.size, *(None if t is None else cpu(t) for t in level[1:]))
        albedo = cpu(v["albedo"]).permute(0, 3, 1, 2)
        if albedo.shape[-1] != texture_size:
            albedo = F.interpolate(
                albedo, size=(texture_size,) * 2, mode="bilinear", antialias=True
            )
        self.albedo = albedo.permute(0, 2, 3, 1).contiguous()
        self.sh = cpu(v["sh"])
        self.groups = self.fixed.groups
        v = {k: cpu(v[k]) for k in SHARED + LOCAL}
        self.sizes = {k: v[k][0].numel() for k in SHARED + LOCAL}
        b = len(self.groups)
        x = [v[k].reshape(len(v[k]), -1) for k in SHARED]
        shared = torch.cat(x, 1)[self.groups]  # [B, S]
        local = torch.cat([v[k].reshape(b, -1) for k in LOCAL], 1)
        self.x = torch.cat([shared, local], 1)  # [B, S+L]
        self.n_shared = shared.shape[1]
        self.n_pixels = level.size * level.size * 3
        with torch.no_grad():
            every = torch.arange(b)
            _, parts = objective(self._variables(self.x, every), *self._rows(every))
        irls = parts["weight"]  # mask / (1 + r^2 / c^2) at the optimum
        self.pixel_weight = quadratic_weights(irls, self.level).sqrt()

    def _variables(self, x: torch.Tensor, which: torch.Tensor) -> dict:
        out, start = {}, 0
        for k in SHARED + LOCAL:
            out[k] = x[:, start : start + self.sizes[k]]
            start += self.sizes[k]
        out["log_rho"] = out["log_rho"][:, 0]
        out["log_scale"] = out["log_scale"][:, 0]
        out["albedo"] = self.albedo[self.groups[which]]
        out["sh"] = self.sh[which]
        return out

    def _rows(self, which: torch.Tensor) -> tuple[Fixed, Level]:
        """The objective's inputs for one row per image of ``which``."""
        fx, lv = self.fixed, self.level
        fixed = fx._replace(
            target=fx.target[which],
            sigma=fx.sigma[which],
            groups=torch.arange(len(which), device=which.device),
            skin=fx.skin[self.groups[which]],
        )
        level = Level(lv.size, *(None if t is None else t[which] for t in lv[1:]))
        return fixed, level

    def residuals(self, x: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        """Whitened residuals ``[n, R*R*3 + 136]`` of images ``which [n]`` at ``x
        [n, S+L]``: the photo's pixels (weighted, module docstring), then the landmarks."""
        fixed, level = self._rows(which)
        _, parts = objective(self._variables(x, which), fixed, level)
        error = parts["render"].image.clamp(0.0, 1.0) - level.photo
        photo = error * self.pixel_weight[which][..., None]
        lmk = (parts["landmarks"] - fixed.target) / fixed.sigma[..., None]
        return torch.cat([photo.reshape(len(x), -1), lmk.reshape(len(x), -1)], 1)

    def priors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The priors' Hessian diagonals: shared ``[S]``, per frame ``[L]``."""
        dev = self.x.device
        shared = torch.ones(self.n_shared, dtype=torch.float64, device=dev)
        shared[-1] = 0.0  # log rho: flat
        local = torch.cat(
            [
                torch.full((self.sizes[k],), v, dtype=torch.float64, device=dev)
                for k, v in (
                    ("z_expression", 1.0),
                    ("z_jaw", 1.0),
                    ("z_eyelids", 1.0),
                    ("global_pose", 1.0 / self.fixed.prior.pose_std**2),
                    ("log_scale", 0.0),
                    ("trans", 0.0),
                )
            ]
        )
        return shared, local

    def normal_matrices(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(photo [B, D, D], landmarks [B, D, D], rss [B, 2])``: each image's
        Gauss-Newton matrices ``J^T J`` of the two terms and their residual sums of
        squares (photo, landmarks)."""
        b, d = self.x.shape
        photo = self.x.new_zeros(b, d, d)
        lmk = self.x.new_zeros(b, d, d)
        rss = self.x.new_zeros(b, 2)
        for i in range(0, b, FRAMES_PER_CHUNK):
            rows = torch.arange(i, min(b, i + FRAMES_PER_CHUNK))
            r, jac = jacobian(self.residuals, self.x[rows], rows.to(self.x.device))
            jp, jl = jac[:, : self.n_pixels], jac[:, self.n_pixels :]
            photo[rows] = jp.transpose(1, 2) @ jp
            lmk[rows] = jl.transpose(1, 2) @ jl
            rss[rows, 0] = r[:, : self.n_pixels].square().sum(1)
            rss[rows, 1] = r[:, self.n_pixels :].square().sum(1)
        return photo, lmk, rss


def photo_posterior(v: dict, fixed: Fixed, level: Level, texture_size: int) -> Posterior:
    """Per capture ``[G]``: log rho's posterior (module docstring) at the photometric
    fit's optimum ``v`` (its variables), its ``fixed`` inputs and a ``level`` at the
    Jacobian's size (:func:`laplace_size`), whose albedo map is ``texture_size``
    texels wide. ``noise_scale`` is the landmarks' residual scale (relative to sigma)."""
    problem = PhotoProblem(v, fixed, level, texture_size)
    photo, lmk, rss = problem.normal_matrices()
    n_groups = int(fixed.groups.max()) + 1
    b = len(fixed.groups)
    # frames into problem slots [G, F]
    counts = torch.bincount(fixed.groups.cpu(), minlength=n_groups)
    f = int(counts.max())
    order = torch.argsort(fixed.groups.cpu(), stable=True)
    slot = torch.empty(b, dtype=torch.long)
    start = torch.cumsum(counts, 0) - counts
    slot[order] = torch.arange(b) - start[fixed.groups.cpu()[order]]
    g_idx, s_idx = fixed.groups.cpu(), slot
    valid = torch.zeros(n_groups, f, dtype=torch.bool)
    valid[g_idx, s_idx] = True
    s = problem.n_shared
    d = problem.x.shape[1]
    a = torch.zeros(n_groups, f, d, d, dtype=torch.float64)
    shared_prior, local_prior = problem.priors()
    # the landmarks' noise scale, as the landmark fit estimates it (rss / n per capture)
    n_lmk = torch.zeros(n_groups, dtype=torch.float64).index_add(
        0, g_idx, torch.full((b,), 136.0, dtype=torch.float64)
    )
    rss_lmk = torch.zeros(n_groups, dtype=torch.float64).index_add(0, g_idx, rss[:, 1].cpu())
    s2 = (rss_lmk / n_lmk).clamp_min(1e-6)
    a[g_idx, s_idx] = photo.cpu() + lmk.cpu() / s2[g_idx, None, None]
    eye_l = torch.eye(d - s, dtype=torch.float64)
    h_ff = a[..., s:, s:] + torch.where(
        valid[..., None, None], torch.diag(local_prior.cpu()), eye_l
    )
    h_ss = a[..., :s, :s].sum(1) + torch.diag(shared_prior.cpu())
    blocks = laplace.Blocks(h_ss, a[..., :s, s:], h_ff, rss_lmk, n_lmk, valid)
    var = laplace.shared_covariance(blocks)[:, s - 1, s - 1] * VARIANCE_INFLATION
    std = torch.where(var > 0, var.clamp_min(0).sqrt(), torch.full_like(var, math.inf))
    first = torch.full((n_groups,), b, dtype=torch.long).scatter_reduce(
        0, g_idx, torch.arange(b), "amin"
    )
    log_rho = problem.x[first.to(problem.x.device), s - 1].cpu()
    dof = (
        n_lmk - laplace.effective_parameters(blocks, shared_prior.cpu()[None], local_prior.cpu())
    ).clamp_min(1.0)
    dev = fixed.groups.device
    half = student_t(dof, LEVEL) * std  # the symmetric Laplace interval: no profile here
    bounds = torch.stack([log_rho - half, log_rho + half], -1)
    return Posterior(log_rho.to(dev), std.to(dev), s2.sqrt().to(dev), dof.to(dev), bounds.to(dev))


def fit_posterior(
    v: dict, fixed: Fixed, photos: torch.Tensor, resolution: int, texture_size: int
) -> Posterior | None:
    """:func:`photo_posterior` of a fit of the linear ``photos [B, H, W, 3]`` at the
    render side ``resolution`` with ``texture_size`` albedo maps; None for the
    orthographic camera (no rho)."""
    if not fixed.fit_rho:
        return None
    size = laplace_size(resolution)
    level = make_level(photos, fixed.target, size)
    texels = max(8, texture_size * size // resolution)
    return photo_posterior(v, fixed, level, texels)


def per_image(posterior: Posterior | None, groups: torch.Tensor):
    """``(rho_interval [B, 2], distance_interval [B, 2], noise_scale [B])`` of each
    image from its capture's posterior (``LEVEL``; NaN without one)."""
    b = len(groups)
    if posterior is None:
        nan = torch.full((b, 2), math.nan, device=groups.device)
        return nan, nan.clone(), nan[:, 0].clone()
    rho = posterior.rho_interval()[groups].float()
    distance = 1.0 / rho.flip(-1)
    return rho, distance, posterior.noise_scale[groups].float()
