"""Batched L-BFGS: many independent small problems minimised in lock step.

``minimize(fun, x0)`` minimises ``fun(x, rows) -> f [n]`` over ``x [N, D]``: N
independent problems, ``rows`` (``[n]`` long) the problems that the ``n`` rows of
``x`` belong to, row i of ``f`` depending only on row i of ``x``. Every iteration
evaluates the whole batch once, and line-search retries only the problems whose
step was refused, so a batch of hundreds of problems costs about as much as one
on a GPU, and little more than one batched forward/backward on a CPU. Each problem keeps its own
curvature history, step length and convergence state (Nocedal & Wright,
algorithm 7.4 with a backtracking Armijo line search).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

#: sufficient-decrease constant of the Armijo condition
ARMIJO = 1e-4
#: halvings of the step tried before a problem's history is reset
MAX_HALVINGS = 12


class LbfgsResult(NamedTuple):
    """``x [N, D]`` the minimisers, ``f [N]`` their values, ``grad_norm [N]`` the final
    gradient norms, ``iterations`` the iterations run."""

    x: torch.Tensor
    f: torch.Tensor
    grad_norm: torch.Tensor
    iterations: int


def _value_and_grad(fun, x: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        f = fun(x, rows)
        (g,) = torch.autograd.grad(f.sum(), x)
    return f.detach(), g


def _direction(g: torch.Tensor, s: torch.Tensor, y: torch.Tensor, count: torch.Tensor):
    """The two-loop recursion, batched: ``-H g`` with each problem's last ``count``
    pairs (``s, y [N, m, D]``, newest last)."""
    m = s.shape[1]
    q = g.clone()
    sy = (s * y).sum(-1)  # [N, m]
    valid = torch.arange(m, device=g.device)[None, :] >= (m - count[:, None])
    rho = torch.where(valid, 1.0 / sy.clamp_min(1e-30), torch.zeros_like(sy))
    alpha = torch.zeros_like(sy)
    for i in reversed(range(m)):
        alpha[:, i] = rho[:, i] * (s[:, i] * q).sum(-1)
        q = q - alpha[:, i, None] * y[:, i]
    yy = (y[:, -1] * y[:, -1]).sum(-1)
    gamma = torch.where(count > 0, sy[:, -1] / yy.clamp_min(1e-30), torch.ones_like(yy))
    r = gamma[:, None] * q
    for i in range(m):
        beta = rho[:, i] * (y[:, i] * r).sum(-1)
        r = r + s[:, i] * (alpha[:, i] - beta)[:, None]
    return -r


def minimize(
    fun: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    *,
    iterations: int = 100,
    history: int = 8,
    tolerance: float = 1e-6,
    relative_gain: float = 0.0,
) -> LbfgsResult:
    """Minimise ``fun`` from ``x0 [N, D]``; see the module docstring.

    A problem is done when its gradient norm is below ``tolerance``, when a step
    lowers its objective by at most ``relative_gain * max(1, |f|)`` (for float32
    objectives, whose last digits are rounding noise), or when no step
    along steepest descent is accepted (the rounding floor); all stop after
    ``iterations``. ``fun`` must be differentiable by autograd.
    """
    if x0.dim() != 2 or not x0.is_floating_point():
        raise ValueError(f"x0 must be a floating [N, D] tensor, got {tuple(x0.shape)}")
    n, d = x0.shape
    x = x0.detach().clone()
    everyone = torch.arange(n, device=x.device)
    f, g = _value_and_grad(fun, x, everyone)
    s = x.new_zeros(n, history, d)
    y = x.new_zeros(n, history, d)
    count = torch.zeros(n, dtype=torch.long, device=x.device)
    done = g.norm(dim=1) < tolerance
    run = 0
    for _ in range(iterations):
        run += 1
        direction = _direction(g, s, y, count)
        slope = (direction * g).sum(-1)
        uphill = slope >= 0  # a stale history: fall back to steepest descent
        direction = torch.where(uphill[:, None], -g, direction)
        slope = torch.where(uphill, -(g * g).sum(-1), slope)
        count = torch.where(uphill, torch.zeros_like(count), count)
        # first step of a fresh history: unit length in x
        step = torch.where(count == 0, 1.0 / direction.norm(dim=1).clamp_min(1e-12), 1.0)
        step = torch.where(done, torch.zeros_like(step), step)
        accepted = done.clone()
        x_new, f_new, g_new = x.clone(), f.clone(), g.clone()
        for _ in range(MAX_HALVINGS):
            rows = (~accepted).nonzero()[:, 0]
            trial = x[rows] + step[rows, None] * direction[rows]
            f_t, g_t = _value_and_grad(fun, trial, rows)
            armijo = f[rows] + ARMIJO * step[rows] * slope[rows]
            ok = torch.isfinite(f_t) & (f_t <= armijo)
            good = rows[ok]
            x_new[good], f_new[good], g_new[good] = trial[ok], f_t[ok], g_t[ok]
            accepted[good] = True
            if bool(accepted.all()):
                break
            step = torch.where(accepted, step, step * 0.5)
        failed = ~accepted
        s_k, y_k = x_new - x, g_new - g
        curved = (s_k * y_k).sum(-1) > 1e-10 * s_k.norm(dim=1) * y_k.norm(dim=1)
        keep = curved & ~failed & ~done
        s = torch.where(keep[:, None, None], torch.cat([s[:, 1:], s_k[:, None]], 1), s)
        y = torch.where(keep[:, None, None], torch.cat([y[:, 1:], y_k[:, None]], 1), y)
        # no acceptable step from a fresh history: at the objective's rounding floor
        stuck = failed & (count == 0)
        count = torch.where(keep, (count + 1).clamp(max=history), count)
        count = torch.where(failed, torch.zeros_like(count), count)
        gain = f - f_new
        x, f, g = x_new, f_new, g_new
        flat = ~failed & (gain <= relative_gain * f.abs().clamp_min(1.0))
        done = done | stuck | flat | (g.norm(dim=1) < tolerance)
        if bool(done.all()):
            break
    return LbfgsResult(x, f, g.norm(dim=1), run)
