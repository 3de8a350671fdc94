"""rho's interval from the shape of its posterior along log rho, not only its curvature
at the estimate.

At a distance the posterior in log rho is lopsided: moving the camera nearer bends the
landmarks (the perspective divide ``1 + rho z``) and the objective climbs steeply, but
moving it farther only approaches the orthographic picture, and the objective levels
off at a plateau. A symmetric Laplace interval in log rho is then far too short on the
far side: on the multi-distance study every miss had the truth farther than the interval.

For each problem (an image or a capture) log rho is fixed at offsets from the estimate
(:data:`OFFSETS`, in units of the Laplace half-width ``t * std``) and every other
variable re-minimised: L-BFGS whose initial inverse Hessian is the block-arrow
Gauss-Newton one frozen at the estimate with rho's row and column removed (the chord
method, improved by its own curvature pairs), all offsets and problems in one batch, no
new Jacobian. To that profile objective (calibrated: the landmark noise scaled by the
residuals' estimate, as for the Laplace interval) is added ``1/2 log det H_oo``, the
Hessian of every variable but log rho at the re-minimised point, computed at the
estimate and at :data:`LOGDET_AT` (one more Jacobian), linear between them, constant
beyond and on the near side: the Laplace approximation of log rho's marginal posterior
with everything else integrated out (Tierney and Kadane, 1986), which takes the joint
MAP's pull towards the camera (the Neyman-Scott effect) out of the interval.

With ``D(psi)`` that objective minus its least value on the grid, the interval is the
connected set around the least value where ``sqrt(2 D) <= t`` (Student's t with the
noise's degrees of freedom), the ends interpolated linearly in ``sqrt(2 D)``; where it
never climbs that far on the far side, rho's lower end is 0 (distance unbounded).
:func:`train.fit.posterior.refine` takes the union with the Laplace interval: the
profile only lengthens a side.
"""

from __future__ import annotations

import math

import torch

from train.fit.laplace import Blocks
from train.fit.problem import LOG_RHO_STEP, objective, unpack

#: offsets of log rho from the estimate, in Laplace half-widths ``t * std``, ascending:
#: away from the camera (rho down, towards the plateau) reaching farther than towards it
#: (rho up, where the profile is steep)
OFFSETS = (-8.0, -5.0, -3.0, -2.0, -1.4, -0.7, 0.0, 0.7, 1.4, 2.0, 3.0)
#: chord steps per offset, and step halvings per chord step
STEPS = 3
HALVINGS = 6
#: starts tried on the quadratic model's path (fractions of its move of the others)
START_FRACTIONS = (0.5, 1.0)
#: the offset (of ``OFFSETS``) where ``log det H_oo`` is computed besides the estimate
LOGDET_AT = -2.0
#: added to the frames' Hessian blocks for the log det (relative to the priors' 1)
JITTER = 1e-9
#: the largest offset of log rho (a factor e^10, about 22000); beyond, the interval is open
MAX_OFFSET = 10.0


