"""The training loop shared by ``train.pretrain`` and ``train.finetune``.

One step: encode the images, pose FLAME, project its landmarks with the run's
camera (ppcam), render the predicted geometry (minirast), mask the input
(paper or SMIRK masking), rebuild it with the neural renderer, and add the
expression cycle and the rho prior. Losses follow SMIRK's weights
(docs/design.md section 6) and are all fields of
:class:`train.engine.config.TrainConfig`; the step itself is
:class:`train.engine.system.TrainingSystem`.

Determinism and resume: the batch of step k and every random draw of that step
come from generators seeded by ``(seed, k)``, and checkpoints hold the model
and the optimizer, so ``--resume`` after a kill reproduces an uninterrupted
run. Under ``torchrun`` the loop runs DistributedDataParallel (gloo on CPU,
nccl on GPU); each rank takes its share of the same global batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import warnings

import torch
import torch.distributed as dist
from tqdm import tqdm

import flame
from _common.atomic import write_text
from train.data.batches import batch_indices, concat_regimes
from train.data.seeding import seeded
from train.data.sources import SOURCES
from train.engine import checkpoint as ckpt
from train.engine import run_log
from train.engine.batchnorm import recalibrate
from train.engine.config import TrainConfig, config_diff
from train.engine.device import init_distributed, pick_device
from train.engine.ema import WeightAverage
from train.engine.host import machine_name
from train.engine.plots import plot_curves, sample_grid
from train.engine.provenance import training_data
from train.engine.system import TrainingSystem
from train.engine.validation import evaluate_system


def prior_table(cfg: TrainConfig) -> torch.Tensor:
    """The rho prior of every source, indexed by source id (NaN: no prior). Reads the
    folder's rho_prior.json, so build it once per run, not per step."""
    return torch.tensor([cfg.rho_prior(r) for r in SOURCES])


def rho_priors(cfg: TrainConfig, regime_ids: torch.Tensor) -> torch.Tensor:
    """Per-sample rho priors from the sources' ids (NaN: no prior)."""
    return prior_table(cfg)[regime_ids]


def _more_real(mine: dict, donor: dict) -> dict:
    """Of this run's own data and its initialisation's, the one with real faces (the
    donor's when both or neither have)."""
    return mine if mine["real_faces"] and not donor["real_faces"] else donor


