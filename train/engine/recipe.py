"""The paper's recipe as runs: the orthographic pretraining a fine-tuning starts
from, and the fine-tuning runs with their baselines and ablations."""

from __future__ import annotations

import json
import os

from train.data.cache import load_data
from train.engine.checkpoint import read_info
from train.engine.config import ABLATIONS, TrainConfig, config_diff
from train.engine.device import init_distributed, pick_device
from train.engine.run import Run

PRETRAIN_DEFAULTS = {"name": "pretrain", "camera": "ortho", "regimes": ("studio", "wild")}
FINETUNE_DEFAULTS = {"name": "finetune", "camera": "pseudo"}
BASELINES = {"none": (), "ortho": ("ortho",), "all": ("ortho", "perspective")}
#: ``--ablations all``: run-name suffix and the changed fields of each ablation
ABLATION_RUNS = {
    "noprior": ABLATIONS["rho-no-prior"],
    "smirkmask": ABLATIONS["rho-smirk-masking"],
    "paperinit": ABLATIONS["rho-paper-init"],
}


#: fields an orthographic run never reads: the pretraining keeps their defaults, so
#: fine-tunings (and ablations) that differ only in them share one pretraining
_RHO_ONLY_FIELDS = (
    "rho_max",
    "rho_init",
    "camera_lr_scale",
    "w_rho_prior",
    "rho_prior_hmc",
    "rho_prior_studio",
    "rho_prior_wild",
    "folder_test_fraction",
    "folder_rho_prior",
)


def pretrain_config(finetune: TrainConfig) -> TrainConfig:
    """The pretraining that a fine-tuning run starts from: same data and model sizes,
    orthographic camera, far regimes, ``pretrain_steps`` steps."""
    defaults = TrainConfig()
    return finetune.replace(
        name=f"pretrain-{finetune.run.preset}{replicate_suffix(finetune)}",
        camera="ortho",
        regimes=("studio", "wild"),
        steps=finetune.schedule.pretrain_steps,
        folder="",  # real data joins the fine-tuning only
        **{k: defaults.get(k) for k in _RHO_ONLY_FIELDS},
    ).validate()


def replicate_suffix(cfg: TrainConfig) -> str:
    """Run-name suffix of a training replicate: "" for replicate 0, ``-r<k>`` otherwise."""
    return f"-r{cfg.run.replicate}" if cfg.run.replicate else ""


def replicates(cfg: TrainConfig, n: int) -> list[TrainConfig]:
    """``cfg`` as ``n`` training replicates 0..n-1 (same data; run names with
    :func:`replicate_suffix` added)."""
    if n < 1:
        raise ValueError(f"--seeds must be >= 1, got {n}")
    base = cfg.run.name.removesuffix(replicate_suffix(cfg))
    out = []
    for k in range(n):
        rep = cfg.replace(replicate=k, name=base)
        out.append(rep.replace(name=base + replicate_suffix(rep)).validate())
    return out


def run_pretraining(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> Run:
    """Train the pretraining run ``cfg`` on its data (``resume``: continue a killed one)."""
    init_distributed(pick_device(cfg.run.device))
    data = load_data(cfg.data, cfg.run.out_dir, progress=progress)
    run = Run(cfg, resume=resume, progress=progress)
    run.train(data)
    return run


def run_dir(cfg: TrainConfig) -> str:
    """The folder of a run: ``<out_dir>/<name>``."""
    return os.path.join(cfg.run.out_dir, cfg.run.name)


def ensure_pretrained(cfg: TrainConfig, progress: bool = True) -> str:
    """Path of the orthographic checkpoint this fine-tuning starts from (trained if absent)."""
    pre = pretrain_config(cfg)
    path = os.path.join(run_dir(pre), "final.safetensors")
    saved = os.path.join(run_dir(pre), "config.json")
    if os.path.exists(path) and os.path.exists(saved):
        with open(saved) as f:
            found = TrainConfig.from_dict(json.load(f))
        bookkeeping = ("device", "eval_every", "checkpoint_every", "max_bad_steps")
        diff = config_diff(found, pre, ignore=bookkeeping)
        if diff:
            raise ValueError(
                f"{run_dir(pre)} was pretrained with other settings than this run asks for "
                f"(saved, wanted): {diff}; use another --out-dir, or --init-from a checkpoint"
            )
    if not os.path.exists(path):
        resume = os.path.exists(os.path.join(run_dir(pre), "last.safetensors"))
        run_pretraining(pre, resume=resume, progress=progress)
    return path


#: fields that fix the networks' structure and the data they read: a fine-tuning started
#: from a checkpoint takes them from it unless the command line sets them
INIT_FIELDS = ("arch", "n_shape", "n_expr", "width", "renderer_channels", "image_size", "flame")


def adopt_init_structure(cfg: TrainConfig, init_path: str, explicit: set[str]) -> TrainConfig:
    """``cfg`` with :data:`INIT_FIELDS` taken from the checkpoint ``init_path``'s config,
    except those in ``explicit`` (set on the command line), which must then agree with
    it for the structural ones (all but ``image_size`` and ``flame``)."""
    init = TrainConfig.from_dict(read_info(init_path)["config"])
    changes = {}
    for field in INIT_FIELDS:
        theirs = init.get(field)
        if field not in explicit:
            changes[field] = theirs
        elif field not in ("image_size", "flame") and cfg.get(field) != theirs:
            raise ValueError(
                f"--{field.replace('_', '-')} {cfg.get(field)} does not match the "
                f"checkpoint {init_path} ({theirs}); leave it out to take the checkpoint's"
            )
    return cfg.replace(**changes).validate()


def finetune_runs(cfg: TrainConfig, baselines: str, ablations: str = "none") -> list[TrainConfig]:
    """The paper's run, the requested baselines and ablations, all with the same budget."""
    runs = [cfg]
    rep = replicate_suffix(cfg)
    base = cfg.run.name.removesuffix(rep)
    for camera in BASELINES[baselines]:
        if camera != cfg.model.camera:
            runs.append(cfg.replace(camera=camera, name=f"{base}-{camera}{rep}"))
    if ablations == "all":
        if cfg.model.camera != "pseudo":
            raise ValueError("--ablations all ablates the rho model: it needs --camera pseudo")
        for suffix, fields in ABLATION_RUNS.items():
            if any(cfg.get(k) != v for k, v in fields.items()):
                runs.append(cfg.replace(name=f"{base}-{suffix}{rep}", **fields))
    return [r.validate() for r in runs]
