"""``python -m bench.fit_coverage``: how often the fit's 95 % rho intervals hold the truth.

Fits FLAME (50 shape, 50 expression coefficients) and the rho camera to the noisy
landmarks of the default preset's synthetic test split (``train.finetune``'s: seed 0,
128 images per regime, the landmarks the report's fit rows read; nothing rendered
but a 16 px picture), one image at a time from the mean face, with the default fit
(the joint MAP) and with ``marginal=True`` (shape and rho with the image's own
variables integrated out, as ``train.fit`` estimates). Per regime: the intervals'
coverage (target 90-98 %), the truth below / above them, the intervals too wide to say
(more than a factor 3: "not observable"), the mean and median rho error and the
landmark noise scale the residuals show. Writes ``fit_coverage.json``, ``.md`` and
``.png`` under ``bench/results/<device-name>/``; docs/fitting.md quotes them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/raster.py

import torch  # noqa: E402

from _common.figures import pyplot, save_figure  # noqa: E402
from bench.common import bench_device, machine_fields, require_at_least, write_results  # noqa: E402
from train.data.sources import REGIMES  # noqa: E402
from train.data.synthetic import FaceGenerator  # noqa: E402
from train.engine.config import TrainConfig  # noqa: E402
from train.fit import fit_landmarks  # noqa: E402
from train.fit.fitting import DEFAULT_ITERATIONS  # noqa: E402
from train.fit.posterior import UNOBSERVABLE_RATIO  # noqa: E402

#: the fits compared: name -> fit_landmarks' marginal
CASES = {"default (joint MAP)": None, "marginal=True": True}


def split_landmarks(per_regime: int | None = None) -> dict[str, torch.Tensor]:
    """The default preset's test samples (landmarks and truth; ``per_regime`` of each
    regime, default the preset's ``n_test``), regimes in ``REGIMES`` order, and
    ``"layer"``: the FLAME layer they were made with."""
    data = TrainConfig.of(preset="default").validate().data
    gen = FaceGenerator(
        data.flame, size=16, n_shape=data.n_shape, n_expr=data.n_expr, seed=data.seed
    )
    n = per_regime or data.n_test
    parts = [gen.generate(regime, "test", list(range(n))) for regime in REGIMES]
    out = {k: torch.cat([p[k] for p in parts]) for k in ("landmarks_noisy", "rho", "regime")}
    out["layer"] = gen.layer
    return out


def coverage_row(name: str, data: dict, device, **kwargs) -> dict:
    """One case's per-regime coverage numbers (module docstring)."""
    start = time.perf_counter()
    fit = fit_landmarks(data["landmarks_noisy"], data["layer"], device=device, **kwargs)
    row = {"case": name, "seconds": time.perf_counter() - start, "images": len(fit.rho)}
    true, rho = data["rho"].double(), fit.rho.double()
    lo, hi = fit.rho_interval.double().unbind(-1)
    wide = ~((lo > 0) & (hi <= UNOBSERVABLE_RATIO * lo))
    for rid, regime in enumerate(REGIMES):
        sel = data["regime"] == rid
        err = rho[sel] / true[sel] - 1.0

        def pct(mask: torch.Tensor) -> float:
            return float(mask[sel].double().mean() * 100.0)  # noqa: B023

        row[regime] = {
            "images": int(sel.sum()),
            "coverage_pct": pct((lo <= true) & (true <= hi)),
            "truth_below_pct": pct(true < lo),
            "truth_above_pct": pct(true > hi),
            "too_wide_pct": pct(wide),
            "rho_off_pct": float((rho[sel].mean() / true[sel].mean() - 1) * 100.0),
            "median_abs_pct": float(err.abs().median() * 100.0),
            "noise_scale": float(fit.noise_scale[sel].double().mean()),
        }
    return row


def markdown(payload: dict) -> str:
    lines = [
        "# Coverage of the fit's 95 % rho intervals (train.fit)",
        "",
        f"`{payload['command']}`; device {payload['device']} ({payload['device_model']}), "
        f"torch {payload['torch']}; the default preset's test split ({payload['per_regime']} "
        f"images per regime, seed 0, 50 + 50 coefficients), noisy landmarks, "
        f"{payload['iterations']} L-BFGS iterations at most. Target: 90-98 %.",
        "",
        "| fit | regime | coverage | truth below / above | too wide | mean rho off "
        "| median abs | noise scale |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in payload["rows"]:
        for regime in REGIMES:
            r = row[regime]
            lines.append(
                f"| {row['case']} | {regime} | {r['coverage_pct']:.1f} % | "
                f"{r['truth_below_pct']:.1f} / {r['truth_above_pct']:.1f} % | "
                f"{r['too_wide_pct']:.0f} % | {r['rho_off_pct']:+.1f} % | "
                f"{r['median_abs_pct']:.1f} % | {r['noise_scale']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def plot(payload: dict, path: str) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 3))
    width = 0.8 / len(payload["rows"])
    for k, row in enumerate(payload["rows"]):
        xs = [i + k * width for i in range(len(REGIMES))]
        ax.bar(xs, [row[r]["coverage_pct"] for r in REGIMES], width, label=row["case"])
    ax.axhspan(90, 98, color="#cccccc", alpha=0.5, label="target")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(REGIMES))], REGIMES)
    ax.set_ylim(50, 100)
    ax.set_ylabel("95 % intervals holding the truth (%)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fit_coverage", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--per-regime", type=int, default=None, help="images per regime (default: 128)"
    )
    parser.add_argument("--iterations", type=int, default=None, help="L-BFGS iterations")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--out", default=os.path.join("bench", "results"), help="output root")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 images, 5 iterations")
    given = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(given)
    require_at_least(parser, args, ("per_regime", "iterations"))
    per_regime, iterations = args.per_regime, args.iterations
    if args.quick:
        per_regime, iterations = 4, 5
    device = bench_device(args.device)
    data = split_landmarks(per_regime)
    rows = [
        coverage_row(name, data, device, iterations=iterations, marginal=marginal)
        for name, marginal in CASES.items()
    ]
    payload = {
        **machine_fields(device),
        "command": " ".join(
            ["python -m bench.fit_coverage", *(sys.argv[1:] if argv is None else argv)]
        ),
        "per_regime": len(data["rho"]) // len(REGIMES),
        "iterations": iterations or DEFAULT_ITERATIONS,
        "rows": rows,
    }
    write_results(args.out, "fit_coverage", payload, markdown, plot)
    return payload


if __name__ == "__main__":
    main()
