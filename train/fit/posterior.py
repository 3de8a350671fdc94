"""A fit's posterior around its optimum (:mod:`train.fit.laplace` on the fit's
problem, :mod:`train.fit.problem`): rho's interval, and the gradient that turns a
capture's joint MAP into the MAP of its shared variables with the frames' integrated
out.

The interval is in log rho, the variable the fit optimises (rho is positive, and the
landmarks move with ``rho z``, the perspective divide ``1 + rho z``). The Laplace
approximation there gives rho's std with every other variable integrated out and the
noise scale calibrated, and the symmetric interval ``log rho ± t std``; at a distance
the posterior is lopsided (steep towards the camera, a plateau away from it) and that
interval missed far faces, so it is lengthened where the posterior along log rho
(:mod:`train.fit.profile`: the profile objective plus ``1/2 log det`` of the others'
Hessian) says so. The distance interval is the same interval mapped by ``1 / rho``.

With dense points or irises (:mod:`train.fit.dense`) their whitened residuals join the
68's in every frame (and replace them when the 68 are not fitted), and the dense term's
per-problem variables (``Layout.extra``: the iris diameter) join the shared block, after
shape and log rho: they are integrated out of rho's interval like the shape, and
``marginal`` optimises them with shape and rho. The noise scale is then one factor for
all the points of a problem.
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import torch
from scipy import stats

from flame import lbs
from train.fit import laplace, profile
from train.fit.problem import (
    LOG_RHO_STEP,
    POSE_STEP,
    Fixed,
    Layout,
    Stds,
    objective,
    project,
    unpack,
)

#: the intervals' probability
LEVEL = 0.95
#: an interval wider than this factor (hi / lo) says rho is not observable
UNOBSERVABLE_RATIO = 3.0
#: step halvings tried in a Gauss-Newton round of :func:`refine`
HALVINGS = 6
#: the most a Gauss-Newton round of :func:`refine` may change log rho (a factor 2):
#: where the landmarks cannot tell rho (a far face) the objective is flat in it, and
#: an unbounded step sent rho to 1e-37, whose zero curvature then made the next
#: round's solve singular
MAX_LOG_RHO_MOVE = math.log(2.0)


class Posterior(NamedTuple):
    """Per problem ``[G]``: ``log_rho``, its Laplace std ``log_rho_std`` (every other
    variable integrated out, the noise scale calibrated), the landmark noise scale
    relative to the fit's sigma ``noise_scale``, its degrees of freedom ``dof``, and
    ``log_rho_bounds [G, 2]``: log rho's ``LEVEL`` interval, the union of the Laplace
    one and the one along the posterior (:mod:`train.fit.profile`; ``-inf`` / ``inf``
    where open)."""

    log_rho: torch.Tensor
    log_rho_std: torch.Tensor
    noise_scale: torch.Tensor
    dof: torch.Tensor
    log_rho_bounds: torch.Tensor

    def rho_interval(self) -> torch.Tensor:
        """``[G, 2]``: rho's ``LEVEL`` interval (0 and inf where open)."""
        return self.log_rho_bounds.exp()

    def laplace_interval(self, level: float = LEVEL) -> torch.Tensor:
        """``[G, 2]``: the symmetric Laplace interval in log rho (Student's t), which
        ``rho_interval`` holds."""
        half = student_t(self.dof, level) * self.log_rho_std
        return torch.stack([self.log_rho - half, self.log_rho + half], -1).exp()


def student_t(dof: torch.Tensor, level: float = LEVEL) -> torch.Tensor:
    """``[G]``: Student's t quantile of a two-sided ``level`` with ``dof [G]``."""
    return torch.as_tensor(stats.t.ppf(0.5 + level / 2, dof.cpu().numpy()), dtype=dof.dtype).to(
        dof.device
    )


