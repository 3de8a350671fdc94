"""``summary.png`` of a ``bench.gpu`` run: the raster and training figures beside their
targets (``projection.png`` and ``raster.png`` of the benches show the rest)."""

from __future__ import annotations

from _common.figures import pyplot, save_figure
from bench.gpu import targets


def _raster_bars(stages: dict) -> dict[str, dict[int, float]]:
    """``{label: {resolution: ms}}`` of forward+backward at B = 64 for every source."""
    bars: dict[str, dict[int, float]] = {}
    for r in stages.get("raster", {}).get("record", {}).get("rows", []):
        if r["mode"] == "forward+backward" and r["batch"] == 64:
            bars.setdefault(f"minirast {r['backend']}", {})[r["resolution"]] = r["ms"]
    for r in stages.get("nvdiffrast", {}).get("record", {}).get("rows", []):
        if r["batch"] == 64:
            bars.setdefault("nvdiffrast (same run)", {})[r["resolution"]] = r["nvdiffrast_ms"]
    return bars


def plot(payload: dict, path: str) -> bool:
    """Write the figure; False (and no file) when the run has none of these figures."""
    stages = payload["stages"]
    bars = _raster_bars(stages)
    train = stages.get("train", {}).get("record", {}).get("rows", [])
    if not bars and not train:
        return False
    plt = pyplot()

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    resolutions = sorted(targets.RASTER_MS)
    width = 0.8 / max(1, len(bars))
    for k, (label, values) in enumerate(sorted(bars.items())):
        xs = [i + k * width for i, res in enumerate(resolutions) if res in values]
        ax1.bar(xs, [values[r] for r in resolutions if r in values], width, label=label)
    for i, res in enumerate(resolutions):
        ax1.hlines(targets.RASTER_MS[res], i - 0.1, i + 0.9, colors="k", linestyles="--")
    ax1.set_xticks([i + 0.4 - width / 2 for i in range(len(resolutions))])
    ax1.set_xticklabels([f"{r}², B = 64" for r in resolutions])
    ax1.set_yscale("log")
    ax1.set_ylabel("ms, forward + backward (dashed: target)")
    ax1.set_title("rasterize + interpolate + antialias, bundled head")
    if bars:
        ax1.legend(fontsize=7)
    else:
        ax1.text(0.5, 0.5, "no B = 64 case in this run", ha="center", transform=ax1.transAxes)
    labels = [f"amp={int(r['amp'])}" for r in train]
    ax2.bar(labels, [100 * r["render_share"] for r in train], label="rendering fwd+bwd")
    ax2.bar(labels, [100 * r["render_fwd_share"] for r in train], 0.4, label="rendering fwd")
    ax2.axhline(100 * targets.RENDER_SHARE, color="k", linestyle="--", label="target")
    for i, r in enumerate(train):
        ax2.annotate(f"{r['images_per_s']:.0f} img/s", (i, 100 * r["render_share"]),
                     ha="center", va="bottom", fontsize=8)  # fmt: skip
    preset = stages.get("train", {}).get("record", {}).get("preset", "")
    ax2.set_ylabel("% of a training step")
    ax2.set_title(f"training step, {preset} preset")
    if train:
        ax2.legend(fontsize=7)
    fig.suptitle(f"bench.gpu on {payload['device']}" + (" (dry run)" if payload["dry_run"] else ""))
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return True
