"""SMIRK's encoder and generator, rebuilt in plain torch so SMIRK's checkpoints load.

Architecture from SMIRK (github.com/georgeretsi/smirk, ``src/smirk_encoder.py`` and
``src/smirk_generator.py``, MIT licence). The module trees, and so the state-dict
keys, are SMIRK's; the backbones are :class:`~train.models.smirk.mobilenetv3.MobileNetV3Minimal`
in place of timm's models, with the same names.

Encoders take RGB images ``[B,3,H,W]`` (float, SMIRK feeds [0, 1] at 224x224; any
H, W >= 32 works) and return dicts of ``[B,k]`` tensors in the input's dtype:

========================  ======  ==================================================
key                       k       range
========================  ======  ==================================================
``pose_params``           3       any (FLAME global rotation, axis-angle)
``cam``                   3       any (scale, tx, ty; the scale starts at 7)
``shape_params``          n_shape any
``expression_params``     n_expr  any
``eyelid_params``         2       [0, 1]
``jaw_params``            3       axis 0 >= 0 (opening), axes 1, 2 in [-0.2, 0.2]
========================  ======  ==================================================
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

from _common.checks import check_tensor
from train.models.smirk.mobilenetv3 import MobileNetV3Minimal


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def _pooled(encoder: MobileNetV3Minimal, images: torch.Tensor) -> torch.Tensor:
    """The backbone's last feature map, averaged over space: ``[B, C]``."""
    return F.adaptive_avg_pool2d(encoder(images), 1).flatten(1)


class PoseEncoder(nn.Module):
    """MobileNetV3-small -> Linear(576, 6): ``pose_params`` [B,3] and ``cam`` [B,3].

    Starts near the identity pose and a camera of scale 7, no translation.
    """

    def __init__(self) -> None:
        super().__init__()
        self.encoder = MobileNetV3Minimal("small")
        self.pose_cam_layers = nn.Sequential(nn.Linear(self.encoder.out_channels, 6))
        with torch.no_grad():
            last = self.pose_cam_layers[-1]
            last.weight.mul_(0.001)
            last.bias.mul_(0.001)
            last.weight[3] = 0.0
            last.bias[3] = 7.0

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``images [B,3,H,W] -> [B,576]``, the pooled last feature map."""
        return _pooled(self.encoder, images)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.pose_cam_layers(self.features(images))
        return {"pose_params": out[:, :3], "cam": out[:, 3:]}


class ShapeEncoder(nn.Module):
    """MobileNetV3-large -> Linear(960, n_shape): ``shape_params`` [B,n_shape], starting at 0."""

    def __init__(self, n_shape: int = 300) -> None:
        super().__init__()
        self.n_shape = _check_count("n_shape", n_shape)
        self.encoder = MobileNetV3Minimal("large")
        self.shape_layers = nn.Sequential(nn.Linear(self.encoder.out_channels, n_shape))
        nn.init.zeros_(self.shape_layers[-1].weight)
        nn.init.zeros_(self.shape_layers[-1].bias)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``images [B,3,H,W] -> [B,960]``, the pooled last feature map."""
        return _pooled(self.encoder, images)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"shape_params": self.shape_layers(self.features(images))}


class ExpressionEncoder(nn.Module):
    """MobileNetV3-large -> Linear(960, n_expr + 5): expression, eyelids and jaw.

    Outputs ``expression_params`` [B,n_expr], ``eyelid_params`` [B,2] clamped to
    [0, 1] and ``jaw_params`` [B,3]: ReLU of the opening, the other two axes
    clamped to [-0.2, 0.2]. The linear layer starts at 0.1 x torch's default init.
    """

    def __init__(self, n_expr: int = 50) -> None:
        super().__init__()
        self.n_expr = _check_count("n_expr", n_expr)
        self.encoder = MobileNetV3Minimal("large")
        self.expression_layers = nn.Sequential(nn.Linear(self.encoder.out_channels, n_expr + 5))
        with torch.no_grad():
            self.expression_layers[-1].weight.mul_(0.1)
            self.expression_layers[-1].bias.mul_(0.1)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``images [B,3,H,W] -> [B,960]``, the pooled last feature map."""
        return _pooled(self.encoder, images)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.expression_layers(self.features(images))
        n = self.n_expr
        jaw = torch.cat([F.relu(out[:, n + 2 : n + 3]), out[:, n + 3 : n + 5].clamp(-0.2, 0.2)], 1)
        return {
            "expression_params": out[:, :n],
            "eyelid_params": out[:, n : n + 2].clamp(0.0, 1.0),
            "jaw_params": jaw,
        }


class SmirkEncoder(nn.Module):
    """The three encoders on the same images; ``forward`` merges their dicts
    (keys in the module docstring)."""

    def __init__(self, n_shape: int = 300, n_expr: int = 50) -> None:
        super().__init__()
        self.pose_encoder = PoseEncoder()
        self.shape_encoder = ShapeEncoder(n_shape=n_shape)
        self.expression_encoder = ExpressionEncoder(n_expr=n_expr)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            **self.pose_encoder(images),
            **self.shape_encoder(images),
            **self.expression_encoder(images),
        }


def _double_conv(in_channels: int, out_channels: int, name: str) -> nn.Sequential:
    """(3x3 conv, BatchNorm, ReLU) twice, with SMIRK's child names (``{name}conv1``...)."""
    layers: list[tuple[str, nn.Module]] = []
    for i, channels in ((1, in_channels), (2, out_channels)):
        layers += [
            (f"{name}conv{i}", nn.Conv2d(channels, out_channels, 3, padding=1, bias=False)),
            (f"{name}norm{i}", nn.BatchNorm2d(out_channels)),
            (f"{name}relu{i}", nn.ReLU(inplace=True)),
        ]
    return nn.Sequential(OrderedDict(layers))


