"""Training: loss goes down, rho learns from its gradient and its prior, runs resume
exactly, non-finite losses are handled, and the entry points run end to end."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file

from tests.train.conftest import tiny_cli_args, tiny_config, tiny_data
from train.data.batches import concat_regimes
from train.data.cache import load_data
from train.data.seeding import seeded
from train.engine.config import TrainConfig
from train.engine.run import Run
from train.engine.system import TrainingSystem


def _records(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_smoke_training_reduces_the_loss(data_root, single_thread):
    # one thread: with two, the CPU's reduction order gives another 14-step trajectory,
    # on which this tiny run's loss was flat (seen here when the file ran alone)
    cfg = tiny_config(data_root, name="reduce", steps=14, lr=3e-3, w_cycle=0.0, camera_lr_scale=1.0)
    data = load_data(cfg.data, cfg.run.out_dir, progress=False)
    Run(cfg, progress=False).train(data)
    records = _records(os.path.join(cfg.run.out_dir, cfg.run.name))
    losses = [r["landmarks"] for r in records if "loss" in r]
    assert len(losses) == 14
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4
    (timing,) = [r for r in records if r.get("kind") == "timing"]
    assert timing["mean_step_s"] > 0 and 0 < timing["render_fwd_share"] < 1


def test_rho_gradients_reach_the_rho_head(data_root):
    cfg = tiny_config(data_root, name="grad", camera="pseudo")
    data = load_data(cfg.data, cfg.run.out_dir, progress=False)
    run = Run(cfg, progress=False)
    train = concat_regimes(data, cfg.data.regimes, "train")
    images = train["image"][:4].float() / 255
    total, _, _ = run.system(images, train["landmarks"][:4], torch.zeros(4), seeded(0))
    total.backward()
    head = run.system.model.pose.rho_head
    assert head.weight.grad is not None and float(head.weight.grad.abs().sum()) > 0


def test_the_rho_prior_alone_pulls_rho_to_the_prior(data_root):
    cfg = tiny_config(
        data_root,
        name="prior",
        regimes=("hmc",),
        steps=80,
        lr=1e-2,
        rho_prior_hmc=4.0,
        w_landmarks=0.0,
        w_photometric=0.0,
        w_cycle=0.0,
        w_shape_reg=0.0,
        w_expr_reg=0.0,
        w_jaw_reg=0.0,
        w_rho_prior=1.0,
        camera_lr_scale=1.0,
        checkpoint_every=100,
    )
    data = load_data(cfg.data, cfg.run.out_dir, progress=False)
    run = Run(cfg, progress=False)
    run.train(data)
    # the batch-mean rho the loss saw, step by step: from 0.12 to the prior
    rho = [
        r["rho_mean"] for r in _records(os.path.join(cfg.run.out_dir, cfg.run.name)) if "loss" in r
    ]
    assert rho[0] < 0.5
    late = sum(rho[-10:]) / 10
    assert abs(late - 4.0) < 0.4, rho[-10:]


@pytest.mark.parametrize("schedule", ["constant", "cosine", "cosine-ema"])
def test_resume_after_a_kill_equals_an_uninterrupted_run(data_root, monkeypatch, schedule):
    data = tiny_data(data_root)
    sched = {
        "lr_schedule": schedule.removesuffix("-ema"),
        "warmup_steps": 0 if schedule == "constant" else 1,
        "ema_decay": 0.6 if schedule.endswith("-ema") else 0.0,
    }
    straight = tiny_config(data_root, name=f"straight-{schedule}", steps=4, **sched)
    Run(straight, progress=False).train(data)

    killed = tiny_config(data_root, name=f"killed-{schedule}", steps=4, **sched)
    real_step = torch.optim.Adam.step
    calls = {"n": 0}

    def dying_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated kill in step 3")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        Run(killed, progress=False).train(data)
    monkeypatch.setattr(torch.optim.Adam, "step", real_step)
    resumed = Run(killed, resume=True, progress=False)
    assert resumed.step == 2
    resumed.train(data)

    a = Run(straight, resume=True, progress=False).system.state_dict()
    b = Run(killed, resume=True, progress=False).system.state_dict()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    final_a = load_file(os.path.join(straight.run.out_dir, straight.run.name, "final.safetensors"))
    final_b = load_file(os.path.join(killed.run.out_dir, killed.run.name, "final.safetensors"))
    assert final_a.keys() == final_b.keys()
    for key in final_a:  # the weight average too, when there is one
        assert torch.equal(final_a[key], final_b[key]), key
    records = [
        r for r in _records(os.path.join(killed.run.out_dir, killed.run.name)) if "loss" in r
    ]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert [r["lr_factor"] for r in records] == [killed.schedule.lr_factor(k) for k in range(4)]


#: the sizes that matter for the convolutions' kernels: the tiny config's, and the default
#: preset's (64 px, width 0.5, batch 32) on a few samples
RESUME_SIZES = {
    "tiny": {},
    "default-sized": dict(
        preset="default", image_size=64, width=0.5, renderer_channels=8, n_shape=50,
        n_expr=50, batch_size=32, n_train=40, n_val=4,
    ),
}  # fmt: skip


@pytest.mark.parametrize("sizes", sorted(RESUME_SIZES))
def test_a_resume_that_reads_the_cache_equals_a_run_on_rendered_data(
    sizes, tmp_path, monkeypatch, single_thread
):
    """The killed process rendered its data (kept in memory), the resumed one reads it
    back from the cache: the same bytes, and (train.data.cache.rendered_layout) the same
    layout, so the steps after the resume are bitwise those of an uninterrupted run.
    Before, the cache gave [N,3,H,W] contiguous images and the renderer channels-last
    ones, and the convolutions' roundings differed from the first step on."""
    monkeypatch.setattr(Run, "_epoch_outputs", lambda self, data: None)  # speed: no val
    cfg = tiny_config(tmp_path, regimes=("studio",), steps=3, **RESUME_SIZES[sizes])
    splits = ("train", "val")
    rendered = load_data(cfg.data, cfg.run.out_dir, splits=splits, progress=False)  # renders
    cached = load_data(cfg.data, cfg.run.out_dir, splits=splits, progress=False)  # reads
    for key, samples in rendered.items():
        for name, value in samples.items():
            assert torch.equal(value, cached[key][name]), (key, name)

    straight = cfg.replace(name="straight")
    Run(straight, progress=False).train(rendered)
    killed = cfg.replace(name="killed")
    real_step = torch.optim.Adam.step
    calls = {"n": 0}

    def dying_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated kill in step 2")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        Run(killed, progress=False).train(rendered)
    monkeypatch.setattr(torch.optim.Adam, "step", real_step)
    resumed = Run(killed, resume=True, progress=False)
    assert resumed.step == 1
    resumed.train(cached)

    def run_path(cfg, *name):
        return os.path.join(cfg.run.out_dir, cfg.run.name, *name)

    def losses(cfg):
        return [r["loss"] for r in _records(run_path(cfg)) if "loss" in r]

    assert len(losses(straight)) == 3
    assert losses(killed) == losses(straight)  # bitwise, the steps after the resume too
    for name in ("last.safetensors", "final.safetensors"):
        a, b = load_file(run_path(straight, name)), load_file(run_path(killed, name))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    for key, samples in rendered.items():  # the reason: the same layout either way
        for name, value in samples.items():
            assert value.stride() == cached[key][name].stride(), (key, name)


