"""train.models.smirk.mobilenetv3 and train.models.smirk.networks: TF "SAME" padding, state-dict
layout and sizes (those of timm and SMIRK), output shapes and ranges, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from train.models.smirk.mobilenetv3 import Conv2dSame, MobileNetV3Minimal, conv2d_same, same_padding
from train.models.smirk.networks import (
    ExpressionEncoder,
    PoseEncoder,
    ShapeEncoder,
    SmirkEncoder,
    SmirkGenerator,
)

pytestmark = pytest.mark.usefixtures("single_thread")


def images(batch: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def encoder() -> SmirkEncoder:
    torch.manual_seed(0)
    return SmirkEncoder().eval()


@pytest.fixture(scope="module")
def generator() -> SmirkGenerator:
    torch.manual_seed(0)
    return SmirkGenerator().eval()


# --- TF "SAME" convolution -------------------------------------------------------------


def test_same_padding_examples():
    assert same_padding(224, 3, 2) == (0, 1)
    assert same_padding(225, 3, 2) == (1, 1)
    assert same_padding(112, 3, 1) == (1, 1)
    assert same_padding(7, 1, 2) == (0, 0)
    assert same_padding(5, 3, 1, dilation=2) == (2, 2)


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    stride=st.integers(1, 2),
    kernel=st.integers(1, 3),
    dilation=st.integers(1, 2),
    groups=st.sampled_from([1, 2]),
    seed=st.integers(0, 1000),
)
def test_conv2d_same_is_explicitly_padded_conv(h, w, stride, kernel, dilation, groups, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(6, 4 // groups, kernel, kernel, generator=g, dtype=torch.float64)
    pads = []
    for size in (w, h):  # F.pad order: last dimension first
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
        pads += [total // 2, total - total // 2]
    expected = F.conv2d(F.pad(x, pads), weight, stride=stride, dilation=dilation, groups=groups)
    got = conv2d_same(x, weight, stride, dilation, groups)
    assert got.shape == (2, 6, math.ceil(h / stride), math.ceil(w / stride))
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_conv2d_same_module_matches_function():
    conv = Conv2dSame(3, 5, 3, stride=2, bias=True)
    x = images(1, 224, 223)
    expected = conv2d_same(x, conv.weight, 2, bias=conv.bias)
    torch.testing.assert_close(conv(x), expected, rtol=0, atol=0)
    x = images(1, 224, 224)
    # 224 px, stride 2, kernel 3 pads (0, 1): the first output pixel sees rows/cols 0..2
    torch.testing.assert_close(
        conv(x)[..., :1, :1],
        F.conv2d(x[..., :3, :3], conv.weight, conv.bias),
        rtol=0,
        atol=1e-6,
    )


# --- state-dict layout and sizes -------------------------------------------------------


def sizes(module: torch.nn.Module) -> tuple[int, int]:
    return len(module.state_dict()), sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    "make, keys, params",
    [
        (lambda: MobileNetV3Minimal("small"), 204, 428_888),
        (lambda: MobileNetV3Minimal("large"), 276, 1_413_208),
        (PoseEncoder, 206, 432_350),
        (ShapeEncoder, 278, 1_701_508),
        (ExpressionEncoder, 278, 1_466_063),
        (SmirkEncoder, 762, 3_599_921),
        (SmirkGenerator, 178, 31_367_171),
    ],
    ids=["small", "large", "pose", "shape", "expression", "encoder", "generator"],
)
def test_state_dict_sizes(make, keys, params):
    assert sizes(make()) == (keys, params)


def test_key_names(encoder, generator):
    small, large = MobileNetV3Minimal("small"), MobileNetV3Minimal("large")
    assert small.out_channels == 576 and large.out_channels == 960
    for net, head in ((small, "blocks.5.0"), (large, "blocks.6.0")):
        keys = net.state_dict()
        assert list(keys)[:2] == ["conv_stem.weight", "bn1.weight"]
        assert f"{head}.conv.weight" in keys and f"{head}.bn1.running_var" in keys
        assert "blocks.1.0.conv_pwl.weight" in keys and "blocks.0.0.conv_dw.weight" in keys
        assert all(m.eps == 1e-3 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    keys = encoder.state_dict()
    for name in (
        "pose_encoder.pose_cam_layers.0.weight",
        "pose_encoder.encoder.blocks.5.0.conv.weight",
        "shape_encoder.shape_layers.0.bias",
        "expression_encoder.expression_layers.0.weight",
        "expression_encoder.encoder.blocks.6.0.bn1.running_var",
    ):
        assert name in keys
    assert keys["expression_encoder.expression_layers.0.weight"].shape == (55, 960)
    keys = generator.state_dict()
    for name in (
        "encoder1.enc1conv1.weight",
        "bottleneck.bottleneckconv2.weight",
        "resnet_blocks.4.conv_block.6.running_mean",
        "upconv1.bias",
        "decoder1.dec1norm2.weight",
        "conv.bias",
    ):
        assert name in keys
    assert "resnet_blocks.0.conv_block.1.bias" not in keys


def test_strict_round_trip(encoder, generator):
    torch.manual_seed(1)
    other = SmirkEncoder().eval()
    other.load_state_dict(encoder.state_dict(), strict=True)
    x = images(1, 64, 64)
    with torch.no_grad():
        a, b = encoder(x), other(x)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    other_gen = SmirkGenerator().eval()
    other_gen.load_state_dict(generator.state_dict(), strict=True)
    y = torch.rand(1, 6, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(generator(y), other_gen(y), rtol=0, atol=0)


# --- outputs ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [224, 64])
def test_encoder_outputs(encoder, size):
    with torch.no_grad():
        out = encoder(images(2, size, size))
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {
        "pose_params": (2, 3),
        "cam": (2, 3),
        "shape_params": (2, 300),
        "expression_params": (2, 50),
        "eyelid_params": (2, 2),
        "jaw_params": (2, 3),
    }
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in out.values())
    # SMIRK's init: camera scale 7, shape 0
    torch.testing.assert_close(out["cam"][:, 0], torch.full((2,), 7.0))
    assert not out["shape_params"].any()


def test_backbone_feature_map_shapes():
    small = MobileNetV3Minimal("small").eval()
    with torch.no_grad():
        for h, w in ((32, 32), (225, 193), (33, 47)):
            fmap = small(images(1, h, w))
            assert fmap.shape == (1, 576, math.ceil(h / 32), math.ceil(w / 32))
            assert (fmap >= 0).all()


def test_expression_ranges():
    torch.manual_seed(0)
    net = ExpressionEncoder(n_expr=10).eval()
    with torch.no_grad():  # wide outputs, so every clamp and ReLU is exercised
        net.expression_layers[0].bias[10:] = torch.tensor([-2.0, 2.0, -2.0, 1.0, -1.0])
        x = images(4, 64, 64, seed=3)
        out = net(x)
        raw = net.expression_layers(net.features(x))
    assert out["expression_params"].shape == (4, 10)
    torch.testing.assert_close(out["expression_params"], raw[:, :10])
    eyelid, jaw = out["eyelid_params"], out["jaw_params"]
    assert (eyelid >= 0).all() and (eyelid <= 1).all()
    assert (jaw[:, 0] >= 0).all() and (jaw[:, 1:].abs() <= 0.2).all()
    torch.testing.assert_close(eyelid, raw[:, 10:12].clamp(0, 1))
    torch.testing.assert_close(jaw[:, 0], raw[:, 12].relu())
    torch.testing.assert_close(jaw[:, 1:], raw[:, 13:15].clamp(-0.2, 0.2))
    assert (raw[:, 10:15] < 0).any() and (raw[:, 10:15] > 1).any()


def test_features_and_pose_split():
    torch.manual_seed(0)
    net = PoseEncoder().eval()
    x = images(2, 64, 96)
    with torch.no_grad():
        feats = net.features(x)
        out = net(x)
        raw = net.pose_cam_layers(feats)
    assert feats.shape == (2, 576)
    torch.testing.assert_close(feats, net.encoder(x).mean((2, 3)))
    torch.testing.assert_close(torch.cat([out["pose_params"], out["cam"]], 1), raw)


def test_random_backbone_trains():
    torch.manual_seed(0)
    net = PoseEncoder().train()
    out = net(images(2, 64, 64))
    (out["pose_params"].square().sum() + out["cam"].sum()).backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert net.encoder.conv_stem.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("h, w", [(32, 32), (48, 64)])
def test_generator_output(generator, h, w):
    x = torch.rand(2, 6, h, w, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = generator(x)
    assert out.shape == (2, 3, h, w)
    assert (out > 0).all() and (out < 1).all()


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (torch.rand(3, 64, 64), ValueError, r"images must have shape \[B,3,H,W\]"),
        (torch.rand(1, 4, 64, 64), ValueError, r"\[B,3,H,W\]"),
        (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), TypeError, "floating-point"),
        (torch.rand(1, 3, 31, 64), ValueError, "at least 32x32"),
        (torch.rand(1, 3, 64, 16), ValueError, "at least 32x32"),
        ([[0.0]], TypeError, "torch.Tensor"),
    ],
)
def test_backbone_bad_input(bad, error, match):
    with pytest.raises(error, match=match):
        MobileNetV3Minimal("small")(bad)


def test_bad_construction_and_generator_input(generator):
    with pytest.raises(ValueError, match="variant must be one of"):
        MobileNetV3Minimal("medium")
    with pytest.raises(ValueError, match="n_expr must be an int >= 1"):
        ExpressionEncoder(n_expr=0)
    with pytest.raises(ValueError, match="n_shape must be an int >= 1"):
        ShapeEncoder(n_shape=2.5)
    with pytest.raises(ValueError, match="res_blocks must be an int >= 0"):
        SmirkGenerator(res_blocks=-1)
    with pytest.raises(ValueError, match="multiples of 16"):
        generator(torch.rand(1, 6, 40, 32))
    with pytest.raises(ValueError, match=r"x must have shape \[B,6,H,W\]"):
        generator(torch.rand(1, 3, 32, 32))
