"""The one axis flip between the FLAME model frame and the camera frame.

Model frame (FLAME): x to the subject's left, y up, z out of the face.
Camera frame (OpenCV): x right in the image, y down, z forward (away from the
camera). ``(x, y, z) -> (x, -y, -z)`` maps one to the other; it is its own
inverse. No other function of the project flips axes (docs/design.md section 2).
"""

from __future__ import annotations

import torch

_FLIP = (1.0, -1.0, -1.0)


def flame_to_camera(points: torch.Tensor) -> torch.Tensor:
    """Map points ``[..., 3]`` from the FLAME model frame to the camera frame.

    Differentiable; keeps dtype and device. Applying it twice returns the input.
    """
    if not isinstance(points, torch.Tensor) or points.dim() < 1 or points.shape[-1] != 3:
        shape = list(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
        raise ValueError(f"points must be a tensor of shape [..., 3], got {shape}")
    flip = torch.tensor(_FLIP, dtype=points.dtype, device=points.device)
    return points * flip
