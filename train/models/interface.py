"""The interfaces the training system relies on, written down: what every regressor
(``arch="small"``: :class:`~train.models.regressor.FaceRegressor`; ``arch="smirk"``:
:class:`~train.models.smirk.adapter.SmirkRegressor`) and every neural renderer
(:class:`~train.models.unet.NeuralRenderer`, :class:`~train.models.smirk.adapter.SmirkRenderer`)
provides. Both pairs are ``torch.nn.Module`` subclasses; these protocols name the part of
their surface that :mod:`train.engine` and :mod:`train.fit` use, so a third
architecture knows what to implement (``tests/train/test_model.py`` checks both)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from train.models.regressor import Prediction


@runtime_checkable
class Regressor(Protocol):
    """A face regressor: images in, FLAME parameters and the camera out."""

    #: FLAME shape and expression coefficients predicted
    n_shape: int
    n_expr: int

    @property
    def camera(self) -> str:
        """The camera mode: one of ``train.models.regressor.CAMERA_MODES``."""
        ...

    def __call__(self, images: torch.Tensor) -> Prediction:
        """``images [B,3,H,W]`` float in [0, 1] (H, W >= 32) -> :class:`Prediction`."""
        ...

    def encode_expression(
        self, images: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The expression encoder alone: ``(expression [B, n_expr], jaw_pose [B, 3],
        eyelids [B, 2])`` (the expression cycle loss re-encodes rendered faces)."""
        ...

    def set_camera(self, camera: str, rho_init: str | None = None) -> None:
        """Switch the camera mode, keeping every other weight (a new camera head)."""
        ...

    def config(self) -> dict:
        """The constructor arguments that rebuild this module structure."""
        ...

    def param_groups(self) -> list[dict]:
        """Every parameter in exactly one optimizer group, each with a ``"name"``:
        ``pose_backbone``, ``pose_head``, ``camera_head`` (absent for "ortho"),
        ``shape``, ``expression``."""
        ...


@runtime_checkable
class Renderer(Protocol):
    """A neural renderer: rebuilds the input image from its masked version and the
    shaded render of the predicted mesh."""

    def __call__(self, masked: torch.Tensor, rendered: torch.Tensor) -> torch.Tensor:
        """``masked [B,3,H,W]``, ``rendered [B,3,H,W]`` -> image ``[B,3,H,W]`` in (0, 1)."""
        ...
