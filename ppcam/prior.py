"""Priors on rho: the paper's head-mounted-camera range (eq. 10-11) and its L2 loss."""

from __future__ import annotations

import dataclasses
import math

import torch


@dataclasses.dataclass(frozen=True)
class RhoPrior:
    """Focal-length and rho ranges for a capture geometry (paper eq. 10-11).

    Attributes:
        focal: ``(lo, hi)`` effective focal length of eq. 10 (cm of sensor per
            cm of distance, as the paper computes it).
        rho: ``(lo, hi)`` rho of eq. 11, ``1/f - 1/v_z`` with the paper's mixed
            units (f as above, v_z in cm), as printed in the paper.
        rho_exact: ``(lo, hi)`` rho from the exact relation ``rho = 1 / t_z``
            with t_z in metres (FLAME's model unit): the inverse distances.
        distance_cm: the ``(near, far)`` camera distances used.
    """

    focal: tuple[float, float]
    rho: tuple[float, float]
    rho_exact: tuple[float, float]
    distance_cm: tuple[float, float]

    @property
    def center(self) -> float:
        """Middle of the paper's rho range: a single prior value."""
        return 0.5 * (self.rho[0] + self.rho[1])


def hmc_rho_prior(
    sensor_width_cm: float = 0.455,
    face_width_cm: float = 15.0,
    distance_cm: tuple[float, float] = (15.0, 30.0),
    *,
    focal_digits: int | None = 3,
) -> RhoPrior:
    """The rho range of a head-mounted camera from its geometry (paper eq. 10-11).

    ``f = sensor_width * v_z / (2 * face_width)`` (the face fills half of the
    image width) and ``rho = 1/f - 1/v_z``. The paper truncates f to three
    decimals before eq. 11 (its 4.34 comes from f = 0.227, not 0.2275);
    ``focal_digits=3`` reproduces its printed 0.227-0.455 and 2.16-4.34,
    ``focal_digits=None`` uses the exact f (giving 4.33).
    """
    for name, v in (("sensor_width_cm", sensor_width_cm), ("face_width_cm", face_width_cm)):
        if not v > 0:
            raise ValueError(f"{name} must be > 0, got {v}")
    near, far = (float(d) for d in distance_cm)
    if not 0 < near <= far:
        raise ValueError(f"distance_cm must be (near, far) with 0 < near <= far, got {distance_cm}")

    def focal(d: float) -> float:
        f = sensor_width_cm * d / (2.0 * face_width_cm)
        if focal_digits is None:
            return f
        unit = 10.0**focal_digits
        # Truncate; the tiny offset keeps 0.455 * 1000 = 454.99.. from dropping a digit.
        return math.floor(f * unit + 1e-9) / unit

    f_near, f_far = focal(near), focal(far)
    rho_near, rho_far = 1.0 / f_near - 1.0 / near, 1.0 / f_far - 1.0 / far
    return RhoPrior(
        focal=(f_near, f_far),
        rho=(min(rho_near, rho_far), max(rho_near, rho_far)),
        rho_exact=(100.0 / far, 100.0 / near),
        distance_cm=(near, far),
    )


#: The paper's empirical priors (sec. 4.5): 4.0 for head-mounted footage, 0 elsewhere.
PAPER_RHO_PRIOR = {"hmc": 4.0, "studio": 0.0, "wild": 0.0}


def rho_prior_loss(
    rho: torch.Tensor, rho_prior: torch.Tensor | float, weight: float = 0.1
) -> torch.Tensor:
    """``weight * mean((rho - rho_prior)^2)`` over the batch (the paper's L_rho).

    Args:
        rho: ``[B]`` or ``[B,1]`` predicted rho.
        rho_prior: a number, or a ``[B]`` tensor of per-sample priors (a batch
            mixing datasets uses each sample's own prior). NaN entries mark
            samples without a prior; they are left out of the mean.
        weight: lambda_p, 0.1 in the paper.

    Returns a scalar tensor (0 when no sample has a prior).
    """
    if not isinstance(rho, torch.Tensor) or not rho.is_floating_point():
        raise TypeError("rho must be a floating-point tensor of shape [B]")
    if rho.dim() == 2 and rho.shape[1] == 1:
        rho = rho[:, 0]
    if rho.dim() != 1:
        raise ValueError(f"rho must have shape [B] or [B,1], got {list(rho.shape)}")
    prior = torch.as_tensor(rho_prior, dtype=rho.dtype, device=rho.device)
    if prior.dim() == 2 and prior.shape[1] == 1:
        prior = prior[:, 0]
    if prior.dim() > 1 or (prior.dim() == 1 and prior.shape[0] != rho.shape[0]):
        raise ValueError(
            f"rho_prior must be a number or shape [B] = [{rho.shape[0]}], got {list(prior.shape)}"
        )
    prior = prior.expand_as(rho)
    has = ~torch.isnan(prior)
    diff = torch.where(has, rho - torch.nan_to_num(prior), torch.zeros_like(rho))
    return weight * (diff * diff).sum() / has.sum().clamp(min=1)
