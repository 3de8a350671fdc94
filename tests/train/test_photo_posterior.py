"""train.fit.photo_posterior: the Jacobian's handling of discontinuities, the whitened
residuals' gradient against the objective's own (autograd), and the interval's shape."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.train.test_photometric import _tiny_problem
from train.fit import photo_posterior
from train.fit.photo_posterior import PhotoProblem, fit_posterior, jacobian, per_image


@settings(max_examples=30, deadline=None)
@given(st.floats(-2, 2), st.floats(0.1, 3), st.integers(0, 2))
def test_jacobian_is_central_differences_and_drops_a_jump(x0, a, jump_at):
    """Smooth columns agree with the derivative; an entry with a jump at the point is 0."""
    x = torch.tensor([[x0, 0.5, -0.25]], dtype=torch.float64)
    edge = x[0, jump_at].item()  # a step exactly at the point in one variable

    def fun(x, which):
        smooth = torch.stack([torch.sin(a * x[:, 0]) + x[:, 1] * x[:, 2], x[:, 1] ** 2], 1)
        step = (x[:, jump_at] > edge).to(x.dtype)[:, None] + 0.1 * x[:, 2:3]
        return torch.cat([smooth, step], 1)

    r, jac = jacobian(fun, x, torch.zeros(1, dtype=torch.long))
    want = torch.tensor([[a * math.cos(a * x0), -0.25, 0.5], [0.0, 1.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(jac[0, :2], want, atol=1e-6)
    row = torch.tensor([0.0, 0.0, 0.1], dtype=torch.float64)
    row[jump_at] = 0.0  # the jump's entry dropped (for jump_at == 2: 0.1 x + step, also dropped)
    assert torch.allclose(jac[0, 2], row, atol=1e-6)
    assert torch.equal(r, fun(x, None))


def test_residuals_carry_the_objective_gradient():
    """``J^T r`` plus the priors' ``P x`` is the objective's gradient in the geometry
    (autograd through minirast): the IRLS weights make the whitened residuals' half
    square tangent to the Cauchy term at the point."""
    v, fixed, level = _tiny_problem(torch.float64)
    problem = PhotoProblem(v, fixed, level, texture_size=8)
    which = torch.zeros(1, dtype=torch.long)
    r, jac = jacobian(problem.residuals, problem.x, which)
    x = problem.x.clone().requires_grad_(True)
    total, _ = photo_posterior.objective(problem._variables(x, which), *problem._rows(which))
    (grad,) = torch.autograd.grad(total.sum(), x)
    shared, local = problem.priors()
    expected = (jac.transpose(1, 2) @ r[..., None])[..., 0] + torch.cat([shared, local]) * x
    assert torch.allclose(expected.detach(), grad, rtol=1e-4, atol=1e-4 * float(grad.abs().max()))


def test_posterior_of_a_tiny_problem_and_per_image():
    v, fixed, level = _tiny_problem(torch.float64)
    post = photo_posterior.photo_posterior(v, fixed, level, texture_size=8)
    assert post.log_rho.shape == (1,) and torch.allclose(post.log_rho, v["log_rho"])
    assert bool(torch.isfinite(post.log_rho_std).all()) and float(post.log_rho_std[0]) > 0
    rho, distance, noise = per_image(post, torch.zeros(3, dtype=torch.long))
    assert rho.shape == (3, 2) and torch.equal(rho[0], rho[2])
    assert float(rho[0, 0]) < math.exp(float(v["log_rho"][0])) < float(rho[0, 1])
    assert torch.allclose(distance[0], 1.0 / rho[0].flip(0))
    # the calibration widens the interval by sqrt(VARIANCE_INFLATION) in log rho
    # (no profile here: the interval is the symmetric Laplace one)
    assert torch.allclose(post.rho_interval(), post.laplace_interval())
    raw = post._replace(log_rho_std=post.log_rho_std / 4.0)
    ratio = post.rho_interval().log().diff() / raw.laplace_interval().log().diff()
    assert torch.allclose(ratio, torch.tensor([[4.0]], dtype=ratio.dtype))
    assert photo_posterior.VARIANCE_INFLATION == 16.0
    # the orthographic camera has no rho: no posterior, NaN intervals
    ortho = fixed._replace(fit_rho=False)
    assert fit_posterior(v, ortho, level.photo, 16, 8) is None
    nan_rho, _, _ = per_image(None, torch.zeros(2, dtype=torch.long))
    assert bool(torch.isnan(nan_rho).all())
