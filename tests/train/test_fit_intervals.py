"""rho's interval and the captures' marginal estimate: the block-arrow Laplace algebra
against dense linear algebra, the log-det gradient against autograd, and the fit's
intervals on synthetic landmarks of known rho."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from train.data.synthetic import FaceGenerator
from train.fit import fit_landmarks, laplace

S, L, M = 3, 4, 7


def _problem(seed: int, g: int, f: int):
    gen = torch.Generator().manual_seed(seed)
    jac = torch.randn(g, f, M, S + L, generator=gen, dtype=torch.float64)
    r = torch.randn(g, f, M, generator=gen, dtype=torch.float64)
    valid = torch.rand(g, f, generator=gen) < 0.8
    valid[:, 0] = True
    p_s = torch.rand(g, S, generator=gen, dtype=torch.float64) + 0.1
    p_l = torch.rand(L, generator=gen, dtype=torch.float64)
    p_l[-1] = 0.0  # a flat prior, as for S and t
    return r, jac, valid, p_s, p_l


def _dense(jac, valid, p_s, p_l, k: int):
    """Problem k's full Hessian and prior diagonal over its used frames."""
    frames = valid[k].nonzero()[:, 0].tolist()
    n = S + L * len(frames)
    h = torch.zeros(n, n, dtype=torch.float64)
    for j, fr in enumerate(frames):
        cols = list(range(S)) + list(range(S + j * L, S + (j + 1) * L))
        full = torch.zeros(M, n, dtype=torch.float64)
        full[:, cols] = jac[k, fr]
        h += full.T @ full
    prior = torch.cat([p_s[k], p_l.repeat(len(frames))])
    return h, prior, frames


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), g=st.integers(1, 3), f=st.integers(1, 4))
def test_block_arrow_equals_dense(seed, g, f):
    """The Schur complement's inverse is the dense inverse's shared block; the
    effective parameters are tr(H^-1 A); the Newton step solves H d = -grad."""
    r, jac, valid, p_s, p_l = _problem(seed, g, f)
    b = laplace.blocks(r, jac, valid, p_s, p_l)
    cov = laplace.shared_covariance(b)
    edf = laplace.effective_parameters(b, p_s, p_l)
    grad = torch.randn(
        g, S + f * L, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    ds, df = laplace.newton_step(b, grad[:, :S], grad[:, S:].reshape(g, f, L))
    for k in range(g):
        a, prior, frames = _dense(jac, valid, p_s, p_l, k)
        h = a + torch.diag(prior)
        inv = torch.linalg.inv(h)
        torch.testing.assert_close(cov[k], inv[:S, :S])
        torch.testing.assert_close(edf[k], torch.trace(inv @ a))
        cols = list(range(S)) + [S + fr * L + i for fr in frames for i in range(L)]
        want = -torch.linalg.solve(h, grad[k, cols])
        torch.testing.assert_close(ds[k], want[:S])
        torch.testing.assert_close(df[k, frames].reshape(-1), want[S:])
    # weighting the data part by w is the Hessian with the data scaled
    w = torch.rand(g, dtype=torch.float64) + 0.5
    scaled = laplace.blocks_scaled(b, w, p_s, p_l)
    direct = laplace.blocks(r * w.sqrt()[:, None, None], jac, valid, p_s, p_l, w)
    for x, y in zip(scaled, direct):
        torch.testing.assert_close(x, y)


def test_logdet_gradient_equals_autograd():
    """The forward-difference surrogate gives the total derivative of
    1/2 sum_f log det(J_f^T J_f + P) in the shared variables (frames at their
    conditional optimum: dl/ds = -H_ff^-1 H_fs)."""
    g, f = 2, 3
    gen = torch.Generator().manual_seed(0)
    w1 = torch.randn(g * f, M, S + L, generator=gen, dtype=torch.float64) * 0.5
    w2 = torch.randn(g * f, M, generator=gen, dtype=torch.float64)

    def fun(x, which):
        return torch.tanh((w1[which] @ x[..., None])[..., 0]) + w2[which] * x[:, :1] ** 2

    x = torch.randn(g * f, S + L, generator=gen, dtype=torch.float64) * 0.3
    x[:, :S] = x[::f, :S].repeat_interleave(f, 0)  # shared variables shared
    which = torch.arange(g * f)
    valid = torch.ones(g, f, dtype=torch.bool)
    p_s, p_l = torch.ones(g, S, dtype=torch.float64), torch.ones(L, dtype=torch.float64)
    r, jac = laplace.jacobian(fun, x, which)
    b = laplace.blocks(r.reshape(g, f, M), jac.reshape(g, f, M, -1), valid, p_s, p_l)
    got = laplace.logdet_gradient(fun, x, which, valid, b, S)

    def correction(xx):
        jl = torch.autograd.functional.jacobian(
            lambda v: fun(v, which).sum(0), xx, create_graph=True
        )  # [M, G*F, D]
        jl = jl.permute(1, 0, 2)[..., S:]
        h = jl.transpose(1, 2) @ jl + torch.eye(L, dtype=torch.float64)
        return 0.5 * torch.logdet(h).sum()

    xx = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(correction(xx), xx)
    grad = grad.reshape(g, f, S + L)
    step = torch.linalg.solve(b.h_ff, grad[..., S:, None])
    want = (grad[..., :S] - (b.h_sf @ step)[..., 0]).sum(1)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def generator():
    return FaceGenerator("bundled", size=32, n_shape=20, n_expr=20, seed=0)


def test_intervals_are_consistent(generator, single_thread):
    data = generator.generate("studio", "test", [0, 1, 2])
    fit = fit_landmarks(data["landmarks_noisy"], generator.layer, iterations=60)
    lo, hi = fit.rho_interval.unbind(-1)
    assert bool(((lo < fit.rho) & (fit.rho < hi)).all())
    torch.testing.assert_close(fit.distance_interval, 1.0 / fit.rho_interval.flip(-1))
    # studio noise is 1.5 px against the fit's 2 px: the residuals say so
    assert 0.5 < float(fit.noise_scale.mean()) < 1.0
    assert fit.observable().dtype == torch.bool
    ortho = fit_landmarks(data["landmarks_noisy"], generator.layer, iterations=20, camera="ortho")
    assert bool((ortho.rho_interval == 0).all()) and bool(ortho.distance_interval.isinf().all())


def test_marginal_capture_removes_the_joint_bias(generator, single_thread):
    """Close-range captures (hmc, 3 px noise, 8 frames): the joint MAP's rho is
    biased high; with the frames' variables integrated out it is not, and the
    capture's interval covers the truth."""
    data = generator.generate_captures(("hmc",), "test", 3, 8)
    groups, true = data["capture"], data["rho"][::8]
    joint = fit_landmarks(data["landmarks_noisy"], generator.layer, groups=groups, marginal=False)
    fit = fit_landmarks(data["landmarks_noisy"], generator.layer, groups=groups)
    joint_err = (joint.rho[::8] / true - 1).abs()
    err = (fit.rho[::8] / true - 1).abs()
    assert float(err.mean()) < 0.6 * float(joint_err.mean())
    lo, hi = fit.rho_interval[::8].unbind(-1)
    assert bool(((lo <= true) & (true <= hi)).all())
    assert bool((fit.rho[::8] == fit.rho.reshape(3, 8)[:, -1]).all())  # one rho per capture


def test_marginal_rounds_bound_rho_where_it_is_flat(single_thread):
    """Far faces whose landmarks cannot tell rho (the default preset's wild test images
    86 and 90: the marginal objective falls as rho -> 0): each Gauss-Newton round
    moves rho by at most MAX_LOG_RHO_MOVE, so the rounds neither send rho to 1e-37 nor
    then fail on a singular Hessian, and the interval says "not observable"."""
    from train.fit.fitting import MARGINAL_ROUNDS
    from train.fit.posterior import MAX_LOG_RHO_MOVE

    gen = FaceGenerator("bundled", size=16, n_shape=50, n_expr=50, seed=0)
    data = gen.generate("wild", "test", [86, 90, 0])
    joint = fit_landmarks(data["landmarks_noisy"], gen.layer, marginal=False)
    fit = fit_landmarks(data["landmarks_noisy"], gen.layer, marginal=True)
    moved = (fit.rho / joint.rho).log().abs()
    assert bool((moved <= MARGINAL_ROUNDS * MAX_LOG_RHO_MOVE + 1e-4).all()), moved
    assert not bool(fit.observable()[:2].any())


@settings(max_examples=40, deadline=None)
@given(
    centre=st.floats(-1.0, 1.0),
    near=st.floats(0.05, 2.0),
    far=st.floats(0.05, 2.0),
    t=st.floats(1.0, 3.0),
    plateau=st.floats(0.05, 0.95),
)
def test_profile_bounds_follow_a_lopsided_profile(centre, near, far, t, plateau):
    """The profile interval's ends are where sqrt(2 (value - least)) reaches t, each
    side on its own: on a profile with different curvatures either side of its least
    value (a symmetric interval would miss one side) they are the two analytic roots;
    a side that levels off below t^2 / 2 (the far plateau) leaves the interval open."""
    from train.fit.profile import bounds_from_profile

    u = torch.linspace(0.0, 4.0, 161, dtype=torch.float64)  # each side out to 4 widths
    grid = torch.cat([centre - far * u.flip(0), centre + near * u[1:]])  # holds the centre
    width = torch.where(grid < centre, torch.tensor(far), torch.tensor(near))
    value = 0.5 * ((grid - centre) / width) ** 2 + 7.0
    offsets = grid[:, None]
    lo, hi = bounds_from_profile(offsets, value[:, None], torch.tensor([t], dtype=torch.float64))
    torch.testing.assert_close(lo, torch.tensor([centre - t * far], dtype=torch.float64))
    torch.testing.assert_close(hi, torch.tensor([centre + t * near], dtype=torch.float64))
    # the far side levels off at plateau * t^2 / 2: never out of reach, so open
    level = plateau * t * t / 2
    flat = torch.where(grid < centre, level * (1 - torch.exp((grid - centre) / far)), value - 7.0)
    lo, hi = bounds_from_profile(offsets, flat[:, None], torch.tensor([t], dtype=torch.float64))
    assert bool(torch.isinf(lo).all()) and float(lo) < 0
    torch.testing.assert_close(hi, torch.tensor([centre + t * near], dtype=torch.float64))


def test_far_images_intervals_reach_the_truth(single_thread):
    """Two far images of the multi-distance study (identity 0, frame 3 at 2.44 m and
    3.66 m: fitted at about 1 m) whose symmetric Laplace interval in log rho ended
    short of the truth: the profile's interval holds the true distance, and it is
    longer away from the camera than towards it (the likelihood's plateau)."""
    from bench.dense_fit import cmdp_set

    gen = FaceGenerator("bundled", size=32, n_shape=50, n_expr=50, seed=0)
    data = cmdp_set(gen, 1, frames=4)
    pick = [19, 23]  # distance-major, 4 frames each: 2.44 m and 3.66 m, frame 3
    fit = fit_landmarks(data["landmarks_noisy"][pick], gen.layer)
    true = data["tz"][pick]
    lo, hi = fit.distance_interval.unbind(-1)
    assert bool(((lo <= true) & (true <= hi)).all()), (fit.distance_interval, true)
    assert bool(((hi / fit.distance) > (fit.distance / lo)).all())
