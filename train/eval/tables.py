"""The report's tables: landmark error (table 1), neutral-shape error (table 2) and
predicted rho (table 3), with bootstrap intervals."""

from __future__ import annotations

import torch
from tqdm import tqdm

import flame
from train.data.batches import Samples
from train.data.sources import SOURCES
from train.eval.runs import BASELINE
from train.eval.shape_error import NeutralShapeError
from train.metrics import (
    batched_pearson,
    bootstrap_ci,
    pearson,
    per_image_landmark_errors,
    rho_summary,
)
from train.units import REFERENCE_PIXELS

#: the reference row of table 2: the mean head (all shape coefficients zero)
MEAN_HEAD = "mean head (shape 0)"


def per_image_landmarks(pred: torch.Tensor, true: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image errors ``[N]``: mean squared NDC distance x 1e4 (jaw / other) and
    mean distance in pixels of a 224 x 224 image (``*_px224``)."""
    errors = per_image_landmark_errors(pred, true, REFERENCE_PIXELS)
    return {k.replace("_px", f"_px{REFERENCE_PIXELS}"): v for k, v in errors.items()}


def _mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(-1)


def _rel_pct(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.mean(-1) / b.mean(-1) - 1.0) * 100.0


class Numbers:
    """Statistics with bootstrap intervals, all with one resampling setup."""

    def __init__(self, n_boot: int, seed: int, level: float = 0.95) -> None:
        self.n_boot, self.seed, self.level = n_boot, seed, level

    def ci(self, stat, value: float, *samples: torch.Tensor) -> dict[str, float]:
        lo, hi = bootstrap_ci(stat, *samples, n_boot=self.n_boot, level=self.level, seed=self.seed)
        return {"value": value, "lo": lo, "hi": hi}

    def mean(self, x: torch.Tensor) -> dict[str, float]:
        return self.ci(_mean, float(x.double().mean()), x)

    def rel_pct(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
        """Change of the mean of ``a`` against the mean of ``b`` in percent (paired)."""
        return self.ci(_rel_pct, float(_rel_pct(a.double(), b.double())), a, b)

    def pearson(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
        return self.ci(batched_pearson, pearson(a, b) if len(a) > 1 else float("nan"), a, b)


def sources_present(samples: Samples) -> list[tuple[str, torch.Tensor]]:
    """Every source with samples in ``samples``, with its boolean selection ``[N]``."""
    return [
        (s, samples["regime"] == i)
        for i, s in enumerate(SOURCES)
        if bool((samples["regime"] == i).any())
    ]


def baselines(runs, baseline: str = BASELINE) -> dict[str, str | None]:
    """``{label: label of its baseline run}``: the run of role ``baseline`` of the same
    training replicate, else the first baseline run (None without one)."""
    bases = [r for r in runs if r.role == baseline]
    trained = [r for r in reversed(bases) if not getattr(r, "imported", False)]
    by_rep = {r.cfg.run.replicate: r.label for r in trained}
    first = bases[0].label if bases else None
    return {r.label: by_rep.get(r.cfg.run.replicate, first) for r in runs}


def landmark_table(
    runs, preds, samples, num: Numbers, baseline: str = BASELINE
) -> tuple[dict, dict]:
    """Table 1 numbers and each run's change against the run of role ``baseline``
    (default the orthographic retrained model) of the same training replicate."""
    errors = {
        r.label: per_image_landmarks(preds[r.label]["landmarks"], samples["landmarks"])
        for r in runs
    }
    table, versus = {}, {}
    base_of = baselines(runs, baseline)
    for run in runs:
        base = base_of[run.label]
        table[run.label], versus[run.label] = {}, {}
        for source, sel in sources_present(samples):
            e = {k: v[sel] for k, v in errors[run.label].items()}
            table[run.label][source] = {
                "n": int(sel.sum()),
                **{k: num.mean(v) for k, v in e.items()},
            }
            if base is not None and run.label != base:
                b = {k: v[sel] for k, v in errors[base].items()}
                versus[run.label][source] = {
                    f"{k}_pct": num.rel_pct(e[k], b[k]) for k in ("jaw", "other")
                }
    return table, versus


def neutral_table(
    runs,
    preds,
    samples,
    num: Numbers,
    progress: bool,
    baseline: str = BASELINE,
    mean_head: bool = True,
) -> dict:
    """Table 2: neutral-shape error in mm per run and regime (images with a true shape),
    and each run's difference to the run of role ``baseline`` of the same training
    replicate (as :func:`landmark_table`); ``mean_head``: the reference row of the mean
    head first."""
    ref = runs[0].cfg
    n_shape = max(ref.data.n_shape, *(p["shape"].shape[1] for p in preds.values()))
    layer = flame.FLAME(ref.data.flame, n_shape=n_shape, n_expr=0)
    measure = NeutralShapeError(layer)
    true_shape = samples["shape"]
    known = torch.isfinite(true_shape).all(1)
    # reference row: the mean head (every shape coefficient zero), what a regressor
    # that learned no shape at all would score
    shapes = {MEAN_HEAD: torch.zeros(len(true_shape), 1)} if mean_head else {}
    shapes.update({run.label: preds[run.label]["shape"] for run in runs})
    per_image = {}
    for label, shape in tqdm(shapes.items(), desc="neutral-shape error", disable=not progress):
        mm = torch.full((len(true_shape),), float("nan"))
        mm[known] = measure(shape[known], true_shape[known])
        per_image[label] = mm
    base_of = baselines(runs, baseline)
    out = {}
    for label, mm in per_image.items():
        base = base_of.get(label)
        out[label] = {}
        for source, sel in sources_present(samples):
            sel = sel & known
            if not bool(sel.any()):
                continue
            row = {"mm": num.mean(mm[sel]), "median_mm": float(mm[sel].median())}
            if base is not None and label not in (base, MEAN_HEAD):
                # paired: the same images for both models
                diff = mm[sel] - per_image[base][sel]
                row["vs_retrained_mm"] = num.mean(diff)
            out[label][source] = row
    return out


def rho_table(runs, preds, samples, num: Numbers) -> dict:
    """Table 3: predicted rho against the truth, per regime and pooled over regimes."""
    out = {}
    true = samples["rho"]
    known = torch.isfinite(true)
    for run in runs:
        rho = preds[run.label]["rho"].double()
        out[run.label] = {}
        for source, sel in [*sources_present(samples), ("all", known)]:
            if source != "all" and not bool((sel & known).any()):
                # real data: no true camera, only the prediction
                out[run.label][source] = {
                    "pred_mean": float(rho[sel].mean()),
                    "pred_std": float(rho[sel].std()) if int(sel.sum()) > 1 else 0.0,
                }
                continue
            p, t = rho[sel], true[sel].double()
            row = rho_summary(p, t)
            row["mean_error_pct"] = (row["pred_mean"] / row["true_mean"] - 1.0) * 100.0
            row["pearson"] = num.pearson(p, t)  # the same r, with its interval
            # the equivalent camera distance 1/rho (metres); median: 1/rho is heavy-tailed
            row["distance_pred_median_m"] = (
                float((1.0 / p).median()) if bool((p > 0).all()) else None
            )
            row["distance_true_median_m"] = float((1.0 / t).median())
            out[run.label][source] = row
    return out
