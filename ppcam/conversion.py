"""Exact conversion between the pseudo-perspective and the pinhole camera.

For rho > 0, ``S p_x / (1 + rho p_z) = (S/rho) p_x / (p_z + 1/rho)``: the
pseudo-perspective camera is exactly a pinhole camera with focal length
``f = S / rho`` and distance ``t_z = 1 / rho`` to the model origin
(docs/design.md section 3). rho = 0 is the orthographic limit, a camera infinitely
far away with an infinite focal length: it has no finite pinhole equivalent,
and these functions raise rather than return inf or NaN.
"""

from __future__ import annotations

import torch

Number = float | int


def _as_tensor(name: str, value: torch.Tensor | Number) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a tensor or a number, got {type(value).__name__}")
    return torch.tensor(float(value), dtype=torch.float64)


def _require_positive(name: str, value: torch.Tensor, why: str) -> None:
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} contains NaN or inf values")
    if not bool((value > 0).all()):
        raise ValueError(f"{name} must be > 0 everywhere ({why}); got min {float(value.min())}")


def pseudo_to_pinhole(
    scale: torch.Tensor | Number, rho: torch.Tensor | Number
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S, rho) -> (f, t_z) = (S / rho, 1 / rho)``, elementwise, broadcasting.

    Units: S in NDC per model unit, rho in 1 / model unit; f in NDC per unit of
    ``x/z``, t_z in model units. Raises ``ValueError`` where rho <= 0: rho = 0
    is the orthographic camera at infinite distance (use
    :func:`ppcam.ortho_project`), rho < 0 would put the camera behind the head.
    Differentiable.
    """
    scale, rho = _as_tensor("scale", scale), _as_tensor("rho", rho)
    _require_positive(
        "rho", rho, "rho = 0 is an orthographic camera at infinite distance with no finite pinhole"
    )
    return scale / rho, 1.0 / rho


def pinhole_to_pseudo(
    focal: torch.Tensor | Number, tz: torch.Tensor | Number
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(f, t_z) -> (S, rho) = (f / t_z, 1 / t_z)``, the inverse of :func:`pseudo_to_pinhole`.

    Raises ``ValueError`` where ``t_z <= 0`` (model origin at or behind the
    camera). Differentiable.
    """
    focal, tz = _as_tensor("focal", focal), _as_tensor("tz", tz)
    _require_positive("tz", tz, "the model origin must be in front of the camera")
    return focal / tz, 1.0 / tz


def equivalent_distance(rho: torch.Tensor | Number) -> torch.Tensor:
    """Camera-to-origin distance ``1 / rho`` in model units (metres for FLAME)."""
    return pseudo_to_pinhole(1.0, rho)[1]
