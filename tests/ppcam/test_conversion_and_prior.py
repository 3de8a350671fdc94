"""Pinhole conversion edge cases, the paper's HMC prior and the prior loss."""

from __future__ import annotations

import math

import pytest
import torch

import ppcam


def test_hmc_prior_reproduces_the_paper_digits():
    prior = ppcam.hmc_rho_prior()
    assert f"{prior.focal[0]:.3f}-{prior.focal[1]:.3f}" == "0.227-0.455"
    assert f"{prior.rho[0]:.2f}-{prior.rho[1]:.2f}" == "2.16-4.34"
    assert prior.distance_cm == (15.0, 30.0)
    # exact relation: rho = 1 / t_z with t_z in metres
    assert prior.rho_exact == pytest.approx((1 / 0.30, 1 / 0.15))
    exact = ppcam.hmc_rho_prior(focal_digits=None)
    assert exact.focal[0] == pytest.approx(0.455 * 15 / 30)
    assert f"{exact.rho[1]:.2f}" == "4.33"
    assert prior.center == pytest.approx(0.5 * (prior.rho[0] + prior.rho[1]))


def test_hmc_prior_rejects_bad_geometry():
    with pytest.raises(ValueError, match="face_width_cm must be > 0"):
        ppcam.hmc_rho_prior(face_width_cm=0)
    with pytest.raises(ValueError, match="distance_cm"):
        ppcam.hmc_rho_prior(distance_cm=(30.0, 15.0))


def test_rho_zero_has_no_pinhole_equivalent():
    with pytest.raises(ValueError, match="orthographic camera at infinite distance"):
        ppcam.pseudo_to_pinhole(torch.tensor([7.0, 7.0]), torch.tensor([2.0, 0.0]))
    with pytest.raises(ValueError, match="rho must be > 0"):
        ppcam.pseudo_to_pinhole(7.0, -1.0)
    with pytest.raises(ValueError, match="tz must be > 0"):
        ppcam.pinhole_to_pseudo(2.0, 0.0)
    with pytest.raises(ValueError, match="NaN or inf"):
        ppcam.pseudo_to_pinhole(7.0, float("nan"))
    with pytest.raises(TypeError, match="integer|floating"):
        ppcam.pseudo_to_pinhole(torch.tensor([7]), torch.tensor([2]))


def test_conversion_numbers_and_distance():
    focal, tz = ppcam.pseudo_to_pinhole(7.0, 4.0)
    assert focal.item() == pytest.approx(1.75) and tz.item() == pytest.approx(0.25)
    assert ppcam.equivalent_distance(torch.tensor([4.0, 0.5])).tolist() == [0.25, 2.0]
    s = torch.tensor([7.0], dtype=torch.float64, requires_grad=True)
    r = torch.tensor([4.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: ppcam.pseudo_to_pinhole(a, b), (s, r))


def test_rho_prior_loss():
    rho = torch.tensor([3.0, 1.0, 0.5], requires_grad=True)
    loss = ppcam.rho_prior_loss(rho, 4.0)
    assert loss.item() == pytest.approx(0.1 * (1 + 9 + 12.25) / 3)
    per_sample = ppcam.rho_prior_loss(rho, torch.tensor([4.0, 0.0, math.nan]), weight=1.0)
    assert per_sample.item() == pytest.approx((1 + 1) / 2)
    per_sample.backward()
    assert rho.grad.tolist() == pytest.approx([-1.0, 1.0, 0.0])
    assert ppcam.rho_prior_loss(rho, torch.full((3,), math.nan)).item() == 0.0
    with pytest.raises(ValueError, match="rho_prior must be a number or shape"):
        ppcam.rho_prior_loss(rho, torch.zeros(4))
    assert ppcam.PAPER_RHO_PRIOR["hmc"] == 4.0


def test_camera_module_holds_or_receives_parameters():
    points = torch.randn(2, 10, 3) * 0.1
    s, t, r = torch.full((2,), 7.0), torch.zeros(2, 2), torch.full((2,), 3.0)
    receiving = ppcam.PseudoPerspectiveCamera(backend="torch")
    expected = ppcam.project(points, s, t, r, backend="torch")
    assert torch.equal(receiving(points, s, t, r), expected)
    holding = ppcam.PseudoPerspectiveCamera(7.0, (0.0, 0.0), 3.0, learnable=True, backend="torch")
    assert torch.equal(holding(points), expected)
    assert {n for n, _ in holding.named_parameters()} == {"scale", "trans", "rho"}
    holding(points).square().sum().backward()
    assert holding.rho.grad is not None and holding.rho.grad.item() != 0.0
    clip = holding.to_clip(points)
    torch.testing.assert_close(clip[..., :2] / clip[..., 3:], expected)
    fixed = ppcam.PseudoPerspectiveCamera(7.0, (0.0, 0.0), 3.0)
    assert len(list(fixed.parameters())) == 0 and "rho" in dict(fixed.named_buffers())
    with pytest.raises(ValueError, match="rho was neither given"):
        ppcam.PseudoPerspectiveCamera(scale=7.0, trans=(0.0, 0.0))(points)
    with pytest.raises(ValueError, match="trans must be a pair"):
        ppcam.PseudoPerspectiveCamera(trans=(1.0, 2.0, 3.0))
