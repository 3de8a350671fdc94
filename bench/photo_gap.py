"""``python -m bench.photo_gap``: how far the photometric fit's appearance solve is from
the appearance that minimises its objective, and what that gap does to rho's gradient.

The photometric fit (:mod:`train.fit.photometric`) moves the geometry with Adam and
re-solves the SH lighting and the albedo maps after every step
(:func:`train.fit.photometric.solve_appearance`). The gradient it follows is the
gradient of the objective minimised over the appearance (the profile, which is what
the fit's estimate minimises) only if that solve minimises the objective over the
appearance. Where it does not, the gradient carries a bias of its own, and Adam, which
steps every variable by about its step size whatever the gradient's size, turns even a
small bias along a direction the data hardly pin (rho) into a steady drift.

This bench measures the gap at the true geometry of textured synthetic captures
(``train.data.textured_faces``, test split, the generator of :mod:`bench.photo_fit`).
For each regime and capture, with the fit's own inputs (the 8-bit photos, the noisy
landmarks, each face's window at the photo's side, the finest level's albedo map,
``train.fit.photometric.level_texels``):

1. ``solve``: the appearance after ``--solves`` rounds of the shipped solve, from the
   fit's start (uniform light, the albedo at the skin colour);
2. ``minimised``: from there, the albedo and lighting minimised on the objective itself
   by L-BFGS (``--lbfgs`` iterations, strong Wolfe line search), the geometry held.

Reported per capture: the objective with each appearance and its derivative in log rho
there (positive: the objective falls as rho falls, so the fit pushes rho down). A solve
that minimised the objective would leave ``minimised`` equal to ``solve``.

Writes ``photo_gap.json``, ``.md`` and ``.png`` under ``bench/results/<device-name>/``.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/raster.py

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from _common.figures import pyplot, save_figure  # noqa: E402
from bench.common import machine_fields, require_at_least, write_results  # noqa: E402
from bench.photo_fit import generator  # noqa: E402
from train.data.sources import REGIMES  # noqa: E402
from train.fit.fitting import FitPrior, FitResult  # noqa: E402
from train.fit.photo_objective import make_level, objective  # noqa: E402
from train.fit.photometric import (  # noqa: E402
    DEFAULT_TEXTURE_SIZE,
    fixed_inputs,
    level_texels,
    resolve_appearance,
    start_variables,
)
from train.render.textured import srgb_to_linear  # noqa: E402

#: the geometry fields of a sample that set the fit's variables at the truth
TRUTH = ("shape", "expression", "jaw_pose", "eyelids", "global_pose", "scale", "trans", "rho")


def truth_fit(sample: dict) -> FitResult:
    """A :class:`FitResult` at a generated sample's true geometry (other fields zero)."""
    zero = torch.zeros(len(sample["rho"]))
    fields = {f: zero for f in FitResult._fields}
    fields.update({f: sample[f].float() for f in TRUTH})
    return FitResult(**fields)


def _objective_and_rho_slope(variables: dict, fixed, level) -> tuple[float, float]:
    v = {k: t.detach().requires_grad_(k == "log_rho") for k, t in variables.items()}
    total, _ = objective(v, fixed, level)
    (grad,) = torch.autograd.grad(total.sum(), v["log_rho"])
    return float(total.sum().detach()), float(grad.sum())


