"""``python -m bench.photo_basin``: does the photometric objective pin rho, and does the
fit reach the minimum that pins it?

The photometric fit (:mod:`train.fit.photometric`) ends with rho biased (per capture,
about -10 % on studio and wild in ``bench.photo_fit``). Two explanations predict that
differently: an objective that is flat in rho (pixels say little, anything biases the
estimate), or an objective whose least value lies at the truth in a basin the fit does
not reach from its landmark start. This bench tells them apart on one textured
synthetic capture per regime (``train.data.textured_faces``, test split, the generator
of :mod:`bench.photo_fit`), with the fit's own inputs (8-bit photos, noisy landmarks,
each face's window, one level at the photo's side, the albedo map of
``train.fit.photometric.level_texels``).

Every run minimises the objective over the geometry by L-BFGS (strong Wolfe line
search, each variable scaled by its Adam step ``train.fit.photometric.STEPS``) with the
appearance minimised out: inside every evaluation the SH lighting and the albedo are
re-solved (``--rounds`` rounds of the robust weights) from the last iterate's, so each
evaluation is the objective at its appearance optimum, and the gradient of the
objective with the appearance held is that function's gradient. ``exact`` solves the
albedo by conjugate gradients on the objective's quadratic model
(``solve_appearance(..., exact=True)``); ``fit`` uses the fit's own Jacobi solve.

1. **Profile**: from the truth, rho held at ``--profile`` times the true rho, every
   other geometry variable minimised, with each solve. The objective's rise away from
   the truth is what the pixels (and landmarks) say about rho; the vertex of a
   parabola through the points is where the least value lies.
2. **Basins**: rho free, the exact solve, from three starts: the truth, the landmark
   start the fit uses (``fit_landmarks`` per capture), and the end of the shipped fit
   (``fit_images``, its defaults). Reported: the objective reached, rho / true, and how
   far shape and expression end from the truth's basin (RMS, in prior stds).

Writes ``photo_basin.json``, ``.md`` and ``.png`` under ``bench/results/<device-name>/``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/raster.py

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from _common.figures import pyplot, save_figure  # noqa: E402
from bench.common import machine_fields, require_at_least, write_results  # noqa: E402
from bench.photo_fit import generator  # noqa: E402
from bench.photo_gap import truth_fit  # noqa: E402
from train.data.sources import REGIMES  # noqa: E402
from train.fit.fitting import FitPrior, FitResult, fit_landmarks  # noqa: E402
from train.fit.photo_objective import make_level, objective  # noqa: E402
from train.fit.photometric import (  # noqa: E402
    DEFAULT_TEXTURE_SIZE,
    STEPS,
    WARM_UP,
    fit_images,
    fixed_inputs,
    level_texels,
    resolve_appearance,
    start_variables,
)
from train.render.textured import srgb_to_linear  # noqa: E402

SOLVES = ("exact", "fit")
STARTS = ("truth", "landmarks", "fit end")


class Capture:
    """One capture's fixed inputs (its frames one group) at the render side ``size``."""

    def __init__(self, sample: dict, layer, size: int):
        self.sample = sample
        self.true_rho = float(sample["rho"][0])
        self.target = sample["landmarks_noisy"].float()
        self.groups = torch.zeros(len(self.target), dtype=torch.long)
        self.level = make_level(srgb_to_linear(sample["image"].float()), self.target, size)
        self.fixed = fixed_inputs(layer, self.target, self.groups, FitPrior(), self.level)
        self.texels = level_texels(size, DEFAULT_TEXTURE_SIZE)
        self.layer = layer

    def variables(self, start: FitResult, rho_factor: float | None) -> dict:
        """The objective's variables at ``start`` (appearance solved ``WARM_UP`` times),
        rho set to ``rho_factor`` times the truth when given."""
        v = start_variables(start, self.fixed, self.texels, 1, self.target.device)
        v = {k: t.detach() for k, t in v.items()}
        if rho_factor is not None:
            v["log_rho"] = torch.full_like(v["log_rho"], math.log(rho_factor * self.true_rho))
        return v


