"""``PseudoPerspectiveCamera``: the projection as a ``torch.nn.Module``."""

from __future__ import annotations

import torch
from torch import nn

from ppcam.projection import DEFAULT_MIN_W, project, to_clip


class PseudoPerspectiveCamera(nn.Module):
    """A pseudo-perspective camera for use inside networks.

    It either holds its parameters (scale S, translation (tx, ty), rho), as
    learnable ``nn.Parameter`` s when ``learnable=True`` or as buffers otherwise,
    or receives them per call (a regressor's outputs); per-call values take
    precedence over held ones. Held values are shared by the whole batch.

    Example::

        cam = ppcam.PseudoPerspectiveCamera()               # receives everything
        uv = cam(points, scale=s, trans=t, rho=r)            # [B,N,2] NDC

        cam = ppcam.PseudoPerspectiveCamera(scale=7.0, rho=4.0, learnable=True)
        uv = cam(points)                                     # optimises S, t, rho
    """

    def __init__(
        self,
        scale: float | None = None,
        trans: tuple[float, float] | None = None,
        rho: float | None = None,
        *,
        learnable: bool = False,
        backend: str = "auto",
        min_w: float = DEFAULT_MIN_W,
    ) -> None:
        super().__init__()
        self.backend = backend
        self.min_w = min_w
        for name, value in (("scale", scale), ("trans", trans), ("rho", rho)):
            if value is None:
                setattr(self, name, None)
                continue
            tensor = torch.as_tensor(value, dtype=torch.float32)
            expected = (2,) if name == "trans" else ()
            if tuple(tensor.shape) != expected:
                raise ValueError(
                    f"{name} must be {'a pair (tx, ty)' if name == 'trans' else 'a number'}, "
                    f"got shape {list(tensor.shape)}"
                )
            if learnable:
                setattr(self, name, nn.Parameter(tensor.clone()))
            else:
                self.register_buffer(name, tensor.clone())

    def _params(self, points, scale, trans, rho):
        if not isinstance(points, torch.Tensor) or points.dim() != 3:
            raise ValueError("points must be a tensor of shape [B,N,3]")
        batch = points.shape[0]
        resolved = []
        for name, given, held in (
            ("scale", scale, self.scale),
            ("trans", trans, self.trans),
            ("rho", rho, self.rho),
        ):
            if given is not None:
                resolved.append(given)
            elif held is not None:
                held = held.to(device=points.device, dtype=points.dtype)
                resolved.append(held.expand(batch, *held.shape))
            else:
                raise ValueError(f"{name} was neither given to the call nor held by the camera")
        return resolved

    def forward(
        self,
        points: torch.Tensor,
        scale: torch.Tensor | None = None,
        trans: torch.Tensor | None = None,
        rho: torch.Tensor | None = None,
        rotation: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Project camera-frame ``points [B,N,3]`` to NDC ``[B,N,2]`` (:func:`ppcam.project`)."""
        s, t, r = self._params(points, scale, trans, rho)
        return project(points, s, t, r, rotation, backend=self.backend, min_w=self.min_w)

    def to_clip(
        self,
        points: torch.Tensor,
        scale: torch.Tensor | None = None,
        trans: torch.Tensor | None = None,
        rho: torch.Tensor | None = None,
        rotation: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Clip coordinates ``[B,N,4]`` for the rasterizer; see :func:`ppcam.to_clip`."""
        s, t, r = self._params(points, scale, trans, rho)
        return to_clip(points, s, t, r, rotation)

    def extra_repr(self) -> str:
        return f"backend={self.backend!r}, min_w={self.min_w}"
