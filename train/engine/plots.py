"""The training plots of a run: loss and validation curves, and a grid of samples."""

from __future__ import annotations

import torch

from _common.figures import pyplot, save_figure
from train.data.batches import Samples
from train.data.seeding import seeded
from train.data.sources import SOURCES
from train.engine.config import TrainConfig
from train.engine.run_log import read_metrics
from train.engine.system import TrainingSystem


def plot_curves(metrics_path: str, out_path: str) -> None:
    """Loss terms and validation landmark errors against steps, as a PNG."""
    plt = pyplot()

    records = read_metrics(metrics_path)
    steps = [r for r in records if "loss" in r]
    vals = [r for r in records if r.get("kind") == "val"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    for key in ("loss", "landmarks", "photometric", "cycle", "rho_prior", "shape_reg"):
        xs = [r["step"] for r in steps if key in r]
        if xs:
            axes[0].plot(xs, [r[key] for r in steps if key in r], label=key, lw=1)
    axes[0].set_yscale("log")
    axes[0].set_title("training losses (weighted)")
    axes[0].legend(fontsize=7)
    for regime in SOURCES:
        xs = [r["step"] for r in vals if regime in r]
        if xs:
            axes[1].plot(xs, [r[regime]["jaw"] for r in vals if regime in r], label=f"{regime} jaw")
            axes[1].plot(
                xs, [r[regime]["other"] for r in vals if regime in r], "--", label=f"{regime} other"
            )
            axes[2].plot(
                xs,
                [r[regime]["rho_pred_mean"] for r in vals if regime in r],
                label=f"{regime} predicted",
            )
            truth = vals[-1][regime]["rho_true_mean"]
            if truth is not None and truth == truth:  # the folder has no true rho
                axes[2].axhline(truth, ls=":", lw=1, color="k")
    axes[1].set_title("val landmark error (NDC^2 x 1e4)")
    axes[1].set_yscale("log")
    axes[1].legend(fontsize=7)
    axes[2].set_title("val mean rho (dotted: truth)")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out_path, dpi=100)
    plt.close(fig)


@torch.no_grad()
def sample_grid(
    system: TrainingSystem, samples: Samples, path: str, device, cfg: TrainConfig, n: int = 6
) -> None:
    """Input, rendered geometry, reconstruction and landmarks for a few samples."""
    plt = pyplot()

    system.eval()
    pick = torch.linspace(0, len(samples["image"]) - 1, min(n, len(samples["image"]))).long()
    images = samples["image"][pick].to(device).float() / 255.0
    true_lmk = samples["landmarks"][pick].to(device)
    total, _, (pred, lmk, rendered, recon, masked) = system(
        images,
        true_lmk,
        torch.zeros(len(pick), device=device),
        seeded(cfg.data.seed, "grid"),
        with_images=True,
    )
    size = images.shape[-1]
    fig, axes = plt.subplots(4, len(pick), figsize=(1.9 * len(pick), 7.6), squeeze=False)
    rows = [
        ("input", images),
        ("render", rendered.image),
        ("masked", masked.masked),
        ("reconstruction", recon),
    ]
    for r, (title, batch) in enumerate(rows):
        for c in range(len(pick)):
            ax = axes[r][c]
            ax.imshow(batch[c].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
            if r == 0:
                for pts, colour in ((true_lmk[c], "lime"), (lmk[c], "red")):
                    pix = ((pts + 1) * size / 2 - 0.5).cpu()
                    ax.scatter(pix[:, 0], pix[:, 1], s=2, c=colour)
                ax.set_title(
                    f"rho {float(pred.rho[c]):.2f}/{float(samples['rho'][pick[c]]):.2f}", fontsize=7
                )
            if c == 0:
                ax.set_ylabel(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("green: true landmarks, red: predicted; title: predicted/true rho", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
