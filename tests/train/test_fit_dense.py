"""Dense points and the iris: the point model, the generator's opt-in fields, and the
fit's dense and iris terms (train.fit.dense)."""

import pytest
import torch

from train.data.synthetic import FaceGenerator
from train.fit import fit_landmarks
from train.render.points import IRIS_DEPTH, PointModel


@pytest.fixture(scope="module")
def gens():
    plain = FaceGenerator("bundled", size=32, n_shape=20, n_expr=20)
    dense = FaceGenerator("bundled", size=32, n_shape=20, n_expr=20, dense=True)
    return plain, dense


def test_point_model_matches_the_layer(gens):
    layer = gens[0].layer
    g = torch.Generator().manual_seed(0)
    shape, expr = torch.randn(3, 20, generator=g), torch.randn(3, 20, generator=g)
    pose = torch.randn(3, 3, generator=g) * 0.3
    jaw = torch.tensor([[0.2, 0.0, 0.0]]).expand(3, 3)
    lids = torch.rand(3, 2, generator=g)
    out = layer(shape=shape, expression=expr, global_pose=pose, jaw_pose=jaw, eyelids=lids)
    d = torch.full((3,), 0.0117)
    dense, iris = PointModel(layer)(shape, expr, pose, jaw, lids, d)
    torch.testing.assert_close(dense, layer.mediapipe_landmarks(out.vertices), atol=1e-6, rtol=0)
    # the disc: centre IRIS_DEPTH in front of the eye joint along the head's forward axis,
    # edge points d / 2 from it, the subject's right eye (joint 4) first
    from flame.lbs import rodrigues

    forward = (rodrigues(pose) @ torch.tensor([0.0, 0.0, 1.0]))[:, None]
    torch.testing.assert_close(iris[:, :, 0], out.joints[:, [4, 3]] + IRIS_DEPTH * forward)
    radius = (iris[:, :, 1:] - iris[:, :, :1]).norm(dim=-1)
    torch.testing.assert_close(radius, torch.full_like(radius, 0.0117 / 2))


def test_generator_dense_is_opt_in_and_leaves_the_rest_unchanged(gens):
    plain, dense = gens
    a = plain.generate_captures(("studio",), "test", 2, 2)
    b = dense.generate_captures(("studio",), "test", 2, 2)
    assert set(b) - set(a) == {"dense", "dense_noisy", "iris", "iris_noisy", "iris_diameter"}
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert b["dense"].shape == (4, 105, 2) and b["iris"].shape == (4, 2, 5, 2)
    noise_px = (b["dense_noisy"] - b["dense"]).std() * 112
    assert 1.0 < float(noise_px) < 2.0  # the studio regime's 1.5 px at 224 px


def test_fit_with_iris_recovers_the_diameter_and_reports_it(gens):
    data = gens[1].generate_captures(("studio",), "test", 3, 1)
    fit = fit_landmarks(
        None,
        gens[1].layer,
        dense=data["dense"],
        iris=data["iris"],
        iris_mm=11.7,
        iterations=60,
    )
    assert fit.dense.shape == (3, 105, 2) and fit.iris.shape == (3, 2, 5, 2)
    rel = fit.iris_diameter / data["iris_diameter"] - 1
    assert bool((rel.abs() < 0.05).all()), rel
    assert bool(((fit.iris_diameter_model - 0.0117).abs() < 0.0015).all())
    assert bool((fit.residual_px < 0.5).all())  # clean points: fitted closely


def test_bad_dense_inputs_say_what_is_wrong(gens):
    layer = gens[0].layer
    lmk = torch.zeros(2, 68, 2)
    with pytest.raises(ValueError, match="landmarks .* dense points"):
        fit_landmarks(None, layer)
    with pytest.raises(ValueError, match=r"dense must have shape \[2, 105, 2\]"):
        fit_landmarks(lmk, layer, dense=torch.zeros(2, 68, 2))
    with pytest.raises(ValueError, match="iris_mm needs the iris"):
        fit_landmarks(lmk, layer, iris_mm=11.7)
    with pytest.raises(ValueError, match="iris_mm must be"):
        fit_landmarks(lmk, layer, iris=torch.zeros(2, 2, 5, 2), iris_mm=117.0)
    with pytest.raises(ValueError, match="iris contains NaN"):
        fit_landmarks(lmk, layer, iris=torch.full((2, 2, 5, 2), float("nan")))


