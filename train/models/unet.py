"""SMIRK's neural renderer: a small UNet that rebuilds the input image.

It sees the masked input image (face blanked, a few face pixels copied back,
:func:`train.models.masking.mask_face`) and the rendered geometry image, concatenated
into 6 channels, and outputs the reconstructed image in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from train.models._validate import renderer_inputs


class DoubleConv(nn.Sequential):
    """(3x3 conv, BatchNorm, ReLU) twice."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class NeuralRenderer(nn.Module):
    """UNet: ``(masked [B,3,H,W], rendered [B,3,H,W]) -> image [B,3,H,W]`` in [0, 1].

    Args:
        base_channels: channels at full resolution; level ``i`` has
            ``base_channels * 2**i`` (the bottleneck, ``levels``, included).
        levels: number of 2x downsamplings (max pool) and 2x upsamplings
            (bilinear, then a DoubleConv on the concatenated skip connection).

    H and W must be divisible by ``2**levels``. The output goes through a
    sigmoid.
    """

    def __init__(self, base_channels: int = 16, levels: int = 3) -> None:
        super().__init__()
        for name, value, low in (("base_channels", base_channels, 1), ("levels", levels, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        self.base_channels, self.levels = base_channels, levels
        channels = [base_channels * 2**i for i in range(levels + 1)]
        self.inc = DoubleConv(6, channels[0])
        self.down = nn.ModuleList(DoubleConv(channels[i], channels[i + 1]) for i in range(levels))
        self.up = nn.ModuleList(
            DoubleConv(channels[i + 1] + channels[i], channels[i]) for i in range(levels)
        )
        self.out = nn.Conv2d(channels[0], 3, 1)

    def forward(self, masked: torch.Tensor, rendered: torch.Tensor) -> torch.Tensor:
        renderer_inputs(masked, rendered, 2**self.levels, f"2**levels, levels={self.levels}")
        x = self.inc(torch.cat([masked, rendered], dim=1))
        skips = []
        for block in self.down:
            skips.append(x)
            x = block(nn.functional.max_pool2d(x, 2))
        for i in reversed(range(self.levels)):
            x = nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = self.up[i](torch.cat([x, skips[i]], dim=1))
        return torch.sigmoid(self.out(x))

    def extra_repr(self) -> str:
        return f"base_channels={self.base_channels}, levels={self.levels}"
