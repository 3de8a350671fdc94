"""Gradients: gradcheck of the torch reference, and the Triton kernels against it."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ppcam
from tests.ppcam.strategies import camera_case, seeds

ARG_NAMES = ("points", "scale", "trans", "rho", "rotation")


def _grads(backend, args, grad_out, **kw):
    leaves = [a.detach().clone().requires_grad_() if a is not None else None for a in args]
    uv = ppcam.project(*leaves, backend=backend, **kw)
    inputs = [a for a in leaves if a is not None]
    grads = torch.autograd.grad(uv, inputs, grad_out)
    return uv.detach(), grads


@pytest.mark.parametrize("rotate", [False, True])
def test_torch_backend_gradcheck_every_input(rotate):
    args = camera_case(2, 5, seed=3, with_rotation=rotate)
    leaves = tuple(a.clone().requires_grad_() for a in args if a is not None)

    def fn(*xs):
        full = list(xs) + ([None] if not rotate else [])
        return ppcam.project(*full, backend="torch")

    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-7)
    assert torch.autograd.gradgradcheck(fn, leaves, eps=1e-6, atol=1e-6)


def test_torch_backend_gradcheck_through_the_clamp():
    """Points behind the camera plane: the clamped w carries no gradient, and the
    result is still exactly differentiable away from the kink."""
    points = torch.tensor([[[0.05, 0.02, -0.5], [0.03, -0.01, 0.02]]], dtype=torch.float64)
    args = (points, torch.tensor([7.0]), torch.zeros(1, 2), torch.tensor([4.0]))
    leaves = tuple(a.to(torch.float64).requires_grad_() for a in args)
    assert torch.autograd.gradcheck(lambda *xs: ppcam.project(*xs, backend="torch"), leaves)
    uv = ppcam.project(*leaves, backend="torch")
    (g_rho,) = torch.autograd.grad(uv[0, 0].sum(), leaves[3])
    assert g_rho.item() == 0.0


def test_triton_gradcheck_float64():
    args = camera_case(2, 7, seed=11)
    leaves = tuple(a.clone().requires_grad_() for a in args)
    fn = lambda *xs: ppcam.project(*xs, backend="triton")  # noqa: E731
    assert torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-7)


@settings(max_examples=6)
@given(
    batch=st.sampled_from([1, 2, 5]),
    n=st.sampled_from([1, 3, 511, 512, 513, 1100]),
    seed=seeds,
    rotate=st.booleans(),
    clamp=st.booleans(),
)
def test_triton_matches_torch_float32(batch, n, seed, rotate, clamp):
    """Ragged sizes (N around the block size of 512), B = 1, with and without R,
    with points behind the camera plane when ``clamp``."""
    args = list(camera_case(batch, n, seed, dtype=torch.float32, with_rotation=rotate))
    if clamp:
        args[3] = args[3] * 0 + 12.0  # w = 1 + 12 p_z < 0 for p_z < -1/12
    g = torch.Generator().manual_seed(seed + 1)
    grad_out = torch.randn(batch, n, 2, generator=g)
    uv_ref, g_ref = _grads("torch", args, grad_out)
    uv_tri, g_tri = _grads("triton", args, grad_out)
    torch.testing.assert_close(uv_tri, uv_ref, rtol=1e-5, atol=1e-5)
    for name, a, b in zip(ARG_NAMES, g_tri, g_ref):
        # per-batch sums over up to 1100 points: tolerance relative to magnitude
        tol = 1e-5 * max(1.0, float(b.abs().max()))
        torch.testing.assert_close(a, b, rtol=1e-4, atol=tol, msg=f"gradient of {name}")


def test_triton_large_batch_and_validity_mask():
    args = camera_case(64, 37, seed=5, dtype=torch.float32)
    uv_ref, valid_ref = ppcam.project(*args, backend="torch", return_valid=True)
    uv_tri, valid_tri = ppcam.project(*args, backend="triton", return_valid=True)
    torch.testing.assert_close(uv_tri, uv_ref, rtol=1e-5, atol=1e-6)
    assert torch.equal(valid_tri, valid_ref)


def test_triton_backward_is_deterministic_and_atomic_mode_agrees():
    """Bitwise the same gradients from the same inputs.

    On CPU (Triton's interpreter, as in CI) programs run one after another, so even
    float atomics repeat: this cannot catch an order-dependent race there, only
    uninitialised memory, unstable sorts or a reduction that changes with the data's
    layout. On a GPU (``python -m bench.gpu`` runs it) it checks the fixed-order sums.
    """
    args = camera_case(3, 1500, seed=9, dtype=torch.float32)
    grad_out = torch.randn(3, 1500, 2, generator=torch.Generator().manual_seed(0))
    _, first = _grads("triton", args, grad_out)
    _, second = _grads("triton", args, grad_out)
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    _, atomic = _grads("triton", args, grad_out, deterministic=False)
    for a, b in zip(atomic, first):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


def test_triton_half_precision_computes_in_float32():
    args = [a.to(torch.float16) for a in camera_case(2, 20, seed=2, dtype=torch.float32)]
    uv = ppcam.project(*args, backend="triton")
    ref = ppcam.project(*[a.float() for a in args], backend="torch")
    assert uv.dtype == torch.float16
    torch.testing.assert_close(uv.float(), ref, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("batch,n", [(0, 5), (2, 0)])
@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_empty_inputs(batch, n, backend):
    points = torch.zeros(batch, n, 3, requires_grad=True)
    uv = ppcam.project(
        points, torch.ones(batch), torch.zeros(batch, 2), torch.ones(batch), backend=backend
    )
    assert uv.shape == (batch, n, 2)
    uv.sum().backward()
    assert points.grad.shape == (batch, n, 3)
