"""The training loop shared by ``train.pretrain`` and ``train.finetune``.

One step: encode the images, pose FLAME, project its landmarks with the run's
camera (ppcam), render the predicted geometry (minirast), mask the input
(paper or SMIRK masking), rebuild it with the neural renderer, and add the
expression cycle and the rho prior. Losses follow SMIRK's weights
(DESIGN.md section 6) and are all fields of :class:`train.config.TrainConfig`.

Determinism and resume: the batch of step k and every random draw of that step
come from generators seeded by ``(seed, k)``, and checkpoints hold the model
and the optimizer, so ``--resume`` after a kill reproduces an uninterrupted
run. Under ``torchrun`` the loop runs DistributedDataParallel (gloo on CPU,
nccl on GPU); each rank takes its share of the same global batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import warnings

import torch
import torch.distributed as dist
from tqdm import tqdm

import flame
import ppcam
from _common.atomic import atomic_path, write_text
from train import checkpoint as ckpt
from train.config import FOLDER, SOURCES, TrainConfig, config_diff
from train.data import (
    JAW,
    OTHER,
    SPLITS,
    FaceGenerator,
    generate_split,
    load_shards,
    save_shards,
    seeded,
)
from train.folder import load_folder
from train.masking import mask_face
from train.metrics import finite_or_none, landmark_errors, rho_summary
from train.model import FaceRegressor
from train.render import camera_vertices, project_landmarks, render_mesh
from train.unet import NeuralRenderer

Samples = dict[str, torch.Tensor]


# ----------------------------------------------------------------------------- data


def data_cache_dir(cfg: TrainConfig) -> str:
    key = f"{cfg.flame}|{cfg.image_size}|{cfg.seed}|{cfg.n_shape}|{cfg.n_expr}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return os.path.join(cfg.out_dir, ".data", f"s{cfg.image_size}-{digest}")


def split_size(cfg: TrainConfig, split: str) -> int:
    return {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}[split]


def load_data(cfg: TrainConfig, regimes=None, splits=SPLITS, progress=True) -> dict:
    """``{(regime, split): samples}``, rendered once and cached as safetensors shards
    under ``<out_dir>/.data/`` (keyed by FLAME model, size, seed and basis sizes)."""
    regimes = tuple(regimes or cfg.regimes)
    cache = data_cache_dir(cfg)
    distributed = dist.is_available() and dist.is_initialized()
    if distributed and dist.get_rank() != 0:
        dist.barrier()  # rank 0 renders and caches first; the others then read the cache
    generator = None
    out = {}
    for regime in regimes:
        for split in splits:
            n = split_size(cfg, split)
            path = os.path.join(cache, f"{regime}-{split}-n{n}-00000.safetensors")
            if os.path.exists(path):
                out[(regime, split)] = load_shards([path])
                continue
            if generator is None:
                generator = FaceGenerator(
                    cfg.flame, cfg.image_size, cfg.n_shape, cfg.n_expr, cfg.seed
                )
            samples = generate_split(generator, regime, split, n, progress=progress)
            save_shards(
                samples,
                cache,
                f"{regime}-{split}-n{n}",
                {"regime": regime, "split": split, "n": n},
                shard_size=n,
            )
            out[(regime, split)] = samples
    if distributed and dist.get_rank() == 0:
        dist.barrier()
    if cfg.folder and FOLDER not in regimes:
        out.update(folder_splits(cfg, template=next(iter(out.values()), None)))
    return out


def folder_splits(cfg: TrainConfig, template: Samples | None) -> dict:
    """The ``--folder`` data as samples of source ``"folder"``: a seeded hold-out of
    ``folder_test_fraction`` for val/test, the rest for training. Quantities a real
    image does not have (camera, parameters, mask) are NaN / zero."""
    data = load_folder(cfg.folder, cfg.image_size)
    n = len(data.names)
    n_test = min(n - 1, max(1, round(cfg.folder_test_fraction * n))) if n > 1 else 0
    order = torch.randperm(n, generator=seeded(cfg.seed, "folder", n))
    parts = {"test": order[:n_test], "train": order[n_test:]}
    parts["val"] = parts["test"]
    out = {}
    for split, idx in parts.items():
        if len(idx) == 0:
            continue
        samples = {}
        for key, like in (template or {}).items():
            shape = (len(idx), *like.shape[1:])
            if like.is_floating_point():
                samples[key] = torch.full(shape, float("nan"), dtype=like.dtype)
            else:
                samples[key] = torch.zeros(shape, dtype=like.dtype)
        samples["image"] = data.image[idx]
        samples["landmarks"] = data.landmarks[idx]
        samples["landmarks_noisy"] = data.landmarks[idx]  # real detections are noisy already
        samples["regime"] = torch.full((len(idx),), SOURCES.index(FOLDER))
        samples["index"] = idx
        out[(FOLDER, split)] = samples
    return out


def concat_regimes(data: dict, regimes, split: str) -> Samples:
    parts = [data[(r, split)] for r in regimes]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def batch_indices(n: int, batch: int, seed: int, step: int) -> torch.Tensor:
    """Indices of the global batch of ``step``: epoch-wise permutations, stateless."""
    per_epoch = max(1, n // batch)
    epoch, k = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=seeded(seed, "epoch", epoch))
    return perm[k * batch : (k + 1) * batch] if n >= batch else perm


# ----------------------------------------------------------------------------- system


class TrainingSystem(torch.nn.Module):
    """The trainable parts (regressor and neural renderer) and the loss computation."""

    def __init__(self, cfg: TrainConfig, flame_layer: flame.FLAME) -> None:
        super().__init__()
        self.cfg = cfg
        self.model = FaceRegressor(
            n_shape=cfg.n_shape,
            n_expr=cfg.n_expr,
            camera=cfg.camera,
            rho_max=cfg.rho_max,
            rho_init=cfg.rho_init,
            width=cfg.width,
        )
        self.renderer = NeuralRenderer(base_channels=cfg.renderer_channels)
        # FLAME is fixed: kept out of the module tree so DDP neither syncs nor saves it.
        object.__setattr__(self, "flame_layer", flame_layer)
        #: seconds spent rendering (rasterize, interpolate, shade, antialias) in the last
        #: forward pass, CUDA-synchronised: the rendering share of a training step
        self.render_seconds = 0.0

    def _autocast(self, device: torch.device):
        """bfloat16 autocast for the networks on CUDA when ``cfg.amp``; geometry, projection
        and rasterization always run in float32 (outside this context)."""
        enabled = self.cfg.amp and device.type == "cuda"
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled)

    def encode(self, images):
        with self._autocast(images.device):
            pred = self.model(images)
        return pred._replace(
            **{k: v.float() for k, v in pred._asdict().items() if isinstance(v, torch.Tensor)}
        )

    def rebuild(self, masked, rendered):
        with self._autocast(masked.device):
            return self.renderer(masked, rendered).float()

    def geometry(self, pred, expression=None, jaw_pose=None):
        out = self.flame_layer(
            shape=pred.shape,
            expression=pred.expression if expression is None else expression,
            global_pose=pred.global_pose,
            jaw_pose=pred.jaw_pose if jaw_pose is None else jaw_pose,
            eyelids=pred.eyelids if self.flame_layer.has_eyelids else None,
        )
        return out

    def render(self, out, pred, size, detach_camera=False):
        cam = [pred.scale, pred.trans, pred.rho]
        if detach_camera:
            cam = [c.detach() for c in cam]
        start = time.perf_counter()
        rendered = render_mesh(camera_vertices(out.vertices), self.flame_layer.faces, *cam, size)
        if rendered.image.is_cuda:
            torch.cuda.synchronize(rendered.image.device)
        self.render_seconds += time.perf_counter() - start
        return rendered

    def forward(self, images, landmarks, rho_prior, generator, with_images=False):
        """Losses for a batch: ``(total, stats, outputs)``.

        images ``[B,3,H,W]`` in [0, 1]; landmarks ``[B,68,2]`` NDC supervision;
        rho_prior ``[B]`` per-sample priors (NaN: none). Rendering, masking and the
        neural renderer run only when a loss needs them or ``with_images``.
        """
        cfg = self.cfg
        size = images.shape[-1]
        self.render_seconds = 0.0
        pred = self.encode(images)
        out = self.geometry(pred)
        lmk = project_landmarks(out.landmarks, pred.scale, pred.trans, pred.rho)
        sq = ((lmk - landmarks) ** 2).sum(-1)
        losses = {"landmarks": cfg.w_landmarks * sq.mean()}
        stats = {
            "lmk_jaw": sq[:, JAW].mean().detach() * 1e4,
            "lmk_other": sq[:, OTHER].mean().detach() * 1e4,
        }

        rendered = masked = recon = None
        if with_images or cfg.w_photometric > 0 or cfg.w_cycle > 0:
            rendered = self.render(out, pred, size)
            masked = mask_face(
                images,
                rendered.mask.detach(),
                landmarks.detach(),
                mode=cfg.masking,
                generator=generator,
            )
            recon = self.rebuild(masked.masked, rendered.image)
        if cfg.w_photometric > 0:
            losses["photometric"] = cfg.w_photometric * (recon - images).abs().mean()
        losses["shape_reg"] = cfg.w_shape_reg * pred.shape.square().sum(-1).mean()
        losses["expr_reg"] = cfg.w_expr_reg * pred.expression.square().sum(-1).mean()
        losses["jaw_reg"] = cfg.w_jaw_reg * pred.jaw_pose.square().sum(-1).mean()
        if cfg.camera == "pseudo" and cfg.w_rho_prior > 0:
            losses["rho_prior"] = ppcam.rho_prior_loss(pred.rho, rho_prior, cfg.w_rho_prior)
        if cfg.w_cycle > 0:
            losses["cycle"] = cfg.w_cycle * self._cycle(pred, masked.masked, size, generator)
        total = sum(losses.values())
        stats.update({k: v.detach() for k, v in losses.items()})
        stats["rho_mean"] = pred.rho.detach().mean()
        return total, stats, (pred, lmk, rendered, recon, masked)

    def _cycle(self, pred, masked_images, size, generator):
        """Edit the expression, render it, rebuild an image, re-encode: it must come back."""
        b = pred.expression.shape[0]
        delta = torch.randn(pred.expression.shape, generator=generator) * 0.5
        delta[:, 10:] = 0
        expression = pred.expression.detach() + delta.to(pred.expression)
        jaw = pred.jaw_pose.detach().clone()
        jaw[:, 0] = jaw[:, 0] + 0.25 * torch.rand(b, generator=generator).to(jaw)
        detached = pred._replace(
            **{
                k: getattr(pred, k).detach()
                for k in ("shape", "global_pose", "scale", "trans", "rho", "eyelids")
            }
        )
        out = self.geometry(detached, expression, jaw)
        rendered = self.render(out, detached, size, detach_camera=True)
        edited = self.rebuild(masked_images, rendered.image)
        with self._autocast(edited.device):
            expr_back, jaw_back, _ = self.model.encode_expression(edited)
        expr_back, jaw_back = expr_back.float(), jaw_back.float()
        return (expr_back - expression).abs().mean() + (jaw_back - jaw).abs().mean()


# ----------------------------------------------------------------------------- run


@dataclasses.dataclass
class DistInfo:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size())


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            return torch.device("cuda", local)
        return torch.device("cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {name!r}") from exc


def prior_table(cfg: TrainConfig) -> torch.Tensor:
    """The rho prior of every source, indexed by source id (NaN: no prior). Reads the
    folder's rho_prior.json, so build it once per run, not per step."""
    return torch.tensor([cfg.rho_prior(r) for r in SOURCES])