def reduced_fit(
    v: dict, capture: Capture, names: list[str], iterations: int, exact: bool, rounds: int
) -> int:
    """Minimise the objective over the geometry variables ``names`` of ``v`` (in place)
    by L-BFGS with the appearance re-solved inside every evaluation (module docstring);
    the number of evaluations."""
    origin = {k: v[k].clone() for k in names}
    steps = {k: torch.zeros_like(origin[k], requires_grad=True) for k in names}
    anchor = {"albedo": v["albedo"].clone(), "sh": v["sh"].clone()}
    opt = torch.optim.LBFGS(
        list(steps.values()),
        lr=1,
        max_iter=1,
        max_eval=25,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    calls = [0]

    def place():  # the geometry at the scaled steps, the appearance solved from the anchor
        for k in names:
            v[k] = origin[k] + STEPS[k] * steps[k]
        w = {k: t.detach() for k, t in v.items()}
        w["albedo"], w["sh"] = anchor["albedo"].clone(), anchor["sh"].clone()
        resolve_appearance(w, capture.fixed, capture.level, rounds, exact)
        v["albedo"], v["sh"] = w["albedo"], w["sh"]

    def closure():
        calls[0] += 1
        opt.zero_grad()
        place()
        total = objective(v, capture.fixed, capture.level)[0].sum()
        total.backward()
        return total

    for _ in range(iterations):  # one iteration per call: the anchor moves between them
        opt.step(closure)
        place()
        anchor = {"albedo": v["albedo"].clone(), "sh": v["sh"].clone()}
    for k in names:
        v[k] = v[k].detach()
    return calls[0]


def _measure(v: dict, capture: Capture, truth_z: dict | None) -> dict:
    with torch.no_grad():
        total, parts = objective(v, capture.fixed, capture.level)
    row = {
        "objective": float(total.sum()),
        "photo": float(parts["photo"].sum()),
        "landmarks": float(parts["landmark_term"].sum()),
        "rho_ratio": float(torch.exp(v["log_rho"][0])) / capture.true_rho,
    }
    if truth_z is not None:
        for name in ("z_shape", "z_expression"):
            row[f"{name[2:]}_off"] = float((v[name] - truth_z[name]).square().mean().sqrt())
    return row


def run(
    capture: Capture, start: FitResult, rho_factor, exact: bool, args, truth_z=None
) -> tuple[dict, dict]:
    """One L-BFGS run (module docstring) from ``start``; rho held at ``rho_factor`` times
    the truth, or free when None. The row of measures and the variables at the end."""
    v = capture.variables(start, rho_factor)
    resolve_appearance(v, capture.fixed, capture.level, WARM_UP, exact)
    names = [k for k in STEPS if rho_factor is None or k != "log_rho"]
    rho_start = float(torch.exp(v["log_rho"][0])) / capture.true_rho
    begin = time.perf_counter()
    calls = reduced_fit(v, capture, names, args.iterations, exact, args.rounds)
    row = _measure(v, capture, truth_z)
    row.update(rho_start=rho_start, calls=calls, seconds=time.perf_counter() - begin)
    return row, v


def vertex(factors: list[float], values: list[float]) -> float:
    """The least point of the least-squares parabola through ``(factors, values)``
    (NaN when it opens downwards or has fewer than three points)."""
    if len(factors) < 3:
        return math.nan
    x = torch.tensor(factors, dtype=torch.float64)
    a, b, _ = torch.linalg.lstsq(
        torch.stack([x * x, x, torch.ones_like(x)], 1),
        torch.tensor(values, dtype=torch.float64)[:, None],
    ).solution[:, 0]
    return float(-b / (2 * a)) if a > 0 else math.nan


def regime_rows(regime: str, gen, args, bar) -> tuple[list[dict], list[dict]]:
    """The profile and basin rows of one regime's capture ``args.capture``."""
    sample = gen.generate_textured_capture(regime, "test", args.capture, list(range(args.frames)))
    capture = Capture(sample, gen.layer, args.size)
    truth = truth_fit(sample)
    profile = []
    for solve in args.solves:
        for f in args.profile:
            row, _ = run(capture, truth, f, solve == "exact", args)
            profile.append({"regime": regime, "solve": solve, "factor": f, **row})
            bar.update(1)
    basins = []
    row, v_truth = run(capture, truth, None, True, args)
    truth_z = {k: v_truth[k] for k in ("z_shape", "z_expression")}
    row.update(shape_off=0.0, expression_off=0.0)  # the truth's end point is the reference
    basins.append({"regime": regime, "start": "truth", **row})
    bar.update(1)
    groups = capture.groups
    landmarks = fit_landmarks(capture.target, gen.layer, groups=groups)
    row, _ = run(capture, landmarks, None, True, args, truth_z)
    basins.append({"regime": regime, "start": "landmarks", **row})
    bar.update(1)
    image = sample["image"].float()
    shipped = fit_images(image, capture.target, gen.layer, groups=groups, intervals=False)
    row, _ = run(capture, shipped.fit, None, True, args, truth_z)
    basins.append({"regime": regime, "start": "fit end", **row})
    bar.update(1)
    return profile, basins


def markdown(payload: dict) -> str:
    lines = [
        "# Where the photometric objective's minimum lies in rho (bench.photo_basin)",
        "",
        f"`{payload['command']}` on {payload['device']} ({payload['threads']} threads; "
        f"torch {payload['torch']}). Test capture {payload['capture']} of each regime, "
        f"{payload['frames']} frames at {payload['size']} px, one level; L-BFGS "
        f"({payload['iterations']} iterations) on the geometry with the appearance "
        f"re-solved ({payload['rounds']} rounds) inside every evaluation.",
        "",
        "## Profile: from the truth, rho held",
        "",
        "Objective (photometric term, landmark term) with rho held at a factor of the "
        "truth and every other geometry variable minimised; the last column is the vertex "
        "of the parabola through the points (1: the least value at the true rho).",
        "",
    ]
    factors = payload["profile"]
    lines.append(
        "| regime | solve | " + " | ".join(f"rho x {f:g}" for f in factors) + " | least at |"
    )
    lines.append("|---|---|" + "---:|" * (len(factors) + 1))
    for regime in payload["regimes"]:
        for solve in payload["solves"]:
            rows = [
                r for r in payload["profile_rows"] if r["regime"] == regime and r["solve"] == solve
            ]
            cells = [f"{r['objective']:.1f} ({r['photo']:.1f}, {r['landmarks']:.1f})" for r in rows]
            least = vertex([r["factor"] for r in rows], [r["objective"] for r in rows])
            lines.append(f"| {regime} | {solve} | " + " | ".join(cells) + f" | {least:.3f} |")
    lines += [
        "",
        "## Basins: rho free, the exact solve",
        "",
        "From the truth, from the fit's landmark start and from the shipped fit's end. "
        "`objective - truth's`: how far above the truth's basin the run stops; shape and "
        "expression off: RMS distance from the truth's end point, prior stds.",
        "",
        "| regime | start | objective | objective - truth's | rho / true: start -> end "
        "| shape off | expression off | seconds |",
        "|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for regime in payload["regimes"]:
        rows = [r for r in payload["basin_rows"] if r["regime"] == regime]
        base = rows[0]["objective"]
        for r in rows:
            lines.append(
                f"| {regime} | {r['start']} | {r['objective']:.1f} | {r['objective'] - base:+.1f} "
                f"| {r['rho_start']:.3f} -> {r['rho_ratio']:.3f} | {r['shape_off']:.2f} "
                f"| {r['expression_off']:.2f} | {r['seconds']:.0f} |"
            )
    return "\n".join(lines) + "\n"


def plot(payload: dict, path: str) -> None:
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(14, 6))
    colours = dict(zip(payload["regimes"], ("tab:red", "tab:blue", "tab:green")))
    ax = axes[0]
    for r_name in payload["regimes"]:
        for solve, style in zip(payload["solves"], ("-", "--")):
            rows = [
                r for r in payload["profile_rows"] if r["regime"] == r_name and r["solve"] == solve
            ]
            low = min(r["objective"] for r in rows)
            ax.plot(
                [r["factor"] for r in rows],
                [r["objective"] - low for r in rows],
                style,
                marker="o",
                color=colours[r_name],
                label=f"{r_name}, {solve} solve",
            )
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xlabel("rho held at (x true)", fontsize=12)
    ax.set_ylabel("objective - its least on the profile", fontsize=12)
    ax.set_title("Profile from the truth", fontsize=13)
    ax.legend(fontsize=10)
    ax = axes[1]
    starts = list(STARTS)
    width = 0.8 / len(payload["regimes"])
    top = 1.0
    for i, r_name in enumerate(payload["regimes"]):
        rows = {r["start"]: r for r in payload["basin_rows"] if r["regime"] == r_name}
        base = rows["truth"]["objective"]
        xs = [j + (i - 1) * width for j in range(len(starts))]
        heights = [rows[s]["objective"] - base for s in starts]
        ax.bar(xs, heights, width, color=colours[r_name], label=r_name)
        top = max(top, *heights)
        for x, s in zip(xs, starts):
            ax.annotate(
                f"rho {rows[s]['rho_ratio']:.2f}",
                (x, rows[s]["objective"] - base),
                ha="center",
                va="bottom",
                fontsize=9,
                rotation=90,
            )
    ax.set_ylim(top=1.2 * top)
    ax.legend(fontsize=10, loc="upper right")
    ax.set_xticks(range(len(starts)), starts, fontsize=12)
    ax.set_ylabel("objective - the truth's basin", fontsize=12)
    ax.set_title("Where L-BFGS stops, rho free (labels: rho / true)", fontsize=13)
    for a in axes:
        a.tick_params(labelsize=11)
    fig.suptitle(
        f"Photometric objective: {payload['frames']} frames, {payload['size']} px", fontsize=14
    )
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m bench.photo_basin", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--capture", type=int, default=1, help="test capture index")
    parser.add_argument("--frames", type=int, default=8, help="frames of the capture")
    parser.add_argument("--size", type=int, default=96, help="image side in pixels")
    parser.add_argument("--iterations", type=int, default=30, help="L-BFGS iterations")
    parser.add_argument("--rounds", type=int, default=2, help="appearance solves per evaluation")
    parser.add_argument(
        "--profile", type=float, nargs="+", default=[0.9, 1.0, 1.1], help="rho factors"
    )
    parser.add_argument("--solves", nargs="+", choices=SOLVES, default=list(SOLVES))
    parser.add_argument("--regimes", nargs="+", choices=REGIMES, default=list(REGIMES))
    parser.add_argument("--out", default=os.path.join("bench", "results"), help="output root")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2 frames at 32 px, 2 iterations"
    )
    given = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(given)
    require_at_least(parser, args, ("frames", "iterations", "rounds"))
    require_at_least(parser, args, ("capture",), 0)
    require_at_least(parser, args, ("size",), 32)
    if any(not (0 < f < 10) for f in args.profile):
        parser.error(f"--profile factors must lie in (0, 10), got {args.profile}")
    args.profile = sorted(set(args.profile))
    if args.quick:
        args.frames, args.size, args.iterations = 2, 32, 2
    gen = generator(args.size)
    runs = len(args.regimes) * (len(args.solves) * len(args.profile) + len(STARTS))
    bar = tqdm(total=runs, desc="L-BFGS runs", unit="run")
    profile_rows, basin_rows = [], []
    for regime in args.regimes:
        bar.set_description(regime)
        profile, basins = regime_rows(regime, gen, args, bar)
        profile_rows += profile
        basin_rows += basins
    bar.close()
    payload = {
        **machine_fields(torch.device("cpu")),
        "command": " ".join(["python -m bench.photo_basin", *given]),
        "capture": args.capture,
        "frames": args.frames,
        "size": args.size,
        "iterations": args.iterations,
        "rounds": args.rounds,
        "profile": args.profile,
        "solves": args.solves,
        "regimes": args.regimes,
        "profile_rows": profile_rows,
        "basin_rows": basin_rows,
    }
    write_results(args.out, "photo_basin", payload, markdown, plot)
    return payload


if __name__ == "__main__":
    main()
