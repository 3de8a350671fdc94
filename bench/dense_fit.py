"""``python -m bench.dense_fit``: rho and distance from 68 points, MediaPipe's dense points
and the iris (``train.fit.fit_landmarks(dense=, iris=, iris_mm=)``).

Two sets, landmarks only (nothing rendered), the stand-in head with 50 shape and 50
expression coefficients, each image fitted on its own (three rho starts):

- the synthetic test split: ``--per-regime`` images of each regime (``hmc``, ``studio``,
  ``wild``), with each regime's detector noise;
- a multi-distance set after CMDP: ``--identities`` studio subjects (shape, expression,
  pose drawn once) at CMDP's seven distances (2, 3, 4, 6, 8, 12, 16 ft = 0.61-4.88 m),
  the face spanning half the image width, 1.5 px noise at 224 px (the studio regime's).

Variants: the 68 landmarks; the 105 dense points alone; 68 + dense; 68 + dense + the
iris with ``iris_mm=11.7`` (the generator's irises are 11.7 mm discs). Reports per
variant the median per-image |distance error| (fitted ``1/rho`` against the true
``t_z``) and the median fitted distance per CMDP distance, and rho's median |error| per
regime. Writes ``dense_fit.json``, ``.md`` and ``.png`` under ``bench/results/<device>/``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/raster.py

import torch  # noqa: E402

from _common.figures import pyplot, save_figure  # noqa: E402
from bench.common import machine_fields, write_results  # noqa: E402
from train.data.sources import REGIMES  # noqa: E402
from train.data.synthetic import REGIME_SPECS, FaceGenerator, sample_parameters  # noqa: E402
from train.fit import fit_landmarks  # noqa: E402

#: CMDP's camera distances (feet -> metres)
CMDP_M = tuple(round(ft * 0.3048, 2) for ft in (2, 3, 4, 6, 8, 12, 16))
VARIANTS = ("68", "dense", "68+dense", "68+dense+iris")


def test_split(gen: FaceGenerator, per_regime: int) -> dict:
    parts = [gen.generate(r, "test", list(range(per_regime))) for r in REGIMES]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0] if k != "image"}


def cmdp_set(gen: FaceGenerator, identities: int, seed: int = 0, frames: int = 1) -> dict:
    """The multi-distance set: identity-major, the seven distances each, ``frames``
    frames at each (a capture: the identity's shape, each frame its own expression,
    pose and landmark noise; frame 0 is the same with any ``frames``)."""
    spec = REGIME_SPECS["studio"]
    params = []
    for i in range(identities):
        base = sample_parameters(spec, seed, "test/cmdp", i, gen.n_shape, gen.n_expr)
        for d in CMDP_M:
            for k in range(frames):
                p = dict(base)
                if k:
                    split = f"test/cmdp/{k}"
                    p = sample_parameters(spec, seed, split, i, gen.n_shape, gen.n_expr)
                    p["shape"] = base["shape"]
                p["distance"] = torch.tensor(d)
                p["span"] = torch.tensor(0.5)
                p["jitter"] = torch.zeros(2)
                params.append(p)
    with torch.no_grad():
        return gen._make(spec, params, list(range(len(params))), render=False)


def fit_variant(variant: str, data: dict, layer, iterations: int | None) -> torch.Tensor:
    """Fitted distance ``1/rho`` ``[B]`` (model units, metres)."""
    kw: dict = {"iterations": iterations}
    landmarks = None if variant == "dense" else data["landmarks_noisy"]
    if "dense" in variant:
        kw["dense"] = data["dense_noisy"]
    if "iris" in variant:
        kw.update(iris=data["iris_noisy"], iris_mm=11.7)
    return fit_landmarks(landmarks, layer, **kw).distance


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.dense_fit", description=__doc__)
    parser.add_argument("--per-regime", type=int, default=32, help="test images per regime")
    parser.add_argument("--identities", type=int, default=20, help="CMDP-like subjects")
    parser.add_argument("--iterations", type=int, default=None, help="L-BFGS iterations")
    parser.add_argument("--out", default=os.path.join("bench", "results"), help="output root")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    gen = FaceGenerator("bundled", size=32, n_shape=50, n_expr=50, dense=True)
    split, cmdp = test_split(gen, args.per_regime), cmdp_set(gen, args.identities)
    true_d = torch.tensor(CMDP_M).repeat(args.identities)
    rows = []
    for variant in VARIANTS:
        start = time.perf_counter()
        d_split = fit_variant(variant, split, gen.layer, args.iterations)
        d_cmdp = fit_variant(variant, cmdp, gen.layer, args.iterations)
        row: dict = {"variant": variant, "seconds": time.perf_counter() - start}
        rho_err = (split["tz"] / d_split - 1).abs() * 100  # rho = 1 / distance
        for rid, regime in enumerate(REGIMES):
            row[f"rho_err_pct_{regime}"] = float(rho_err[split["regime"] == rid].median())
        err = (d_cmdp / cmdp["tz"] - 1).abs() * 100
        fitted_m = d_cmdp - gen.face_depth  # camera to the face, as CMDP's distances
        for d in CMDP_M:
            sel = true_d == d
            row[f"dist_err_pct_{d}"] = float(err[sel].median())
            row[f"fitted_m_{d}"] = float(fitted_m[sel].median())
        rows.append(row)
    payload = {
        **machine_fields(torch.device("cpu")),
        "per_regime": args.per_regime,
        "identities": args.identities,
        "distances_m": list(CMDP_M),
        "rows": rows,
    }
    write_results(args.out, "dense_fit", payload, markdown, plot)
    return payload


def markdown(payload: dict) -> str:
    ds = payload["distances_m"]
    lines = [
        "# Dense points and the iris in fitting (bench.dense_fit)",
        "",
        f"{payload['identities']} identities x {len(ds)} CMDP distances (face half the "
        f"width, 1.5 px noise at 224 px) and {payload['per_regime']} test images per "
        "regime; per-image fits, stand-in head 50 + 50 coefficients. Shared 2-core "
        "machine: seconds are indicative only.",
        "",
        "Median per-image |distance error| (%) by true distance (m):",
        "",
        "| variant | " + " | ".join(f"{d}" for d in ds) + " | s |",
        "|---|" + "---:|" * (len(ds) + 1),
    ]
    for r in payload["rows"]:
        cells = " | ".join(f"{r[f'dist_err_pct_{d}']:.1f}" for d in ds)
        lines.append(f"| {r['variant']} | {cells} | {r['seconds']:.0f} |")
    lines += [
        "",
        "Median fitted distance (m) by true distance (m):",
        "",
        "| variant | " + " | ".join(f"{d}" for d in ds) + " |",
        "|---|" + "---:|" * len(ds),
    ]
    for r in payload["rows"]:
        lines.append(
            f"| {r['variant']} | " + " | ".join(f"{r[f'fitted_m_{d}']:.2f}" for d in ds) + " |"
        )
    lines += ["", "Median |rho error| (%) on the synthetic test split:", ""]
    lines += ["| variant | " + " | ".join(REGIMES) + " |", "|---|" + "---:|" * len(REGIMES)]
    for r in payload["rows"]:
        cells = " | ".join(f"{r[f'rho_err_pct_{g}']:.1f}" for g in REGIMES)
        lines.append(f"| {r['variant']} | {cells} |")
    return "\n".join(lines) + "\n"


def plot(payload: dict, path: str) -> None:
    plt = pyplot()

    ds = payload["distances_m"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ds, ds, color="0.6", ls="--", label="truth")
    for r in payload["rows"]:
        ax.plot(ds, [r[f"fitted_m_{d}"] for d in ds], marker="o", label=r["variant"])
    ax.set_xlabel("true distance, m")
    ax.set_ylabel("median fitted distance, m")
    ax.set_title("CMDP-like set: fitted vs true distance")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
