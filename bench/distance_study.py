"""``python -m bench.distance_study``: distance and its 95 % interval at CMDP's seven
distances, per image and per capture; ``--cmdp PATH``: the same on CMDP's real faces.

The synthetic set is :func:`bench.dense_fit.cmdp_set`'s (studio subjects drawn once,
the face half the image width, 1.5 px noise at 224 px), with ``--frames`` frames per
identity and distance (a capture: one shape, each frame its own expression, pose and
noise). Three fits of the stand-in head's 68 landmarks (50 shape, 50 expression
coefficients): each image alone with ``train.fit.fit_landmarks``' default (the joint
MAP), each image with ``marginal=True``, and each capture with ``groups=`` (shape and
rho shared, the frames' own variables integrated out: the default for captures).

Per true distance: the median |distance error| (fitted ``1/rho`` against the true
camera to model-origin distance ``t_z``), the share of 95 % intervals holding the
truth (target 90-98 %) and the share labelled "distance not observable from these
landmarks" (interval wider than a factor 3). Writes ``distance_study.json``, ``.md``
and ``.png`` (fitted against true distance with the intervals, log-log) under
``bench/results/<device>/``.

``--cmdp PATH`` reads the CMDP release (:mod:`bench.cmdp`: RCPR's 68 landmarks on the
original portraits), fits each portrait alone (default and ``marginal=True``; CMDP
has one portrait per subject and distance, so no capture) and prints the same table,
writing ``distance_study_cmdp.*``. CMDP's distances are floor marks whose reference
point on the face is not documented; the truth taken is the mark plus the stand-in
head's landmark depth (``t_z`` as in the synthetic set).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/raster.py

import torch  # noqa: E402

from _common.figures import pyplot, save_figure  # noqa: E402
from bench.common import machine_fields, require_at_least, write_results  # noqa: E402
from bench.dense_fit import CMDP_M, cmdp_set  # noqa: E402
from train.data.synthetic import FaceGenerator  # noqa: E402
from train.fit import fit_landmarks  # noqa: E402
from train.fit.fitting import DEFAULT_ITERATIONS  # noqa: E402

#: the fits compared: name -> (marginal, per capture)
CASES = {
    "per image, default": (None, False),
    "per image, marginal": (True, False),
    "per capture": (None, True),
}


def _generator() -> FaceGenerator:
    return FaceGenerator("bundled", size=32, n_shape=50, n_expr=50)


def fit_case(landmarks, layer, marginal, groups, iterations) -> dict:
    """One fit's per-problem numbers: ``distance``, ``lo``, ``hi`` (model units) and
    ``observable`` (one row per image, or per capture with ``groups``)."""
    fit = fit_landmarks(landmarks, layer, marginal=marginal, groups=groups, iterations=iterations)
    keep = torch.arange(len(landmarks))
    if groups is not None:  # one row per capture: its first frame (they share rho)
        ids = torch.unique(groups)
        keep = torch.tensor([int((groups == g).nonzero()[0, 0]) for g in ids.tolist()])
    lo, hi = fit.distance_interval.double()[keep].unbind(-1)
    return {
        "keep": keep,
        "distance": fit.distance.double()[keep],
        "lo": lo,
        "hi": hi,
        "observable": fit.observable()[keep],
    }


def summarise(res: dict, true_tz: torch.Tensor, true_d: torch.Tensor, distances) -> list[dict]:
    """Per distance in ``distances``: problems, median |error| %, coverage %, truth
    below / above %, not observable %, median fitted camera-to-face distance (m)."""
    rows = []
    err = (res["distance"] / true_tz - 1).abs() * 100
    inside = (res["lo"] <= true_tz) & (true_tz <= res["hi"])
    for d in distances:
        sel = (true_d - d).abs() < 1e-6
        n = int(sel.sum())
        if n == 0:
            continue

        def pct(mask: torch.Tensor, sel=sel) -> float:
            return float(mask[sel].double().mean() * 100)

        rows.append(
            {
                "distance_m": d,
                "n": n,
                "median_err_pct": float(err[sel].median()),
                "coverage_pct": pct(inside),
                "truth_below_pct": pct(true_tz < res["lo"]),
                "truth_above_pct": pct(true_tz > res["hi"]),
                "not_observable_pct": pct(~res["observable"]),
                "median_fitted_m": float((res["distance"] - (true_tz - true_d))[sel].median()),
            }
        )
    return rows


def _points(res: dict, true_tz, true_d) -> dict:
    depth = true_tz - true_d
    return {
        "true_m": true_d.tolist(),
        "fitted_m": (res["distance"] - depth).tolist(),
        "lo_m": (res["lo"] - depth).tolist(),
        "hi_m": (res["hi"] - depth).tolist(),
    }


def synthetic(identities: int, frames: int, iterations: int | None) -> dict:
    """The synthetic study (module docstring): the payload's ``cases``."""
    gen = _generator()
    data = cmdp_set(gen, identities, frames=frames)
    n_d = len(CMDP_M)
    true_d = torch.tensor(CMDP_M, dtype=torch.float64).repeat_interleave(frames).repeat(identities)
    groups = torch.arange(identities * n_d).repeat_interleave(frames)
    tz = data["tz"].double()
    cases = []
    for name, (marginal, per_capture) in CASES.items():
        start = time.perf_counter()
        res = fit_case(
            data["landmarks_noisy"],
            gen.layer,
            marginal,
            groups if per_capture else None,
            iterations,
        )
        k = res["keep"]
        cases.append(
            {
                "case": name,
                "seconds": time.perf_counter() - start,
                "rows": summarise(res, tz[k], true_d[k], CMDP_M),
                "points": _points(res, tz[k], true_d[k]),
            }
        )
    return {"identities": identities, "frames": frames, "cases": cases}


