"""``python -m bench.fit``: speed and accuracy of landmark fitting (``train.fit``).

Fits FLAME (50 shape, 50 expression coefficients) and the rho camera to the noisy
landmarks of synthetic test images (landmarks only, nothing rendered), equal parts
``hmc``, ``studio`` and ``wild``: N images one by one from the mean face (three rho
starts, the default), the same with the orthographic camera, and as captures of 16
frames (the joint MAP, and shape and rho with the frames integrated out, the
default). Reports seconds, images per second, and rho against the truth (Pearson r;
per regime the mean off, the median |off| and the 95 % intervals' coverage). The
issue's targets: the 384-image test split in under 30 s
on 2 CPU cores, 4,096 images in under 2 s on a GPU. Writes ``fit.json``,
``fit.md`` and ``fit.png`` under ``bench/results/<device-name>/``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/raster.py

import torch  # noqa: E402

from _common.figures import pyplot, save_figure
from bench.common import bench_device, machine_fields, synchronize, write_results  # noqa: E402
from train.data.sources import REGIMES  # noqa: E402
from train.data.synthetic import FaceGenerator  # noqa: E402
from train.fit import fit_landmarks  # noqa: E402
from train.fit.fitting import DEFAULT_ITERATIONS  # noqa: E402

FRAMES = 16


def landmarks(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """``n`` test samples (landmarks and truth), a third per regime, as captures of
    ``FRAMES`` frames (``"capture"`` ids) so that both fits read the same images."""
    gen = FaceGenerator("bundled", size=32, n_shape=50, n_expr=50, seed=seed)
    per_regime = max(1, n // (len(REGIMES) * FRAMES))
    data = gen.generate_captures(REGIMES, "test", per_regime, FRAMES)
    data["layer"] = gen.layer
    return data


def run_case(name: str, data: dict, device: torch.device, **kwargs) -> dict:
    synchronize(device)
    start = time.perf_counter()
    fit = fit_landmarks(data["landmarks_noisy"], data["layer"], device=device, **kwargs)
    synchronize(device)
    seconds = time.perf_counter() - start
    rho, true = fit.rho.double(), data["rho"].double()
    row = {
        "case": name,
        "images": len(rho),
        "seconds": seconds,
        "images_per_s": len(rho) / seconds,
        "residual_px224": float(fit.residual_px.mean()),
    }
    if bool((rho > 0).all()):
        row["pearson"] = float(torch.corrcoef(torch.stack([rho, true]))[0, 1])
        lo, hi = fit.rho_interval.double().unbind(-1)
        covered = (lo <= true) & (true <= hi)
        for rid, regime in enumerate(REGIMES):
            sel = data["regime"] == rid
            if "groups" in kwargs:  # one row per capture: its first frame
                sel = sel & (torch.arange(len(sel)) % FRAMES == 0)
            row[f"rho_off_pct_{regime}"] = float((rho[sel].mean() / true[sel].mean() - 1) * 100)
            row[f"median_abs_pct_{regime}"] = float((rho[sel] / true[sel] - 1).abs().median() * 100)
            row[f"coverage_pct_{regime}"] = float(covered[sel].double().mean() * 100)
    return row


def markdown(payload: dict) -> str:
    lines = [
        "# Landmark fitting (train.fit)",
        "",
        f"Device: {payload['device']} ({payload['device_model']}), torch {payload['torch']}, "
        f"{payload['threads']} CPU threads; FLAME 50 shape + 50 expression, noisy synthetic "
        f"landmarks, {payload['iterations']} L-BFGS iterations at most.",
        "",
        "Per regime: mean rho off the truth, median |off| and the share of 95 % intervals "
        "holding the truth (captures: one row per capture).",
        "",
        "| case | images | s | images/s | residual px | Pearson r | "
        + " | ".join(f"{g} off % (median, covered)" for g in REGIMES)
        + " |",
        "|---|---:|---:|---:|---:|---:|" + "---:|" * len(REGIMES),
    ]
    for r in payload["rows"]:
        pearson = f"{r['pearson']:.2f}" if "pearson" in r else "–"
        off = [
            f"{r[f'rho_off_pct_{g}']:+.1f} ({r[f'median_abs_pct_{g}']:.1f}, "
            f"{r[f'coverage_pct_{g}']:.0f} %)"
            if f"rho_off_pct_{g}" in r
            else "–"
            for g in REGIMES
        ]
        lines.append(
            f"| {r['case']} | {r['images']} | {r['seconds']:.2f} | {r['images_per_s']:.0f} | "
            f"{r['residual_px224']:.2f} | {pearson} | " + " | ".join(off) + " |"
        )
    return "\n".join(lines) + "\n"


def plot(payload: dict, path: str) -> None:
    plt = pyplot()

    rows = payload["rows"]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.barh([r["case"] for r in rows], [r["seconds"] for r in rows], color="#55a868")
    ax.set_xlabel(f"seconds for {rows[0]['images']} images")
    ax.set_title(payload["device"])
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.fit", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--images", type=int, default=None, help="images (default 384 on CPU, 4096 on GPU)"
    )
    parser.add_argument("--iterations", type=int, default=None, help="L-BFGS iterations")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--out", default=os.path.join("bench", "results"), help="output root")
    parser.add_argument("--quick", action="store_true", help="smoke run: 48 images, 5 iterations")
    args = parser.parse_args(argv)
    device = bench_device(args.device)
    n = args.images or (4096 if device.type == "cuda" else 384)
    iterations = args.iterations
    if args.quick:
        n, iterations = 48, 5
    if n < len(REGIMES) * FRAMES:
        parser.error(f"--images must be >= {len(REGIMES) * FRAMES}, got {n}")
    if iterations is not None and iterations < 1:
        parser.error(f"--iterations must be >= 1, got {iterations}")
    data = landmarks(n)
    rows = [
        run_case("per image, rho (3 starts)", data, device, iterations=iterations),
        run_case("per image, orthographic", data, device, iterations=iterations, camera="ortho"),
        run_case(
            f"per capture ({FRAMES} frames), joint MAP",
            data,
            device,
            iterations=iterations,
            groups=data["capture"],
            marginal=False,
        ),
        run_case(
            f"per capture ({FRAMES} frames), frames integrated out",
            data,
            device,
            iterations=iterations,
            groups=data["capture"],
        ),
    ]
    payload = {
        **machine_fields(device),
        "iterations": iterations or DEFAULT_ITERATIONS,
        "rows": rows,
    }
    write_results(args.out, "fit", payload, markdown, plot)
    return payload


if __name__ == "__main__":
    main()
