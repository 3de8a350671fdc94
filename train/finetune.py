"""``python -m train.finetune``: the paper's recipe, end to end.

1. Pretrain the orthographic model on ``studio`` + ``wild`` (``train.pretrain``),
   unless its checkpoint exists already.
2. Fine-tune it on all regimes with the rho camera (``--camera pseudo``, the
   paper), the per-regime rho prior and the paper's masking.
3. With ``--baselines ortho`` (the default) also retrain the orthographic model on
   all regimes with the same budget; ``--baselines all`` adds the full-perspective
   baseline (regressing f and t_z, the paper's sec. 6.2); ``none`` skips them.
4. Evaluate every run on the held-out test split of each regime and print the
   headline table: predicted rho against the truth, and landmark errors.

Every hyperparameter is a flag (``--help``); ``--preset smoke|default|full``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

from train.config import TrainConfig, add_config_arguments, config_from_args
from train.loop import (
    Run,
    concat_regimes,
    evaluate_system,
    init_distributed,
    load_data,
    pick_device,
)
from train.metrics import finite_or_none
from train.pretrain import pretrain_config, run_pretraining

FINETUNE_DEFAULTS = {"name": "finetune", "camera": "pseudo"}
BASELINES = {"none": (), "ortho": ("ortho",), "all": ("ortho", "perspective")}


def run_dir(cfg: TrainConfig) -> str:
    return os.path.join(cfg.out_dir, cfg.name)


def ensure_pretrained(cfg: TrainConfig, progress: bool = True) -> str:
    """Path of the orthographic checkpoint this fine-tuning starts from (trained if absent)."""
    pre = pretrain_config(cfg)
    path = os.path.join(run_dir(pre), "final.safetensors")
    if not os.path.exists(path):
        resume = os.path.exists(os.path.join(run_dir(pre), "last.safetensors"))
        run_pretraining(pre, resume=resume, progress=progress)
    return path


def finetune_runs(cfg: TrainConfig, baselines: str) -> list[TrainConfig]:
    """The paper's run and the requested baselines, all with the same budget."""
    runs = [cfg]
    for camera in BASELINES[baselines]:
        if camera != cfg.camera:
            runs.append(dataclasses.replace(cfg, camera=camera, name=f"{cfg.name}-{camera}"))
    return runs


def evaluate_runs(runs: dict[str, Run], data: dict, regimes) -> dict:
    test = concat_regimes(data, regimes, "test")
    return {name: evaluate_system(run.system, test, run.device) for name, run in runs.items()}


def _corr(value: float) -> str:
    """A correlation, or a dash where it is undefined (constant predictions, e.g. ortho)."""
    return "–" if value != value else f"{value:.2f}"


def _pm(mean: float, std: float) -> str:
    """``mean ± std``, or a dash where there is no truth (real folder data)."""
    return "–" if mean != mean else f"{mean:.2f} ± {std:.2f}"


def headline_table(results: dict) -> str:
    """Markdown: per regime and run, rho (pred vs true) and landmark errors."""
    lines = [
        "| run | regime | rho predicted | rho true | Pearson r | jaw err (x1e4) | other err "
        "(x1e4) | jaw px | other px |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, per_regime in results.items():
        for regime, m in per_regime.items():
            lines.append(
                f"| {name} | {regime} | {m['rho_pred_mean']:.2f} ± {m['rho_pred_std']:.2f} | "
                f"{_pm(m['rho_true_mean'], m['rho_true_std'])} | {_corr(m['rho_pearson'])} | "
                f"{m['jaw']:.2f} | {m['other']:.2f} | {m['jaw_px']:.2f} | {m['other_px']:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m train.finetune", description=__doc__)
    add_config_arguments(parser, FINETUNE_DEFAULTS)
    parser.add_argument(
        "--baselines",
        choices=sorted(BASELINES),
        default="ortho",
        help="baselines trained with the same budget (default: ortho)",
    )
    parser.add_argument("--resume", action="store_true", help="continue killed runs")
    parser.add_argument(
        "--init-from",
        default=None,
        help="checkpoint to fine-tune from (default: the pretraining run, trained first if absent)",
    )
    args = parser.parse_args(argv)
    try:
        cfg = config_from_args(args, FINETUNE_DEFAULTS)
    except ValueError as exc:
        parser.error(str(exc))
    if args.init_from is not None and not os.path.exists(args.init_from):
        parser.error(f"--init-from: no such checkpoint {args.init_from}")

    init_distributed(pick_device(cfg.device))
    init = args.init_from or ensure_pretrained(cfg)
    data = load_data(cfg)
    runs = {}
    for run_cfg in finetune_runs(cfg, args.baselines):
        run = Run(run_cfg, init_from=init, resume=args.resume)
        run.train(data)
        runs[run_cfg.camera] = run
    pre_cfg = pretrain_config(cfg)
    pretrained = Run(dataclasses.replace(pre_cfg), resume=True, progress=False)
    runs = {"ortho-pretrained": pretrained, **runs}
    results = evaluate_runs(runs, data, cfg.sources())
    table = headline_table(results)
    if runs["ortho-pretrained"].dist.rank != 0:
        return results
    out = run_dir(cfg)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(
            finite_or_none({"config": dataclasses.asdict(cfg), "results": results}),
            f,
            indent=2,
            allow_nan=False,
        )
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(f"# {cfg.name}: test split, preset {cfg.preset}\n\n{table}\n")
    print(table)
    return results


if __name__ == "__main__":
    main()
