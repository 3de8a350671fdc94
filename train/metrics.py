"""Metrics shared by training summaries, inference and the evaluation report: landmark
errors, correlations, bootstrap intervals, and summaries of predicted rho."""

from __future__ import annotations

import math

import numpy as np
import torch

from train.units import JAW, LANDMARK_UNIT, OTHER


def per_image_landmark_errors(
    pred: torch.Tensor, true: torch.Tensor, size: int
) -> dict[str, torch.Tensor]:
    """Per-image landmark errors ``[N]`` of ``[N,68,2]`` NDC predictions.

    ``jaw`` and ``other``: mean squared NDC distance x 1e4 (the paper's table 1
    unit) over the 17 jaw-line and the 51 other points; ``*_px``: mean distance
    in pixels of a ``size`` x ``size`` image (what readers picture more easily).
    """
    sq = ((pred.double() - true.double()) ** 2).sum(-1)  # [N,68]
    px = sq.sqrt() * size / 2
    return {
        "jaw": sq[:, JAW].mean(1) * LANDMARK_UNIT,
        "other": sq[:, OTHER].mean(1) * LANDMARK_UNIT,
        "jaw_px": px[:, JAW].mean(1),
        "other_px": px[:, OTHER].mean(1),
    }


def landmark_errors(pred: torch.Tensor, true: torch.Tensor, size: int) -> dict[str, float]:
    """:func:`per_image_landmark_errors` averaged over the images."""
    return {k: float(v.mean()) for k, v in per_image_landmark_errors(pred, true, size).items()}


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    denom = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / denom if denom > 0 else float("nan")


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    def ranks(x: torch.Tensor) -> torch.Tensor:
        order = torch.argsort(x)
        r = torch.empty_like(order, dtype=torch.float64)
        r[order] = torch.arange(len(x), dtype=torch.float64)
        return r

    return pearson(ranks(a), ranks(b))


def rho_summary(pred: torch.Tensor, true: torch.Tensor) -> dict[str, float]:
    """Mean and std of predicted and true rho, and their per-image correlation."""
    return {
        "pred_mean": float(pred.mean()),
        "pred_std": float(pred.std()) if len(pred) > 1 else 0.0,
        "true_mean": float(true.mean()),
        "true_std": float(true.std()) if len(true) > 1 else 0.0,
        "pearson": pearson(pred, true) if len(pred) > 1 else float("nan"),
        "spearman": spearman(pred, true) if len(pred) > 1 else float("nan"),
    }


def finite_or_none(value):
    """JSON has no NaN: undefined numbers (e.g. a correlation of constants) become null."""
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def batched_pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson r along the last dim of ``[..., N]`` tensors (NaN where undefined)."""
    a = a.double() - a.double().mean(-1, keepdim=True)
    b = b.double() - b.double().mean(-1, keepdim=True)
    denom = ((a * a).sum(-1) * (b * b).sum(-1)).sqrt()
    return torch.where(denom > 0, (a * b).sum(-1) / denom.clamp_min(1e-300), float("nan"))


def bootstrap_ci(
    statistic,
    *samples: torch.Tensor,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over resampled images.

    ``samples``: ``[N]`` tensors resampled *together* (paired: the same images for
    every tensor). ``statistic`` maps ``[n_boot, N]`` resamples to ``[n_boot]``.
    Returns ``(low, high)``; NaN when there are fewer than two images or the
    statistic is undefined on most resamples.
    """
    n = len(samples[0])
    if any(len(s) != n for s in samples):
        raise ValueError(f"paired samples must have equal lengths, got {[len(s) for s in samples]}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n < 2 or n_boot < 1:
        return float("nan"), float("nan")
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, n, (n_boot, n), generator=gen)
    stats = statistic(*(s.double()[idx] for s in samples))
    stats = stats[torch.isfinite(stats)]
    if len(stats) < n_boot / 2:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2
    lo, hi = torch.quantile(stats, torch.tensor([tail, 1.0 - tail], dtype=stats.dtype))
    return float(lo), float(hi)


def sequence_rho_summary(rho: list[float]) -> dict:
    """The sequence's rho: median, quartiles, interquartile range, median absolute
    deviation (unscaled), mean, standard deviation, min, max and count (finite values)."""
    values = np.array([r for r in rho if math.isfinite(r)], dtype=np.float64)
    if len(values) == 0:
        return {"n": 0}
    q25, median, q75 = np.percentile(values, [25, 50, 75])
    return {
        "n": int(len(values)),
        "median": float(median),
        "q25": float(q25),
        "q75": float(q75),
        "iqr": float(q75 - q25),
        "mad": float(np.median(np.abs(values - median))),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
    }
