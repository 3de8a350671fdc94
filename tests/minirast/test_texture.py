"""The torch texture path (``minirast/_cpu/texture.py`` through :func:`minirast.texture`)
against independent references: ``torch.nn.functional.grid_sample`` called directly
(bilinear and nearest; ``align_corners=False``, clamp = ``padding_mode="border"``, zero
= ``"zeros"``, wrap = sampling a 3x3 periodic tiling of the texture), a per-pixel loop
over nvdiffrast's formulas with explicitly built mip levels
(``tests/minirast/texture_reference.py``), and gradcheck in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import minirast
from minirast._cpu.texture import mip_level
from tests.minirast.texture_reference import reference_levels, reference_texture

BOUNDARIES = ("wrap", "clamp", "zero")
FILTERS = ("nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear")


def _random(shape, lo, hi, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=dtype) * (hi - lo) + lo


def _uv_da(shape, seed, scale):
    """``[B,H,W,4]`` derivatives whose footprints span several mip levels."""
    g = torch.Generator().manual_seed(seed)
    d = torch.randn((*shape, 4), generator=g, dtype=torch.float64)
    return d * scale * torch.exp2(torch.rand((*shape, 1), generator=g, dtype=torch.float64) * 4)


def _grid_sample(tex, uv, mode, boundary):
    """grid_sample on its own: wrap by sampling a 5x5 periodic tiling of the texture
    (uv in [-1, 2) lands in its middle three periods)."""
    image = tex.permute(0, 3, 1, 2).expand(uv.shape[0], -1, -1, -1)
    if boundary == "wrap":
        image = image.repeat(1, 1, 5, 5)
        grid = 2 * (uv + 2) / 5 - 1
        padding = "zeros"
    else:
        grid, padding = 2 * uv - 1, "border" if boundary == "clamp" else "zeros"
    out = F.grid_sample(image, grid, mode=mode, padding_mode=padding, align_corners=False)
    return out.permute(0, 2, 3, 1)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("size", [(1, 1), (1, 3), (5, 7), (8, 8)])
def test_bilinear_matches_grid_sample(boundary, size):
    tex = _random((2, *size, 3), 0, 1, 1)
    uv = _random((2, 6, 5, 2), -1, 2, 2) if boundary == "wrap" else _random((2, 6, 5, 2), -3, 4, 2)
    ours = minirast.texture(tex, uv, filter_mode="linear", boundary_mode=boundary)
    torch.testing.assert_close(ours, _grid_sample(tex, uv, "bilinear", boundary))


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_nearest_matches_grid_sample(boundary):
    # grid_sample rounds u w - 1/2 half to even where we floor u w: the two agree away
    # from texel edges, so uv sits inside texels (and in [-1, 2) for the wrap tiling).
    Ht, Wt = 5, 7
    tex = _random((1, Ht, Wt, 2), 0, 1, 3)
    cells = torch.stack(
        [torch.randint(-Wt, 2 * Wt, (3, 4, 6)), torch.randint(-Ht, 2 * Ht, (3, 4, 6))], -1
    )
    uv = (cells + _random((3, 4, 6, 2), 0.1, 0.9, 4)) / torch.tensor([Wt, Ht])
    ours = minirast.texture(tex, uv, filter_mode="nearest", boundary_mode=boundary)
    torch.testing.assert_close(ours, _grid_sample(tex, uv, "nearest", boundary))


@pytest.mark.parametrize("filter_mode", FILTERS)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("size", [(1, 3), (6, 5), (16, 8)])
def test_matches_per_pixel_reference(filter_mode, boundary, size):
    tex = _random((2, *size, 2), -1, 1, 5)
    uv = _random((2, 4, 5, 2), -2.5, 3.5, 6)
    uv_da = _uv_da((2, 4, 5), 7, 0.05)
    ours = minirast.texture(tex, uv, uv_da, filter_mode=filter_mode, boundary_mode=boundary)
    want = reference_texture(tex, uv, uv_da, filter_mode, boundary)
    torch.testing.assert_close(ours, want)


def test_max_mip_level_and_shared_texture():
    tex = _random((1, 16, 16, 3), 0, 1, 8)
    uv = _random((3, 4, 4, 2), 0, 1, 9)
    uv_da = _uv_da((3, 4, 4), 10, 0.2)
    for max_level in (0, 1, 2):
        ours = minirast.texture(tex, uv, uv_da, max_mip_level=max_level, boundary_mode="clamp")
        want = reference_texture(tex, uv, uv_da, "linear-mipmap-linear", "clamp", max_level)
        torch.testing.assert_close(ours, want)
    # A shared texture gives what the texture repeated per image gives.
    shared = minirast.texture(tex, uv, uv_da)
    torch.testing.assert_close(shared, minirast.texture(tex.expand(3, -1, -1, -1), uv, uv_da))


def test_mipmaps_are_box_averages():
    tex = _random((2, 8, 16, 3), 0, 1, 11)
    levels = minirast.texture_mipmaps(tex)
    assert [tuple(m.shape[1:3]) for m in levels] == [(4, 8), (2, 4), (1, 2), (1, 1)]
    for lvl, m in enumerate(levels, 1):
        k = 2**lvl  # a power-of-two texture: level l averages 2^l x 2^l blocks (8 rows at most)
        kh = min(k, 8)
        block = tex.reshape(2, 8 // kh, kh, 16 // k, k, 3).mean((2, 4))
        torch.testing.assert_close(m, block)
    # Odd sides fold the last three texels into the last one.
    row = torch.arange(5.0, dtype=torch.float64).reshape(1, 1, 5, 1)
    (m1, m2) = minirast.texture_mipmaps(row)
    assert m1.flatten().tolist() == [0.5, 3.0] and m2.flatten().tolist() == [1.75]
    odd = _random((1, 7, 5, 2), 0, 1, 12)
    for ours, ref in zip(minirast.texture_mipmaps(odd), reference_levels(odd[0])[1:], strict=True):
        torch.testing.assert_close(ours[0], torch.tensor(ref, dtype=torch.float64))


def test_given_mip_stack_is_used_and_gets_gradients():
    tex = _random((1, 8, 8, 2), 0, 1, 13).requires_grad_(True)
    uv = _random((1, 5, 5, 2), 0, 1, 14)
    uv_da = _uv_da((1, 5, 5), 15, 0.3)
    built = minirast.texture(tex, uv, uv_da)
    mip = minirast.texture_mipmaps(tex)
    given_ = minirast.texture(tex, uv, uv_da, mip=mip)
    torch.testing.assert_close(built, given_)
    g1 = torch.autograd.grad(built.sum(), tex)[0]
    g2 = torch.autograd.grad(given_.sum(), tex)[0]
    torch.testing.assert_close(g1, g2)
    # A custom stack changes the result where the coarse levels are sampled.
    flat = [torch.zeros_like(m) for m in mip]
    lod = mip_level(uv_da, 8, 8)
    coarse = (lod > 0.05).any(-1)
    out = minirast.texture(tex, uv, uv_da, mip=flat)
    assert coarse.any() and not torch.allclose(out[0][coarse[0]], built[0][coarse[0]])


def _texel_centred_uv(shape, size, seed):
    """uv whose texel-space positions sit 0.2..0.8 away from texel centres (no kinks
    within gradcheck's step)."""
    Ht, Wt = size
    g = torch.Generator().manual_seed(seed)
    cells = torch.stack(
        [
            torch.randint(-Wt, 2 * Wt, shape, generator=g),
            torch.randint(-Ht, 2 * Ht, shape, generator=g),
        ],
        -1,
    )
    off = torch.rand((*shape, 2), generator=g, dtype=torch.float64) * 0.6 + 0.2
    return (cells + 0.5 + off) / torch.tensor([Wt, Ht], dtype=torch.float64)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("filter_mode", ["linear", "nearest"])
def test_gradcheck_single_level(boundary, filter_mode):
    tex = _random((2, 3, 4, 2), -1, 1, 16).requires_grad_(True)
    uv = _texel_centred_uv((2, 3, 3), (3, 4), 17).requires_grad_(filter_mode == "linear")

    def f(t, u):
        return minirast.texture(t, u, filter_mode=filter_mode, boundary_mode=boundary)

    assert torch.autograd.gradcheck(f, (tex, uv))


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("filter_mode", ["linear-mipmap-linear", "linear-mipmap-nearest"])
def test_gradcheck_mipmapped(boundary, filter_mode):
    tex = _random((1, 8, 4, 2), -1, 1, 18).requires_grad_(True)
    uv = _random((2, 3, 3, 2), -1, 2, 19).requires_grad_(True)
    uv_da = _uv_da((2, 3, 3), 20, 0.1).requires_grad_(filter_mode == "linear-mipmap-linear")

    def f(t, u, d):
        return minirast.texture(t, u, d, filter_mode=filter_mode, boundary_mode=boundary)

    assert torch.autograd.gradcheck(f, (tex, uv, uv_da))


def test_lod_gradient_is_nvdiffrasts():
    # Exactly isotropic footprints (l2n = 0) get no uv_da gradient, as in nvdiffrast.
    uv_da = torch.tensor([[[[0.3, 0.0, 0.0, 0.3]]]], dtype=torch.float64, requires_grad=True)
    lod = mip_level(uv_da, 8, 8)
    torch.testing.assert_close(lod, torch.log2(torch.tensor([[[2.4]]], dtype=torch.float64)))
    (g,) = torch.autograd.grad(lod.sum(), uv_da)
    assert torch.equal(g, torch.zeros_like(g))
    # Elsewhere it is the derivative of 0.5 log2(lenMajorSqr).
    d = _uv_da((2, 2, 3), 21, 0.2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: mip_level(x, 6, 10), (d,))


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(
    uv=st.lists(st.tuples(finite, finite), min_size=4, max_size=4),
    shift=st.tuples(st.integers(-1000, 1000), st.integers(-1000, 1000)),
    boundary=st.sampled_from(BOUNDARIES),
    filter_mode=st.sampled_from(FILTERS),
)
def test_far_uv(uv, shift, boundary, filter_mode):
    tex = _random((1, 3, 5, 2), 0, 1, 22)
    uv = torch.tensor(uv, dtype=torch.float64).reshape(1, 2, 2, 2)
    uv_da = _uv_da((1, 2, 2), 23, 0.3)
    out = minirast.texture(tex, uv, uv_da, filter_mode=filter_mode, boundary_mode=boundary)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, reference_texture(tex, uv, uv_da, filter_mode, boundary))
    lo, hi = tex.amin((0, 1, 2)), tex.amax((0, 1, 2))
    assert (out >= torch.minimum(lo, torch.zeros(2)) - 1e-12).all()
    assert (out <= torch.maximum(hi, torch.zeros(2)) + 1e-12).all()
    if boundary == "wrap":  # whole periods change nothing (dyadic uv: exact in float64)
        dyadic = torch.round(uv * 64) / 64
        moved = dyadic + torch.tensor(shift, dtype=torch.float64)
        a = minirast.texture(tex, dyadic, uv_da, filter_mode=filter_mode)
        b = minirast.texture(tex, moved, uv_da, filter_mode=filter_mode)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    elif boundary == "zero":  # far outside the texture reads zero
        far = uv.abs() > 2
        outside = far[..., 0] | far[..., 1]
        assert (out[outside] == 0).all()


def test_dtypes():
    tex = _random((1, 4, 4, 3), 0, 1, 24, torch.float32)
    uv = _random((1, 2, 2, 2), 0, 1, 25)
    assert minirast.texture(tex, uv).dtype == torch.float64
    assert minirast.texture(tex, uv.float()).dtype == torch.float32
