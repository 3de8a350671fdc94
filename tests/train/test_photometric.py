"""train.fit.fit_images: the photometric objective's gradients, recovery on a textured
synthetic capture, and bad input."""

from __future__ import annotations

import math

import pytest
import torch

import flame
from train.data.textured_faces import TexturedFaceGenerator
from train.eval.shape_error import NeutralShapeError
from train.fit import fit_landmarks
from train.fit.fitting import FitPrior
from train.fit.photo_model import (
    band_background,
    face_polygon,
    face_window,
    photo_in_square,
    skin_masks,
)
from train.fit.photo_objective import Fixed, Level, objective, uniform_light
from train.fit.photometric import fit_images
from train.render.textured import linear_to_srgb, polygon_mask, srgb_to_linear, to_window


@pytest.fixture(scope="module")
def capture():
    gen = TexturedFaceGenerator("bundled", size=64, n_shape=20, n_expr=20, texture_size=64)
    return gen.generate_textured_capture("hmc", "test", 1, [0, 1, 2, 3])


def _tiny_problem(dtype, windowed=False):
    layer = flame.FLAME("bundled", n_shape=2, n_expr=2).to(dtype=dtype)
    prior = FitPrior()
    b, size = 1, 16
    gen = torch.Generator().manual_seed(0)
    target = torch.randn(1, 68, 2, generator=gen, dtype=dtype) * 0.01
    with torch.no_grad():
        lmk = layer().landmarks  # the mean face, placed like a 25 cm hmc frame
    target = target + (lmk[..., :2] * torch.tensor([1.0, -1.0], dtype=dtype)) * 7.0
    photo = torch.rand(b, size, size, 3, generator=gen, dtype=dtype) * 0.5 + 0.2
    # a window zoomed in on the face (its face_window is the whole square here)
    window = torch.tensor([[0.02, 0.15, 0.7]], dtype=dtype) if windowed else None
    local = to_window(target, window) if windowed else target
    inside, compared = skin_masks(local, size)
    valid = torch.ones_like(inside)
    background = band_background(photo, local, valid)
    level = Level(size, photo, inside, compared.to(dtype), valid, background, window)
    fixed = Fixed(
        layer=layer,
        target=target,
        sigma=prior.sigma().to(dtype).expand(b, 68),
        groups=torch.zeros(b, dtype=torch.long),
        prior=prior,
        expression_std=prior.expression_stds(2).to(dtype),
        jaw_std=torch.tensor(prior.jaw_std, dtype=dtype),
        skin=torch.tensor([[0.5, 0.35, 0.3]], dtype=dtype),
        fit_rho=True,
    )
    v = {
        "z_shape": torch.zeros(1, 2, dtype=dtype),
        "log_rho": torch.tensor([math.log(4.0)], dtype=dtype),
        "albedo": torch.rand(1, 8, 8, 3, generator=gen, dtype=dtype) * 0.5 + 0.3,
        "z_expression": torch.zeros(1, 2, dtype=dtype),
        "z_jaw": torch.zeros(1, 3, dtype=dtype),
        "z_eyelids": torch.zeros(1, 2, dtype=dtype),
        "global_pose": torch.tensor([[0.05, 0.1, 0.0]], dtype=dtype),
        "log_scale": torch.tensor([math.log(7.0)], dtype=dtype),
        "trans": torch.zeros(1, 2, dtype=dtype),
        "sh": uniform_light(1, dtype=dtype) * 0.6,
    }
    return v, fixed, level


@pytest.mark.parametrize("windowed", [False, True])
def test_photometric_objective_gradcheck_float64(windowed):
    """Gradients of the whole objective (render through minirast, landmarks, priors)
    with respect to shape, rho, pose, scale, albedo and lighting, by finite differences,
    rendering the whole square or the face's window."""
    v, fixed, level = _tiny_problem(torch.float64, windowed)
    names = ("z_shape", "log_rho", "global_pose", "log_scale", "albedo", "sh")

    def f(*xs):
        w = dict(v, **dict(zip(names, xs)))
        return objective(w, fixed, level)[0]

    inputs = tuple(v[k].clone().requires_grad_(True) for k in names)
    assert float(objective(v, fixed, level)[1]["photo"][0]) > 0  # the render is compared
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-4, rtol=1e-3, fast_mode=True)


def test_srgb_round_trip_and_square_resampling():
    x = torch.linspace(0, 1, 101)
    assert torch.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-5)
    photo = torch.rand(2, 20, 30, 3)  # wider than tall: rows above and below are padding
    square, valid = photo_in_square(photo, 30)
    assert torch.equal(valid[0].all(1), torch.tensor([False] * 5 + [True] * 20 + [False] * 5))
    assert torch.allclose(square[:, 5:25], photo, atol=1e-5)  # same size: pixel for pixel


