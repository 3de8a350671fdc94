"""The evaluation report's figures (``train.evaluate``): PNG files, Agg backend.

- ``rho_sweep.png``: figure 2 of the paper: per regime, a test image and the rho
  model's prediction re-rendered while rho sweeps 0 ... 5 (scale and translation kept);
- ``perspective_rho.png``: sec. 6.2: the validation mean rho of the rho model and
  the full-perspective baseline's equivalent rho during training;
- ``overlays.png``: test images per regime with each model's mesh and landmarks;
- ``rho_scatter.png``: predicted against true rho per image;
- ``rho_hist.png``: predicted rho per regime next to the true distribution;
- ``neutral_error.png``: table 2 as bars with bootstrap intervals.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from _common.figures import save_figure
from train.data.sources import REGIMES, SOURCES  # noqa: E402
from train.engine.run_log import read_metrics  # noqa: E402
from train.eval.tables import sources_present  # noqa: E402
from train.render.head import camera_vertices, project_landmarks, render_mesh  # noqa: E402

RHO_SWEEP = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)
FIG_PIXELS = 128  # renders and upsampled inputs in the figures
PER_REGIME = 3  # overlay columns per regime
COLOURS = {"hmc": "tab:red", "studio": "tab:blue", "wild": "tab:green", "folder": "tab:purple"}


def _save(fig, out: str, name: str) -> str:
    path = os.path.join(out, name)
    save_figure(fig, path, dpi=80)
    plt.close(fig)
    return name


def _picks(samples, n: int) -> list[tuple[str, torch.Tensor]]:
    """The first ``n`` test images of every source present, as indices."""
    return [(s, torch.nonzero(sel).flatten()[:n]) for s, sel in sources_present(samples)]


def _upsampled(samples, idx: torch.Tensor) -> torch.Tensor:
    images = samples["image"][idx].float() / 255.0
    return F.interpolate(
        images, size=(FIG_PIXELS, FIG_PIXELS), mode="bilinear", align_corners=False
    )


def _to_pixels(ndc: torch.Tensor) -> torch.Tensor:
    return (ndc + 1) * FIG_PIXELS / 2 - 0.5


@torch.no_grad()
def _render(system, images: torch.Tensor, rho: torch.Tensor | None = None):
    """The model's prediction on ``images`` rendered at FIG_PIXELS (optionally another rho)."""
    dev = next(system.parameters()).device
    images = images.to(dev)
    system.eval()
    pred = system.encode(images)
    out = system.geometry(pred)
    r = pred.rho if rho is None else rho.to(pred.rho).expand_as(pred.rho)
    shaded = render_mesh(
        camera_vertices(out.vertices),
        system.flame_layer.faces,
        pred.scale,
        pred.trans,
        r,
        FIG_PIXELS,
    )
    lmk = project_landmarks(out.landmarks, pred.scale, pred.trans, r)
    return shaded.image.cpu(), shaded.mask.cpu(), lmk.cpu(), pred


def _show(ax, image: torch.Tensor) -> None:
    ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy())
    ax.set_xticks([])
    ax.set_yticks([])


def rho_sweep(run, samples, out: str) -> str:
    """Figure 2 analog for the rho model ``run``."""
    picks = [(s, idx[:1]) for s, idx in _picks(samples, 1) if s in REGIMES]
    fig, axes = plt.subplots(
        len(picks),
        1 + len(RHO_SWEEP),
        figsize=(1.7 * (1 + len(RHO_SWEEP)), 1.9 * len(picks)),
        squeeze=False,
    )
    for row, (source, idx) in enumerate(picks):
        small = samples["image"][idx].float() / 255.0
        _show(axes[row][0], _upsampled(samples, idx)[0])
        _, _, _, pred = _render(run.system, small)
        axes[row][0].set_ylabel(source, fontsize=9)
        axes[row][0].set_title(
            f"input: rho {float(samples['rho'][idx[0]]):.2f} true,\n"
            f"{float(pred.rho[0]):.2f} predicted",
            fontsize=7,
        )
        for col, value in enumerate(RHO_SWEEP, start=1):
            image, mask, lmk, _ = _render(run.system, small, torch.tensor([value]))
            ax = axes[row][col]
            _show(ax, torch.where(mask[0], image[0], torch.ones_like(image[0])))
            pix = _to_pixels(lmk[0])
            ax.scatter(pix[:, 0], pix[:, 1], s=2, c="red")
            if row == 0:
                ax.set_title(f"rho = {value:g}", fontsize=8)
    fig.suptitle(
        f"{run.label}: predicted shape, expression and pose re-rendered as rho sweeps "
        "(scale and translation kept)",
        fontsize=8,
    )
    fig.tight_layout()
    return _save(fig, out, "rho_sweep.png")


