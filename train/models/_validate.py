"""Input checking for the networks of :mod:`train.models` (the regressors' arguments and
images, :func:`train.models.masking.mask_face` and the neural renderers): one place, one
wording."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from _common.checks import check_same_device_dtype, check_same_size, check_tensor
from train.models.backbone import MIN_SIZE

#: face maskings of the neural renderer's input (train.models.masking)
MASKINGS = ("paper", "smirk")


class MaskInputs(NamedTuple):
    """The checked inputs of ``mask_face``, with its pixel sizes scaled to the image."""

    image: torch.Tensor
    face_mask: torch.Tensor
    landmarks: torch.Tensor
    keep_fraction: float
    noise: float
    dropout_rate: float
    dilate: int
    erode_radius: int
    patch: int


def scaled_pixels(value: float, factor: float, name: str) -> int:
    """A size in pixels at the reference resolution, scaled by ``factor`` (rounded, at
    least 1 where non-zero)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite number >= 0 (pixels), got {value!r}")
    if value == 0:
        return 0
    return max(1, int(round(value * factor)))


def check_fraction(name: str, value: object, *, upper_open: bool = False) -> float:
    """A number in [0, 1] (or [0, 1) with ``upper_open``), as a float."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and 0.0 <= value and (value < 1.0 if upper_open else value <= 1.0)
    if not ok:
        bound = "[0, 1)" if upper_open else "[0, 1]"
        raise ValueError(f"{name} must be a number in {bound}, got {value!r}")
    return float(value)


def mask_face_inputs(
    image: object,
    face_mask: object,
    landmarks: object,
    *,
    mode: object,
    keep_fraction: object,
    dilate_px: object,
    erode_px: object,
    nose_radius: object,
    noise: object,
    dropout_patch: object,
    dropout_rate: object,
    reference_size: object,
    generator: object,
) -> MaskInputs:
    """Validate the arguments of ``mask_face`` (shapes, dtypes, devices, ranges; see its
    docstring) and scale its pixel sizes from ``reference_size`` to the image.

    Raises ``ValueError`` or ``TypeError`` naming the argument.
    """
    image = check_tensor("image", image, ("B", 3, "H", "W"))
    batch, _, height, width = image.shape
    face_mask = check_tensor("face_mask", face_mask, ("B", 1, height, width), floating=False)
    if face_mask.dtype != torch.bool and not face_mask.is_floating_point():
        raise TypeError(f"face_mask must be bool or floating point, got dtype {face_mask.dtype}")
    landmarks = check_tensor("landmarks", landmarks, ("B", 68, 2))
    check_same_size(
        {"image": batch, "face_mask": face_mask.shape[0], "landmarks": landmarks.shape[0]},
        "batch size",
    )
    for name, t in (("face_mask", face_mask), ("landmarks", landmarks)):
        if t.device != image.device:
            raise ValueError(f"{name} must be on the image's device {image.device}, got {t.device}")
    if not bool(torch.isfinite(landmarks).all()):
        raise ValueError("landmarks contain NaN or inf values")
    if not isinstance(mode, str) or mode not in MASKINGS:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MASKINGS))}; got {mode!r}")
    keep_fraction = check_fraction("keep_fraction", keep_fraction)
    noise = check_fraction("noise", noise, upper_open=True)
    dropout_rate = check_fraction("dropout_rate", dropout_rate, upper_open=True)
    if not (isinstance(nose_radius, (int, float)) and not isinstance(nose_radius, bool)) or not (
        nose_radius >= 0 and math.isfinite(nose_radius)
    ):
        raise ValueError(f"nose_radius must be a finite number >= 0, got {nose_radius!r}")
    if isinstance(dropout_patch, bool) or not isinstance(dropout_patch, int) or dropout_patch < 1:
        raise ValueError(f"dropout_patch must be a positive int (pixels), got {dropout_patch!r}")
    if reference_size is None:
        factor = 1.0
    elif isinstance(reference_size, bool) or not isinstance(reference_size, int):
        raise ValueError(f"reference_size must be a positive int or None, got {reference_size!r}")
    elif reference_size < 1:
        raise ValueError(f"reference_size must be a positive int or None, got {reference_size!r}")
    else:
        factor = min(height, width) / reference_size
    dilate = scaled_pixels(dilate_px, factor, "dilate_px")
    erode_radius = scaled_pixels(erode_px, factor, "erode_px")
    patch = scaled_pixels(dropout_patch, factor, "dropout_patch") | 1
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator)}")
    return MaskInputs(
        image, face_mask, landmarks, keep_fraction, noise, dropout_rate, dilate, erode_radius, patch
    )


def renderer_inputs(masked: object, rendered: object, multiple: int, why: str) -> None:
    """Check a neural renderer's ``(masked [B,3,H,W], rendered [B,3,H,W])``: same batch,
    size, device and dtype, H and W positive multiples of ``multiple`` (``why`` names the
    network's downsampling in the error)."""
    check_tensor("masked", masked, ("B", 3, "H", "W"))
    check_tensor("rendered", rendered, ("B", 3, "H", "W"))
    check_same_size({"masked": masked.shape[0], "rendered": rendered.shape[0]}, "batch size")
    if masked.shape[-2:] != rendered.shape[-2:]:
        raise ValueError(
            f"masked and rendered must have the same image size, got "
            f"{list(masked.shape[-2:])} and {list(rendered.shape[-2:])}"
        )
    check_same_device_dtype({"masked": masked, "rendered": rendered})
    h, w = masked.shape[-2:]
    if h % multiple or w % multiple or h == 0 or w == 0:
        raise ValueError(
            f"image height and width must be positive multiples of {multiple} ({why}), got {h}x{w}"
        )


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else ``ValueError`` naming ``name``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_positive_int(name: str, value: object) -> int:
    """``value`` if it is an int >= 1 (not a bool), else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def check_positive_float(name: str, value: object) -> float:
    """``value`` as a float if it is a finite number > 0, else ``ValueError``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return float(value)


def check_images(images: object) -> torch.Tensor:
    """Validate a batch of images: ``[B, 3, H, W]`` floating point, H, W >= 32."""
    images = check_tensor("images", images, ("B", 3, "H", "W"))
    h, w = images.shape[-2:]
    if h < MIN_SIZE or w < MIN_SIZE:
        raise ValueError(f"images must be at least {MIN_SIZE}x{MIN_SIZE} pixels, got {h}x{w}")
    if images.shape[0] == 0:
        raise ValueError("images must hold at least one image, got batch size 0")
    return images
