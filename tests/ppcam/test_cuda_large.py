"""The Triton projection on a real GPU at FLAME size and large batches (``cuda`` marker).

The interpreter tests run at a few points; these run the compiled kernels at
B up to 4096 sets of 5023 points against a float64 torch reference, and check that
the deterministic backward is bitwise repeatable there. They skip without CUDA;
``python -m bench.gpu`` runs them (``pytest -m cuda``).
"""

from __future__ import annotations

import pytest
import torch

import ppcam
from bench.projection import make_inputs

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

POINTS = 5023


@pytest.mark.parametrize("batch", [64, 4096])
def test_forward_and_gradients_match_float64_reference(batch):
    inputs64, grad64 = make_inputs(batch, POINTS, torch.device("cuda"), torch.float64, seed=2)
    leaves64 = [t.clone().requires_grad_() for t in inputs64]
    ref = ppcam.project(*leaves64, backend="torch")
    ref_grads = torch.autograd.grad(ref, leaves64, grad64)
    leaves = [t.detach().float().requires_grad_() for t in inputs64]
    out = ppcam.project(*leaves, backend="triton")
    grads = torch.autograd.grad(out, leaves, grad64.float())
    names = ("uv", "points", "scale", "trans", "rho", "rotation")
    for name, a, b in zip(names, (out, *grads), (ref, *ref_grads)):
        err = (a.double() - b).abs().max().item()
        assert err <= 1e-4 * max(b.abs().max().item(), 1.0), (name, err)


def test_backward_is_bitwise_repeatable_at_4096():
    from bench.gpu.determinism import projection_backward

    row = projection_backward(torch.device("cuda"), 4096, POINTS, 3)
    assert row["bitwise_equal"], row
