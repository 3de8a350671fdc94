"""The SMIRK-style face regressor with the paper's rho camera head.

Three encoders, each with its own backbone (SMIRK's layout, docs/design.md section 6):

- :class:`PoseCameraEncoder`: global head rotation, camera scale and translation,
  plus the camera head selected by ``camera``:
  ``"ortho"`` (rho fixed to 0, SMIRK), ``"pseudo"`` (the paper: a rho head,
  ``rho = sigmoid(linear(features)) * rho_max``), or ``"perspective"`` (the
  paper's section 6.2 baseline: focal length f and distance t_z regressed
  directly, converted exactly to ``(S, rho) = (f / t_z, 1 / t_z)``,
  docs/design.md section 3, ``ppcam.pinhole_to_pseudo``).
- :class:`ShapeEncoder`: FLAME shape coefficients.
- :class:`ExpressionEncoder`: expression coefficients, jaw pose and eyelids.

Whatever the mode, :class:`Prediction` carries ``(scale, trans, rho)`` so
downstream code always projects with ``ppcam.project(points, scale, trans, rho,
rotation)`` (rho = 0 is exactly the orthographic camera).

Units: FLAME in metres (model units); scale S in NDC per model unit (S = 7 makes
a FLAME head fill the NDC square); trans in model units (added to the rotated
point before scaling, docs/design.md section 3, paper eq. 6); rho in 1 / model unit;
t_z in model units; f in NDC per unit of x/z.

The module structure is a pure function of the constructor arguments
``(n_shape, n_expr, camera, rho_max, rho_init, width)``, so a state dict saved
from a model (also after :meth:`FaceRegressor.set_camera`) loads into a fresh
``FaceRegressor(**same_args)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from train.models._validate import (
    check_choice,
    check_images,
    check_positive_float,
    check_positive_int,
)
from train.models.backbone import MobileNetBackbone

CAMERA_MODES = ("ortho", "pseudo", "perspective")
RHO_INITS = ("paper", "zero")

SCALE_INIT = 7.0
"""Initial camera scale S (SMIRK's bias: FLAME in metres fills NDC at this scale)."""
SCALE_FLOOR = 0.1
"""Below this the raw scale output maps smoothly to positive values (:func:`positive_scale`)."""
ZERO_INIT_RHO_FRACTION = 0.02
"""``rho_init="zero"``: the rho head's sigmoid starts at this value, rho = 0.02 * rho_max
(0.12 for rho_max = 6): near 0, yet off the sigmoid's flat tail so that rho can move."""
PAPER_INIT_VALUE = 0.01
"""``rho_init="paper"``: every weight and the bias of the rho head (the paper's text)."""
PERSPECTIVE_TZ_INIT = 5.0
"""Perspective head: initial camera distance t_z (model units), nearly orthographic."""
POSE_WEIGHT_STD = 1e-3
"""Std of the normal init of the pose and expression linear layers' weights (near zero)."""
JAW_SIDE_LIMIT = 0.2
"""Jaw pose axes 1 and 2 (radians) are clamped to +- this (SMIRK)."""


class Prediction(NamedTuple):
    """Output of :class:`FaceRegressor` (B = batch size; all float tensors).

    - ``global_pose [B, 3]``: head rotation, axis-angle (radians), FLAME model frame.
    - ``scale [B]``: camera scale S (NDC per model unit), > 0.
    - ``trans [B, 2]``: (tx, ty), model units, added before scaling (docs/design.md
      section 3, paper eq. 6).
    - ``rho [B]``: pseudo-perspective parameter (1 / model unit); zeros for "ortho".
    - ``focal [B] | None``: pinhole focal length f ("perspective" mode only).
    - ``tz [B] | None``: camera-to-origin distance t_z ("perspective" mode only);
      then ``scale == focal / tz`` and ``rho == 1 / tz`` exactly.
    - ``shape [B, n_shape]``, ``expression [B, n_expr]``: FLAME coefficients.
    - ``jaw_pose [B, 3]``: axis-angle; axis 0 (opening) >= 0, axes 1, 2 in [-0.2, 0.2].
    - ``eyelids [B, 2]``: in [0, 1].
    """

    global_pose: torch.Tensor
    scale: torch.Tensor
    trans: torch.Tensor
    rho: torch.Tensor
    focal: torch.Tensor | None
    tz: torch.Tensor | None
    shape: torch.Tensor
    expression: torch.Tensor
    jaw_pose: torch.Tensor
    eyelids: torch.Tensor


def positive_scale(raw: torch.Tensor, floor: float = SCALE_FLOOR) -> torch.Tensor:
    """The camera scale from the raw linear output: identity above ``floor``.

    Below ``floor`` it is ``floor**2 / (2 floor - raw)``: positive for every
    finite input (no underflow), continuous with a continuous first derivative
    at ``floor``, and with a gradient that never vanishes (a plain clamp would
    stop learning once the scale fell under the floor).
    """
    soft = floor * floor / (2.0 * floor - torch.clamp(raw, max=floor))
    return torch.where(raw >= floor, raw, soft)


def _linear(in_features: int, out_features: int, weight_std: float) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    with torch.no_grad():
        if weight_std > 0:
            layer.weight.normal_(0.0, weight_std)
        else:
            layer.weight.zero_()
        layer.bias.zero_()
    return layer


def make_rho_head(in_features: int, rho_init: str) -> nn.Linear:
    """The rho head ``Linear(in_features, 1)``; ``rho = sigmoid(head(features)) * rho_max``.

    ``"paper"``: weights and bias all 0.01 (the paper's literal text; with
    non-negative-ish features the sigmoid starts near 0.5, rho near rho_max / 2).
    ``"zero"``: zero weights and bias ``logit(ZERO_INIT_RHO_FRACTION)``, so rho starts
    at 0.02 rho_max (what the text intends: start from the orthographic model).
    """
    check_choice("rho_init", rho_init, RHO_INITS)
    head = nn.Linear(in_features, 1)
    with torch.no_grad():
        if rho_init == "paper":
            head.weight.fill_(PAPER_INIT_VALUE)
            head.bias.fill_(PAPER_INIT_VALUE)
        else:
            head.weight.zero_()
            p = ZERO_INIT_RHO_FRACTION
            head.bias.fill_(math.log(p / (1.0 - p)))
    return head


def make_perspective_head(in_features: int) -> nn.Linear:
    """``Linear(in_features, 2)`` -> (log f, log t_z), zero weights.

    Biases start at ``log(7 * 5)`` and ``log(5)``: t_z = 5 model units and
    f = 7 t_z, so the equivalent camera starts at S = 7, rho = 0.2 (nearly
    orthographic, the same image as the orthographic model's initial scale).
    """
    head = _linear(in_features, 2, 0.0)
    with torch.no_grad():
        head.bias[0] = math.log(SCALE_INIT * PERSPECTIVE_TZ_INIT)
        head.bias[1] = math.log(PERSPECTIVE_TZ_INIT)
    return head


class CameraOutput(NamedTuple):
    """Output of :class:`PoseCameraEncoder`; fields as in :class:`Prediction`."""

    global_pose: torch.Tensor
    scale: torch.Tensor
    trans: torch.Tensor
    rho: torch.Tensor
    focal: torch.Tensor | None
    tz: torch.Tensor | None


def attach_camera_head(
    owner: nn.Module, camera: str, rho_init: str | None, in_features: int, like: torch.Tensor
) -> None:
    """Give ``owner`` the camera head of mode ``camera`` on ``in_features`` features.

    ``owner`` holds ``camera`` and ``rho_init`` attributes and, depending on the
    mode, a ``rho_head`` (:func:`make_rho_head`) or a ``perspective_head``
    (:func:`make_perspective_head`) sub-module (the names the state dict uses).
    The new mode's head is created freshly initialized (``rho_init``, default:
    the current one), on the device and dtype of ``like``; the old mode's head is
    removed. Calling it with the current mode changes no weight, except
    "pseudo" with a different ``rho_init``, which re-initializes the rho head.
    """
    check_choice("camera", camera, CAMERA_MODES)
    rho_init = owner.rho_init if rho_init is None else rho_init
    check_choice("rho_init", rho_init, RHO_INITS)
    if camera == owner.camera and (camera != "pseudo" or rho_init == owner.rho_init):
        owner.rho_init = rho_init  # only the "pseudo" head depends on it
        return
    for name in ("rho_head", "perspective_head"):
        if hasattr(owner, name):
            delattr(owner, name)
    if camera == "pseudo":
        owner.rho_head = make_rho_head(in_features, rho_init).to(like.device, like.dtype)
    elif camera == "perspective":
        owner.perspective_head = make_perspective_head(in_features).to(like.device, like.dtype)
    owner.camera = camera
    owner.rho_init = rho_init


def camera_output(
    owner: nn.Module,
    features: torch.Tensor,
    global_pose: torch.Tensor,
    raw_scale: torch.Tensor,
    trans: torch.Tensor,
) -> CameraOutput:
    """The camera of ``owner``'s mode (see :func:`attach_camera_head`) from the pose
    features ``[B, C]`` and the pose layer's outputs (``global_pose [B,3]``, the raw
    scale ``[B]``, ``trans [B,2]``, already in the project's conventions)."""
    focal = tz = None
    if owner.camera == "pseudo":
        rho = torch.sigmoid(owner.rho_head(features)[:, 0]) * owner.rho_max
        scale = positive_scale(raw_scale)
    elif owner.camera == "perspective":
        log_f, log_tz = owner.perspective_head(features).unbind(dim=1)
        focal, tz = torch.exp(log_f), torch.exp(log_tz)
        scale, rho = torch.exp(log_f - log_tz), torch.exp(-log_tz)
    else:
        scale = positive_scale(raw_scale)
        rho = torch.zeros_like(raw_scale)
    return CameraOutput(global_pose, scale, trans, rho, focal, tz)


def named_param_groups(
    pose_backbone: nn.Module,
    pose_head: nn.Module,
    camera_owner: nn.Module,
    shape: nn.Module,
    expression: nn.Module,
) -> list[dict]:
    """The regressor's optimizer groups: ``pose_backbone``, ``pose_head``,
    ``camera_head`` (the ``rho_head`` or ``perspective_head`` of ``camera_owner``;
    absent in "ortho" mode), ``shape``, ``expression``."""
    groups = [
        {"name": "pose_backbone", "params": list(pose_backbone.parameters())},
        {"name": "pose_head", "params": list(pose_head.parameters())},
    ]
    for name in ("rho_head", "perspective_head"):
        if hasattr(camera_owner, name):
            head = getattr(camera_owner, name)
            groups.append({"name": "camera_head", "params": list(head.parameters())})
    groups.append({"name": "shape", "params": list(shape.parameters())})
    groups.append({"name": "expression", "params": list(expression.parameters())})
    return groups


class PoseCameraEncoder(nn.Module):
    """Backbone -> global rotation (3), scale, tx, ty, and the camera head.

    The 6-output linear layer starts with weights ~ N(0, 1e-3) and zero biases
    except the scale's, 7.0 (SMIRK). The scale output goes through
    :func:`positive_scale` (identity above 0.1, smooth positive floor below).

    Camera heads (sub-module names, which the state dict uses):

    - ``"ortho"``: none; rho is zeros.
    - ``"pseudo"``: ``rho_head``, :func:`make_rho_head`, on the same features;
      ``rho = sigmoid(rho_head(features)) * rho_max``, in ``(0, rho_max)``.
    - ``"perspective"``: ``perspective_head``, :func:`make_perspective_head`:
      ``f = exp(a)``, ``t_z = exp(b)``, then ``scale = f / t_z``,
      ``rho = 1 / t_z`` (exactly ``ppcam.pinhole_to_pseudo``, computed as
      ``exp(a - b)`` and ``exp(-b)``). The 6-output layer keeps its scale
      output (so that switching modes keeps every weight), but in this mode
      that output is not used.
    """

    def __init__(
        self,
        width: float = 1.0,
        camera: str = "pseudo",
        rho_max: float = 6.0,
        rho_init: str = "zero",
    ) -> None:
        super().__init__()
        check_choice("camera", camera, CAMERA_MODES)
        check_choice("rho_init", rho_init, RHO_INITS)
        self.rho_max = check_positive_float("rho_max", rho_max)
        self.backbone = MobileNetBackbone(width)
        self.pose_head = _linear(self.backbone.out_features, 6, POSE_WEIGHT_STD)
        with torch.no_grad():
            self.pose_head.bias[3] = SCALE_INIT
        self.camera = "ortho"
        self.rho_init = rho_init
        self.set_camera(camera, rho_init)

    def set_camera(self, camera: str, rho_init: str | None = None) -> None:
        """Switch the camera mode, keeping the backbone and the 6-output layer
        (:func:`attach_camera_head`)."""
        attach_camera_head(
            self, camera, rho_init, self.backbone.out_features, self.pose_head.weight
        )

    def forward(self, images: torch.Tensor) -> CameraOutput:
        features = self.backbone(check_images(images))
        out = self.pose_head(features)
        return camera_output(self, features, out[:, :3], out[:, 3], out[:, 4:6])

    def extra_repr(self) -> str:
        return f"camera={self.camera!r}, rho_max={self.rho_max}, rho_init={self.rho_init!r}"


class ShapeEncoder(nn.Module):
    """Backbone -> ``n_shape`` FLAME shape coefficients; the linear layer starts at zero."""

    def __init__(self, width: float = 1.0, n_shape: int = 100) -> None:
        super().__init__()
        self.n_shape = check_positive_int("n_shape", n_shape)
        self.backbone = MobileNetBackbone(width)
        self.head = _linear(self.backbone.out_features, n_shape, 0.0)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(check_images(images)))


