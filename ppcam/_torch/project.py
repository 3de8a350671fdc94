"""Torch reference of the pseudo-perspective camera (docs/design.md section 3).

Plain differentiable torch: any device, any floating dtype, higher-order
gradients. It is the CPU path, the reference the Triton kernels are tested
against, and what ``backend="torch"`` runs. Inputs are assumed validated (see
:mod:`ppcam._validate`); shapes are documented on :func:`ppcam.project`.
"""

from __future__ import annotations

import torch


def rigid_transform(
    points: torch.Tensor, trans: torch.Tensor, rotation: torch.Tensor | None
) -> torch.Tensor:
    """``p = R q + t`` for points ``[B,N,3]``, trans ``[B,2]`` (z untouched) or ``[B,3]``."""
    p = points if rotation is None else points @ rotation.transpose(-1, -2)
    if trans.shape[-1] == 2:
        trans = torch.cat([trans, trans.new_zeros(trans.shape[0], 1)], dim=-1)
    return p + trans[:, None, :]


def project_reference(
    points: torch.Tensor,
    scale: torch.Tensor,
    trans: torch.Tensor,
    rho: torch.Tensor,
    rotation: torch.Tensor | None,
    min_w: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``u = S p_x / w``, ``v = S p_y / w`` with ``w = max(1 + rho p_z, min_w)``.

    Returns ``(uv [B,N,2], valid [B,N] bool)`` where ``valid`` is ``w > min_w``.
    Where w is clamped, no gradient flows through w (to rho or p_z).
    """
    p = rigid_transform(points, trans, rotation)
    w = 1.0 + rho[:, None] * p[..., 2]
    valid = w > min_w
    w_eff = w.clamp(min=min_w)
    uv = scale[:, None, None] * p[..., :2] / w_eff[..., None]
    return uv, valid


def to_clip_reference(
    points: torch.Tensor,
    scale: torch.Tensor,
    trans: torch.Tensor,
    rho: torch.Tensor,
    rotation: torch.Tensor | None,
) -> torch.Tensor:
    """Homogeneous clip coordinates ``(S p_x, S p_y, p_z, 1 + rho p_z)``, ``[B,N,4]``."""
    p = rigid_transform(points, trans, rotation)
    w = 1.0 + rho[:, None] * p[..., 2]
    return torch.cat([scale[:, None, None] * p[..., :2], p[..., 2:], w[..., None]], dim=-1)