def perspective_curve(runs, out: str) -> str | None:
    """Sec. 6.2: validation mean rho against steps, rho model vs perspective baseline."""
    shown = [r for r in runs if r.role in ("rho", "perspective")]
    if not any(r.role == "perspective" for r in shown):
        return None
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    styles = {"rho": "-", "perspective": "--"}
    truth_drawn = set()
    for run in shown:
        records = read_metrics(os.path.join(run.dir, "metrics.jsonl"))
        records = [r for r in records if r.get("kind") == "val"]
        for regime in REGIMES:
            pts = [(r["step"], r[regime]["rho_pred_mean"]) for r in records if regime in r]
            if not pts:
                continue
            ax.plot(
                *zip(*pts),
                styles[run.role],
                color=COLOURS[regime],
                marker="o",
                ms=3,
                label=f"{regime}: {run.label}",
            )
            truth = records[-1][regime].get("rho_true_mean")
            if truth is not None and regime not in truth_drawn:
                ax.axhline(truth, color=COLOURS[regime], ls=":", lw=1)
                truth_drawn.add(regime)
    ax.set_xlabel("fine-tuning step")
    ax.set_ylabel("validation mean rho (perspective: 1/t_z)")
    ax.set_title("rho model vs full-perspective baseline; dotted: true mean", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _save(fig, out, "perspective_rho.png")


def overlays(runs, samples, out: str) -> str:
    """Rows: models; columns: test images per source; mesh blended in, landmarks drawn."""
    picks = _picks(samples, PER_REGIME)
    idx = torch.cat([i for _, i in picks])
    names = [s for s, i in picks for _ in range(len(i))]
    small = samples["image"][idx].float() / 255.0
    big = _upsampled(samples, idx)
    true_pix = _to_pixels(samples["landmarks"][idx].float())
    fig, axes = plt.subplots(
        len(runs), len(idx), figsize=(1.45 * len(idx), 1.6 * len(runs)), squeeze=False
    )
    for row, run in enumerate(runs):
        image, mask, lmk, pred = _render(run.system, small)
        for col in range(len(idx)):
            blend = torch.where(mask[col], 0.4 * big[col] + 0.6 * image[col], big[col])
            ax = axes[row][col]
            _show(ax, blend)
            ax.scatter(true_pix[col, :, 0], true_pix[col, :, 1], s=1.5, c="lime")
            pix = _to_pixels(lmk[col])
            ax.scatter(pix[:, 0], pix[:, 1], s=1.5, c="red")
            if row == 0:
                ax.set_title(names[col], fontsize=8)
            if col == 0:
                ax.set_ylabel(run.label, fontsize=6)
            ax.text(2, FIG_PIXELS - 6, f"rho {float(pred.rho[col]):.2f}", fontsize=5, color="w")
    fig.suptitle("green: true landmarks; red: predicted; mesh: prediction", fontsize=8)
    fig.tight_layout()
    return _save(fig, out, "overlays.png")


def rho_scatter(runs, preds, samples, out: str) -> str | None:
    shown = [r for r in runs if r.cfg.model.camera != "ortho"]
    known = torch.isfinite(samples["rho"])
    if not shown or not bool(known.any()):
        return None
    fig, axes = plt.subplots(1, len(shown), figsize=(3.3 * len(shown), 3.3), squeeze=False)
    true = samples["rho"]
    top = float(max(true[known].max(), *(preds[r.label]["rho"][known].max() for r in shown))) * 1.05
    for ax, run in zip(axes[0], shown):
        for i, regime in enumerate(SOURCES):
            sel = known & (samples["regime"] == i)
            if bool(sel.any()):
                ax.scatter(
                    true[sel],
                    preds[run.label]["rho"][sel],
                    s=4,
                    alpha=0.6,
                    c=COLOURS[regime],
                    label=regime,
                )
        ax.plot([0, top], [0, top], "k:", lw=1)
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel("true rho (1/t_z)")
        ax.set_ylabel("predicted rho")
        ax.set_title(run.label, fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, out, "rho_scatter.png")


def rho_hist(runs, preds, samples, out: str) -> str | None:
    run = next((r for r in runs if r.role == "rho"), None) or next(
        (r for r in runs if r.cfg.model.camera == "pseudo"), None
    )
    if run is None:
        return None
    present = sources_present(samples)
    fig, axes = plt.subplots(1, len(present), figsize=(3.2 * len(present), 2.8), squeeze=False)
    for ax, (source, sel) in zip(axes[0], present):
        pred = preds[run.label]["rho"][sel]
        true = samples["rho"][sel]
        bins = torch.linspace(0, float(run.cfg.model.rho_max), 31).tolist()
        ax.hist(pred.tolist(), bins=bins, alpha=0.7, color=COLOURS[source], label="predicted")
        if bool(torch.isfinite(true).all()):
            ax.hist(true.tolist(), bins=bins, histtype="step", color="k", label="true")
        ax.set_title(f"{source} ({run.label})", fontsize=8)
        ax.set_xlabel("rho")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, "rho_hist.png")


