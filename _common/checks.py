"""Validation of tensors that come from outside, with errors that say what was
expected. Shared by ppcam, minirast, flame and train so every public function words
its errors the same way."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def check_tensor(
    name: str,
    value: object,
    shape: Sequence[int | str | None],
    *,
    floating: bool = True,
    integer: bool = False,
) -> torch.Tensor:
    """Check that ``value`` is a tensor of the given shape pattern and kind.

    ``shape`` entries are ints (that exact size), strings (a named size, e.g.
    ``"B"``, any value; its name is used in the message) or None (any size).
    Returns the tensor unchanged.
    """
    expected = "[" + ",".join("*" if s is None else str(s) for s in shape) + "]"
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape {expected}, got {type(value).__name__}"
        )
    if value.dim() != len(shape) or any(
        isinstance(s, int) and value.shape[i] != s for i, s in enumerate(shape)
    ):
        raise ValueError(f"{name} must have shape {expected}, got {list(value.shape)}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if integer and (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool):
        raise TypeError(
            f"{name} must be an integer tensor (int32 or int64), got dtype {value.dtype}"
        )
    return value


def check_same_size(sizes: dict[str, int], what: str) -> int:
    """Check that the named sizes agree (e.g. the batch size of every input)."""
    values = set(sizes.values())
    if len(values) != 1:
        listed = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise ValueError(f"inputs disagree on {what}: {listed}")
    return values.pop()


def check_same_device_dtype(tensors: dict[str, torch.Tensor], *, dtype: bool = True) -> None:
    """Check that all tensors live on one device and (optionally) share one dtype."""
    devices = {str(t.device) for t in tensors.values()}
    if len(devices) != 1:
        listed = ", ".join(f"{k} on {t.device}" for k, t in tensors.items())
        raise ValueError(f"all inputs must be on the same device, got {listed}")
    if dtype:
        dtypes = {t.dtype for t in tensors.values()}
        if len(dtypes) != 1:
            listed = ", ".join(f"{k}: {t.dtype}" for k, t in tensors.items())
            raise TypeError(f"all inputs must have the same dtype, got {listed}")


def check_finite(name: str, value: torch.Tensor) -> None:
    """Raise ``ValueError`` when ``value`` holds NaN or inf (syncs on GPU)."""
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} contains NaN or inf values")