def rho_priors(cfg: TrainConfig, regime_ids: torch.Tensor) -> torch.Tensor:
    """Per-sample rho priors from the sources' ids (NaN: no prior)."""
    return prior_table(cfg)[regime_ids]


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
        self.dir = os.path.join(cfg.out_dir, cfg.name)
        self.device = pick_device(cfg.device)
        self.dist = init_distributed(self.device)
        self.progress = progress and self.dist.main
        torch.manual_seed(cfg.seed)
        self.flame_layer = flame.FLAME(cfg.flame, n_shape=cfg.n_shape, n_expr=cfg.n_expr)
        self.flame_layer.to(self.device)
        self.system = TrainingSystem(cfg, self.flame_layer).to(self.device)
        self.step = 0
        last = os.path.join(self.dir, "last.safetensors")
        if resume and os.path.exists(last):
            self._restore(last)
        else:
            if resume and self.dist.main:
                warnings.warn(f"--resume: no checkpoint at {last}, starting fresh", stacklevel=2)
            if init_from is not None:
                self._init_from(init_from)
            self.optimizer = self._make_optimizer()
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
            scale = cfg.camera_lr_scale if group["name"] == "camera_head" else 1.0
            group["lr"] = cfg.lr * scale
        groups.append(
            {"name": "renderer", "params": list(self.system.renderer.parameters()), "lr": cfg.lr}
        )
        return torch.optim.Adam(groups, lr=cfg.lr)

    def _init_from(self, path: str) -> None:
        """Start from a checkpoint of another run (e.g. the orthographic pretraining),
        switching its camera to this run's mode with the configured rho init."""
        tensors, info = ckpt.read_checkpoint(path)
        src = TrainConfig.from_dict(info["config"])
        for field in ("n_shape", "n_expr", "width", "renderer_channels", "image_size"):
            if getattr(src, field) != getattr(self.cfg, field):
                raise ValueError(
                    f"cannot initialise from {path}: its {field} is "
                    f"{getattr(src, field)}, this run's is {getattr(self.cfg, field)}"
                )
        donor = TrainingSystem(src, self.flame_layer)
        ckpt.load_model_state(donor, tensors)
        donor.model.set_camera(self.cfg.camera, rho_init=self.cfg.rho_init)
        self.system.load_state_dict(donor.state_dict())

    def _restore(self, path: str) -> None:
        tensors, info = ckpt.read_checkpoint(path)
        saved = TrainConfig.from_dict(info["config"])
        diff = config_diff(saved, self.cfg)
        if diff:
            raise ValueError(f"--resume with a different config than the saved run: {diff}")
        ckpt.load_model_state(self.system, tensors)
        self.optimizer = self._make_optimizer()
        ckpt.load_optimizer_state(self.optimizer, tensors, info)
        self.step = info["step"]

    # -- bookkeeping

    def save(self, name: str = "last.safetensors") -> None:
        if self.dist.main:
            ckpt.save_checkpoint(
                os.path.join(self.dir, name),
                self.system,
                self.optimizer,
                dataclasses.asdict(self.cfg),
                self.step,
            )

    def _log(self, record: dict) -> None:
        if not self.dist.main:
            return
        with open(os.path.join(self.dir, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(finite_or_none(record), allow_nan=False) + "\n")

    def _truncate_metrics(self) -> None:
        """On resume, drop records past the checkpoint (they will be recomputed)."""
        path = os.path.join(self.dir, "metrics.jsonl")
        if not (self.dist.main and os.path.exists(path)):
            return
        with open(path) as f:
            keep = [line for line in f if json.loads(line).get("step", 0) <= self.step]
        write_text(path, "".join(keep))

    # -- training

    def train(self, data: dict) -> dict:
        cfg, dev = self.cfg, self.device
        os.makedirs(self.dir, exist_ok=True)
        if self.dist.main:
            with open(os.path.join(self.dir, "config.json"), "w") as f:
                f.write(cfg.to_json())
        self._truncate_metrics()
        train = concat_regimes(data, cfg.sources(), "train")
        n = len(train["image"])
        priors_by_source = prior_table(cfg)
        bad_in_a_row = 0
        step_seconds = render_seconds = 0.0
        timed_steps = 0
        start = time.perf_counter()
        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            desc=cfg.name,
            unit="step",
            disable=not self.progress,
        )
        while self.step < cfg.steps:
            idx = batch_indices(n, cfg.batch_size, cfg.seed, self.step)
            idx = idx[self.dist.rank :: self.dist.world]
            images = train["image"][idx].to(dev).float() / 255.0
            landmarks = train["landmarks_noisy" if cfg.landmark_noise else "landmarks"][idx]
            priors = priors_by_source[train["regime"][idx]].to(dev)
            gen = seeded(cfg.seed, "step", self.step, self.dist.rank)
            self.system.train()
            t0 = time.perf_counter()
            total, stats, _ = self.ddp(images, landmarks.to(dev), priors, gen)
            if not torch.isfinite(total):
                bad_in_a_row += 1
                warnings.warn(f"step {self.step}: non-finite loss, step skipped", stacklevel=2)
                if bad_in_a_row >= cfg.max_bad_steps:
                    raise FloatingPointError(
                        f"{bad_in_a_row} non-finite losses in a row; stopping. The last good "
                        f"checkpoint is {os.path.join(self.dir, 'last.safetensors')}"
                    )
                self.step += 1
                continue
            bad_in_a_row = 0
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(self.system.parameters(), cfg.grad_clip)
            self.optimizer.step()
            self.step += 1
            record = {
                "step": self.step,
                "loss": float(total.detach()),
                "time_s": time.perf_counter() - t0,
                "render_fwd_s": self.system.render_seconds,
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
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                self.save()
            if self.dist.main and (self.step % cfg.eval_every == 0 or self.step == cfg.steps):
                self._epoch_outputs(data)
        bar.close()
        if step_seconds > 0:
            self._log(
                {
                    "step": self.step,
                    "kind": "timing",
                    "device": str(self.device),
                    "mean_step_s": step_seconds / timed_steps,
                    "render_fwd_share": render_seconds / step_seconds,
                }
            )
        self.save()
        if self.dist.main:
            self.save("final.safetensors")
        if self.dist.world > 1:
            self._check_ranks_agree()
        return {"steps": self.step, "seconds": time.perf_counter() - start}

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
        val = concat_regimes(data, self.cfg.sources(), "val")
        summary = evaluate_system(self.system, val, self.device)
        summary["step"] = self.step
        summary["kind"] = "val"
        self._log(summary)
        plot_curves(os.path.join(self.dir, "metrics.jsonl"), os.path.join(self.dir, "curves.png"))
        sample_grid(
            self.system,
            val,
            os.path.join(self.dir, f"samples-{self.step:06d}.png"),
            self.device,
            self.cfg,
        )


@torch.no_grad()
def predict(system: TrainingSystem, samples: Samples, device, batch: int = 64) -> dict:
    """Predicted landmarks (NDC), rho, scale and FLAME parameters for ``samples``."""
    system.eval()
    outs = []
    for start in range(0, len(samples["image"]), batch):
        images = samples["image"][start : start + batch].to(device).float() / 255.0
        pred = system.encode(images)
        out = system.geometry(pred)
        lmk = project_landmarks(out.landmarks, pred.scale, pred.trans, pred.rho)
        outs.append(
            {
                "landmarks": lmk.cpu(),
                "rho": pred.rho.cpu(),
                "scale": pred.scale.cpu(),
                "shape": pred.shape.cpu(),
                "trans": pred.trans.cpu(),
                "expression": pred.expression.cpu(),
                "jaw_pose": pred.jaw_pose.cpu(),
                "global_pose": pred.global_pose.cpu(),
            }
        )
    return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}