def neutral_bars(runs, results: dict, out: str) -> str | None:
    """Table 2 as grouped bars (the mean head first, as the reference)."""
    table = results["neutral_shape"]
    labels = [k for k in table if k not in {r.label for r in runs}] + [r.label for r in runs]
    regimes = [s for s in REGIMES if any(s in table.get(k, {}) for k in labels)]
    if not regimes:
        return None
    fig, ax = plt.subplots(figsize=(2.0 + 0.35 * len(regimes) * len(labels), 3.4))
    width = 0.8 / len(labels)
    for k, label in enumerate(labels):
        xs, ys, err = [], [], [[], []]
        for j, regime in enumerate(regimes):
            cell = table[label].get(regime)
            if cell is None:
                continue
            m = cell["mm"]
            xs.append(j + (k - (len(labels) - 1) / 2) * width)
            ys.append(m["value"])
            lo, hi = m["lo"], m["hi"]
            err[0].append(m["value"] - lo if lo == lo else 0.0)
            err[1].append(hi - m["value"] if hi == hi else 0.0)
        ax.bar(xs, ys, width, yerr=err, capsize=2, label=label)
    ax.set_xticks(range(len(regimes)), regimes)
    ax.set_ylabel("mean vertex-to-surface (mm)")
    ax.set_title("neutral-shape error (95 % bootstrap intervals)", fontsize=9)
    ax.legend(fontsize=6, loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return _save(fig, out, "neutral_error.png")


def draw_all(runs, preds, samples, results: dict, out: str) -> dict[str, str | None]:
    """Draw every figure that the given runs allow; ``{figure: file name or None}``."""
    sweep_run = next((r for r in runs if r.role == "rho"), None) or next(
        (r for r in runs if r.cfg.model.camera == "pseudo"), None
    )
    return {
        "rho_sweep": rho_sweep(sweep_run, samples, out) if sweep_run else None,
        "perspective_rho": perspective_curve(runs, out),
        "overlays": overlays(runs, samples, out),
        "rho_scatter": rho_scatter(runs, preds, samples, out),
        "rho_hist": rho_hist(runs, preds, samples, out),
        "neutral_error": neutral_bars(runs, results, out),
    }
