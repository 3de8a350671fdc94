"""The Triton texture op (``minirast/_triton/texture.py``) against the torch path, which
``test_texture.py`` checks against grid_sample, a per-pixel loop and gradcheck.

Forward and all gradients (texture, uv, uv_da) for every filter and boundary mode, tiny
and odd-sized textures (folded mip levels), shared and per-image textures, uv far outside
[0, 1]; the deterministic backward is bitwise repeatable and agrees with the atomic one.
Under the interpreter (CPU, tiny sizes); the last test runs a realistic size on a GPU
(``cuda`` marker; it skips here)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minirast
from _common.backend import triton_available, triton_interpreted

pytestmark = pytest.mark.skipif(
    not triton_available() or (not torch.cuda.is_available() and not triton_interpreted()),
    reason="needs triton (CUDA, or TRITON_INTERPRET=1 on CPU)",
)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
FILTERS = ("nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear")
BOUNDARIES = ("wrap", "clamp", "zero")


def _inputs(B, Bt, size, C, res, seed, uv_range=(-2.0, 3.0), da_scale=0.15):
    g = torch.Generator().manual_seed(seed)
    tex = torch.rand((Bt, *size, C), generator=g)
    lo, hi = uv_range
    uv = torch.rand((B, *res, 2), generator=g) * (hi - lo) + lo
    uv_da = torch.randn((B, *res, 4), generator=g) * da_scale
    uv_da = uv_da * torch.exp2(torch.rand((B, *res, 1), generator=g) * 4)
    grad_out = torch.randn((B, *res, C), generator=g)
    return [t.to(DEVICE) for t in (tex, uv, uv_da, grad_out)]


def _run(backend, tex, uv, uv_da, grad_out, **kw):
    """``(out, grad_tex, grad_uv, grad_uv_da)`` for the loss ``sum(out * grad_out)``; an
    input outside the graph gets a zero gradient."""
    leaves = [t.clone().requires_grad_(True) for t in (tex, uv, uv_da)]
    out = minirast.texture(*leaves, backend=backend, **kw)
    grads = torch.autograd.grad((out * grad_out).sum(), leaves, allow_unused=True)
    return [out.detach()] + [torch.zeros_like(t) if g is None else g for t, g in zip(leaves, grads)]


def _assert_agree(kw, *inputs, atol=2e-5):
    ours = _run("triton", *inputs, **kw)
    want = _run("torch", *inputs, **kw)
    for name, a, b in zip(("out", "grad_tex", "grad_uv", "grad_uv_da"), ours, want):
        scale = max(1.0, float(b.abs().max()))
        torch.testing.assert_close(
            a, b, rtol=1e-4, atol=atol * scale, msg=lambda m, name=name: f"{name}: {m}"
        )


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("filter_mode", FILTERS)
def test_agrees_with_torch(filter_mode, boundary):
    kw = {"filter_mode": filter_mode, "boundary_mode": boundary}
    _assert_agree(kw, *_inputs(2, 2, (8, 6), 3, (5, 7), 1))  # per-image textures
    _assert_agree(kw, *_inputs(3, 1, (5, 7), 2, (4, 3), 2))  # shared, odd sides


@pytest.mark.parametrize("size", [(1, 1), (1, 3), (3, 1), (2, 5)])
@pytest.mark.parametrize("filter_mode", ["linear", "linear-mipmap-linear"])
def test_tiny_textures(size, filter_mode):
    for boundary in BOUNDARIES:
        kw = {"filter_mode": filter_mode, "boundary_mode": boundary}
        _assert_agree(kw, *_inputs(2, 1, size, 5, (3, 4), 3))


def test_given_mip_stack_and_max_level():
    tex, uv, uv_da, grad_out = _inputs(2, 2, (16, 8), 3, (4, 4), 4, uv_range=(0, 1))
    for kw in ({"max_mip_level": 1}, {"max_mip_level": 0}, {"mip": minirast.texture_mipmaps(tex)}):
        _assert_agree(kw, tex, uv, uv_da, grad_out)


@settings(max_examples=8, deadline=None)
@given(
    exponent=st.integers(0, 6),
    filter_mode=st.sampled_from(FILTERS),
    boundary=st.sampled_from(BOUNDARIES),
    seed=st.integers(0, 2**16),
)
def test_far_uv(exponent, filter_mode, boundary, seed):
    # uv up to 10^exponent away from the texture; wrap keeps float32 fractions of |u| < 2^23.
    span = 10.0**exponent
    tex, uv, uv_da, grad_out = _inputs(1, 1, (4, 5), 2, (3, 3), seed, uv_range=(-span, span))
    kw = {"filter_mode": filter_mode, "boundary_mode": boundary}
    _assert_agree(kw, tex, uv, uv_da, grad_out, atol=1e-4)


@pytest.mark.parametrize("filter_mode", ["linear", "linear-mipmap-linear", "nearest"])
def test_backward_deterministic_and_atomics_agree(filter_mode):
    """Bitwise the same gradients from the same inputs.

    On CPU (Triton's interpreter, as in CI) programs run one after another, so even
    float atomics repeat: this cannot catch an order-dependent race there, only
    uninitialised memory, unstable sorts or a reduction that changes with the data's
    layout. On a GPU (``python -m bench.gpu`` runs it) it checks the fixed-order sums.
    """
    from minirast._triton import texture as op

    tex, uv, uv_da, grad_out = _inputs(2, 1, (8, 8), 3, (6, 8), 5, uv_range=(0.2, 0.4))
    spec = op.make_spec([(8, 8), (4, 4), (2, 2), (1, 1)], 1, filter_mode, "wrap", tex.device)
    stack = torch.cat([m.reshape(1, -1, 3) for m in [tex, *minirast.texture_mipmaps(tex)]], 1)
    if "mipmap" not in filter_mode:
        spec = op.make_spec([(8, 8)], 1, filter_mode, "wrap", tex.device)
        stack = tex.reshape(1, -1, 3)
    args = (grad_out, stack.contiguous(), uv, uv_da, spec)
    first = op.texture_backward(*args)
    second = op.texture_backward(*args)
    atomic = op.texture_backward(*args, deterministic=False)
    for a, b, c in zip(first, second, atomic):
        assert torch.equal(a, b)  # many pixels share texels (magnified): order matters
        torch.testing.assert_close(a, c, rtol=1e-5, atol=1e-5)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("filter_mode", FILTERS)
def test_cuda_realistic_size(filter_mode):
    # 512x512 pixels of a 1024x1024 texture (minified: several mip levels in use).
    tex, uv, uv_da, grad_out = _inputs(2, 1, (1024, 1024), 3, (512, 512), 6, (-0.5, 1.5), 0.002)
    for boundary in BOUNDARIES:
        kw = {"filter_mode": filter_mode, "boundary_mode": boundary}
        _assert_agree(kw, tex, uv, uv_da, grad_out, atol=1e-4)
    # The deterministic backward is bitwise repeatable on the GPU too.
    kw = {"filter_mode": filter_mode, "boundary_mode": "wrap"}
    first, second = (_run("triton", tex, uv, uv_da, grad_out, **kw) for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(first, second))
