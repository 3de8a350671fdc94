"""Turning rendered tensors into 8-bit images and PNG files."""

from __future__ import annotations

import os

import numpy as np
import torch

from _common.atomic import atomic_path
from _common.checks import check_finite


def to_uint8_image(image: torch.Tensor) -> np.ndarray:
    """Convert an image with values in [0, 1] to a uint8 numpy array (values clipped).

    Accepts ``[H,W]`` (grey), ``[H,W,C]`` with C in {1, 3, 4}, or ``[1,H,W,C]`` (a batch of
    one). Returns ``[H,W]`` or ``[H,W,C]`` uint8 on the CPU; rounding is to nearest.
    """
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError(
                f"image has batch size {image.shape[0]}; pass one image ([H,W,C]) at a time"
            )
        image = image[0]
    if image.dim() not in (2, 3) or (image.dim() == 3 and image.shape[-1] not in (1, 3, 4)):
        raise ValueError(
            f"image must have shape [H,W] or [H,W,C] with C in 1, 3, 4; got {list(image.shape)}"
        )
    if image.numel() == 0:
        raise ValueError(f"image is empty: shape {list(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"image must be a floating-point tensor in [0, 1], got {image.dtype}")
    check_finite("image", image)
    arr = (image.detach().float().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    arr = arr.cpu().numpy()
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr


def save_image(image: torch.Tensor, path: str | os.PathLike) -> None:
    """Save an image with values in [0, 1] (shapes as :func:`to_uint8_image`) as a PNG."""
    from PIL import Image

    arr = to_uint8_image(image)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(arr)).save(tmp, format="PNG")