def capture_gap(sample: dict, layer, size: int, solves: int, lbfgs: int) -> dict[str, float]:
    """The two appearances of the module docstring for one capture ``sample`` (its frames
    one group) at the render side ``size``: ``objective_solve``, ``objective_minimised``,
    ``d_log_rho_solve``, ``d_log_rho_minimised`` and ``albedo_rms`` (the RMS difference
    of the two albedo maps, linear)."""
    frames = len(sample["rho"])
    target = sample["landmarks_noisy"].float()
    level = make_level(srgb_to_linear(sample["image"].float()), target, size)
    groups = torch.zeros(frames, dtype=torch.long)
    fixed = fixed_inputs(layer, target, groups, FitPrior(), level)
    texels = level_texels(size, DEFAULT_TEXTURE_SIZE)
    v = start_variables(truth_fit(sample), fixed, texels, 1, target.device)
    v = {k: t.detach() for k, t in v.items()}
    resolve_appearance(v, fixed, level, solves)
    obj_solve, slope_solve = _objective_and_rho_slope(v, fixed, level)
    appearance = {k: v[k].clone().requires_grad_(True) for k in ("albedo", "sh")}
    geometry = {k: t for k, t in v.items() if k not in appearance}
    opt = torch.optim.LBFGS(
        list(appearance.values()), max_iter=lbfgs, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        total = objective({**geometry, **appearance}, fixed, level)[0].sum()
        total.backward()
        return total

    opt.step(closure)
    w = {**geometry, **{k: t.detach() for k, t in appearance.items()}}
    obj_min, slope_min = _objective_and_rho_slope(w, fixed, level)
    rms = float((w["albedo"] - v["albedo"]).square().mean().sqrt())
    return {
        "objective_solve": obj_solve,
        "objective_minimised": obj_min,
        "d_log_rho_solve": slope_solve,
        "d_log_rho_minimised": slope_min,
        "albedo_rms": rms,
    }


def markdown(payload: dict) -> str:
    lines = [
        "# The photometric fit's appearance solve against the objective's minimum",
        "",
        f"`{payload['command']}` on {payload['device']} ({payload['threads']} threads; "
        f"torch {payload['torch']}). At the true geometry of {payload['captures']} "
        f"textured test capture(s) per regime, {payload['frames']} frames at "
        f"{payload['size']} px: the objective and its derivative in log rho with the "
        f"appearance after {payload['solves']} rounds of the fit's solve, and with the "
        f"albedo and lighting then minimised by L-BFGS ({payload['lbfgs']} iterations). "
        "A positive derivative pushes rho down. The two differ only by the appearance: "
        "the first is the gradient the fit follows, the second the gradient of the "
        "objective with the appearance minimised out (landmark noise and the priors keep "
        "it from zero at the truth).",
        "",
        "| regime | capture | objective, solve | objective, minimised | d/d log rho, solve "
        "| d/d log rho, minimised | albedo RMS change |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in payload["rows"]:
        lines.append(
            f"| {r['regime']} | {r['capture']} | {r['objective_solve']:.1f} | "
            f"{r['objective_minimised']:.1f} | {r['d_log_rho_solve']:+.1f} | "
            f"{r['d_log_rho_minimised']:+.1f} | {r['albedo_rms']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def plot(payload: dict, path: str) -> None:
    plt = pyplot()

    rows = payload["rows"]
    labels = [f"{r['regime']} {r['capture']}" for r in rows]
    x = torch.arange(len(rows)).tolist()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, key, title in (
        (axes[0], "objective", "objective at the true geometry"),
        (axes[1], "d_log_rho", "d objective / d log rho (> 0 pushes rho down)"),
    ):
        for dx, which, colour in ((-0.2, "solve", "tab:red"), (0.2, "minimised", "tab:blue")):
            label = "fit's appearance solve" if which == "solve" else "appearance minimised"
            values = [r[f"{key}_{which}"] for r in rows]
            ax.bar([i + dx for i in x], values, width=0.4, color=colour, label=label)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=11)
        ax.set_title(title, fontsize=13)
        ax.tick_params(axis="y", labelsize=11)
        ax.legend(fontsize=11)
    fig.suptitle(
        f"Photometric fit at the truth: {payload['frames']} frames, {payload['size']} px",
        fontsize=14,
    )
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m bench.photo_gap", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--captures", type=int, default=2, help="captures per regime")
    parser.add_argument("--frames", type=int, default=16, help="frames per capture")
    parser.add_argument("--size", type=int, default=96, help="image side in pixels")
    parser.add_argument("--solves", type=int, default=8, help="rounds of the fit's solve")
    parser.add_argument("--lbfgs", type=int, default=40, help="L-BFGS iterations")
    parser.add_argument("--out", default=os.path.join("bench", "results"), help="output root")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 capture of 2 frames, 32 px, 3 + 3"
    )
    given = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(given)
    require_at_least(parser, args, ("captures", "frames", "solves", "lbfgs"))
    require_at_least(parser, args, ("size",), 32)
    captures, frames, size, solves, lbfgs = (
        (1, 2, 32, 3, 3)
        if args.quick
        else (args.captures, args.frames, args.size, args.solves, args.lbfgs)
    )
    gen = generator(size)
    rows = []
    jobs = [(regime, c) for regime in REGIMES for c in range(captures)]
    for regime, c in tqdm(jobs, desc="captures at the truth", unit="capture"):
        sample = gen.generate_textured_capture(regime, "test", c, list(range(frames)))
        rows.append(
            {"regime": regime, "capture": c, **capture_gap(sample, gen.layer, size, solves, lbfgs)}
        )
    payload = {
        **machine_fields(torch.device("cpu")),
        "command": " ".join(["python -m bench.photo_gap", *given]),
        "captures": captures,
        "frames": frames,
        "size": size,
        "solves": solves,
        "lbfgs": lbfgs,
        "rows": rows,
    }
    write_results(args.out, "photo_gap", payload, markdown, plot)
    return payload


if __name__ == "__main__":
    main()
