"""Input checking for the camera functions: one place, one wording."""

from __future__ import annotations

import numbers

import torch

from _common.checks import check_finite, check_same_device_dtype, check_same_size, check_tensor


def per_batch(name: str, value: object, batch: int, like: torch.Tensor) -> torch.Tensor:
    """A per-batch scalar parameter as a ``[B]`` tensor.

    Accepts a tensor of shape ``[B]`` or ``[B,1]``, or a Python number (used for
    every batch element, created on ``like``'s device and dtype).
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return torch.full((batch,), float(value), dtype=like.dtype, device=like.device)
    if isinstance(value, torch.Tensor) and value.dim() == 2 and value.shape[1] == 1:
        value = value[:, 0]
    check_tensor(name, value, ["B"])
    return value


def camera_inputs(
    points: object,
    scale: object,
    trans: object,
    rho: object | None,
    rotation: object | None,
    *,
    trans_dim: int = 2,
    scale_name: str = "scale",
    trans_name: str = "trans",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Validate ``points [B,N,3]``, ``scale [B]``, ``trans [B,trans_dim]``, ``rho [B]``
    (or None), ``rotation [B,3,3]`` (or None): shapes, floating dtypes, one device,
    one dtype, one batch size. Returns them (numbers expanded to ``[B]`` tensors)."""
    check_tensor("points", points, ["B", "N", 3])
    batch = points.shape[0]
    scale = per_batch(scale_name, scale, batch, points)
    check_tensor(trans_name, trans, ["B", trans_dim])
    tensors = {"points": points, scale_name: scale, trans_name: trans}
    sizes = {"points": batch, scale_name: scale.shape[0], trans_name: trans.shape[0]}
    if rho is not None:
        rho = per_batch("rho", rho, batch, points)
        tensors["rho"], sizes["rho"] = rho, rho.shape[0]
    if rotation is not None:
        check_tensor("rotation", rotation, ["B", 3, 3])
        tensors["rotation"], sizes["rotation"] = rotation, rotation.shape[0]
    check_same_size(sizes, "the batch size B")
    check_same_device_dtype(tensors)
    return points, scale, trans, rho, rotation


def check_min_w(value: object, name: str = "min_w") -> float:
    """A clamp bound such as ``min_w`` must be a positive finite number."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a positive float, got {type(value).__name__}")
    value = float(value)
    if not (0.0 < value < float("inf")):
        raise ValueError(f"{name} must be a positive finite float, got {value}")
    return value


def project_inputs(
    points: object,
    scale: object,
    trans: object,
    rho: object,
    rotation: object | None,
    min_w: object,
    strict: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None, float]:
    """Validate the arguments of :func:`ppcam.project`: :func:`camera_inputs`, a
    positive finite ``min_w`` and, with ``strict``, finite tensors. Returns
    ``(points, scale, trans, rho, rotation, min_w)``."""
    points, scale, trans, rho, rotation = camera_inputs(points, scale, trans, rho, rotation)
    min_w = check_min_w(min_w)
    if strict:
        for name, t in (("points", points), ("scale", scale), ("trans", trans), ("rho", rho)):
            check_finite(name, t)
        if rotation is not None:
            check_finite("rotation", rotation)
    return points, scale, trans, rho, rotation, min_w