class FrameProblem:
    """The fit's problem in float64, one frame per row: what :mod:`train.fit.laplace`
    differentiates. ``bases`` the fit's base values, ``safe``/``valid [G, F]`` the
    frames' images and slots in use; :meth:`at` sets the point (and freezes the
    contour bins there).

    Laplace's shared block (``n_shared`` variables) is the fit's shared variables then
    its per-problem ``extra`` ones; a frame's row is that block then the frame's own
    (:meth:`at`, :meth:`split`, :meth:`join` convert from and to the fit's ``x``)."""

    def __init__(self, bases, fixed: Fixed, safe, valid, layout: Layout, stds: Stds):
        f64 = torch.float64
        self.fixed = fixed._replace(
            model=copy.deepcopy(fixed.model).to(f64),
            target=fixed.target.to(f64),
            sigma=fixed.sigma.to(f64),
            rho_prior=fixed.rho_prior.to(f64),
            dense=None if fixed.dense is None else fixed.dense.to_dtype(f64),
        )
        self.has_68 = fixed.dense is None or fixed.dense.has_68
        self.bases = {k: v.to(f64) for k, v in bases.items()}
        self.stds = Stds(*(s.to(f64) if torch.is_tensor(s) else s for s in stds))
        self.safe, self.valid, self.layout = safe, valid, layout
        self.one = layout._replace(frames=1)
        self.n_shared = layout.shared + layout.extra
        g, f = safe.shape
        self.which = torch.arange(g * f, device=safe.device)
        self.bins = None

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(shared [G, S], frames [G, F, L])`` of the fit's ``x [G, D]`` (S: ``n_shared``;
        the ``extra`` variables last in ``shared``)."""
        s, e = self.layout.shared, self.layout.extra
        end = x.shape[1] - e
        shared = torch.cat([x[:, :s], x[:, end:]], 1)
        return shared, x[:, s:end].reshape(x.shape[0], self.safe.shape[1], self.layout.local)

    def join(self, shared: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """The fit's ``x [G, D]`` from ``shared [G, S]`` and ``frames [G, F, L]``."""
        s = self.layout.shared
        return torch.cat([shared[:, :s], frames.reshape(len(frames), -1), shared[:, s:]], 1)

    def at(self, x: torch.Tensor) -> torch.Tensor:
        """Set the point ``x [G, D]``; returns the frames' variables ``[G*F, S+L]``."""
        g, f = self.safe.shape
        s, k = self.n_shared, self.layout.local
        x = x.to(torch.float64)
        params = unpack(x, self.bases, self.layout, self.stds)
        self.rho = params["rho"]
        rot = lbs.rodrigues(params["global_pose"].reshape(g * f, 3))
        self.bins = self.fixed.model.bins(rot)
        shared, local = self.split(x)
        return torch.cat([shared[:, None].expand(g, f, s), local], -1).reshape(g * f, s + k)

    def scale_noise(self, factor: torch.Tensor) -> None:
        """Multiply each problem's landmark sigma by ``factor [G]``."""
        per_image = torch.ones_like(self.fixed.sigma[:, 0])
        per_image[self.safe[self.valid]] = factor[:, None].expand_as(self.safe)[self.valid]
        dense = self.fixed.dense
        self.fixed = self.fixed._replace(
            sigma=self.fixed.sigma * per_image[:, None],
            dense=None if dense is None else dense.scaled(per_image),
        )

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """The objective ``[G]`` at ``x [G, D]`` (its own contour bins)."""
        params = unpack(x, self.bases, self.layout, self.stds)
        return objective(params, self.fixed, self.safe, self.valid, self.fixed.rho_prior)

    def residuals(self, x: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        """Whitened residuals ``[n, M]`` of frames ``which [n]`` at ``x [n, S+L]``: the
        68's (136, when fitted), then the dense term's."""
        f = self.safe.shape[1]
        g, slot = which // f, which % f
        bases = {"log_rho": self.bases["log_rho"][g]}
        for key in ("pose", "log_scale", "trans"):
            bases[key] = self.bases[key][g, slot][:, None]
        s = self.n_shared
        x = self.join(x[:, :s], x[:, s:])  # the one-frame layout of unpack
        params = unpack(x, bases, self.one, self.stds)
        image = self.safe[g, slot][:, None]
        out = []
        if self.has_68:
            uv = project(params, self.fixed, image, self.bins[which][:, None])
            out.append((uv - self.fixed.target[image]) / self.fixed.sigma[image][..., None])
        if self.fixed.dense is not None:
            out.append(self.fixed.dense.residuals(params, image))
        return torch.cat([r.reshape(len(x), -1) for r in out], -1)

    def priors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The priors' Hessian diagonals in the fit's variables: ``[G, S]`` and ``[L]``."""
        lay, prior = self.layout, self.fixed.prior
        g = self.safe.shape[0]
        dev = self.safe.device
        shared = torch.ones(g, self.n_shared, dtype=torch.float64, device=dev)
        if lay.fit_rho:
            has = ~torch.isnan(self.fixed.rho_prior)
            curv = (self.rho * LOG_RHO_STEP / prior.rho_prior_std) ** 2  # Gauss-Newton
            shared[:, lay.shared - 1] = torch.where(has, curv, torch.zeros_like(curv))
        if lay.extra:
            extra = self.fixed.dense.prior_curvature()
            shared[:, lay.shared :] = torch.tensor(extra, dtype=torch.float64, device=dev)
        local = torch.ones(lay.local, dtype=torch.float64, device=dev)
        n_e = lay.n_expr
        local[n_e + 5 : n_e + 8] = (POSE_STEP / prior.pose_std) ** 2
        local[n_e + 8 :] = 0.0  # scale and translation: flat priors
        return shared, local

    def blocks(self, frames: torch.Tensor) -> laplace.Blocks:
        """The Hessian blocks at the point whose frames' variables are ``frames``."""
        g, f = self.safe.shape
        r, jac = laplace.jacobian(self.residuals, frames, self.which)
        shared, local = self.priors()
        r, jac = r.reshape(g, f, -1), jac.reshape(g, f, *jac.shape[1:])
        return laplace.blocks(r, jac, self.valid, shared, local)


def refine(
    problem: FrameProblem, x: torch.Tensor, marginal: bool, rounds: int
) -> tuple[torch.Tensor, Posterior]:
    """``(x [G, D], posterior)``: the fit's optimum ``x`` refined, and rho's posterior.

    First the landmark noise scale is estimated from the residuals at ``x``
    (:func:`train.fit.laplace.residual_scale`) and the problem's sigma multiplied by
    it; then ``rounds`` Gauss-Newton steps (block-arrow solves, halved until the
    objective falls) on the objective, plus, with ``marginal``, the Laplace
    correction ``1/2 sum_f log det H_ff`` that integrates the frames' variables out
    of the shared ones (linearised at each step); finally the posterior there, its
    interval the union of the Laplace one and :func:`train.fit.profile.log_rho_bounds`."""
    s = problem.n_shared
    g, f = problem.safe.shape
    x = x.to(torch.float64)
    b = problem.blocks(problem.at(x))
    shared, local = problem.priors()
    s2, _ = laplace.residual_scale(b, shared, local)
    problem.scale_noise(s2.sqrt())
    noise = s2.sqrt()
    correction = torch.zeros(g, s, dtype=x.dtype, device=x.device)
    for _ in range(rounds):
        frames = problem.at(x)
        b = problem.blocks(frames)
        xr = x.detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(problem.value(xr).sum(), xr)
        if marginal:
            correction = laplace.logdet_gradient(
                problem.residuals, frames, problem.which, problem.valid, b, s
            )
        grad_shared, grad_frames = problem.split(grad)
        ds, df = laplace.newton_step(b, grad_shared + correction, grad_frames)
        step = problem.join(ds, df)
        # log rho: the last of shape and rho (an iris diameter, when fitted, comes after)
        move = (ds[:, problem.layout.shared - 1] * LOG_RHO_STEP).abs()
        step = step * (MAX_LOG_RHO_MOVE / move.clamp_min(1e-300)).clamp(max=1.0)[:, None]
        with torch.no_grad():
            before = problem.value(x) + (correction * problem.split(x)[0]).sum(-1)
            length = torch.ones(g, 1, dtype=x.dtype, device=x.device)
            for _ in range(HALVINGS):
                trial = x + length * step
                after = problem.value(trial) + (correction * problem.split(trial)[0]).sum(-1)
                worse = ~(after <= before)
                if not bool(worse.any()):
                    break
                length = torch.where(worse[:, None], length * 0.5, length)
            x = torch.where(worse[:, None], x, trial)
    b = problem.blocks(problem.at(x))
    shared, local = problem.priors()
    s2, dof = laplace.residual_scale(b, shared, local)
    calibrated = laplace.blocks_scaled(b, 1.0 / s2, shared, local)
    rho = problem.layout.shared - 1  # log rho: the last of the fit's own shared variables
    var = laplace.shared_covariance(calibrated)[:, rho, rho]
    # a degenerate problem (no face: every landmark on one point) has no curvature in
    # rho: its interval is [0, inf], never NaN
    std = torch.where(var > 0, var.sqrt() * LOG_RHO_STEP, torch.full_like(var, math.inf))
    uncalibrated = problem.fixed
    problem.scale_noise(s2.sqrt())  # the profile's objective: calibrated as the blocks
    lo, hi = profile.log_rho_bounds(problem, x, calibrated, std, student_t(dof))
    problem.fixed = uncalibrated
    # never shorter than the Laplace interval: the profile only lengthens a side
    half = student_t(dof) * std
    log_rho = problem.rho.log()
    bounds = torch.stack([torch.minimum(lo, log_rho - half), torch.maximum(hi, log_rho + half)], -1)
    return x, Posterior(log_rho, std, noise * s2.sqrt(), dof, bounds)


def distance_text(distance: float, lo: float, hi: float, evidence: str = "these landmarks") -> str:
    """``"0.62 m [0.48, 0.91]"`` (metres: FLAME's unit), or, when the interval
    spans more than ``UNOBSERVABLE_RATIO``, that the distance is not observable from
    ``evidence`` (what was fitted: the photometric fit says ``"this photo"``)."""
    if not (math.isfinite(distance) and lo > 0 and hi <= UNOBSERVABLE_RATIO * lo):
        return f"distance not observable from {evidence} ({_metres(distance, lo, hi)})"
    return _metres(distance, lo, hi)


def _metres(distance: float, lo: float, hi: float) -> str:
    def fmt(v: float) -> str:
        # beyond 1 km a camera distance says only "far": no 24-digit numbers
        if not math.isfinite(v) or v > 1000:
            return "inf" if not math.isfinite(v) else "> 1000"
        return f"{v:.2f}" if v < 10 else f"{v:.0f}"

    return f"{fmt(distance)} m [{fmt(lo)}, {fmt(hi)}]"