def evaluate_system(system: TrainingSystem, samples: Samples, device) -> dict:
    """Per-regime landmark errors (clean landmarks) and rho statistics."""
    pred = predict(system, samples, device)
    size = samples["image"].shape[-1]
    result = {}
    for rid, regime in enumerate(SOURCES):
        sel = samples["regime"] == rid
        if not bool(sel.any()):
            continue
        errs = landmark_errors(pred["landmarks"][sel], samples["landmarks"][sel], size)
        rho = rho_summary(pred["rho"][sel], samples["rho"][sel])
        result[regime] = {**errs, **{f"rho_{k}": v for k, v in rho.items()}}
    return result


def read_metrics(path: str) -> list[dict]:
    """The records of a run's ``metrics.jsonl`` (empty if the file does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_curves(metrics_path: str, out_path: str) -> None:
    """Loss terms and validation landmark errors against steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    steps = [r for r in records if "loss" in r]
    vals = [r for r in records if r.get("kind") == "val"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for key in ("loss", "landmarks", "photometric", "cycle", "rho_prior", "shape_reg"):
        xs = [r["step"] for r in steps if key in r]
        if xs:
            axes[0].plot(xs, [r[key] for r in steps if key in r], label=key, lw=1)
    axes[0].set_yscale("log")
    axes[0].set_title("training losses (weighted)")
    axes[0].legend(fontsize=7)
    for regime in SOURCES:
        xs = [r["step"] for r in vals if regime in r]
        if xs:
            axes[1].plot(xs, [r[regime]["jaw"] for r in vals if regime in r], label=f"{regime} jaw")
            axes[1].plot(
                xs, [r[regime]["other"] for r in vals if regime in r], "--", label=f"{regime} other"
            )
            axes[2].plot(
                xs,
                [r[regime]["rho_pred_mean"] for r in vals if regime in r],
                label=f"{regime} predicted",
            )
            truth = vals[-1][regime]["rho_true_mean"]
            if truth is not None and truth == truth:  # the folder has no true rho
                axes[2].axhline(truth, ls=":", lw=1, color="k")
    axes[1].set_title("val landmark error (NDC^2 x 1e4)")
    axes[1].set_yscale("log")
    axes[1].legend(fontsize=7)
    axes[2].set_title("val mean rho (dotted: truth)")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


@torch.no_grad()
def sample_grid(
    system: TrainingSystem, samples: Samples, path: str, device, cfg: TrainConfig, n: int = 6
) -> None:
    """Input, rendered geometry, reconstruction and landmarks for a few samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    system.eval()
    pick = torch.linspace(0, len(samples["image"]) - 1, min(n, len(samples["image"]))).long()
    images = samples["image"][pick].to(device).float() / 255.0
    true_lmk = samples["landmarks"][pick].to(device)
    total, _, (pred, lmk, rendered, recon, masked) = system(
        images,
        true_lmk,
        torch.zeros(len(pick), device=device),
        seeded(cfg.seed, "grid"),
        with_images=True,
    )
    size = images.shape[-1]
    fig, axes = plt.subplots(4, len(pick), figsize=(1.9 * len(pick), 7.6), squeeze=False)
    rows = [
        ("input", images),
        ("render", rendered.image),
        ("masked", masked.masked),
        ("reconstruction", recon),
    ]
    for r, (title, batch) in enumerate(rows):
        for c in range(len(pick)):
            ax = axes[r][c]
            ax.imshow(batch[c].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
            if r == 0:
                for pts, colour in ((true_lmk[c], "lime"), (lmk[c], "red")):
                    pix = ((pts + 1) * size / 2 - 0.5).cpu()
                    ax.scatter(pix[:, 0], pix[:, 1], s=2, c=colour)
                ax.set_title(
                    f"rho {float(pred.rho[c]):.2f}/{float(samples['rho'][pick[c]]):.2f}", fontsize=7
                )
            if c == 0:
                ax.set_ylabel(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("green: true landmarks, red: predicted; title: predicted/true rho", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
