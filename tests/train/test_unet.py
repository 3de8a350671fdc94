"""train.models.unet.NeuralRenderer: shapes, range, gradients, size rules, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from train.models.unet import NeuralRenderer

pytestmark = pytest.mark.usefixtures("single_thread")


def pair(batch: int, h: int, w: int, seed: int = 0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand(batch, 3, h, w, generator=g, dtype=dtype),
        torch.rand(batch, 3, h, w, generator=g, dtype=dtype),
    )


@pytest.fixture(scope="module")
def renderer() -> NeuralRenderer:
    torch.manual_seed(0)
    return NeuralRenderer(base_channels=4, levels=3)


@given(
    batch=st.integers(1, 3),
    h=st.sampled_from([8, 16, 24, 40]),
    w=st.sampled_from([8, 16, 32]),
    seed=st.integers(0, 1000),
)
def test_output_shape_and_range(batch, h, w, seed):
    torch.manual_seed(0)
    net = NeuralRenderer(base_channels=4, levels=3).eval()
    masked, rendered = pair(batch, h, w, seed)
    with torch.no_grad():
        out = net(masked, rendered)
    assert out.shape == (batch, 3, h, w) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and (out >= 0).all() and (out <= 1).all()


def test_default_size_and_gradients_reach_both_inputs_and_all_weights():
    torch.manual_seed(0)
    net = NeuralRenderer()
    masked, rendered = pair(2, 32, 32)
    masked.requires_grad_(True)
    rendered.requires_grad_(True)
    out = net(masked, rendered)
    assert out.shape == (2, 3, 32, 32)
    (out - torch.rand_like(out)).abs().mean().backward()
    assert masked.grad.abs().sum() > 0 and rendered.grad.abs().sum() > 0
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_levels_zero_and_double_precision():
    torch.manual_seed(0)
    net = NeuralRenderer(base_channels=2, levels=0).double()
    out = net(*pair(2, 5, 7, dtype=torch.float64))
    assert out.shape == (2, 3, 5, 7) and out.dtype == torch.float64


def test_sizes_must_divide_by_two_to_the_levels(renderer):
    with pytest.raises(ValueError, match=r"multiples of 8 \(2\*\*levels, levels=3\)"):
        renderer(*pair(1, 20, 16))
    with pytest.raises(ValueError, match=r"multiples of 8 \(2\*\*levels, levels=3\)"):
        renderer(*pair(1, 16, 12))


def test_bad_inputs(renderer):
    masked, rendered = pair(2, 16, 16)
    with pytest.raises(ValueError, match=r"masked must have shape \[B,3,H,W\]"):
        renderer(masked[:, :1], rendered)
    with pytest.raises(ValueError, match=r"rendered must have shape \[B,3,H,W\]"):
        renderer(masked, rendered[0])
    with pytest.raises(ValueError, match="batch size"):
        renderer(masked, rendered[:1])
    with pytest.raises(ValueError, match="same image size"):
        renderer(masked, pair(2, 16, 24)[1])
    with pytest.raises(TypeError, match="same dtype"):
        renderer(masked, rendered.double())
    with pytest.raises(TypeError, match="floating-point"):
        renderer(masked, (rendered * 255).to(torch.uint8))
    for kwargs in (dict(base_channels=0), dict(levels=-1), dict(levels=2.0)):
        with pytest.raises(ValueError, match="must be an int"):
            NeuralRenderer(**kwargs)
