"""``train.fit.appearance.solve_albedo_exact`` minimises the albedo's quadratic energy (its
gradient vanishes there) and beats the Jacobi solve on that energy."""

from __future__ import annotations

import torch

import minirast
from train.fit.albedo import albedo_prior
from train.fit.appearance import neighbour_laplacian, solve_albedo, solve_albedo_exact


def _problem(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    b, r, t = 3, 12, 6
    dt = torch.float64
    uv = torch.rand(b, r, r, 2, generator=g, dtype=dt) * 0.8 + 0.1
    shading = 0.6 + 0.8 * torch.rand(b, r, r, 1, generator=g, dtype=dt)
    true = 0.3 + 0.4 * torch.rand(2, t, t, 3, generator=g, dtype=dt)
    groups = torch.tensor([0, 0, 1])
    sampled = minirast.texture(true[groups], uv, filter_mode="linear", boundary_mode="clamp")
    photo = shading * sampled + 0.02 * torch.randn(b, r, r, 3, generator=g, dtype=dt)
    pixel_weight = (torch.rand(b, r, r, generator=g, dtype=dt) > 0.2).to(dt) * 50.0
    skin = true.mean((1, 2))
    return uv, shading, photo, pixel_weight, groups, skin, t


def _energy(a, uv, shading, photo, pixel_weight, groups, skin):
    sampled = minirast.texture(a[groups], uv, filter_mode="linear", boundary_mode="clamp")
    data = (pixel_weight[..., None] * (shading * sampled - photo).square()).sum()
    return data + albedo_prior(a, skin).sum()


def test_the_exact_solve_is_a_stationary_point_of_the_energy():
    uv, shading, photo, w, groups, skin, t = _problem()
    start = skin[:, None, None].expand(-1, t, t, 3).contiguous()
    a = solve_albedo_exact(uv, shading, photo, w, groups, skin, start, iterations=300)
    assert 0 < float(a.min()) and float(a.max()) < 1  # the clamp did not act
    for x, bound in ((start, None), (a, 1e-6)):
        x = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(_energy(x, uv, shading, photo, w, groups, skin), x)
        if bound is None:
            reference = grad.norm()
        else:
            assert grad.norm() < bound * reference


def test_the_exact_solve_lowers_the_energy_below_the_jacobi_solve():
    uv, shading, photo, w, groups, skin, t = _problem(1)
    start = skin[:, None, None].expand(-1, t, t, 3).contiguous()
    exact = solve_albedo_exact(uv, shading, photo, w, groups, skin, start)
    # the Jacobi solve's weights: the same relative pixel weights (its noise scale differs)
    jacobi = solve_albedo(uv, shading, photo, w / w.max(), groups, skin, t)
    e_exact = _energy(exact, uv, shading, photo, w, groups, skin)
    e_jacobi = _energy(jacobi, uv, shading, photo, w, groups, skin)
    e_start = _energy(start, uv, shading, photo, w, groups, skin)
    assert e_exact < e_jacobi < e_start


def test_neighbour_laplacian_is_half_the_smoothness_gradient():
    a = torch.randn(2, 5, 5, 3, dtype=torch.float64, requires_grad=True)
    dx = (a[:, :, 1:] - a[:, :, :-1]).square().sum()
    dy = (a[:, 1:] - a[:, :-1]).square().sum()
    (grad,) = torch.autograd.grad(dx + dy, a)
    torch.testing.assert_close(neighbour_laplacian(a.detach()), grad / 2)
