"""The "minimal" MobileNetV3 backbones of SMIRK's encoders, in plain torch.

SMIRK (github.com/georgeretsi/smirk, MIT) builds its encoders on timm's
``tf_mobilenetv3_small_minimal_100`` (pose) and ``tf_mobilenetv3_large_minimal_100``
(shape, expression) with ``features_only=True`` and uses the last feature map only.
:class:`MobileNetV3Minimal` rebuilds those two networks with timm's module names
(``conv_stem``, ``bn1``, ``blocks.S.B.*``), so timm's and SMIRK's state dicts load
into it with ``strict=True``; timm itself is not needed.

"Minimal" means: ReLU everywhere, no squeeze-excite, 3x3 depthwise kernels only.
The "tf_" variants were ported from TensorFlow, so their stride-2 convolutions pad
like TensorFlow's ``"SAME"`` (:func:`conv2d_same`) and BatchNorm uses eps=1e-3.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from _common.checks import check_tensor

BN_EPS = 1e-3
MIN_SIZE = 32


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow ``"SAME"`` padding of one dimension: ``(before, after)``.

    The output has ``ceil(size / stride)`` entries; the total padding that needs is
    ``max((ceil(size/stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)``,
    with the odd pixel (if any) after. E.g. 224 px, kernel 3, stride 2: ``(0, 1)``.
    """
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def conv2d_same(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: int | tuple[int, int] = 1,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """``F.conv2d`` with TensorFlow ``"SAME"`` zero padding (see :func:`same_padding`).

    ``x [B,Cin,H,W]``, ``weight [Cout,Cin/groups,kh,kw]`` -> ``[B,Cout,ceil(H/sh),ceil(W/sw)]``.
    """
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    top, bottom = same_padding(x.shape[-2], weight.shape[-2], sh, dh)
    left, right = same_padding(x.shape[-1], weight.shape[-1], sw, dw)
    x = F.pad(x, (left, right, top, bottom))
    return F.conv2d(x, weight, bias, (sh, sw), 0, (dh, dw), groups)


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow ``"SAME"`` padding, worked out per input size
    (timm's ``Conv2dSame``; the ``padding`` argument is not used)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv2d_same(x, self.weight, self.stride, self.dilation, self.groups, self.bias)


def _depthwise(channels: int, stride: int) -> nn.Conv2d:
    """3x3 depthwise conv: TF "SAME" when it strides, plain padding 1 otherwise (as timm)."""
    if stride == 1:
        return nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
    return Conv2dSame(channels, channels, 3, stride=stride, groups=channels, bias=False)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class DepthwiseSeparableConv(nn.Module):
    """conv_dw (3x3) -> bn1 -> ReLU -> conv_pw (1x1) -> bn2, plus the input when
    the shape is kept (stride 1, ``in_channels == out_channels``)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.has_skip = stride == 1 and in_channels == out_channels
        self.conv_dw = _depthwise(in_channels, stride)
        self.bn1 = _bn(in_channels)
        self.conv_pw = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn2 = _bn(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv_dw(x)))
        y = self.bn2(self.conv_pw(y))
        return x + y if self.has_skip else y


class InvertedResidual(nn.Module):
    """conv_pw (1x1 expand) -> bn1 -> ReLU -> conv_dw (3x3) -> bn2 -> ReLU ->
    conv_pwl (1x1 project) -> bn3, plus the input when the shape is kept."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.has_skip = stride == 1 and in_channels == out_channels
        self.conv_pw = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
        self.bn1 = _bn(mid_channels)
        self.conv_dw = _depthwise(mid_channels, stride)
        self.bn2 = _bn(mid_channels)
        self.conv_pwl = nn.Conv2d(mid_channels, out_channels, 1, bias=False)
        self.bn3 = _bn(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv_pw(x)))
        y = F.relu(self.bn2(self.conv_dw(y)))
        y = self.bn3(self.conv_pwl(y))
        return x + y if self.has_skip else y


class ConvBnAct(nn.Module):
    """conv (1x1) -> bn1 -> ReLU: the last block, widening to the output channels."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn1 = _bn(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn1(self.conv(x)))


# Per variant: the stride of the first (depthwise separable, 16 -> 16) block, the
# inverted-residual stages as (in, mid, out, stride) per block, and the final 1x1 conv.
_Stage = list[tuple[int, int, int, int]]
_SPECS: dict[str, tuple[int, list[_Stage], tuple[int, int]]] = {
    "small": (
        2,
        [
            [(16, 72, 24, 2), (24, 88, 24, 1)],
            [(24, 96, 40, 2), (40, 240, 40, 1), (40, 240, 40, 1)],
            [(40, 120, 48, 1), (48, 144, 48, 1)],
            [(48, 288, 96, 2), (96, 576, 96, 1), (96, 576, 96, 1)],
        ],
        (96, 576),
    ),
    "large": (
        1,
        [
            [(16, 64, 24, 2), (24, 72, 24, 1)],
            [(24, 72, 40, 2), (40, 120, 40, 1), (40, 120, 40, 1)],
            [(40, 240, 80, 2), (80, 200, 80, 1), (80, 184, 80, 1), (80, 184, 80, 1)],
            [(80, 480, 112, 1), (112, 672, 112, 1)],
            [(112, 672, 160, 2), (160, 960, 160, 1), (160, 960, 160, 1)],
        ],
        (160, 960),
    ),
}


class MobileNetV3Minimal(nn.Module):
    """timm's ``tf_mobilenetv3_{small,large}_minimal_100`` feature extractor.

    ``forward(images [B,3,H,W] float) -> [B,C,ceil(H/32),ceil(W/32)]``: the last
    feature map (after the final ReLU, so >= 0), ``C = out_channels`` (576 for
    ``"small"``, 960 for ``"large"``). H and W must be at least 32. Any floating
    dtype works; SMIRK feeds RGB in [0, 1] (no mean/std normalisation).

    The state dict matches timm's ``features_only=True`` model (small: 204 entries,
    428,888 parameters; large: 276 entries, 1,413,208 parameters). Weights start
    like timm's EfficientNet init, so a random model trains.
    """

    def __init__(self, variant: str) -> None:
        super().__init__()
        if variant not in _SPECS:
            raise ValueError(f"variant must be one of {sorted(_SPECS)}, got {variant!r}")
        self.variant = variant
        ds_stride, stages, (head_in, head_out) = _SPECS[variant]
        self.conv_stem = Conv2dSame(3, 16, 3, stride=2, bias=False)
        self.bn1 = _bn(16)
        blocks = [nn.Sequential(DepthwiseSeparableConv(16, 16, ds_stride))]
        blocks += [nn.Sequential(*(InvertedResidual(*spec) for spec in stage)) for stage in stages]
        blocks.append(nn.Sequential(ConvBnAct(head_in, head_out)))
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = head_out
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """timm's EfficientNet init: conv ~ N(0, 2 / fan_out), BN weight 1, bias 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                fan_out = kh * kw * module.out_channels // module.groups
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_tensor("images", images, ("B", 3, "H", "W"))
        h, w = images.shape[-2:]
        if h < MIN_SIZE or w < MIN_SIZE:
            raise ValueError(
                f"images must be at least {MIN_SIZE}x{MIN_SIZE} pixels (the backbone "
                f"downsamples 32x), got {h}x{w}"
            )
        x = F.relu(self.bn1(self.conv_stem(images)))
        return self.blocks(x)
