"""The report's fitting rows: FLAME and the camera fitted to the test landmarks
(:func:`train.fit.fit_landmarks`), beside the regressors.

Rows, all on the same held-out images as the runs:

- ``fit-clean``: fit to the *clean* landmarks, the landmark-only bound (what the
  68 points can tell at all);
- ``fit-mean``: fit to the noisy landmarks from the mean face (rho camera);
- ``fit-ortho``: the same fit with rho fixed at 0 (orthographic), same landmarks,
  same priors: the paper's table 1 comparison without any training noise;
- ``fit-regressor``: the rho model's prediction refined by the fit (per image the
  better optimum of that start and the mean face's).

And captures: 8 sequences of 16 frames per regime (one subject and distance each,
:meth:`train.data.synthetic.FaceGenerator.generate_capture`), fitted per capture
(one shape and one rho, the frames' own variables integrated out:
``fit_landmarks(marginal=True)``) and per frame, on noisy landmarks. Every rho fit
row gives its intervals' coverage per regime.
"""

from __future__ import annotations

import dataclasses
import time

import torch

import flame
from train.data.batches import Samples
from train.data.sources import REGIMES
from train.data.synthetic import FaceGenerator
from train.engine.config import TrainConfig
from train.eval.photo_rows import fit_photometric
from train.eval.runs import EvalRun, data_config
from train.eval.tables import (
    Numbers,
    landmark_table,
    neutral_table,
    per_image_landmarks,
    rho_table,
)
from train.eval.targets import judge
from train.fit import better_of, fit_landmarks
from train.fit.posterior import UNOBSERVABLE_RATIO

FIT_TITLES = {
    "fit-clean": "fit to clean landmarks (landmark-only bound)",
    "fit-mean": "fit from the mean face (rho camera)",
    "fit-ortho": "fit from the mean face, orthographic (rho = 0)",
    "fit-regressor": "rho model + fit",
    "fit-photometric": "photometric fit from the mean face (--photometric-fit)",
}
#: the fit rows' comparison: the same fit with the orthographic camera
FIT_BASELINE = "fit-ortho"
#: the rows of the neutral-shape table (the slowest table: about 40 s per row for 384
#: images on 2 CPU cores): the fits with and without rho and the regressor + fit
SHAPE_ROWS = ("fit-mean", "fit-ortho", "fit-regressor", "fit-photometric")
CAPTURES_PER_REGIME, FRAMES_PER_CAPTURE = 8, 16
#: a capture's rho is "within" when off the truth by at most this (relative)
CAPTURE_TOLERANCE = 0.05
#: targets of the fitting (the issue's; reported, not asserted)
FIT_TARGETS = (
    ("pearson_all", "rho model + fit: per-image Pearson r of rho, all regimes", ">=", 0.9),
    ("pearson_hmc", "rho model + fit: per-image Pearson r of rho, hmc", ">=", 0.7),
    ("rho_mean_hmc", "rho model + fit: hmc mean rho off the truth (%)", "|x| <=", 10.0),
    ("rho_mean_studio", "rho model + fit: studio mean rho off the truth (%)", "|x| <=", 10.0),
    ("rho_mean_wild", "rho model + fit: wild mean rho off the truth (%)", "|x| <=", 10.0),
    (
        "hmc_jaw_vs_retrained",
        "rho model + fit: hmc jaw-line error vs the orthographic retrained model (%)",
        "<=",
        -25.0,
    ),
    ("capture_hmc", "per capture (16 frames): hmc captures with rho within 5 % (%)", ">=", 90.0),
    ("speed_s", "fit of the whole test split from the mean face (s)", "<", 30.0),
)


@dataclasses.dataclass
class FitRow:
    """A fit row of the report, shaped like an :class:`EvalRun` for the tables."""

    label: str
    role: str
    cfg: TrainConfig


def _as_prediction(fit) -> dict:
    return {
        "landmarks": fit.landmarks,
        "rho": fit.rho,
        "scale": fit.scale,
        "shape": fit.shape,
        "trans": fit.trans,
        "expression": fit.expression,
        "jaw_pose": fit.jaw_pose,
        "global_pose": fit.global_pose,
        "rho_interval": fit.rho_interval,
    }


