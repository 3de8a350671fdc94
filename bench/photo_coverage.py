"""``python -m bench.photo_coverage``: how often the photometric fit's 95 % rho intervals
hold the truth, and the calibration they need.

Fits :func:`train.fit.fit_images` (20 shape, 20 expression coefficients) to textured
synthetic single images (:class:`train.data.textured_faces.TexturedFaceGenerator`,
seed 0, noisy landmarks) per regime, on two splits: ``val`` estimates the calibration
(the factor by which the half-widths of the intervals, in log rho, must grow for 95 %
of them to hold the truth: the 95th percentile of ``|log(rho_true / rho)| / half``),
``test`` measures the coverage of the intervals as ``fit_images`` returns them (with
``train.fit.photo_posterior.VARIANCE_INFLATION`` applied), of the uncalibrated ones
(without it) and of the landmark-only start's. Writes ``photo_coverage.json``, ``.md``
and ``.png`` under ``bench/results/<device-name>/``; docs/fitting.md quotes them.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/raster.py

import torch  # noqa: E402

from _common.figures import pyplot, save_figure  # noqa: E402
from bench.common import bench_device, machine_fields, require_at_least, write_results  # noqa: E402
from train.data.sources import REGIMES  # noqa: E402
from train.data.textured_faces import TexturedFaceGenerator  # noqa: E402
from train.fit.photo_posterior import VARIANCE_INFLATION  # noqa: E402
from train.fit.photometric import fit_images  # noqa: E402

SPLITS = ("val", "test")


def _samples(gen, regime: str, split: str, n: int, frames: int) -> list[dict]:
    if frames == 1:
        return [gen.generate_textured(regime, split, list(range(n)))]
    return [gen.generate_textured_capture(regime, split, i, list(range(frames))) for i in range(n)]


def split_rows(
    gen,
    split: str,
    n: int,
    iterations: int,
    device,
    landmark_iterations: int | None = None,
    frames: int = 1,
) -> list[dict]:
    """One split's rows, one per regime: coverage and the half-width ratios (module
    docstring) of ``n`` single images or, with ``frames > 1``, of ``n`` captures of that
    many frames; the regimes' images are fitted in one batch."""
    parts = [p for regime in REGIMES for p in _samples(gen, regime, split, n, frames)]
    images = torch.cat([p["image"] for p in parts])
    groups = torch.arange(len(images)) // frames
    start = time.perf_counter()
    fit = fit_images(
        images,
        torch.cat([p["landmarks_noisy"] for p in parts]),
        gen.layer,
        groups=groups,
        iterations=iterations,
        texture_size=64,
        device=device,
        landmark_iterations=landmark_iterations,
    )
    seconds = time.perf_counter() - start
    first = slice(None, None, frames)  # a capture's first frame carries its rho
    rho, interval = fit.rho[first], fit.rho_interval[first]
    start_rho, start_interval = fit.start.rho[first], fit.start.rho_interval[first]
    true = torch.cat([p["rho"] for p in parts]).double()[first]

    def ratios(interval: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        centre = rho.double().cpu().log()
        lo, hi = interval.double().cpu().log().unbind(-1)
        half = torch.where(true.log() > centre, hi - centre, centre - lo)
        return (true.log() - centre).abs() / half

    def median_off(rho: torch.Tensor) -> torch.Tensor:
        return (true / rho.double().cpu()).log().abs()

    def half_width(interval: torch.Tensor) -> torch.Tensor:
        return interval.double().cpu().log().diff(dim=-1)[:, 0] / 2

    ratio = ratios(interval, rho)
    start_ratio = ratios(start_interval, start_rho)
    raw = ratio * math.sqrt(VARIANCE_INFLATION)  # the intervals before calibration
    rows = []
    for k, regime in enumerate(REGIMES):
        sel = slice(k * n, (k + 1) * n)

        def pct(mask: torch.Tensor) -> float:
            return float(mask[sel].double().mean() * 100.0)  # noqa: B023

        rows.append(
            {
                "regime": regime,
                "split": split,
                "problems": n,
                "frames": frames,
                "seconds_all_regimes": seconds,
                "coverage_pct": pct(ratio <= 1),
                "uncalibrated_coverage_pct": pct(raw <= 1),
                "landmark_coverage_pct": pct(start_ratio <= 1),
                "median_abs_pct": float(median_off(rho)[sel].median().expm1() * 100),
                "landmark_median_abs_pct": float(median_off(start_rho)[sel].median().expm1() * 100),
                "median_half_width": float(half_width(interval)[sel].median()),
                "landmark_median_half_width": float(half_width(start_interval)[sel].median()),
                "uncalibrated_ratios": raw[sel].tolist(),
            }
        )
    return rows


def needed_inflation(rows: list[dict], split: str = "val") -> float:
    """The variance factor that brings the uncalibrated intervals of ``split`` to 95 %."""
    ratios = torch.tensor(
        [r for row in rows if row["split"] == split for r in row["uncalibrated_ratios"]]
    )
    return float(torch.quantile(ratios, 0.95)) ** 2


def markdown(payload: dict) -> str:
    frames = payload["frames"]
    what = "single images" if frames == 1 else f"captures of {frames} frames"
    lines = [
        "# Coverage of the photometric fit's 95 % rho intervals (train.fit.fit_images)",
        "",
        f"`{payload['command']}`; device {payload['device']} ({payload['device_model']}), "
        f"torch {payload['torch']}; textured synthetic {what}, {payload['per_regime']} "
        f"per regime and split, {payload['size']} px, {payload['iterations']} iterations, "
        f"20 + 20 coefficients, noisy landmarks. Variance inflation in use "
        f"{payload['variance_inflation']:.1f}; needed on `val` "
        f"{payload['needed_inflation_val']:.1f}. Target: 90-98 %.",
        "",
        "| split | regime | coverage | uncalibrated | landmark fit | median abs off "
        "(photo / landmark) | half-width in log rho (photo / landmark) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in payload["rows"]:
        lines.append(
            f"| {r['split']} | {r['regime']} | {r['coverage_pct']:.0f} % | "
            f"{r['uncalibrated_coverage_pct']:.0f} % | {r['landmark_coverage_pct']:.0f} % | "
            f"{r['median_abs_pct']:.1f} / {r['landmark_median_abs_pct']:.1f} % | "
            f"{r['median_half_width']:.3f} / {r['landmark_median_half_width']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def plot(payload: dict, path: str) -> None:
    plt = pyplot()

    rows = [r for r in payload["rows"] if r["split"] == "test"]
    fig, ax = plt.subplots(figsize=(6, 3))
    keys = {
        "coverage_pct": "photometric (calibrated)",
        "uncalibrated_coverage_pct": "photometric (uncalibrated)",
        "landmark_coverage_pct": "landmark fit",
    }
    width = 0.8 / len(keys)
    for k, (key, label) in enumerate(keys.items()):
        xs = [i + k * width for i in range(len(rows))]
        ax.bar(xs, [r[key] for r in rows], width, label=label)
    ax.axhspan(90, 98, color="#cccccc", alpha=0.5, label="target")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], [r["regime"] for r in rows])
    ax.set_ylim(0, 100)
    ax.set_ylabel("95 % intervals holding the truth (%)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m bench.photo_coverage", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--per-regime", type=int, default=16, help="images per regime and split")
    parser.add_argument(
        "--frames", type=int, default=1, help="frames per capture (1: single images)"
    )
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--iterations", type=int, default=24, help="photometric iterations")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--out", default=os.path.join("bench", "results"), help="output root")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2 images, 32 px, 2 steps, 5 landmark steps"
    )
    given = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(given)
    require_at_least(parser, args, ("per_regime", "iterations", "frames"))
    require_at_least(parser, args, ("size",), 32)
    n, size, iterations = args.per_regime, args.size, args.iterations
    if args.quick:
        n, size, iterations = 2, 32, 2
    device = bench_device(args.device)
    gen = TexturedFaceGenerator("bundled", size=size, n_shape=20, n_expr=20, texture_size=64)
    landmark_iterations = 5 if args.quick else None
    rows = [
        row
        for split in SPLITS
        for row in split_rows(gen, split, n, iterations, device, landmark_iterations, args.frames)
    ]
    payload = {
        **machine_fields(device),
        "command": " ".join(["python -m bench.photo_coverage", *given]),
        "per_regime": n,
        "frames": args.frames,
        "size": size,
        "iterations": iterations,
        "variance_inflation": VARIANCE_INFLATION,
        "needed_inflation_val": needed_inflation(rows),
        "rows": rows,
    }
    name = "photo_coverage" if args.frames == 1 else f"photo_coverage_{args.frames}frames"
    write_results(args.out, name, payload, markdown, plot)
    return payload


if __name__ == "__main__":
    main()
