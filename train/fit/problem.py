"""The fit's problem: its variables, priors and objective (the negative log posterior
of :mod:`train.fit.fitting`'s docstring), shared by the fit and its posterior.

A problem (an image, or a capture) holds its shared variables (shape, log rho), then
each frame slot's own (expression, jaw, eyelids, pose, log S, t), then the dense term's
per-problem variables (``Layout.extra``: the iris diameter, :mod:`train.fit.dense`), in
normalised units: a unit change of a variable moves the objective about equally for all
of them.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch

from train.data.synthetic import EXPRESSION_DECAY, JAW_NOISE_FACTOR, SHAPE_STD
from train.fit.dense import DenseTerm
from train.fit.landmark_model import LandmarkModel
from train.render.head import project_landmarks
from train.units import JAW, REFERENCE_PIXELS, ndc_per_pixel

#: normalised-variable steps: a unit change of the optimiser's variable moves the
#: quantity by this much (model units, radians, log units)
TRANS_STEP, POSE_STEP, LOG_SCALE_STEP, LOG_RHO_STEP = 0.01, 0.1, 0.05, 0.3


@dataclasses.dataclass(frozen=True)
class FitPrior:
    """The fit's priors and noise model (see the module docstring); units: FLAME
    coefficients, radians, 1 / model unit, pixels at 224 px."""

    shape_std: float = SHAPE_STD
    expression_std: float = 1.2
    expression_decay: float = EXPRESSION_DECAY
    jaw_std: tuple[float, float, float] = (0.2, 0.05, 0.05)
    eyelid_std: float = 0.5
    pose_std: float = 1.0
    rho_prior_std: float = 1.0
    landmark_sigma_px: float = 2.0
    jaw_noise_factor: float = JAW_NOISE_FACTOR

    def sigma(self) -> torch.Tensor:
        """Per-landmark noise std ``[68]`` in NDC."""
        sigma = torch.full((68,), self.landmark_sigma_px * ndc_per_pixel(REFERENCE_PIXELS))
        sigma[JAW] *= self.jaw_noise_factor
        return sigma

    def expression_stds(self, n: int) -> torch.Tensor:
        return self.expression_std * torch.exp(-torch.arange(n) / self.expression_decay)


class Layout(NamedTuple):
    """Where a problem's variables sit in the optimiser's vector."""

    n_shape: int
    n_expr: int
    fit_rho: bool
    frames: int  # frame slots per problem (the largest group)
    extra: int = 0  # per-problem variables after the frames' (train.fit.dense)

    @property
    def shared(self) -> int:
        return self.n_shape + int(self.fit_rho)

    @property
    def local(self) -> int:
        return self.n_expr + 11  # expression, jaw 3, eyelids 2, pose 3, log S, t 2


class Stds(NamedTuple):
    """Per-variable scales of the normalised variables."""

    shape: torch.Tensor  # [n_shape]
    expression: torch.Tensor  # [n_expr]
    jaw: torch.Tensor  # [3]
    eyelids: float

    @classmethod
    def of(cls, prior: FitPrior, layout: Layout, dev) -> Stds:
        return cls(
            torch.full((layout.n_shape,), prior.shape_std, device=dev),
            prior.expression_stds(layout.n_expr).to(dev),
            torch.tensor(prior.jaw_std, device=dev),
            prior.eyelid_std,
        )


class Fixed(NamedTuple):
    """What the objective reads besides the variables."""

    model: LandmarkModel
    target: torch.Tensor  # [B, 68, 2]
    sigma: torch.Tensor  # [B, 68]
    rho_prior: torch.Tensor  # [G], NaN: none
    prior: FitPrior
    dense: DenseTerm | None = None  # the dense points' and irises' term, if any


def unpack(x: torch.Tensor, bases: dict, layout: Layout, stds: Stds) -> dict:
    """The model quantities of the variables ``x [P, D]`` (per problem, per frame;
    ``"extra" [P, layout.extra]`` the dense term's variables)."""
    p = x.shape[0]
    n_s = layout.n_shape
    shape = x[:, :n_s] * stds.shape
    if layout.fit_rho:
        rho = torch.exp(bases["log_rho"] + x[:, n_s] * LOG_RHO_STEP)
    else:
        rho = torch.zeros(p, device=x.device)
    end = x.shape[1] - layout.extra
    local = x[:, layout.shared : end].reshape(p, layout.frames, layout.local)
    n_e = layout.n_expr
    return {
        "shape": shape,
        "rho": rho,
        "z_shape": x[:, :n_s],
        "z_expression": local[..., :n_e],
        "z_jaw": local[..., n_e : n_e + 3],
        "expression": local[..., :n_e] * stds.expression,
        "jaw_pose": local[..., n_e : n_e + 3] * stds.jaw,
        "z_eyelids": local[..., n_e + 3 : n_e + 5],
        "eyelids": local[..., n_e + 3 : n_e + 5] * stds.eyelids,
        "global_pose": bases["pose"] + local[..., n_e + 5 : n_e + 8] * POSE_STEP,
        "scale": torch.exp(bases["log_scale"] + local[..., n_e + 8] * LOG_SCALE_STEP),
        "trans": bases["trans"] + local[..., n_e + 9 : n_e + 11] * TRANS_STEP,
        "extra": x[:, end:],
    }


def project(
    params: dict, fixed: Fixed, safe: torch.Tensor, bins: torch.Tensor | None = None
) -> torch.Tensor:
    """Projected landmarks ``[P, F, 68, 2]`` of every problem's frames (``bins [P, F]``:
    fixed contour bins, default from the poses)."""
    p, f = safe.shape
    flat = {k: params[k].reshape(p * f, -1) for k in ("expression", "jaw_pose", "global_pose")}
    shape = params["shape"][:, None].expand(p, f, -1).reshape(p * f, -1)
    lmk = fixed.model(
        shape,
        flat["expression"],
        flat["global_pose"],
        flat["jaw_pose"],
        params["eyelids"].reshape(p * f, 2),
        None if bins is None else bins.reshape(p * f),
    )
    rho = params["rho"][:, None].expand(p, f).reshape(-1)
    uv = project_landmarks(lmk, params["scale"].reshape(-1), params["trans"].reshape(p * f, 2), rho)
    return uv.reshape(p, f, 68, 2)


def objective(params: dict, fixed: Fixed, safe, valid, rho_prior) -> torch.Tensor:
    """The negative log posterior ``[P]`` (module docstring)."""
    uv = project(params, fixed, safe)
    data = (((uv - fixed.target[safe]) / fixed.sigma[safe][..., None]) ** 2).sum((-1, -2))
    local = params["z_expression"].square().sum(-1) + params["z_jaw"].square().sum(-1)
    local = local + params["z_eyelids"].square().sum(-1)
    local = local + (params["global_pose"] / fixed.prior.pose_std).square().sum(-1)
    total = 0.5 * ((data + local) * valid).sum(1) + 0.5 * params["z_shape"].square().sum(-1)
    if fixed.dense is not None:
        total = total + fixed.dense.objective(params, safe, valid)
    has = ~torch.isnan(rho_prior)
    rho_term = ((params["rho"] - torch.nan_to_num(rho_prior)) / fixed.prior.rho_prior_std) ** 2
    return total + 0.5 * torch.where(has, rho_term, torch.zeros_like(rho_term))
