"""A compact MobileNet-like CNN, written here (no pretrained weights can be downloaded).

The layout follows MobileNetV3 at a much smaller size: a 3x3 stride-2 stem, then
inverted-residual blocks (1x1 expansion, 3x3 depthwise, optional squeeze-excite,
1x1 linear projection, residual connection when the shapes match), five stride-2
steps in all (total stride 32), a 1x1 head convolution and a global average pool.
A 64x64 image ends as a 2x2 map, a 32x32 image (the smallest accepted) as 1x1.

Normalization is BatchNorm: in training mode it needs more than one value per
channel, so a batch of one 32x32 image fails there (PyTorch's own error); use
batches of two or more, or eval mode.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from _common.checks import check_tensor

MIN_SIZE = 32
"""Smallest accepted input height and width, in pixels (the total stride)."""


class BlockSpec(NamedTuple):
    """One inverted-residual block at width 1.0."""

    expand: int  # expansion ratio of the 1x1 conv (1: no expansion conv)
    out_channels: int
    squeeze_excite: bool
    hardswish: bool  # activation: hardswish if True, else ReLU6
    stride: int


STEM_CHANNELS = 16
BLOCKS: tuple[BlockSpec, ...] = (
    BlockSpec(1, 16, True, False, 2),
    BlockSpec(4, 24, False, False, 2),
    BlockSpec(3, 24, False, False, 1),
    BlockSpec(4, 40, True, True, 2),
    BlockSpec(3, 40, True, True, 1),
    BlockSpec(4, 64, True, True, 2),
)
HEAD_CHANNELS = 128


def scaled_channels(channels: int, width: float) -> int:
    """``channels * width`` rounded to a multiple of 8, at least 8 (MobileNet's rule)."""
    value = max(8, int(channels * width + 4) // 8 * 8)
    if value < 0.9 * channels * width:  # never round down by more than 10 %
        value += 8
    return value


def _act(hardswish: bool) -> nn.Module:
    return nn.Hardswish() if hardswish else nn.ReLU6()


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) + BatchNorm2d + optional activation, 'same' padding."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        activation: nn.Module | None = None,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if activation is not None:
            layers.append(activation)
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention: global pool, 1x1 reduce (x1/4), ReLU, 1x1 expand, hardsigmoid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = scaled_channels(channels // 4, 1.0)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        s = self.expand(torch.relu(self.reduce(s)))
        return x * nn.functional.hardsigmoid(s)


class InvertedResidual(nn.Module):
    """1x1 expand -> 3x3 depthwise (stride) -> [squeeze-excite] -> 1x1 project (+ input)."""

    def __init__(self, in_channels: int, spec: BlockSpec, width: float) -> None:
        super().__init__()
        out_channels = scaled_channels(spec.out_channels, width)
        hidden = (
            scaled_channels(in_channels * spec.expand, 1.0) if spec.expand != 1 else in_channels
        )
        layers: list[nn.Module] = []
        if spec.expand != 1:
            layers.append(ConvBNAct(in_channels, hidden, 1, activation=_act(spec.hardswish)))
        layers.append(
            ConvBNAct(
                hidden, hidden, 3, spec.stride, groups=hidden, activation=_act(spec.hardswish)
            )
        )
        if spec.squeeze_excite:
            layers.append(SqueezeExcite(hidden))
        layers.append(ConvBNAct(hidden, out_channels, 1))
        self.body = nn.Sequential(*layers)
        self.residual = spec.stride == 1 and in_channels == out_channels
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetBackbone(nn.Module):
    """Image -> feature vector ``[B, out_features]`` (global average pool of the last map).

    Args:
        width: channel multiplier (every layer's channels times ``width``, rounded
            to a multiple of 8); 1.0 gives about 0.1 M parameters and
            ``out_features = 128``.
        in_channels: channels of the input image.

    Input: ``[B, in_channels, H, W]`` floating point, H and W >= 32 (any size;
    total stride 32). No input normalization is applied: the stem's BatchNorm
    adapts to the input range (the regressor feeds images in [0, 1]).
    """

    def __init__(self, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
            raise ValueError(f"width must be a positive number, got {width!r}")
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive int, got {in_channels!r}")
        self.width = float(width)
        self.in_channels = in_channels
        channels = scaled_channels(STEM_CHANNELS, width)
        layers: list[nn.Module] = [
            ConvBNAct(in_channels, channels, 3, 2, activation=nn.Hardswish())
        ]
        for spec in BLOCKS:
            block = InvertedResidual(channels, spec, width)
            layers.append(block)
            channels = block.out_channels
        self.out_features = scaled_channels(HEAD_CHANNELS, width)
        layers.append(ConvBNAct(channels, self.out_features, 1, activation=nn.Hardswish()))
        self.features = nn.Sequential(*layers)
        for module in self.modules():  # torchvision's MobileNet init (trained from scratch)
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_tensor("images", images, ("B", self.in_channels, "H", "W"))
        h, w = images.shape[-2:]
        if h < MIN_SIZE or w < MIN_SIZE:
            raise ValueError(
                f"images must be at least {MIN_SIZE}x{MIN_SIZE} pixels (the backbone's total "
                f"stride), got {h}x{w}"
            )
        return self.features(images).mean(dim=(2, 3))

    def extra_repr(self) -> str:
        return (
            f"width={self.width}, in_channels={self.in_channels}, out_features={self.out_features}"
        )
