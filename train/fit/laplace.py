"""The Laplace approximation of a fit's posterior, for problems with shared and
per-frame variables.

A problem (an image, or a capture of F frames) has ``S`` shared variables (shape and
log rho, in the fit's normalised units) and ``L`` variables per frame; frame f's
whitened residuals ``r_f [M]`` depend only on the shared ones and its own. With the
Gauss-Newton Hessian ``J^T J`` of ``1/2 |r|^2`` and the priors' diagonal ``P``, the
Hessian of the negative log posterior is block-arrow::

    H = [[A_ss + P_s, A_s1, ..., A_sF],        A_ss = sum_f J_sf^T J_sf
         [A_1s,  A_11 + P_l,           ],      A_sf = J_sf^T J_lf
         [ ...                 ...     ],      A_ff = J_lf^T J_lf
         [A_Fs,           A_FF + P_l   ]]

and the shared variables' marginal covariance is the inverse of the Schur complement
``C = H_ss - sum_f H_sf H_ff^-1 H_fs``: every frame's nuisance variables integrated out,
at the cost of F small solves.

The landmark noise the fit assumes (``FitPrior.sigma``) is not the images': a
detector's noise differs from 2 px, and a model that cannot draw a face exactly
leaves residuals of its own. The data part of ``H`` is therefore divided by the
residual variance factor ``s2 = |r|^2 / (n - edf)`` (``n`` residuals, ``edf`` the
effective number of fitted parameters, ``tr(H^-1 A)``), the usual estimate of the
noise scale under a linearised model; intervals use Student's t with ``n - edf``
degrees of freedom.

Jacobians are forward differences in float64 (the landmark model's contour bins held
fixed), so they need no second-order autograd.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

#: forward-difference step in the fit's normalised variables (each moves the
#: objective about equally, so one step suits all): truncation ~1e-6 relative, and
#: float64 rounding ~1e-10, both far below what a Hessian for an interval needs
STEP = 1e-6
#: rows per evaluation of the residual function (bounds memory)
CHUNK = 1024


def jacobian(
    fun: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    which: torch.Tensor,
    columns: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(r [N, M], J [N, M, D'])``: residuals and their Jacobian at ``x [N, D]``.

    ``fun(x [n, D], which [n]) -> r [n, M]`` (float64, no gradient needed) evaluates
    rows; ``which [N]`` says which problem-frame each row of ``x`` is. The Jacobian's
    columns are the first ``columns`` variables (default all ``D``).
    """
    n, d = x.shape
    k = d if columns is None else columns
    with torch.no_grad():
        r = _chunked(fun, x, which)
        eye = torch.eye(d, dtype=x.dtype, device=x.device)[:k] * STEP  # [k, D]
        plus = (x[:, None, :] + eye).reshape(n * k, d)
        diff = _chunked(fun, plus, which.repeat_interleave(k)).reshape(n, k, -1) - r[:, None]
    jac = (diff / STEP).transpose(1, 2)
    return r, jac


