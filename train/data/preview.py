"""A PNG grid of samples with their clean and noisy landmarks."""

from __future__ import annotations

import torch

from _common.figures import pyplot, save_figure
from train.data.synthetic import REGIME_SPECS


def preview_grid(samples: dict[str, torch.Tensor], path: str, n: int = 8) -> None:
    """Save a PNG grid of images with their clean (green) and noisy (red) landmarks."""
    plt = pyplot()

    n = min(n, len(samples["image"]))
    size = samples["image"].shape[-1]
    fig, axes = plt.subplots(1, n, figsize=(2.2 * n, 2.4), squeeze=False)
    names = list(REGIME_SPECS)
    for ax, i in zip(axes[0], range(n)):
        ax.imshow(samples["image"][i].permute(1, 2, 0).numpy())
        for key, colour in (("landmarks", "lime"), ("landmarks_noisy", "red")):
            pix = (samples[key][i] + 1) * size / 2 - 0.5
            ax.scatter(pix[:, 0], pix[:, 1], s=3, c=colour)
        regime = names[int(samples["regime"][i])]
        ax.set_title(f"{regime} rho={float(samples['rho'][i]):.2f}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
