"""Evaluation metrics shared by training summaries and the evaluation report."""

from __future__ import annotations

import math

import torch

from train.data import JAW, OTHER


def landmark_errors(pred: torch.Tensor, true: torch.Tensor, size: int) -> dict[str, float]:
    """Landmark errors of ``[N,68,2]`` NDC predictions.

    ``jaw`` and ``other``: mean squared NDC distance x 1e4 (the paper's table 1
    unit) over the 17 jaw-line and the 51 other points; ``*_px``: mean distance
    in pixels at ``size`` (what readers picture more easily).
    """
    sq = ((pred - true) ** 2).sum(-1)  # [N,68]
    px = sq.sqrt() * size / 2
    return {
        "jaw": float(sq[:, JAW].mean()) * 1e4,
        "other": float(sq[:, OTHER].mean()) * 1e4,
        "jaw_px": float(px[:, JAW].mean()),
        "other_px": float(px[:, OTHER].mean()),
    }


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