def test_command_reads_mp_npy_and_reports_the_iris(tmp_path):
    """``python -m train.fit --points both --iris-mm 11.7``: images with a ``.mp.npy`` are
    fitted with their dense points and irises; one without is skipped, named."""
    import json
    import os

    import numpy as np
    from PIL import Image

    from flame.mediapipe_embedding import IRIS_POINTS
    from train.fit.__main__ import main as fit_main
    from train.fit.inputs import ndc_to_pixels

    size = 64
    gen = FaceGenerator("bundled", size=size, n_shape=10, n_expr=10, dense=True)
    data = gen.generate("studio", "test", [0, 1])
    idx = gen.layer.mediapipe_indices
    for k in range(2):
        Image.fromarray(data["image"][k].permute(1, 2, 0).numpy()).save(tmp_path / f"i{k}.png")
        np.save(tmp_path / f"i{k}.npy", ndc_to_pixels(data["landmarks"][k].numpy(), size, size))
        if k == 0:
            mp = np.zeros((478, 3), dtype=np.float32)
            mp[idx, :2] = ndc_to_pixels(data["dense"][k].numpy(), size, size)
            iris = data["iris"][k].reshape(10, 2).numpy()
            mp[np.array(IRIS_POINTS).reshape(-1), :2] = ndc_to_pixels(iris, size, size)
            np.save(tmp_path / f"i{k}.mp.npy", mp)
    out = tmp_path / "out"
    args = [str(tmp_path), "--out", str(out), "--points", "both", "--iris-mm", "11.7"]
    summary = fit_main([*args, "--iterations", "40", "--no-overlay", "--n-shape", "10"])
    assert [r["name"] for r in summary["images"]] == ["i0"]
    assert any("i1.mp.npy" in reason for _, reason in summary["skipped"])
    record = json.loads((out / "i0.json").read_text())
    true_px = float(data["iris_diameter"][0]) * size / 2
    assert abs(record["iris_diameter_px"] / true_px - 1) < 0.1
    assert abs(record["iris_diameter_mm"] - 11.7) < 1.5
    assert os.path.isfile(out / "i0.obj")


@pytest.mark.parametrize("with_68", [True, False])
def test_dense_and_iris_combine_with_the_marginal_fit(gens, with_68):
    """``marginal=True`` with dense points and the iris prior: the iris diameter joins
    the shared block of the posterior (train.fit.posterior), and captures' rho comes
    with a finite interval around it."""
    gen = gens[1]
    data = gen.generate_captures(("hmc",), "test", 2, 3)
    fit = fit_landmarks(
        data["landmarks_noisy"] if with_68 else None,
        gen.layer,
        groups=data["capture"],
        dense=data["dense_noisy"],
        iris=data["iris_noisy"],
        iris_mm=11.7,
        iterations=40,
        marginal=True,
    )
    lo, hi = fit.rho_interval.unbind(-1)
    assert bool(torch.isfinite(fit.rho_interval).all()), fit.rho_interval
    assert bool(((lo > 0) & (lo < fit.rho) & (fit.rho < hi)).all()), (fit.rho, fit.rho_interval)
    assert bool((torch.isfinite(fit.noise_scale) & (fit.noise_scale > 0)).all())
    assert bool(torch.isfinite(fit.distance_interval).all())
    assert torch.equal(fit.iris_diameter_model[:3], fit.iris_diameter_model[:1].expand(3))
    assert bool(((fit.iris_diameter_model - 0.0117).abs() < 0.002).all())


def test_posterior_residuals_and_priors_are_the_objectives(gens, monkeypatch):
    """The posterior's model of a dense + iris problem (its whitened residuals, with the
    iris diameter in the shared block, and its priors' diagonal) has the objective's
    gradient: J^T r + P u equals autograd's, shared block and frames alike."""
    from train.fit import fitting, laplace
    from train.fit.problem import POSE_STEP

    seen = {}
    refine = fitting.refine

    def spy(problem, x, marginal, rounds):
        seen["problem"], seen["x"] = problem, x
        return refine(problem, x, marginal, rounds)

    monkeypatch.setattr(fitting, "refine", spy)
    gen = gens[1]
    data = gen.generate_captures(("hmc",), "test", 2, 2)
    fit_landmarks(
        None,
        gen.layer,
        groups=data["capture"],
        dense=data["dense_noisy"],
        iris=data["iris_noisy"],
        iris_mm=11.7,
        iterations=20,
        marginal=False,
    )
    p, x = seen["problem"], seen["x"].double()
    assert p.n_shared == p.layout.shared + 1  # shape, log rho, log d
    r, jac = laplace.jacobian(p.residuals, p.at(x), p.which)
    g, f = p.safe.shape
    assert r.shape[-1] == 105 * 2 + 20  # without the 68: the dense points and irises
    r, jac = r.reshape(g, f, -1), jac.reshape(g, f, *jac.shape[1:])
    jr = (jac.transpose(-1, -2) @ r[..., None])[..., 0] * p.valid[..., None]
    prior_shared, prior_local = p.priors()
    z_shared, z_frames = p.split(x)
    u = z_frames.clone()  # the priors' centre is 0 in every variable but the pose
    n_e, s = p.layout.n_expr, p.n_shared
    u[..., n_e + 5 : n_e + 8] = p.bases["pose"] / POSE_STEP + z_frames[..., n_e + 5 : n_e + 8]
    model_shared = jr[..., :s].sum(1) + prior_shared * z_shared
    model_frames = jr[..., s:] + prior_local * u * p.valid[..., None]
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(p.value(xr).sum(), xr)
    grad_shared, grad_frames = p.split(grad)
    torch.testing.assert_close(model_shared, grad_shared, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(model_frames, grad_frames, rtol=1e-4, atol=1e-4)