def test_lr_factor_warms_up_then_holds_or_decays_to_zero():
    cosine = TrainConfig.of(steps=11, lr_schedule="cosine", warmup_steps=2)
    factors = [cosine.schedule.lr_factor(k) for k in range(11)]
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert factors[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(factors[2:], factors[3:]))
    assert factors[2 + 4] == pytest.approx(0.5)  # halfway through the decay
    constant = TrainConfig.of(steps=11, warmup_steps=4)
    assert [constant.schedule.lr_factor(k) for k in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert TrainConfig().schedule.lr_factor(0) == 1.0  # the default: no schedule at all
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        TrainConfig.of(lr_schedule="step").validate()
    with pytest.raises(ValueError, match="warmup_steps must be >= 0 and below steps"):
        TrainConfig.of(steps=10, warmup_steps=10).validate()


def test_resume_with_another_config_is_refused(data_root):
    data = tiny_data(data_root)
    cfg = tiny_config(data_root, name="refuse", steps=1)
    Run(cfg, progress=False).train(data)
    with pytest.raises(ValueError, match="different config"):
        Run(tiny_config(data_root, name="refuse", steps=1, lr=0.5), resume=True, progress=False)


def test_non_finite_losses_are_skipped_then_stop_the_run(data_root, monkeypatch):
    data = tiny_data(data_root)
    cfg = tiny_config(data_root, name="nan", steps=10, max_bad_steps=3)
    real = TrainingSystem.forward

    def nan_forward(self, *args, **kwargs):
        total, stats, outs = real(self, *args, **kwargs)
        return total * float("nan"), stats, outs

    monkeypatch.setattr(TrainingSystem, "forward", nan_forward)
    with pytest.warns(UserWarning, match="non-finite loss"):
        with pytest.raises(FloatingPointError, match="3 non-finite losses in a row"):
            Run(cfg, progress=False).train(data)


def test_finetune_entry_point_smoke(data_root, capsys):
    from train import finetune

    out = str(data_root / "entry")
    results = finetune.main(
        [
            *tiny_cli_args(out),
            "--no-fit",  # the fit section is covered by tests/train/test_evaluate.py
            "--baselines",
            "all",
        ]
    )
    assert set(results["runs"]) == {
        "ortho-pretrained",
        "ortho-retrained",
        "rho",
        "perspective",
    }
    for per_regime in results["landmarks"].values():
        assert set(per_regime) == {"hmc", "studio", "wild"}
        for m in per_regime.values():
            assert m["jaw"]["value"] >= 0 and m["other"]["value"] >= 0
    printed = capsys.readouterr().out
    assert "| hmc |" in printed and "Δ jaw %" in printed
    for name in ("finetune", "finetune-ortho", "finetune-perspective", "pretrain-smoke"):
        run_dir = os.path.join(out, name)
        assert os.path.exists(os.path.join(run_dir, "final.safetensors")), name
        assert os.path.exists(os.path.join(run_dir, "config.json")), name
    report_dir = os.path.join(out, "finetune", "report")
    for name in ("report.md", "results.json", "perspective_rho.png", "rho_sweep.png"):
        assert os.path.exists(os.path.join(report_dir, name)), name
    assert any(f.startswith("samples-") for f in os.listdir(os.path.join(out, "finetune")))


def test_finetune_with_a_real_data_folder(data_root, tmp_path):
    """Images plus landmark files (here: rendered, saved as a user would) join the
    fine-tuning with their folder's rho prior and get their own evaluation rows."""
    import json

    import numpy as np
    from PIL import Image

    from train import finetune
    from train.data.synthetic import FaceGenerator

    folder = tmp_path / "footage"
    folder.mkdir()
    samples = FaceGenerator("bundled", size=32, n_shape=10, n_expr=10, seed=9).generate(
        "hmc", "test", list(range(5))
    )
    for i in range(5):
        Image.fromarray(samples["image"][i].permute(1, 2, 0).numpy()).save(folder / f"f{i}.png")
        pixels = (samples["landmarks"][i].numpy() + 1) * 32 / 2 - 0.5  # NDC -> 0-based pixels
        np.save(folder / f"f{i}.npy", pixels.astype(np.float64))
    (folder / "rho_prior.json").write_text(json.dumps({"rho_prior": 3.0}))

    out = str(data_root / "with-folder")
    results = finetune.main(
        [
            *tiny_cli_args(out),
            "--no-fit",
            "--baselines",
            "none",
            "--folder",
            str(folder),
        ]
    )
    row = results["landmarks"]["rho"]["folder"]
    assert row["jaw"]["value"] >= 0 and row["other"]["value"] >= 0
    assert "true_mean" not in results["rho"]["rho"]["folder"]  # no ground truth for real data
    assert "folder" not in results["neutral_shape"]["rho"]
    from train.data.sources import SOURCES
    from train.engine.config import TrainConfig
    from train.engine.run import rho_priors

    cfg = TrainConfig.of(folder=str(folder))
    priors = rho_priors(cfg, torch.tensor([SOURCES.index("folder"), 0]))
    assert priors.tolist() == [3.0, 4.0]
    with open(os.path.join(out, "finetune", "report", "report.md")) as f:
        assert "**folder**" in f.read()