def _chunked(fun, x: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
    return torch.cat([fun(x[i : i + CHUNK], which[i : i + CHUNK]) for i in range(0, len(x), CHUNK)])


class Blocks(NamedTuple):
    """A problem's Hessian blocks (module docstring): ``h_ss [G,S,S]`` (prior
    included), ``h_sf [G,F,S,L]``, ``h_ff [G,F,L,L]`` (prior included; the identity
    for empty frame slots), the residual sum of squares ``rss [G]`` and the number of
    residuals ``n [G]``, and the frame slots in use ``valid [G,F]``."""

    h_ss: torch.Tensor
    h_sf: torch.Tensor
    h_ff: torch.Tensor
    rss: torch.Tensor
    n: torch.Tensor
    valid: torch.Tensor


def blocks(
    r: torch.Tensor,
    jac: torch.Tensor,
    valid: torch.Tensor,
    prior_shared: torch.Tensor,
    prior_local: torch.Tensor,
    data_weight: torch.Tensor | None = None,
) -> Blocks:
    """The Hessian blocks from the frames' residuals ``r [G,F,M]`` and Jacobians
    ``jac [G,F,M,S+L]`` (shared columns first), ``valid [G,F]`` the frames in use,
    the priors' Hessian diagonals ``prior_shared [G,S]`` and ``prior_local [L]``;
    ``data_weight [G]`` multiplies the data part (``1 / s2``; default 1)."""
    g, f, _, d = jac.shape
    s = prior_shared.shape[-1]
    w = valid.to(jac.dtype)[..., None, None]
    jac = jac * w
    if data_weight is not None:
        jac = jac * data_weight.sqrt()[:, None, None, None]
    a = jac.transpose(-1, -2) @ jac  # [G, F, D, D]
    eye_l = torch.eye(d - s, dtype=jac.dtype, device=jac.device)
    h_ff = a[..., s:, s:] + torch.where(valid[..., None, None], torch.diag(prior_local), eye_l)
    h_ss = a[..., :s, :s].sum(1) + torch.diag_embed(prior_shared)
    rss = (r.square().sum(-1) * valid).sum(1)
    n = valid.sum(1) * r.shape[-1]
    return Blocks(h_ss, a[..., :s, s:], h_ff, rss, n.to(r.dtype), valid)


def blocks_scaled(
    b: Blocks, weight: torch.Tensor, prior_shared: torch.Tensor, prior_local: torch.Tensor
) -> Blocks:
    """``b`` with its data part multiplied by ``weight [G]`` (the priors' kept)."""
    ps = torch.diag_embed(prior_shared)
    eye = torch.eye(prior_local.shape[0], dtype=b.h_ff.dtype, device=b.h_ff.device)
    pl = torch.where(b.valid[..., None, None], torch.diag(prior_local), eye)
    w = weight[:, None, None]
    return b._replace(
        h_ss=(b.h_ss - ps) * w + ps,
        h_sf=b.h_sf * w[:, None],
        h_ff=(b.h_ff - pl) * w[:, None] + pl,
        rss=b.rss * weight,
    )


def shared_covariance(b: Blocks) -> torch.Tensor:
    """``[G,S,S]``: the shared variables' covariance, the frames' integrated out
    (the inverse of the Schur complement)."""
    return torch.linalg.inv(_schur(b))


def _schur(b: Blocks) -> torch.Tensor:
    solved = torch.linalg.solve(b.h_ff, b.h_sf.transpose(-1, -2))  # [G,F,L,S]
    return b.h_ss - (b.h_sf @ solved).sum(1)


def effective_parameters(b: Blocks, prior_shared: torch.Tensor, prior_local: torch.Tensor):
    """``edf [G] = tr(H^-1 A)``: the parameters the data determine (the rest is
    prior), ``= dim - tr(H^-1 P)`` with ``P`` diagonal."""
    cov_ss = shared_covariance(b)
    inv_ff = torch.linalg.inv(b.h_ff)  # [G,F,L,L]
    bridge = inv_ff @ b.h_sf.transpose(-1, -2)  # [G,F,L,S]
    diag_ff = torch.diagonal(inv_ff, dim1=-2, dim2=-1) + ((bridge @ cov_ss[:, None]) * bridge).sum(
        -1
    )
    trace = (torch.diagonal(cov_ss, dim1=-2, dim2=-1) * prior_shared).sum(-1)
    trace = trace + ((diag_ff * prior_local) * b.valid[..., None]).sum((-1, -2))
    dim = prior_shared.shape[-1] + b.valid.sum(1) * prior_local.shape[0]
    return dim - trace


def residual_scale(b: Blocks, prior_shared, prior_local) -> tuple[torch.Tensor, torch.Tensor]:
    """``(s2 [G], dof [G])``: the residual variance factor ``rss / (n - edf)`` and its
    degrees of freedom (at least 1)."""
    dof = (b.n - effective_parameters(b, prior_shared, prior_local)).clamp_min(1.0)
    return b.rss / dof, dof


def logdet_gradient(
    fun: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    which: torch.Tensor,
    valid: torch.Tensor,
    b: Blocks,
    shared: int,
) -> torch.Tensor:
    """``[G,S]``: the gradient in the shared variables of ``1/2 sum_f log det H_ff``
    with each frame's variables at their conditional optimum (the Laplace
    approximation's correction to the joint objective).

    ``x [G*F, S+L]`` the frames' variables (shared first), ``which [G*F]`` as for
    :func:`jacobian`. ``d/dx 1/2 log det(J^T J + P) = tr(H^-1 J^T dJ)``,
    the gradient of ``sum <W, J(x)>`` with ``W = J H^-1`` held fixed; ``J``'s columns
    are forward differences, so one reverse pass gives it. The frames' optimum moves
    with the shared variables (``dl/ds = -H_ff^-1 H_fs``), which the total derivative
    includes.
    """
    g, f = valid.shape
    n, d = x.shape
    k = d - shared
    inv_ff = torch.linalg.inv(b.h_ff).reshape(n, k, k)
    xv = x.detach().requires_grad_(True)
    total = xv.new_zeros(())
    with torch.enable_grad():
        eye = torch.eye(d, dtype=x.dtype, device=x.device)[shared:] * STEP  # [k, D]
        for i in range(0, n, max(1, CHUNK // k)):
            rows = slice(i, min(n, i + max(1, CHUNK // k)))
            xr, m = xv[rows], xv[rows].shape[0]
            plus = fun((xr[:, None] + eye).reshape(m * k, d), which[rows].repeat_interleave(k))
            base = fun(xr, which[rows])
            jac = ((plus.reshape(m, k, -1) - base[:, None]) / STEP).transpose(1, 2)  # [m, M, k]
            weight = (jac @ inv_ff[rows]).detach()
            total = total + (weight * jac * valid.reshape(-1)[rows, None, None]).sum()
        (grad,) = torch.autograd.grad(total, xv)
    grad = grad.reshape(g, f, d)
    d_shared, d_local = grad[..., :shared], grad[..., shared:]
    step = torch.linalg.solve(b.h_ff, d_local[..., None])  # H_ff^-1 dc/dl
    return (d_shared - (b.h_sf @ step)[..., 0]).sum(1)


def newton_step(
    b: Blocks, grad_shared: torch.Tensor, grad_frames: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ds [G,S], df [G,F,L])``: the Gauss-Newton step ``-H^-1 grad`` through the
    block-arrow structure (the Schur complement for the shared variables, then each
    frame's own). ``grad_shared [G,S]``, ``grad_frames [G,F,L]``: the objective's
    gradient."""
    inv_g = torch.linalg.solve(b.h_ff, grad_frames[..., None])  # H_ff^-1 g_f
    rhs = grad_shared - (b.h_sf @ inv_g)[..., 0].sum(1)
    ds = -torch.linalg.solve(_schur(b), rhs[..., None])[..., 0]
    df = -torch.linalg.solve(
        b.h_ff, grad_frames[..., None] + b.h_sf.transpose(-1, -2) @ ds[:, None, :, None]
    )
    return ds, df[..., 0]
