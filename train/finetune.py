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

``--init CKPT`` fine-tunes a given checkpoint instead of the pretraining, e.g.
SMIRK's released model converted by ``train.import_smirk`` (which then is the
report's orthographic pretrained model, p); the networks' structure, image size and
FLAME model come from it.

Every hyperparameter is a flag (``--help``); ``--preset smoke|default|full``.
``--resume`` continues killed runs and skips finished ones.
"""

from __future__ import annotations

import argparse
import os
import sys

from train.data.cache import load_data
from train.engine.checkpoint import read_info
from train.engine.config import add_config_arguments, config_from_args
from train.engine.device import init_distributed, pick_device
from train.engine.recipe import (
    BASELINES,
    FINETUNE_DEFAULTS,
    INIT_FIELDS,
    adopt_init_structure,
    ensure_pretrained,
    finetune_runs,
    pretrain_config,
    replicates,
    run_dir,
)
from train.engine.run import Run
from train.eval.report import headline
from train.eval.results import evaluate


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m train.finetune",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="independent training replicates of every run, pretraining included, on the "
        "same data (replicate k > 0 adds -r<k> to the run names; the report gives each "
        "headline change as the mean over replicates with an interval over replicates and "
        "test images) (default: 1)",
    )
    parser.add_argument("--resume", action="store_true", help="continue killed runs")
    parser.add_argument(
        "--init",
        "--init-from",
        dest="init_from",
        default=None,
        help="checkpoint to fine-tune from, e.g. SMIRK's converted by train.import_smirk "
        "(default: the pretraining run, trained first if absent); the networks' structure "
        "(arch, n_shape, n_expr, width, renderer_channels), image_size and flame come from it "
        "unless given",
    )
    parser.add_argument(
        "--report", default=None, help="evaluation report folder (default: <out-dir>/<name>/report)"
    )
    parser.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples of the report's intervals"
    )
    parser.add_argument(
        "--no-fit", action="store_true", help="leave the fitting rows (train.fit) out of the report"
    )
    args = parser.parse_args(argv)
    if args.init_from is not None and not os.path.isfile(args.init_from):
        parser.error(f"--init: no such checkpoint {args.init_from}")
    try:
        cfg = config_from_args(args, FINETUNE_DEFAULTS)
        if args.init_from is not None:
            explicit = {f for f in INIT_FIELDS if getattr(args, f) is not None}
            cfg = adopt_init_structure(cfg, args.init_from, explicit)
        reps = replicates(cfg, args.seeds)
        runs = [finetune_runs(rep, args.baselines, args.ablations) for rep in reps]
    except (FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))
    if args.bootstrap < 0:
        parser.error(f"--bootstrap must be >= 0, got {args.bootstrap}")

    dist = init_distributed(pick_device(cfg.run.device))
    run_dirs = []
    for rep, rep_runs in zip(reps, runs):
        try:  # with --init every replicate starts from that one checkpoint
            init = args.init_from or ensure_pretrained(rep)
        except ValueError as exc:
            parser.error(str(exc))
        # the same data for every replicate (cached after the first)
        data = load_data(rep.data, rep.run.out_dir)
        for run_cfg in rep_runs:
            Run(run_cfg, init_from=init, resume=args.resume).train(data)
        if args.init_from is None:
            run_dirs.append(run_dir(pretrain_config(rep)))
        run_dirs += [run_dir(r) for r in rep_runs]
    if not dist.main:
        return {}
    if args.init_from is not None and "imported_from" in read_info(args.init_from)["extra"]:
        run_dirs.insert(0, args.init_from)  # e.g. SMIRK's released model: the report's (p)
    out = args.report or os.path.join(run_dir(cfg), "report")
    command = "python -m train.finetune " + " ".join(argv if argv is not None else sys.argv[1:])
    results = evaluate(
        run_dirs, out, cfg.run.device, n_boot=args.bootstrap, command=command, fits=not args.no_fit
    )
    print(headline(results))
    print(f"\nreport: {os.path.join(out, 'report.md')}", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