def fit_predictions(
    runs: list[EvalRun],
    preds: dict,
    samples: Samples,
    progress: bool = True,
    photometric: bool = False,
):
    """``(rows, predictions, seconds)`` of the fit rows on ``samples`` (with
    ``photometric``, also ``fit-photometric``: :mod:`train.eval.photo_rows`)."""
    cfg = data_config(runs)
    layer = flame.FLAME(cfg.data.flame, n_shape=cfg.data.n_shape, n_expr=cfg.data.n_expr)
    noisy = samples.get("landmarks_noisy", samples["landmarks"])
    noisy = torch.where(torch.isfinite(noisy), noisy, samples["landmarks"])
    rho_run = next((r for r in runs if r.role == "rho"), None)
    jobs = {
        "fit-clean": lambda: fit_landmarks(samples["landmarks"], layer),
        "fit-mean": lambda: fit_landmarks(noisy, layer),
        "fit-ortho": lambda: fit_landmarks(noisy, layer, camera="ortho"),
    }
    if photometric:
        jobs["fit-photometric"] = lambda: fit_photometric(cfg, samples, layer, noisy, progress)
    rows, fits, seconds = [], {}, {}
    for role, job in jobs.items():
        if progress:
            print(f"fitting: {FIT_TITLES[role]} ({len(noisy)} images)", flush=True)
        start = time.perf_counter()
        fits[role] = job()
        seconds[role] = time.perf_counter() - start
        rows.append(FitRow(role, role, cfg))
    if rho_run is not None:
        start = time.perf_counter()
        warm = fit_landmarks(noisy, layer, init=preds[rho_run.label])
        fits["fit-regressor"] = better_of(warm, fits["fit-mean"])
        seconds["fit-regressor"] = time.perf_counter() - start
        rows.append(FitRow("fit-regressor", "fit-regressor", cfg))
    return rows, {k: _as_prediction(v) for k, v in fits.items()}, seconds


def capture_results(cfg: TrainConfig, num: Numbers) -> dict:
    """Per regime: captures fitted with one rho each against per-frame fits."""
    gen = FaceGenerator(
        cfg.data.flame,
        size=32,
        n_shape=cfg.data.n_shape,
        n_expr=cfg.data.n_expr,
        seed=cfg.data.seed,
    )
    data = gen.generate_captures(REGIMES, "test", CAPTURES_PER_REGIME, FRAMES_PER_CAPTURE)
    groups = data["capture"]
    start = time.perf_counter()
    capture = fit_landmarks(data["landmarks_noisy"], gen.layer, groups=groups)
    seconds = time.perf_counter() - start
    per_frame = fit_landmarks(data["landmarks_noisy"], gen.layer)
    out = {"frames": FRAMES_PER_CAPTURE, "captures": CAPTURES_PER_REGIME, "seconds": seconds}
    for rid, regime in enumerate(REGIMES):
        sel = data["regime"] == rid
        first = sel & (torch.arange(len(groups)) % FRAMES_PER_CAPTURE == 0)
        true = data["rho"][first].double()
        err = capture.rho[first].double() / true - 1.0
        frame_err = per_frame.rho[sel].double() / data["rho"][sel].double() - 1.0
        errors = per_image_landmarks(capture.landmarks[sel], data["landmarks"][sel])
        lo, hi = capture.rho_interval[first].double().unbind(-1)
        out[regime] = {
            "median_pct": float(err.abs().median() * 100.0),
            "max_pct": float(err[err.abs().argmax()] * 100.0),
            "covered_pct": float(((lo <= true) & (true <= hi)).double().mean() * 100.0),
            "true_mean": float(true.mean()),
            "capture_mean": float(capture.rho[first].mean()),
            "capture_abs_error_pct": num.mean(err.abs() * 100.0),
            "within_pct": float((err.abs() <= CAPTURE_TOLERANCE).double().mean() * 100.0),
            "frame_abs_error_pct": num.mean(frame_err.abs() * 100.0),
            "jaw": num.mean(errors["jaw"]),
            "other": num.mean(errors["other"]),
        }
    return out