class _PinnedSolver:
    """``-H^-1 g`` with rho fixed (its row and column removed) through the block-arrow
    structure of ``b`` (:mod:`train.fit.laplace`); gradients carry a leading batch of
    offsets ``[K, G, ...]``."""

    def __init__(self, b: Blocks, rho: int):
        self.rho = rho
        self.inv_ff = torch.linalg.inv(b.h_ff)  # [G,F,L,L]
        self.h_sf = b.h_sf
        schur = b.h_ss - torch.einsum("gfsl,gflm,gftm->gst", b.h_sf, self.inv_ff, b.h_sf)
        schur = schur.clone()
        schur[:, rho, :] = 0.0
        schur[:, :, rho] = 0.0
        schur[:, rho, rho] = 1.0
        self.inv_schur = torch.linalg.inv(schur)

    def step(self, g_s: torch.Tensor, g_f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = torch.einsum("gflm,kgfm->kgfl", self.inv_ff, g_f)
        rhs = g_s - torch.einsum("gfsl,kgfl->kgs", self.h_sf, u)
        rhs[..., self.rho] = 0.0
        ds = -torch.einsum("gst,kgt->kgs", self.inv_schur, rhs)
        df = -torch.einsum(
            "gflm,kgfm->kgfl", self.inv_ff, g_f + torch.einsum("gfsl,kgs->kgfl", self.h_sf, ds)
        )
        return ds, df


def _values(problem, x: torch.Tensor, rows=None) -> torch.Tensor:
    """The objective ``[K, G]`` at ``x [K, G, D]``; with
    ``rows`` (a bool mask ``[K, G]``) only those, ``[n]`` in their flattened order."""
    k, g, d = x.shape
    problems = torch.arange(g, device=x.device).repeat(k)
    flat = x.reshape(k * g, d)
    if rows is not None:
        keep = rows.reshape(-1)
        problems, flat = problems[keep], flat[keep]
    bases = {key: v[problems] for key, v in problem.bases.items()}
    params = unpack(flat, bases, problem.layout, problem.stds)
    fixed = problem.fixed
    valid = problem.valid[problems]
    value = objective(params, fixed, problem.safe[problems], valid, fixed.rho_prior[problems])
    return value if rows is not None else value.reshape(k, g)


def log_rho_bounds(
    problem,
    x: torch.Tensor,
    b: Blocks,
    std: torch.Tensor,
    t: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lo [G], hi [G])``: log rho's profile-likelihood interval (module docstring);
    ``-inf`` / ``inf`` where it is open.

    ``problem``: the :class:`train.fit.posterior.FrameProblem` with its noise calibrated;
    ``x [G, D]`` (float64) the estimate; ``b`` the calibrated Hessian blocks there;
    ``std [G]`` log rho's Laplace std, ``t [G]`` the Student-t quantile of the level."""
    g, d = x.shape
    rho = problem.layout.shared - 1  # log rho: the last of the fit's own shared variables
    centre = problem.rho.log()
    finite = torch.isfinite(std)
    half = torch.where(finite, t * std, torch.ones_like(std))
    grid = torch.tensor(OFFSETS, dtype=x.dtype, device=x.device)  # [K]
    offsets = (grid[:, None] * half).clamp(-MAX_OFFSET, MAX_OFFSET)  # [K, G], log rho
    solver = _PinnedSolver(b, rho)
    # start on the quadratic model's path: the others' conditional optimum moves
    # by -H_oo^-1 H_o,rho per unit of rho
    z = offsets / LOG_RHO_STEP
    ds, df = solver.step(
        b.h_ss[None, :, :, rho] * z[..., None], b.h_sf[None, :, :, rho] * z[..., None, None]
    )
    shift = x[None].expand(len(grid), g, d).clone()
    shift[..., rho] += z
    along = torch.stack([problem.join(s, f) for s, f in zip(ds, df, strict=True)])
    along = torch.where(torch.isfinite(along), along, torch.zeros_like(along))
    # far from the estimate that path overshoots: start from the best point on it
    pts, best = shift, _values(problem, shift)
    for fraction in START_FRACTIONS:
        trial = shift + fraction * along
        value = _values(problem, trial)
        better = value < best
        pts = torch.where(better[..., None], trial, pts)
        best = torch.where(better, value, best)
    value, pts = _minimise(problem, pts, solver)
    value = value + 0.5 * _logdet_others(problem, x, b, pts, offsets, rho)
    lo, hi = bounds_from_profile(offsets, value, t)
    lo = torch.where(finite, (centre + lo).clamp(max=centre), torch.full_like(lo, -math.inf))
    hi = torch.where(finite, (centre + hi).clamp(min=centre), torch.full_like(hi, math.inf))
    return lo, hi


def _logdet_others(problem, x, b: Blocks, pts, offsets, rho: int) -> torch.Tensor:
    """``[K, G]``: ``log det H_oo``, the Hessian of every variable but log rho, along the
    profile, relative to the estimate: computed there and at the offset ``LOGDET_AT``
    on the far side (one Jacobian), linear in the offset between the two, constant
    beyond that point (towards the orthographic limit, where the Hessian stops
    changing) and on the near side (no extrapolation: a capture's log det changes
    fast with rho, and extrapolated it opened the near end; the Laplace interval
    holds that side)."""
    c0 = _logdet_pinned(b, rho)
    k = OFFSETS.index(LOGDET_AT)
    c1 = _logdet_pinned(problem.blocks(problem.at(pts[k])), rho)
    problem.at(x)  # the problem's point (rho, contour bins) back at the estimate
    usable = torch.isfinite(c0) & torch.isfinite(c1)  # a degenerate point: no correction
    slope = torch.where(usable, (c1 - c0) / offsets[k], torch.zeros_like(c0))
    return slope * offsets.clamp(max=0.0).maximum(offsets[k])


def _logdet_pinned(b: Blocks, rho: int) -> torch.Tensor:
    """``[G]``: log det of ``b``'s Hessian without log rho's row and column (the frames'
    blocks, then the shared block's Schur complement); NaN where singular."""
    eye = torch.eye(b.h_ff.shape[-1], dtype=b.h_ff.dtype, device=b.h_ff.device)
    h_ff = b.h_ff + JITTER * eye  # a far point can lose a direction (t with rho -> 0)
    frames = torch.linalg.slogdet(h_ff)[1].sum(1)  # empty slots hold the identity: 0
    solved = torch.linalg.solve(h_ff, b.h_sf.transpose(-1, -2))
    schur = b.h_ss - (b.h_sf @ solved).sum(1)
    keep = [i for i in range(schur.shape[-1]) if i != rho]
    sign, logdet = torch.linalg.slogdet(schur[:, keep][:, :, keep])
    out = frames + logdet
    return torch.where((sign > 0) & torch.isfinite(out), out, torch.full_like(out, math.nan))


def bounds_from_profile(
    offsets: torch.Tensor, value: torch.Tensor, t: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lo [G], hi [G])``: where a profile crosses Student's t, as offsets.

    ``offsets [K, G]`` ascending in K (log rho from the estimate), ``value [K, G]`` the
    profile objective there (non-finite: beyond reach), ``t [G]``. The interval is the
    connected run of grid points around the least value where ``sqrt(2 (value -
    least)) <= t``, each end interpolated linearly in that root between the last point
    inside and the first outside; ``-inf`` / ``inf`` where the grid ends inside."""
    k = len(offsets)
    value = torch.where(torch.isfinite(value), value, torch.full_like(value, math.inf))
    least, at = value.min(0)
    root = (2.0 * (value - least)).clamp_min(0.0).sqrt()  # [K, G]
    outside = root > t
    idx = torch.arange(k, device=value.device)[:, None]
    below = torch.where(outside & (idx < at), idx, torch.full_like(idx, -1)).amax(0)
    above = torch.where(outside & (idx > at), idx, torch.full_like(idx, k)).amin(0)
    lo = _crossing(offsets, root, t, below, below + 1)
    hi = _crossing(offsets, root, t, above, above - 1)
    lo = torch.where(below >= 0, lo, torch.full_like(lo, -math.inf))
    hi = torch.where(above < k, hi, torch.full_like(hi, math.inf))
    return lo, hi


def _minimise(
    problem, pts: torch.Tensor, solver: _PinnedSolver
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values [K, G], points [K, G, D])``: every variable but log rho re-minimised from ``pts``:
    L-BFGS whose initial inverse Hessian is the frozen, pinned Gauss-Newton one (the
    chord method, improved by the curvature pairs of its own steps)."""
    k, g, d = pts.shape

    def precondition(q: torch.Tensor) -> torch.Tensor:  # H0^-1 q, [K, G, D]
        q_s, q_f = problem.split(q.reshape(-1, d))
        ds, df = solver.step(q_s.reshape(k, g, -1), q_f.reshape(k, g, *q_f.shape[1:]))
        return -torch.stack([problem.join(a, b) for a, b in zip(ds, df, strict=True)])

    hist_s, hist_y = [], []
    grad_old = None
    value = _values(problem, pts)
    for _ in range(STEPS):
        p = pts.detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(_values(problem, p).sum(), p)
        if grad_old is not None:
            hist_y.append(grad - grad_old)
        grad_old = grad
        # the two-loop recursion (Nocedal & Wright, algorithm 7.4) around H0
        q, alphas = grad.clone(), []
        for s_i, y_i in zip(reversed(hist_s), reversed(hist_y), strict=True):
            sy = (s_i * y_i).sum(-1, keepdim=True)
            r_i = torch.where(sy > 1e-12, 1.0 / sy.clamp_min(1e-12), torch.zeros_like(sy))
            a_i = r_i * (s_i * q).sum(-1, keepdim=True)
            q = q - a_i * y_i
            alphas.append((a_i, r_i))
        r = precondition(q)
        for (s_i, y_i), (a_i, r_i) in zip(zip(hist_s, hist_y, strict=True), reversed(alphas)):
            r = r + s_i * (a_i - r_i * (y_i * r).sum(-1, keepdim=True))
        step = -r
        length = torch.ones_like(value)
        moved = torch.zeros_like(pts)
        with torch.no_grad():
            for _ in range(HALVINGS + 1):
                open_ = length > 0  # rows still looking for a lower value
                trial = pts + length[..., None] * step
                after = torch.full_like(value, math.inf)
                after[open_] = _values(problem, trial, open_)
                better = after < value
                moved = torch.where(better[..., None], trial - pts, moved)
                pts = torch.where(better[..., None], trial, pts)
                value = torch.where(better, after, value)
                length = torch.where(better, torch.zeros_like(length), length * 0.5)
                if not bool((length > 0).any()):
                    break
        hist_s.append(moved)
    return value, pts


def _crossing(offsets, root, t, out_k, in_k):
    """The offset ``[G]`` where ``root`` reaches ``t`` between grid rows ``in_k``
    (inside) and ``out_k`` (outside), linearly; indices clamped into the grid."""
    last = len(offsets) - 1
    o = out_k.clamp(0, last)[None]
    i = in_k.clamp(0, last)[None]
    r_out, r_in = root.gather(0, o)[0], root.gather(0, i)[0]
    d_out, d_in = offsets.gather(0, o)[0], offsets.gather(0, i)[0]
    frac = ((t - r_in) / (r_out - r_in)).nan_to_num(0.0).clamp(0.0, 1.0)
    return d_in + frac * (d_out - d_in)