def real(path: str, iterations: int | None) -> dict:
    """CMDP's portraits under ``path`` (module docstring): the payload's ``cases``."""
    from bench.cmdp import read_cmdp

    data = read_cmdp(path)
    gen = _generator()
    true_d = data.distance_m
    tz = true_d + gen.face_depth
    distances = sorted({round(float(d), 2) for d in true_d})
    true_d = true_d.round(decimals=2)
    cases = []
    for name, (marginal, per_capture) in CASES.items():
        if per_capture:
            continue  # one portrait per subject and distance
        start = time.perf_counter()
        res = fit_case(data.landmarks, gen.layer, marginal, None, iterations)
        cases.append(
            {
                "case": name,
                "seconds": time.perf_counter() - start,
                "rows": summarise(res, tz, true_d, distances),
                "points": _points(res, tz, true_d),
            }
        )
    return {
        "subjects": int(data.subject.unique().numel()),
        "portraits": len(data.paths),
        "skipped": [list(s) for s in data.skipped],
        "cases": cases,
    }


def table(payload: dict) -> str:
    """The markdown table: one row per distance, three columns per fit."""
    cases = payload["cases"]
    head = "| distance (m) | " + " | ".join(
        f"{c['case']}: n, median err, coverage, not obs." for c in cases
    )
    lines = [head + " |", "|---:|" + "---|" * len(cases)]
    by_d = {}
    for c in cases:
        for r in c["rows"]:
            by_d.setdefault(r["distance_m"], []).append(r)
    for d, rows in sorted(by_d.items()):
        cells = " | ".join(
            f"{r['n']}, {r['median_err_pct']:.1f} %, {r['coverage_pct']:.0f} %, "
            f"{r['not_observable_pct']:.0f} %"
            for r in rows
        )
        lines.append(f"| {d:.2f} | {cells} |")
    return "\n".join(lines)