class ResnetBlock(nn.Module):
    """``x + conv_block(x)``; conv_block is (reflect pad 1, 3x3 conv, BN, ReLU,
    reflect pad 1, 3x3 conv, BN), the convolutions without bias."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class SmirkGenerator(nn.Module):
    """SMIRK's image generator: a 4-level UNet with ResNet blocks at the bottleneck.

    ``forward(x [B,in_channels,H,W] float) -> [B,out_channels,H,W]`` in (0, 1)
    (sigmoid). H and W must be positive multiples of 16. In SMIRK, ``x`` is the
    masked image and the rendered geometry concatenated (6 channels, [0, 1]).

    Level ``i`` (1..4) has ``init_features * 2**(i-1)`` channels, the bottleneck
    ``init_features * 16``; down by 2x2 max pooling, up by 2x2 stride-2 transposed
    convolutions and a double conv on the concatenated skip. The defaults
    (6, 3, 32, 5) are SMIRK's released configuration: 31,367,171 parameters.
    """

    def __init__(
        self,
        in_channels: int = 6,
        out_channels: int = 3,
        init_features: int = 32,
        res_blocks: int = 5,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("init_features", init_features),
        ):
            _check_count(name, value)
        if isinstance(res_blocks, bool) or not isinstance(res_blocks, int) or res_blocks < 0:
            raise ValueError(f"res_blocks must be an int >= 0, got {res_blocks!r}")
        self.in_channels = in_channels
        f = init_features
        self.encoder1 = _double_conv(in_channels, f, "enc1")
        self.pool1 = nn.MaxPool2d(2, 2)
        self.encoder2 = _double_conv(f, f * 2, "enc2")
        self.pool2 = nn.MaxPool2d(2, 2)
        self.encoder3 = _double_conv(f * 2, f * 4, "enc3")
        self.pool3 = nn.MaxPool2d(2, 2)
        self.encoder4 = _double_conv(f * 4, f * 8, "enc4")
        self.pool4 = nn.MaxPool2d(2, 2)
        self.bottleneck = _double_conv(f * 8, f * 16, "bottleneck")
        self.resnet_blocks = nn.ModuleList(ResnetBlock(f * 16) for _ in range(res_blocks))
        self.upconv4 = nn.ConvTranspose2d(f * 16, f * 8, 2, stride=2)
        self.decoder4 = _double_conv(f * 16, f * 8, "dec4")
        self.upconv3 = nn.ConvTranspose2d(f * 8, f * 4, 2, stride=2)
        self.decoder3 = _double_conv(f * 8, f * 4, "dec3")
        self.upconv2 = nn.ConvTranspose2d(f * 4, f * 2, 2, stride=2)
        self.decoder2 = _double_conv(f * 4, f * 2, "dec2")
        self.upconv1 = nn.ConvTranspose2d(f * 2, f, 2, stride=2)
        self.decoder1 = _double_conv(f * 2, f, "dec1")
        self.conv = nn.Conv2d(f, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, ("B", self.in_channels, "H", "W"))
        h, w = x.shape[-2:]
        if h % 16 or w % 16 or h == 0 or w == 0:
            raise ValueError(
                f"SmirkGenerator input height and width must be positive multiples of 16 "
                f"(four 2x poolings), got {h}x{w}"
            )
        enc1 = self.encoder1(x)
        enc2 = self.encoder2(self.pool1(enc1))
        enc3 = self.encoder3(self.pool2(enc2))
        enc4 = self.encoder4(self.pool3(enc3))
        y = self.bottleneck(self.pool4(enc4))
        for block in self.resnet_blocks:
            y = block(y)
        y = self.decoder4(torch.cat([self.upconv4(y), enc4], 1))
        y = self.decoder3(torch.cat([self.upconv3(y), enc3], 1))
        y = self.decoder2(torch.cat([self.upconv2(y), enc2], 1))
        y = self.decoder1(torch.cat([self.upconv1(y), enc1], 1))
        return torch.sigmoid(self.conv(y))
