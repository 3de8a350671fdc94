"""Input checking for the FLAME layer: one place, one wording."""

from __future__ import annotations

import torch

from _common.checks import check_same_size, check_tensor

from .model import FlameModel

#: Width of each pose / eyelid input of ``FLAME.forward`` (coefficients: any).
INPUT_WIDTHS = {"global_pose": 3, "neck_pose": 3, "jaw_pose": 3, "eye_pose": 6, "eyelids": 2}


def layer_inputs(model: FlameModel, n_shape: int, n_expr: int) -> None:
    """Check the arguments of ``FLAME(...)``: a valid model with FLAME's 5 joints
    and non-negative coefficient counts."""
    model.validate()
    if n_shape < 0 or n_expr < 0:
        raise ValueError(f"n_shape and n_expr must be >= 0, got {n_shape}, {n_expr}")
    if model.n_joints != 5:
        raise ValueError(
            f"FLAME needs 5 joints (global, neck, jaw, eyes), the model has {model.n_joints}"
        )


def forward_inputs(
    given: dict[str, torch.Tensor | None],
    contour_rotation: torch.Tensor | None,
    *,
    n_shape: int,
    n_expr: int,
    has_eyelids: bool,
    device: torch.device,
) -> int:
    """Check the inputs of ``FLAME.forward`` and return their batch size (1 for none).

    ``given`` maps input names to tensors or None (absent). Checks, in this
    order: shapes and floating dtypes, eyelids only for models with eyelid
    blendshapes, at most ``n_shape`` / ``n_expr`` coefficients, one batch
    size, the layer's ``device``.
    """
    present = _present_inputs(given, contour_rotation)
    if "eyelids" in present and not has_eyelids:
        raise ValueError("eyelids given, but this FLAME model has no eyelid blendshapes")
    _check_coefficient_counts(present, {"shape": n_shape, "expression": n_expr})
    bsz = _batch_size(present)
    _check_device(present, device)
    return bsz


def _present_inputs(
    given: dict[str, torch.Tensor | None], contour_rotation: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """The given inputs, shape-checked; ``contour_rotation`` (checked first) last."""
    if contour_rotation is not None:
        check_tensor("contour_rotation", contour_rotation, ("B", 3, 3))
    present = {k: v for k, v in given.items() if v is not None}
    for k, v in present.items():
        check_tensor(k, v, ("B", INPUT_WIDTHS.get(k)))
    if contour_rotation is not None:
        present["contour_rotation"] = contour_rotation
    return present


def _check_coefficient_counts(present: dict[str, torch.Tensor], limits: dict[str, int]) -> None:
    for k, limit in limits.items():
        v = present.get(k)
        if v is not None and v.shape[1] > limit:
            raise ValueError(f"{k} has {v.shape[1]} coefficients, this FLAME layer holds {limit}")


def _batch_size(present: dict[str, torch.Tensor]) -> int:
    if not present:
        return 1
    return check_same_size({k: v.shape[0] for k, v in present.items()}, "the batch size")


def _check_device(present: dict[str, torch.Tensor], device: torch.device) -> None:
    for k, v in present.items():
        if v.device != device:
            raise ValueError(f"{k} is on {v.device}, the FLAME layer on {device}")