def test_band_background_is_the_surroundings_not_the_face():
    """Behind the silhouette band the objective sees the background around the face
    (a two-sided silhouette), outside the band the photo itself."""
    size = 48
    with torch.no_grad():
        lmk = flame.FLAME("bundled", n_shape=2, n_expr=2)().landmarks
    target = lmk[..., :2] * torch.tensor([1.0, -1.0]) * 7.0
    face = _grown_mask(target, size, 1.06)  # the photo's face reaches into the band
    skin, wall = torch.tensor([0.6, 0.4, 0.3]), torch.tensor([0.1, 0.3, 0.5])
    photo = torch.where(face[..., None], skin, wall)
    valid = torch.ones(1, size, size, dtype=torch.bool)
    behind = band_background(photo, target, valid)
    band = _grown_mask(target, size, 1.12) & ~_grown_mask(target, size, 1.0)
    outside = ~_grown_mask(target, size, 1.12)
    assert bool((band & face).any()) and torch.equal(behind[outside], photo[outside])
    assert torch.allclose(behind[band], wall.expand(int(band.sum()), 3))


def _grown_mask(landmarks, size, factor):
    poly = face_polygon(landmarks)
    centre = poly.mean(-2, keepdim=True)
    return polygon_mask(centre + factor * (poly - centre), size)


def test_recovers_rho_shape_and_light_on_a_synthetic_capture(capture):
    """On a 4-frame hmc capture at 64 px with detector-like landmark noise: rho within
    3 % of the truth, and a neutral shape at least 30 % closer to the truth than the
    landmark-only fit it starts from (the issue asks 20 %; 41 % on this one)."""
    layer = flame.FLAME("bundled", n_shape=20, n_expr=20)
    groups = torch.zeros(4, dtype=torch.long)
    fit = fit_images(
        capture["image"],
        capture["landmarks_noisy"],
        layer,
        groups=groups,
        iterations=24,
        texture_size=64,
    )
    true_rho = float(capture["rho"][0])
    assert abs(float(fit.rho[0]) / true_rho - 1) < 0.03
    assert torch.equal(fit.rho, fit.fit.rho) and fit.texture.shape == (1, 64, 64, 3)
    error = NeutralShapeError(layer)
    photo = float(error(fit.shape[:1], capture["shape"][:1])[0])
    start = float(error(fit.start.shape[:1], capture["shape"][:1])[0])
    assert photo < 0.7 * start, (photo, start)

    # lighting: the direction of the band-1 light within 30 degrees of the truth's
    def direction(sh):
        d = sh[:, 1:4].mean(-1)[:, [2, 0, 1]]  # (x, y, z) from the (y, z, x) coefficients
        return d / d.norm(dim=-1, keepdim=True)

    cos = (direction(fit.sh) * direction(capture["sh"])).sum(-1)
    assert bool((cos > math.cos(math.radians(30))).all()), cos
    assert bool((fit.psnr > 20).all()), fit.psnr
    assert fit.render.shape == (4, 64, 64, 3) and bool(fit.mask.any())
    assert torch.allclose(fit.window, face_window(capture["landmarks_noisy"]))
    # `start` is the landmark-only fit as it was: the descent moved its own copies
    # (the per-frame translation and pose once shared memory with it)
    alone = fit_landmarks(capture["landmarks_noisy"], layer, groups=groups)
    for name in ("trans", "global_pose", "scale", "rho", "shape", "expression"):
        assert torch.equal(getattr(fit.start, name), getattr(alone, name)), name
    assert not torch.equal(fit.trans, fit.start.trans)


def test_bad_input_is_refused_with_clear_errors(capture):
    layer = flame.FLAME("bundled", n_shape=5, n_expr=5)
    images, lmk = capture["image"], capture["landmarks"]
    with pytest.raises(ValueError, match="same number of images"):
        fit_images(images[:3], lmk, layer)
    with pytest.raises(ValueError, match=r"\[B, H, W, 3\]"):
        fit_images(images.permute(0, 3, 1, 2), lmk, layer)
    bad = images.clone()
    bad[1, 3, 3, 0] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf \(images \[1\]\)"):
        fit_images(bad, lmk, layer)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        fit_images(images * 255, lmk, layer)
    far = lmk + 5.0  # every landmark outside the photo's square
    with pytest.raises(ValueError, match="no face"):
        fit_images(images, far, layer, iterations=1, landmark_iterations=2)
    with pytest.raises(ValueError, match="texture_size"):
        fit_images(images, lmk, layer, texture_size=100)
