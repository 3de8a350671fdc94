"""``python -m train.finetune``: the paper's recipe, end to end.

1. Pretrain the orthographic model on ``studio`` + ``wild`` (``train.pretrain``),
   unless its checkpoint exists already.
2. Fine-tune it on all regimes with the rho camera (``--camera pseudo``, the
   paper), the per-regime rho prior and the paper's masking.
3. With ``--baselines ortho`` (the default) also retrain the orthographic model on
   all regimes with the same budget; ``--baselines all`` adds the full-perspective
   baseline (regressing f and t_z, the paper's sec. 6.2); ``none`` skips them.
   ``--ablations all`` adds the three ablations of the rho model, same budget:
   no rho prior, SMIRK masking, the paper's rho init.
4. Evaluate every run with ``train.evaluate`` (report in ``<run>/report/``, or
   ``--report DIR``) and print the headline table: predicted rho against the truth
   and the landmark errors of the rho model against the orthographic retrained one.

Every hyperparameter is a flag (``--help``); ``--preset smoke|default|full``.
``--resume`` continues killed runs and skips finished ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from train import evaluate, report
from train.config import TrainConfig, add_config_arguments, config_diff, config_from_args
from train.loop import Run, init_distributed, load_data, pick_device
from train.pretrain import pretrain_config, run_pretraining

FINETUNE_DEFAULTS = {"name": "finetune", "camera": "pseudo"}
BASELINES = {"none": (), "ortho": ("ortho",), "all": ("ortho", "perspective")}
#: ``--ablations all``: run-name suffix and the changed fields of each ablation
ABLATION_RUNS = {
    "noprior": evaluate.ABLATIONS["rho-no-prior"],
    "smirkmask": evaluate.ABLATIONS["rho-smirk-masking"],
    "paperinit": evaluate.ABLATIONS["rho-paper-init"],
}


def run_dir(cfg: TrainConfig) -> str:
    return os.path.join(cfg.out_dir, cfg.name)


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


def finetune_runs(cfg: TrainConfig, baselines: str, ablations: str = "none") -> list[TrainConfig]:
    """The paper's run, the requested baselines and ablations, all with the same budget."""
    runs = [cfg]
    for camera in BASELINES[baselines]:
        if camera != cfg.camera:
            runs.append(dataclasses.replace(cfg, camera=camera, name=f"{cfg.name}-{camera}"))
    if ablations == "all":
        if cfg.camera != "pseudo":
            raise ValueError("--ablations all ablates the rho model: it needs --camera pseudo")
        for suffix, fields in ABLATION_RUNS.items():
            if any(getattr(cfg, k) != v for k, v in fields.items()):
                runs.append(dataclasses.replace(cfg, name=f"{cfg.name}-{suffix}", **fields))
    return [r.validate() for r in runs]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m train.finetune", description=__doc__)
    add_config_arguments(parser, FINETUNE_DEFAULTS)
    parser.add_argument(
        "--baselines",
        choices=sorted(BASELINES),
        default="ortho",
        help="baselines trained with the same budget (default: ortho)",
    )
    parser.add_argument(
        "--ablations",
        choices=("none", "all"),
        default="none",
        help="also train the rho model without its prior, with SMIRK masking and with the "
        "paper's rho init (default: none)",
    )
    parser.add_argument("--resume", action="store_true", help="continue killed runs")
    parser.add_argument(
        "--init-from",
        default=None,
        help="checkpoint to fine-tune from (default: the pretraining run, trained first if absent)",
    )
    parser.add_argument(
        "--report", default=None, help="evaluation report folder (default: <out-dir>/<name>/report)"
    )
    parser.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples of the report's intervals"
    )
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args, FINETUNE_DEFAULTS)
        runs = finetune_runs(cfg, args.baselines, args.ablations)
    except ValueError as exc:
        parser.error(str(exc))
    if args.init_from is not None and not os.path.exists(args.init_from):
        parser.error(f"--init-from: no such checkpoint {args.init_from}")
    if args.bootstrap < 0:
        parser.error(f"--bootstrap must be >= 0, got {args.bootstrap}")

    dist = init_distributed(pick_device(cfg.device))
    try:
        init = args.init_from or ensure_pretrained(cfg)
    except ValueError as exc:
        parser.error(str(exc))
    data = load_data(cfg)
    for run_cfg in runs:
        Run(run_cfg, init_from=init, resume=args.resume).train(data)
    if not dist.main:
        return {}
    run_dirs = [run_dir(r) for r in runs]
    if args.init_from is None:
        run_dirs.insert(0, run_dir(pretrain_config(cfg)))
    out = args.report or os.path.join(run_dir(cfg), "report")
    command = "python -m train.finetune " + " ".join(argv if argv is not None else sys.argv[1:])
    results = evaluate.evaluate(run_dirs, out, cfg.device, n_boot=args.bootstrap, command=command)
    print(report.headline(results))
    print(f"\nreport: {os.path.join(out, 'report.md')}", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
