"""The ``train`` stage: training throughput of the ``full`` preset and its rendering share.

A :class:`train.engine.run.Run` of the ``full`` preset (224 px, batch 32) is built
twice, with and without bfloat16 autocast (``amp``), and trained on one fixed batch
of synthetic faces (rendered once beforehand, so data loading is not measured) for
a few warm-up steps and then ``steps`` timed ones. A step is exactly the engine's:
the system's losses, backward, gradient clipping and Adam.

Rendering share of a step, two ways:

- ``render_fwd_share``: the forward rendering time the system itself records
  (``TrainingSystem.render_seconds``, every render call of the step), over the
  step; the stage synchronises the GPU before each render call so that queued
  encoder work is not counted as rendering;
- ``render_share``: render calls per step times the median time of one rendering
  forward + backward (``render_mesh`` on the step's own geometry, batch and size,
  timed alone), over the step. The target (rendering under 15 % of the step) is
  judged on this one, as it includes the backward.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time

import torch

from bench.common import synchronize, time_call
from train.data.seeding import seeded
from train.data.synthetic import FaceGenerator
from train.engine.config import PRESETS, TrainConfig
from train.engine.run import Run, prior_table
from train.render.head import camera_vertices, render_mesh

#: Steps (warm-up, timed) on a GPU and in a dry run.
STEPS = {False: (3, 10), True: (1, 1)}
#: The dry run's configuration: the smoke preset at a smaller batch.
DRY_RUN = {**PRESETS["smoke"], "batch_size": 4}


def config(dry_run: bool, amp: bool, out_dir: str) -> TrainConfig:
    """The ``full`` preset (the smoke preset in a dry run) with ``amp`` set."""
    preset = "smoke" if dry_run else "full"
    values = DRY_RUN if dry_run else PRESETS["full"]
    name = f"throughput-amp{int(amp)}"
    return TrainConfig.of(
        **{**values, "preset": preset, "amp": amp, "out_dir": out_dir, "name": name}
    ).validate()


def make_batch(cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """One training batch of synthetic head-mounted-camera faces (CPU)."""
    data = cfg.data
    gen = FaceGenerator(data.flame, data.image_size, data.n_shape, data.n_expr, data.seed)
    return gen.generate("hmc", "train", list(range(cfg.schedule.batch_size)))


class _RenderProbe:
    """Wraps ``system.render``: synchronises before each call (so the system's own
    render timer starts with an idle GPU), counts calls, keeps the last call's inputs."""

    def __init__(self, system) -> None:
        self.inner = system.render
        self.calls = 0
        self.last = None
        system.render = self

    def __call__(self, out, pred, size, detach_camera=False):
        synchronize(out.vertices.device)
        self.calls += 1
        self.last = (
            out.vertices.detach(),
            pred.scale.detach(),
            pred.trans.detach(),
            pred.rho.detach(),
            size,
        )
        return self.inner(out, pred, size, detach_camera=detach_camera)


def render_fwd_bwd_ms(run: Run, probe: _RenderProbe, quick: bool = False) -> float:
    """Median ms of one rendering forward + backward on the last rendered geometry
    (``quick``: a few calls, for a dry run)."""
    vertices, scale, trans, rho, size = probe.last
    device = vertices.device
    leaves = [t.clone().requires_grad_(True) for t in (vertices, scale, trans, rho)]
    weights = torch.rand(vertices.shape[0], 3, size, size, device=device)

    def step():
        v, s, t, r = leaves
        image = render_mesh(camera_vertices(v), run.flame_layer.faces, s, t, r, size).image
        (image * weights).sum().backward()

    if quick:
        return time_call(step, device, warmup=1, min_repeats=1, budget_s=0.0)
    return time_call(step, device, warmup=2, min_repeats=5, max_repeats=20, budget_s=1.0)


def measure(cfg: TrainConfig, batch: dict, warmup: int, steps: int) -> dict:
    """Time ``steps`` engine steps after ``warmup`` ones; throughput and rendering share."""
    run = Run(cfg, progress=False)
    system, optimizer, device = run.system, run.optimizer, run.device
    probe = _RenderProbe(system)
    images = (batch["image"].float() / 255.0).to(device)
    landmarks = batch["landmarks_noisy"].to(device)
    priors = prior_table(cfg)[batch["regime"]].to(device)

    def step(k: int) -> None:
        system.train()
        total, _, _ = system(images, landmarks, priors, seeded(cfg.data.seed, "step", k, 0))
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(system.parameters(), cfg.schedule.grad_clip)
        optimizer.step()

    for k in range(warmup):
        step(k)
    synchronize(device)
    step_s, render_s, calls = [], [], []
    for k in range(warmup, warmup + steps):
        before = probe.calls
        t0 = time.perf_counter()
        step(k)
        synchronize(device)
        step_s.append(time.perf_counter() - t0)
        render_s.append(system.render_seconds)
        calls.append(probe.calls - before)
    mean_step = statistics.mean(step_s)
    render_ms = render_fwd_bwd_ms(run, probe, quick=steps < 2)
    per_step = statistics.mean(calls)
    return {
        "amp": cfg.run.amp,
        "autocast_active": cfg.run.amp and device.type == "cuda",
        "device": str(device),
        "batch_size": cfg.schedule.batch_size,
        "image_size": cfg.data.image_size,
        "warmup_steps": warmup,
        "timed_steps": steps,
        "mean_step_ms": mean_step * 1e3,
        "median_step_ms": statistics.median(step_s) * 1e3,
        "images_per_s": cfg.schedule.batch_size / mean_step,
        "render_calls_per_step": per_step,
        "render_fwd_share": statistics.mean(render_s) / mean_step,
        "render_fwd_bwd_ms": render_ms,
        "render_share": per_step * render_ms * 1e-3 / mean_step,
    }


def run(dry_run: bool) -> dict:
    """The stage's record: one :func:`measure` row per autocast setting."""
    warmup, steps = STEPS[dry_run]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        batch = make_batch(config(dry_run, True, tmp))
        for amp in (True, False):
            rows.append(measure(config(dry_run, amp, tmp), batch, warmup, steps))
    cfg = dataclasses.asdict(config(dry_run, True, "runs"))
    headline = "; ".join(
        f"amp={int(r['amp'])}: {r['images_per_s']:.0f} images/s, rendering "
        f"{100 * r['render_share']:.1f} % of a step"
        for r in rows
    )
    return {
        "preset": cfg["run"]["preset"],
        "config": cfg,
        "rows": rows,
        "fitting_benchmark": "see the fit stage (bench.fit)",
        "headline": headline,
    }