class Run:
    """A training run in ``<out_dir>/<name>/``: checkpoints, metrics, plots."""

    def __init__(
        self,
        cfg: TrainConfig,
        init_from: str | None = None,
        resume: bool = False,
        progress: bool = True,
    ) -> None:
        self.cfg = cfg.validate()
        self.dir = os.path.join(cfg.run.out_dir, cfg.run.name)
        self.device = pick_device(cfg.run.device)
        self.dist = init_distributed(self.device)
        self.progress = progress and self.dist.main
        torch.manual_seed(cfg.train_seed)
        self.flame_layer = flame.FLAME(
            cfg.data.flame, n_shape=cfg.data.n_shape, n_expr=cfg.data.n_expr
        )
        self.flame_layer.to(self.device)
        self.system = TrainingSystem(cfg, self.flame_layer).to(self.device)
        self.step = 0
        #: what the weights have seen (train.engine.provenance), kept in every checkpoint
        self.trained_on = training_data(cfg, {})
        #: the weight average (cfg.schedule.ema_decay > 0) that validation and final.safetensors use
        self.ema: WeightAverage | None = None
        last = os.path.join(self.dir, "last.safetensors")
        if resume and os.path.exists(last):
            self._restore(last)
        else:
            if resume and self.dist.main:
                warnings.warn(f"--resume: no checkpoint at {last}, starting fresh", stacklevel=2)
            if init_from is not None:
                self._init_from(init_from)
            self.optimizer = self._make_optimizer()
            if cfg.schedule.ema_decay > 0:
                self.ema = WeightAverage(self.system, cfg.schedule.ema_decay)
        self.ddp = self.system
        if self.dist.world > 1:
            # Unused parameters: the renderer when its losses are off, the camera heads
            # that a mode does not use.
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                self.system, find_unused_parameters=True
            )

    def _make_optimizer(self):
        """Adam over the regressor's parameter groups (the camera head at
        ``lr * camera_lr_scale``) and the neural renderer."""
        cfg = self.cfg
        groups = self.system.model.param_groups()
        for group in groups:
            scale = cfg.schedule.camera_lr_scale if group["name"] == "camera_head" else 1.0
            group["lr"] = cfg.schedule.lr * scale
        groups.append(
            {
                "name": "renderer",
                "params": list(self.system.renderer.parameters()),
                "lr": cfg.schedule.lr,
            }
        )
        for group in groups:  # the schedule scales this (cfg.schedule.lr_factor) at every step
            group["base_lr"] = group["lr"]
        return torch.optim.Adam(groups, lr=cfg.schedule.lr)

    def _init_from(self, path: str) -> None:
        """Start from a checkpoint of another run (e.g. the orthographic pretraining),
        switching its camera to this run's mode with the configured rho init."""
        tensors, info = ckpt.read_checkpoint(path)
        src = TrainConfig.from_dict(info["config"])
        for field in ("arch", "n_shape", "n_expr", "width", "renderer_channels", "image_size"):
            if src.get(field) != self.cfg.get(field):
                raise ValueError(
                    f"cannot initialise from {path}: its {field} is "
                    f"{src.get(field)}, this run's is {self.cfg.get(field)}"
                )
        self.trained_on = _more_real(training_data(self.cfg, {}), training_data(src, info["extra"]))
        donor = TrainingSystem(src, self.flame_layer)
        ckpt.load_model_state(donor, tensors)
        donor.model.set_camera(self.cfg.model.camera, rho_init=self.cfg.model.rho_init)
        self.system.load_state_dict(donor.state_dict())

    def _restore(self, path: str) -> None:
        tensors, info = ckpt.read_checkpoint(path)
        saved = TrainConfig.from_dict(info["config"])
        diff = config_diff(saved, self.cfg)
        if diff:
            raise ValueError(f"--resume with a different config than the saved run: {diff}")
        ckpt.load_model_state(self.system, tensors)
        self.optimizer = self._make_optimizer()
        bases = [g["base_lr"] for g in self.optimizer.param_groups]
        ckpt.load_optimizer_state(self.optimizer, tensors, info)
        for group, base in zip(self.optimizer.param_groups, bases):
            group["base_lr"] = base  # checkpoints from before the schedule have none
        self.step = info["step"]
        self.trained_on = info["extra"].get("trained_on", self.trained_on)
        if self.cfg.schedule.ema_decay > 0:
            self.ema = WeightAverage(self.system, self.cfg.schedule.ema_decay)
            self.ema.load(tensors, path)

    # -- bookkeeping

    def save(self, name: str = "last.safetensors") -> None:
        """The raw weights, the optimizer and the weight average (to resume from)."""
        if self.dist.main:
            ckpt.save_checkpoint(
                os.path.join(self.dir, name),
                self.system,
                self.optimizer,
                dataclasses.asdict(self.cfg),
                self.step,
                extra={"trained_on": self.trained_on},
                extra_tensors=None if self.ema is None else self.ema.tensors(),
            )

    def save_final(self) -> None:
        """``final.safetensors``: the weights evaluation and fine-tuning use, the weight
        average when there is one (its ``extra["weights"]`` says which)."""
        if not self.dist.main:
            return
        path = os.path.join(self.dir, "final.safetensors")
        extra = {"weights": "raw", "trained_on": self.trained_on}
        if self.ema is not None:
            extra.update(weights="ema", ema_decay=self.cfg.schedule.ema_decay)
        with self.delivered() as system:
            ckpt.save_checkpoint(path, system, None, dataclasses.asdict(self.cfg), self.step, extra)

    def delivered(self):
        """The system with the delivered weights (the average, if any) swapped in."""
        if self.ema is None:
            return contextlib.nullcontext(self.system)
        return self.ema.swapped_in(self.system)

    def _log(self, record: dict) -> None:
        if not self.dist.main:
            return
        run_log.append_record(os.path.join(self.dir, "metrics.jsonl"), record)

    def _truncate_metrics(self) -> None:
        """On resume, drop records past the checkpoint (they will be recomputed)."""
        path = os.path.join(self.dir, "metrics.jsonl")
        if not (self.dist.main and os.path.exists(path)):
            return
        run_log.truncate_after(path, self.step)

    # -- training

    def train(self, data: dict) -> dict:
        cfg = self.cfg
        os.makedirs(self.dir, exist_ok=True)
        if self.dist.main:
            write_text(os.path.join(self.dir, "config.json"), cfg.to_json())
        self._truncate_metrics()
        train = concat_regimes(data, cfg.data.sources(), "train")
        priors_by_source = prior_table(cfg)
        bad_in_a_row = 0
        step_seconds = render_seconds = 0.0
        timed_steps = 0
        start = time.perf_counter()
        bar = tqdm(
            total=cfg.schedule.steps,
            initial=self.step,
            desc=cfg.run.name,
            unit="step",
            disable=not self.progress,
        )
        while self.step < cfg.schedule.steps:
            images, landmarks, priors = self._batch(train, priors_by_source, self.step, True)
            gen = seeded(cfg.train_seed, "step", self.step, self.dist.rank)
            self.system.train()
            t0 = time.perf_counter()
            total, stats, _ = self.ddp(images, landmarks, priors, gen)
            if not torch.isfinite(total):
                bad_in_a_row += 1
                warnings.warn(f"step {self.step}: non-finite loss, step skipped", stacklevel=2)
                if bad_in_a_row >= cfg.run.max_bad_steps:
                    raise FloatingPointError(
                        f"{bad_in_a_row} non-finite losses in a row; stopping. The last good "
                        f"checkpoint is {os.path.join(self.dir, 'last.safetensors')}"
                    )
                self.step += 1
                continue
            bad_in_a_row = 0
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(self.system.parameters(), cfg.schedule.grad_clip)
            lr_factor = cfg.schedule.lr_factor(self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = group["base_lr"] * lr_factor
            self.optimizer.step()
            self.step += 1
            if self.ema is not None:
                self.ema.update(self.system, self.step)
            record = {
                "step": self.step,
                "loss": float(total.detach()),
                "time_s": time.perf_counter() - t0,
                "render_fwd_s": self.system.render_seconds,
                "lr_factor": lr_factor,
            }
            record.update({k: float(v) for k, v in stats.items()})
            self._log(record)
            step_seconds += record["time_s"]
            render_seconds += record["render_fwd_s"]
            timed_steps += 1
            bar.update(1)
            bar.set_postfix(
                loss=f"{float(total.detach()):.3f}", rho=f"{float(stats['rho_mean']):.2f}"
            )
            if self.step == cfg.schedule.steps and cfg.schedule.bn_recalibrate:
                self._recalibrate_batchnorm(train, priors_by_source)  # before the last save
            if self.step % cfg.run.checkpoint_every == 0 or self.step == cfg.schedule.steps:
                self.save()
            if self.dist.main and (
                self.step % cfg.run.eval_every == 0 or self.step == cfg.schedule.steps
            ):
                self._epoch_outputs(data)
        bar.close()
        if step_seconds > 0:
            self._log(
                {
                    "step": self.step,
                    "kind": "timing",
                    "device": str(self.device),
                    "machine": machine_name(self.device),
                    "mean_step_s": step_seconds / timed_steps,
                    "render_fwd_share": render_seconds / step_seconds,
                }
            )
        self.save()
        self.save_final()
        if self.dist.world > 1:
            self._check_ranks_agree()
        return {"steps": self.step, "seconds": time.perf_counter() - start}

    def _batch(self, train: dict, priors_by_source: torch.Tensor, step: int, shard: bool):
        """Images ``[b,3,H,W]`` in [0, 1], supervising landmarks and rho priors of the
        global batch of ``step`` on the run's device (``shard``: this rank's share)."""
        cfg, dev = self.cfg, self.device
        idx = batch_indices(len(train["image"]), cfg.schedule.batch_size, cfg.train_seed, step)
        if shard:
            idx = idx[self.dist.rank :: self.dist.world]
        images = train["image"][idx].to(dev).float() / 255.0
        landmarks = train["landmarks_noisy" if cfg.data.landmark_noise else "landmarks"][idx]
        return images, landmarks.to(dev), priors_by_source[train["regime"][idx]].to(dev)

    def _recalibrate_batchnorm(self, train: dict, priors_by_source: torch.Tensor) -> None:
        """Recompute the BatchNorm statistics of the delivered weights (the average, if
        any) over ``cfg.schedule.bn_recalibrate`` training batches after the last step (the batches
        steps ``steps``, ``steps + 1``, ... would have drawn; every rank the whole batch,
        so the ranks agree)."""
        cfg = self.cfg

        def run_batch(k: int) -> None:
            batch = self._batch(train, priors_by_source, cfg.schedule.steps + k, False)
            self.system(*batch, seeded(cfg.train_seed, "batchnorm", k))

        with self.delivered() as system:
            recalibrate(system, cfg.schedule.bn_recalibrate, run_batch)
            if self.ema is not None:
                self.ema.capture(system)

    def _check_ranks_agree(self) -> float:
        """Largest difference between any rank's parameters and rank 0's (logged; 0 expected)."""
        worst = torch.zeros((), device=self.device)
        for p in self.system.parameters():
            ref = p.detach().clone()
            dist.broadcast(ref, src=0)
            worst = torch.maximum(worst, (p.detach() - ref).abs().max())
        dist.all_reduce(worst, op=dist.ReduceOp.MAX)
        self._log(
            {
                "step": self.step,
                "kind": "ddp_check",
                "world": self.dist.world,
                "max_param_diff": float(worst),
            }
        )
        if float(worst) != 0.0:
            warnings.warn(f"ranks disagree: max parameter difference {float(worst)}", stacklevel=2)
        return float(worst)

    @torch.no_grad()
    def _epoch_outputs(self, data: dict) -> None:
        val = concat_regimes(data, self.cfg.data.sources(), "val")
        with self.delivered() as system:
            summary = evaluate_system(system, val, self.device)
            summary["step"] = self.step
            summary["kind"] = "val"
            self._log(summary)
            plot_curves(
                os.path.join(self.dir, "metrics.jsonl"), os.path.join(self.dir, "curves.png")
            )
            sample_grid(
                system,
                val,
                os.path.join(self.dir, f"samples-{self.step:06d}.png"),
                self.device,
                self.cfg,
            )