def markdown(payload: dict) -> str:
    if "frames" in payload:
        what = (
            f"{payload['identities']} stand-in identities x {len(CMDP_M)} CMDP distances x "
            f"{payload['frames']} frames (face half the width, 1.5 px noise at 224 px)"
        )
    else:
        what = (
            f"CMDP: {payload['portraits']} portraits of {payload['subjects']} subjects "
            f"(RCPR's 68 landmarks; {len(payload['skipped'])} skipped)"
        )
    lines = [
        "# Distance and its 95 % interval at CMDP's distances (bench.distance_study)",
        "",
        f"`{payload['command']}`; {what}; stand-in head, 50 + 50 coefficients, "
        f"{payload['iterations']} L-BFGS iterations at most. Per distance: problems, "
        "median |distance error|, coverage of the 95 % interval (target 90-98 %), share "
        '"not observable" (interval wider than a factor 3). Seconds '
        + ", ".join(f"{c['case']} {c['seconds']:.0f}" for c in payload["cases"])
        + " (shared 2-core machine: indicative only).",
        "",
        table(payload),
    ]
    return "\n".join(lines) + "\n"


def plot(payload: dict, path: str) -> None:
    plt = pyplot()

    cases = payload["cases"]
    fig, axes = plt.subplots(1, len(cases), figsize=(4 * len(cases), 4), sharey=True)
    for ax, c in zip(list(axes) if len(cases) > 1 else [axes], cases, strict=True):
        p = c["points"]
        # spread each distance's points sideways (up to 8 %, multiplicatively)
        x = list(p["true_m"])
        for d in set(x):
            idx = [k for k, t in enumerate(p["true_m"]) if t == d]
            for rank, k in enumerate(idx):
                x[k] = d * (1 + 0.16 * (rank / max(1, len(idx) - 1) - 0.5))
        fitted = torch.tensor(p["fitted_m"]).clamp_min(0.05)
        lo = torch.tensor(p["lo_m"]).clamp_min(0.05)
        hi = torch.tensor(p["hi_m"]).clamp(0.05, 100.0)
        inside = [a <= t <= b for a, t, b in zip(p["lo_m"], p["true_m"], p["hi_m"], strict=True)]
        colours = ["tab:blue" if i else "tab:red" for i in inside]
        ax.vlines(x, lo, hi, colors=colours, lw=0.8, alpha=0.6)
        ax.scatter(x, fitted, s=8, c=colours, zorder=3)
        ds = sorted(set(p["true_m"]))
        ax.plot(ds, ds, color="0.3", ls="--", lw=1, label="truth")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(0.1, 100)
        ax.set_xticks(ds, [f"{d:g}" for d in ds], fontsize=7)
        ax.minorticks_off()
        ax.set_xlabel("true camera distance, m")
        ax.set_title(f"{c['case']} (red: misses the truth)", fontsize=9)
    (axes[0] if len(cases) > 1 else axes).set_ylabel("fitted distance with 95 % interval, m")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m bench.distance_study", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--identities", type=int, default=10, help="stand-in subjects")
    parser.add_argument("--frames", type=int, default=4, help="frames per capture")
    parser.add_argument("--iterations", type=int, default=None, help="L-BFGS iterations")
    parser.add_argument("--cmdp", default=None, metavar="PATH", help="the CMDP release, unzipped")
    parser.add_argument("--out", default=os.path.join("bench", "results"), help="output root")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 x 7 x 2, 5 iterations")
    given = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(given)
    require_at_least(parser, args, ("identities", "frames", "iterations"))
    identities, frames, iterations = args.identities, args.frames, args.iterations
    if args.quick:
        identities, frames, iterations = 1, 2, 5
    torch.set_num_threads(1)
    if args.cmdp is not None:
        body, name = real(args.cmdp, iterations), "distance_study_cmdp"
    else:
        body, name = synthetic(identities, frames, iterations), "distance_study"
    payload = {
        **machine_fields(torch.device("cpu")),
        "command": " ".join(["python -m bench.distance_study", *given]),
        "iterations": iterations or DEFAULT_ITERATIONS,
        **body,
    }
    write_results(args.out, name, payload, markdown, plot)
    return payload


if __name__ == "__main__":
    main()
