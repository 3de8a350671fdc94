"""``python -m train.evaluate --runs runs/<a> runs/<b> ... [--out report]``, or
``python -m train.evaluate --rejudge REPORT_DIR``.

The paper's evaluation, reproduced on held-out data with known ground truth.
Every given run (a training directory holding ``final.safetensors``) is
evaluated on the test split of each regime (and of ``--folder`` data, if a run
trained with one). Written to ``--out``:

- ``results.json``: every number of the report, with bootstrap confidence intervals;
- ``report.md``: table 1 (landmark error), table 2 (neutral-shape error in mm),
  table 3 (rho against the truth), the fitting rows (``train.fit`` on the test
  landmarks: from the mean face, orthographic, rho model + fit, per capture, the
  landmark-only bound; ``--no-fit`` leaves them out; ``--photometric-fit`` adds the
  photometric fit to the test images, :mod:`train.eval.photo_rows`), the rho sweep
  (figure 2), the full-perspective baseline (sec. 6.2), overlays, rho scatter and
  histograms, the ablations, and the issue's targets with met / missed;
- the figures (PNG) it shows.

A run's role comes from its saved config: orthographic on ``studio``+``wild``
only is the pretrained model (p), orthographic on all regimes the retrained one
(r), ``pseudo`` the rho model and ``perspective`` the sec. 6.2 baseline; a rho
run without the rho prior, with SMIRK masking or with the paper's rho init is
the matching ablation. Nothing in the report is typed in: it is all computed here.

``--rejudge`` judges the targets of a written report again from its ``results.json``
(the numbers stay; the verdicts follow this code) and rewrites its ``report.md``.
"""

from __future__ import annotations

import argparse
import os
import sys

from train.eval.report import headline, targets_section
from train.eval.results import evaluate, rejudge


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--runs", nargs="+", help="run directories to compare")
    what.add_argument(
        "--rejudge",
        metavar="REPORT_DIR",
        help="judge the targets of a written report again from its results.json and "
        "rewrite its report.md (no model needed)",
    )
    parser.add_argument("--out", default="report", help="output folder (default: report)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    parser.add_argument(
        "--no-fit",
        action="store_true",
        help="leave out the fitting rows (FLAME and the camera fitted to the test landmarks)",
    )
    parser.add_argument(
        "--photometric-fit",
        action="store_true",
        help="add the photometric fit row: FLAME, rho, albedo and light fitted to the test "
        "images (train.fit.fit_images; slow on a CPU, about 2-4 s per 96 px image)",
    )
    args = parser.parse_args(argv)
    if args.bootstrap < 0:
        parser.error(f"--bootstrap must be >= 0, got {args.bootstrap}")
    if args.photometric_fit and args.no_fit:
        parser.error("--photometric-fit is a fitting row: it cannot go with --no-fit")
    if args.photometric_fit and args.rejudge:
        parser.error("--photometric-fit fits: it cannot go with --rejudge")
    command = "python -m train.evaluate " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.rejudge:
        try:
            results = rejudge(args.rejudge, command)
        except (FileNotFoundError, ValueError) as exc:
            parser.error(str(exc))
        print(report_targets(results))
        return results
    for run_dir in args.runs:
        if not os.path.isdir(run_dir):
            parser.error(f"--runs: {run_dir} is not a directory")
    try:
        results = evaluate(
            args.runs,
            args.out,
            args.device,
            args.bootstrap,
            args.seed,
            command=command,
            fits=not args.no_fit,
            photometric_fit=args.photometric_fit,
        )
    except (FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))
    print(headline(results))
    print(f"\nreport: {os.path.join(args.out, 'report.md')}", file=sys.stderr)
    return results


def report_targets(results: dict) -> str:
    return "\n".join(targets_section(results))


if __name__ == "__main__":
    main()
