"""``python -m train.pretrain``: the orthographic model on ``studio`` + ``wild``.

Our stand-in for the pretrained SMIRK that the paper fine-tunes: camera
``ortho`` (rho fixed to 0), far-away regimes only. Every config field is a
flag (``--help``); ``--preset smoke|default|full`` picks a size.
"""

from __future__ import annotations

import dataclasses
import sys

from train.config import TrainConfig, parse_config
from train.loop import Run, init_distributed, load_data, pick_device

PRETRAIN_DEFAULTS = {"name": "pretrain", "camera": "ortho", "regimes": ("studio", "wild")}


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
    return dataclasses.replace(
        finetune,
        name=f"pretrain-{finetune.preset}",
        camera="ortho",
        regimes=("studio", "wild"),
        steps=finetune.pretrain_steps,
        folder="",  # real data joins the fine-tuning only
        **{k: getattr(defaults, k) for k in _RHO_ONLY_FIELDS},
    ).validate()


def run_pretraining(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> Run:
    init_distributed(pick_device(cfg.device))
    data = load_data(cfg, progress=progress)
    run = Run(cfg, resume=resume, progress=progress)
    run.train(data)
    return run


def main(argv: list[str] | None = None) -> None:
    cfg, args = parse_config(argv, base=PRETRAIN_DEFAULTS, prog="python -m train.pretrain")
    run = run_pretraining(cfg, resume=args.resume)
    print(f"pretraining done: {run.dir}/final.safetensors", file=sys.stderr)


if __name__ == "__main__":
    main()