def fit_results(
    runs: list[EvalRun],
    preds: dict,
    samples: Samples,
    num: Numbers,
    progress: bool = True,
    photometric: bool = False,
) -> dict:
    """Every number of the report's fitting section (tables 1-3, captures, targets);
    ``photometric`` adds the ``fit-photometric`` row (:mod:`train.eval.photo_rows`)."""
    rows, fit_preds, seconds = fit_predictions(runs, preds, samples, progress, photometric)
    landmarks, versus = landmark_table(rows, fit_preds, samples, num, baseline=FIT_BASELINE)
    results = {
        "titles": {r.label: FIT_TITLES[r.role] for r in rows},
        "images": len(samples["landmarks"]),
        "seconds": seconds,
        "landmarks": landmarks,
        "vs_ortho_fit": versus,
        "neutral_shape": neutral_table(
            [r for r in rows if r.role in SHAPE_ROWS],
            fit_preds,
            samples,
            num,
            progress,
            FIT_BASELINE,
            mean_head=False,
        ),
        "rho": add_coverage(rho_table(rows, fit_preds, samples, num), fit_preds, samples),
        "captures": capture_results(data_config(runs), num),
    }
    results["vs_retrained"] = _vs_retrained(runs, preds, fit_preds, samples, num)
    results["targets"] = fit_targets(results)
    return results


def add_coverage(table: dict, preds: dict, samples: Samples) -> dict:
    """``table`` (:func:`train.eval.tables.rho_table`) with, per fit row and regime,
    the share of images whose 95 % rho interval holds the truth (``coverage_pct``)
    and whose interval is too wide to say (``unobservable_pct``: wider than a factor
    3, "distance not observable from these landmarks")."""
    true = samples["rho"].double()
    for label, per in table.items():
        interval = preds[label].get("rho_interval")
        if interval is None or not bool((interval > 0).any()):
            continue  # the orthographic fit: no rho
        lo, hi = interval.double().unbind(-1)
        covered = (lo <= true) & (true <= hi)
        wide = ~((lo > 0) & (hi <= UNOBSERVABLE_RATIO * lo))
        for source, sel in [*((r, samples["regime"] == i) for i, r in enumerate(REGIMES))]:
            if source in per and bool(sel.any()):
                per[source]["coverage_pct"] = float(covered[sel].double().mean() * 100)
                per[source]["unobservable_pct"] = float(wide[sel].double().mean() * 100)
        if "all" in per:
            per["all"]["coverage_pct"] = float(covered.double().mean() * 100)
            per["all"]["unobservable_pct"] = float(wide.double().mean() * 100)
    return table


def _vs_retrained(runs, preds, fit_preds, samples, num: Numbers) -> dict:
    """Regressor + fit against the orthographic retrained model, per regime (paired)."""
    base = next((r for r in runs if r.role == "ortho-retrained"), None)
    if base is None or "fit-regressor" not in fit_preds:
        return {}
    mine = per_image_landmarks(fit_preds["fit-regressor"]["landmarks"], samples["landmarks"])
    theirs = per_image_landmarks(preds[base.label]["landmarks"], samples["landmarks"])
    out = {}
    for rid, regime in enumerate(REGIMES):
        sel = samples["regime"] == rid
        if bool(sel.any()):
            out[regime] = {
                f"{k}_pct": num.rel_pct(mine[k][sel], theirs[k][sel]) for k in ("jaw", "other")
            }
    return out


def fit_targets(results: dict) -> list[dict]:
    """The fitting targets with their measured values and verdicts."""
    rho = results["rho"].get("fit-regressor", {})
    none = {"value": None, "lo": None, "hi": None}
    cells = {
        "pearson_all": rho.get("all", {}).get("pearson", none),
        "pearson_hmc": rho.get("hmc", {}).get("pearson", none),
        "hmc_jaw_vs_retrained": results["vs_retrained"].get("hmc", {}).get("jaw_pct", none),
        "capture_hmc": {"value": results["captures"]["hmc"]["within_pct"]},
        "speed_s": {"value": results["seconds"]["fit-mean"]},
    }
    for regime in REGIMES:
        cells[f"rho_mean_{regime}"] = {"value": rho.get(regime, {}).get("mean_error_pct")}
    return [judge(key, what, op, limit, cells[key]) for key, what, op, limit in FIT_TARGETS]
