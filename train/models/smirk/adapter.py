"""SMIRK's released networks behind the project's interfaces (``arch="smirk"``).

:class:`SmirkRegressor` holds SMIRK's encoder (:class:`train.models.smirk.networks.
SmirkEncoder`, parameter names and numerics as SMIRK's, so its checkpoint loads
strictly into ``.encoder``) and turns its output into a
:class:`train.models.regressor.Prediction`, adding the paper's camera head on the
pose encoder's pooled 576-d features. :class:`SmirkRenderer` holds SMIRK's
generator and takes the project's ``(masked, rendered)`` arguments.

Conventions mapped here, and only here (docs/design.md section 6):

- SMIRK's camera ``cam = (s, tx, ty)`` is ``batch_orth_proj``: ``s * (xy + (tx, ty))``
  in the FLAME model frame, then y negated. The project's camera frame negates y
  before the translation is added (``ppcam.flame_to_camera``), so the same image
  needs ``(S, tx, ty) = (s, tx, -ty)``: :func:`camera_from_smirk`. At rho = 0 the
  two projections are then equal (a test checks it to float32 precision).
- ``pose_params`` is the FLAME global rotation (axis-angle, model frame), as ours.
- Expression, eyelids and jaw: SMIRK's layer layout and clamps are ours already
  (:class:`train.models.regressor.ExpressionEncoder` follows SMIRK).
"""

from __future__ import annotations

import torch
from torch import nn

from train.models._validate import (
    check_choice,
    check_images,
    check_positive_float,
    check_positive_int,
    renderer_inputs,
)
from train.models.regressor import (
    CAMERA_MODES,
    RHO_INITS,
    CameraOutput,
    Prediction,
    attach_camera_head,
    camera_output,
    named_param_groups,
)
from train.models.smirk.networks import SmirkEncoder, SmirkGenerator

#: residual blocks of SMIRK's released generator
SMIRK_RES_BLOCKS = 5
#: channels of the generator's first level in SMIRK's released model
SMIRK_GENERATOR_FEATURES = 32
#: the generator halves the image four times: sizes must be multiples of this
GENERATOR_MULTIPLE = 16


def camera_from_smirk(cam: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SMIRK's ``cam [B,3] = (s, tx, ty)`` as the project's ``(raw scale [B], trans [B,2])``.

    ``trans = (tx, -ty)``: SMIRK adds ``ty`` to the model-frame y and negates the
    sum, the project negates y first (docs/design.md section 2). The scale is
    unchanged (the caller applies :func:`train.models.regressor.positive_scale`,
    the identity above 0.1; SMIRK's scales are near 7).
    """
    return cam[:, 0], torch.stack([cam[:, 1], -cam[:, 2]], dim=1)


class SmirkRegressor(nn.Module):
    """Image -> :class:`Prediction` with SMIRK's three encoders (``arch="smirk"``).

    Args:
        n_shape: shape coefficients of the shape encoder (SMIRK: 300).
        n_expr: expression coefficients (SMIRK: 50); the expression layer has
            ``n_expr + 5`` outputs (expression, 2 eyelids, 3 jaw).
        camera, rho_max, rho_init: as :class:`train.models.regressor.FaceRegressor`;
            the camera head (``rho_head`` or ``perspective_head``) reads the pose
            encoder's pooled features (576).

    Input: ``[B, 3, H, W]`` RGB in [0, 1] with no normalisation (SMIRK's input;
    224 x 224 for the released weights), H, W >= 32. The state dict is
    ``encoder.*`` (SMIRK's names after its ``smirk_encoder.`` prefix) plus the
    camera head.
    """

    def __init__(
        self,
        n_shape: int = 300,
        n_expr: int = 50,
        camera: str = "pseudo",
        rho_max: float = 6.0,
        rho_init: str = "zero",
    ) -> None:
        super().__init__()
        check_choice("camera", camera, CAMERA_MODES)
        check_choice("rho_init", rho_init, RHO_INITS)
        self.n_shape = check_positive_int("n_shape", n_shape)
        self.n_expr = check_positive_int("n_expr", n_expr)
        self.rho_max = check_positive_float("rho_max", rho_max)
        self.encoder = SmirkEncoder(n_shape=n_shape, n_expr=n_expr)
        self.camera = "ortho"
        self.rho_init = rho_init
        self.set_camera(camera, rho_init)

    @property
    def pose_features(self) -> int:
        """Width of the pooled pose features the camera head reads."""
        return self.encoder.pose_encoder.pose_cam_layers[0].in_features

    def set_camera(self, camera: str, rho_init: str | None = None) -> None:
        """Switch the camera mode (SMIRK's weights are kept; the new head is fresh)."""
        like = self.encoder.pose_encoder.pose_cam_layers[0].weight
        attach_camera_head(self, camera, rho_init, self.pose_features, like)

    def config(self) -> dict:
        """The constructor arguments that rebuild this module structure."""
        return {
            "n_shape": self.n_shape,
            "n_expr": self.n_expr,
            "camera": self.camera,
            "rho_max": self.rho_max,
            "rho_init": self.rho_init,
        }

    def encode_camera(self, images: torch.Tensor) -> CameraOutput:
        """The pose encoder and the camera head: rotation, scale, trans, rho (+ f, t_z)."""
        pose = self.encoder.pose_encoder
        features = pose.features(check_images(images))
        out = pose.pose_cam_layers(features)
        raw_scale, trans = camera_from_smirk(out[:, 3:6])
        return camera_output(self, features, out[:, :3], raw_scale, trans)

    def encode_expression(
        self, images: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(expression [B, n_expr], jaw_pose [B, 3], eyelids [B, 2])`` (the cycle loss)."""
        out = self.encoder.expression_encoder(check_images(images))
        return out["expression_params"], out["jaw_params"], out["eyelid_params"]

    def forward(self, images: torch.Tensor) -> Prediction:
        cam = self.encode_camera(images)
        shape = self.encoder.shape_encoder(images)["shape_params"]
        expression, jaw_pose, eyelids = self.encode_expression(images)
        return Prediction(*cam, shape, expression, jaw_pose, eyelids)

    def param_groups(self) -> list[dict]:
        """Parameter groups named as :meth:`FaceRegressor.param_groups` does."""
        pose = self.encoder.pose_encoder
        return named_param_groups(
            pose.encoder,
            pose.pose_cam_layers,
            self,
            self.encoder.shape_encoder,
            self.encoder.expression_encoder,
        )

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())


class SmirkRenderer(nn.Module):
    """SMIRK's generator as the project's neural renderer.

    ``forward(masked [B,3,H,W], rendered [B,3,H,W]) -> image [B,3,H,W]`` in (0, 1):
    the generator sees ``cat([rendered, masked])`` (SMIRK's channel order). H and
    W must be multiples of 16. ``init_features`` is 32 in SMIRK's released model.
    The state dict is ``generator.*`` (SMIRK's names after ``smirk_generator.``).
    """

    def __init__(self, init_features: int = SMIRK_GENERATOR_FEATURES) -> None:
        super().__init__()
        self.init_features = check_positive_int("init_features", init_features)
        self.generator = SmirkGenerator(
            in_channels=6, out_channels=3, init_features=init_features, res_blocks=SMIRK_RES_BLOCKS
        )

    def forward(self, masked: torch.Tensor, rendered: torch.Tensor) -> torch.Tensor:
        renderer_inputs(masked, rendered, GENERATOR_MULTIPLE, "SMIRK's generator (4 poolings)")
        return self.generator(torch.cat([rendered, masked], dim=1))

    def extra_repr(self) -> str:
        return f"init_features={self.init_features}"