class ExpressionEncoder(nn.Module):
    """Backbone -> expression (n_expr), eyelids (2), jaw pose (3).

    The linear layer starts near zero (weights ~ N(0, 1e-3), zero bias: not
    exactly zero, so that the ReLU of the jaw opening and the eyelid clamp pass
    gradients for part of the batch from the first step). Eyelids are clamped
    to [0, 1]; jaw axis 0 (opening) goes through a ReLU, axes 1 and 2 are
    clamped to +-0.2 rad (SMIRK).
    """

    def __init__(self, width: float = 1.0, n_expr: int = 50) -> None:
        super().__init__()
        self.n_expr = check_positive_int("n_expr", n_expr)
        self.backbone = MobileNetBackbone(width)
        self.head = _linear(self.backbone.out_features, n_expr + 5, POSE_WEIGHT_STD)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``images -> (expression [B, n_expr], jaw_pose [B, 3], eyelids [B, 2])``."""
        out = self.head(self.backbone(check_images(images)))
        n = self.n_expr
        expression, eyelids, jaw = out[:, :n], out[:, n : n + 2], out[:, n + 2 :]
        eyelids = eyelids.clamp(0.0, 1.0)
        jaw_pose = torch.cat(
            [torch.relu(jaw[:, :1]), jaw[:, 1:].clamp(-JAW_SIDE_LIMIT, JAW_SIDE_LIMIT)], dim=1
        )
        return expression, jaw_pose, eyelids


class FaceRegressor(nn.Module):
    """Image -> :class:`Prediction`, the three SMIRK encoders with separate backbones.

    Args:
        n_shape: FLAME shape coefficients (SMIRK: 300; default 100).
        n_expr: FLAME expression coefficients (SMIRK: 50).
        camera: one of ``CAMERA_MODES`` ("ortho", "pseudo", "perspective").
        rho_max: upper bound of rho in "pseudo" mode (1 / model unit).
        rho_init: one of ``RHO_INITS`` ("paper", "zero"), the rho head's init.
        width: channel multiplier of the three backbones.

    ``forward(images)`` takes ``[B, 3, H, W]`` floating point images in [0, 1]
    (the range is not checked: that would synchronize a GPU), H, W >= 32.
    """

    def __init__(
        self,
        n_shape: int = 100,
        n_expr: int = 50,
        camera: str = "pseudo",
        rho_max: float = 6.0,
        rho_init: str = "zero",
        width: float = 1.0,
    ) -> None:
        super().__init__()
        check_choice("camera", camera, CAMERA_MODES)
        check_choice("rho_init", rho_init, RHO_INITS)
        self.pose = PoseCameraEncoder(width, camera, rho_max, rho_init)
        self.shape = ShapeEncoder(width, n_shape)
        self.expression = ExpressionEncoder(width, n_expr)
        self.n_shape, self.n_expr, self.width = n_shape, n_expr, float(width)

    @property
    def camera(self) -> str:
        """The current camera mode."""
        return self.pose.camera

    @property
    def rho_init(self) -> str:
        """The init the current camera head was created with."""
        return self.pose.rho_init

    @property
    def rho_max(self) -> float:
        return self.pose.rho_max

    def config(self) -> dict:
        """The constructor arguments that rebuild this module structure (for checkpoints)."""
        return {
            "n_shape": self.n_shape,
            "n_expr": self.n_expr,
            "camera": self.camera,
            "rho_max": self.rho_max,
            "rho_init": self.rho_init,
            "width": self.width,
        }

    def forward(self, images: torch.Tensor) -> Prediction:
        check_images(images)
        cam = self.pose(images)
        shape = self.shape(images)
        expression, jaw_pose, eyelids = self.expression(images)
        return Prediction(
            cam.global_pose,
            cam.scale,
            cam.trans,
            cam.rho,
            cam.focal,
            cam.tz,
            shape,
            expression,
            jaw_pose,
            eyelids,
        )

    def encode_expression(
        self, images: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Expression encoder alone: ``(expression [B, n_expr], jaw_pose [B, 3], eyelids [B, 2])``.

        Used by the expression cycle loss (re-encode a rendered, edited face).
        """
        return self.expression(images)

    def set_camera(self, camera: str, rho_init: str | None = None) -> None:
        """Switch the camera mode (e.g. fine-tune an "ortho"-pretrained model as "pseudo").

        Adds the new mode's head with its init (:meth:`PoseCameraEncoder.set_camera`)
        and keeps every other weight. Afterwards the structure equals that of
        ``FaceRegressor(**self.config())``.
        """
        self.pose.set_camera(camera, rho_init)

    def param_groups(self) -> list[dict]:
        """Parameters split by part, as optimizer parameter groups with a ``"name"`` key.

        Names: ``"pose_backbone"``, ``"pose_head"`` (the 6-output layer),
        ``"camera_head"`` (rho or perspective head; absent in "ortho" mode),
        ``"shape"``, ``"expression"``. Every parameter is in exactly one group;
        ``torch.optim.Adam(model.param_groups(), lr=...)`` works, and a group's
        ``lr`` can be set per name.
        """
        return named_param_groups(
            self.pose.backbone, self.pose.pose_head, self.pose, self.shape, self.expression
        )

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config().items())
