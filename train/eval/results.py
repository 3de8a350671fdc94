"""The evaluation of trained runs on held-out data: predictions, the report's tables
and targets, run information, and the written report (``results.json``,
``report.md`` and the figures). ``python -m train.evaluate`` is its command."""

from __future__ import annotations

import datetime
import json
import os

from tqdm import tqdm

from _common.atomic import write_text
from train.data.batches import Samples
from train.engine.checkpoint import read_info
from train.engine.config import TrainConfig
from train.engine.device import pick_device
from train.engine.host import machine
from train.engine.run_log import read_metrics
from train.engine.validation import predict
from train.eval import figures, report
from train.eval.fit_rows import fit_results
from train.eval.replicates import replicate_table
from train.eval.runs import EvalRun, data_config, held_out_samples, load_runs, title
from train.eval.tables import (
    Numbers,
    landmark_table,
    neutral_table,
    rho_table,
    sources_present,
)
from train.eval.targets import (
    PAPER_REFERENCE,
    paper_changes,
    role_labels,
    role_labels_of,
    targets,
)
from train.metrics import finite_or_none
from train.units import REFERENCE_PIXELS


def delivered_weights(run: EvalRun) -> str:
    """Which weights the evaluated checkpoint holds: ``"raw"``, or ``"ema <decay>"`` for
    the weight average (checkpoints from before the average existed say nothing: raw)."""
    extra = read_info(run.checkpoint)["extra"]
    if extra.get("weights") == "ema":
        return f"ema {extra['ema_decay']:g}"
    return "raw"


def training_budget(run: EvalRun) -> dict:
    """Steps, batch, optimisation recipe and time of a run, read from its config,
    checkpoint and metrics.jsonl."""
    cfg = run.cfg
    warmup = f", warm-up {cfg.schedule.warmup_steps}" if cfg.schedule.warmup_steps else ""
    budget = {
        "steps": cfg.schedule.steps,
        "batch_size": cfg.schedule.batch_size,
        "images_seen": cfg.schedule.steps * cfg.schedule.batch_size,
        "lr": cfg.schedule.lr,
        "lr_schedule": f"{cfg.schedule.lr_schedule}{warmup}",
        "weights": delivered_weights(run),
        "train_seconds": None,
        "mean_step_s": None,
        "device": None,
        "machine": None,
    }
    records = read_metrics(os.path.join(run.dir, "metrics.jsonl"))
    steps = [r for r in records if "time_s" in r]
    if steps:
        budget["train_seconds"] = sum(r["time_s"] for r in steps)
    timing = [r for r in records if r.get("kind") == "timing"]
    if timing:
        budget["mean_step_s"] = timing[-1]["mean_step_s"]
        budget["device"] = timing[-1]["device"]
        budget["machine"] = timing[-1].get("machine")  # runs before this field: None
    return budget


def data_info(samples: Samples, cfg: TrainConfig) -> dict:
    """The test data's counts per source and the config fields that made it."""
    counts = {s: int(sel.sum()) for s, sel in sources_present(samples)}
    return {
        "test_images": counts,
        "train_images_per_regime": cfg.data.n_train,
        "image_size": cfg.data.image_size,
        "seed": cfg.data.seed,
        "flame": cfg.data.flame,
        "n_shape": cfg.data.n_shape,
        "n_expr": cfg.data.n_expr,
        "folder": cfg.data.folder or None,
    }


def evaluate(
    run_dirs: list[str],
    out: str,
    device: str = "auto",
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = True,
    command: str | None = None,
    fits: bool = True,
    photometric_fit: bool = False,
) -> dict:
    """Evaluate the runs and write ``out/report.md``, ``out/results.json`` and figures.

    With ``fits`` the report also fits FLAME and the camera to the test landmarks
    (:mod:`train.eval.fit_rows`), and with ``photometric_fit`` to the test images too
    (:mod:`train.eval.photo_rows`). Returns the results (as written to
    ``results.json``, NaN as None).
    """
    if n_boot < 0:
        raise ValueError(f"n_boot must be >= 0, got {n_boot}")
    if photometric_fit and not fits:
        raise ValueError("photometric_fit is a fitting row: it needs fits=True")
    dev = pick_device(device)
    runs = load_runs(run_dirs, dev)
    samples = held_out_samples(runs, progress=progress)
    preds = {}
    for run in tqdm(runs, desc="predict", disable=not progress):
        preds[run.label] = predict(run.system, samples, dev)
    num = Numbers(n_boot, seed)
    landmarks, versus = landmark_table(runs, preds, samples, num)
    results = {
        "meta": {
            "command": command or "train.evaluate.evaluate(" + ", ".join(run_dirs) + ")",
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": machine(),
            "eval_device": str(dev),
            "data": data_info(samples, data_config(runs)),
            "bootstrap": {"resamples": n_boot, "level": num.level, "seed": seed},
            "report_pixels": REFERENCE_PIXELS,
        },
        "runs": {
            r.label: {
                "role": r.role,
                "replicate": None if r.imported else r.cfg.run.replicate,
                "title": title(r.role),
                "dir": r.dir,
                "checkpoint": r.checkpoint,
                "camera": r.cfg.model.camera,
                "regimes": list(r.cfg.data.regimes),
                "masking": r.cfg.model.masking,
                "rho_init": r.cfg.model.rho_init,
                "w_rho_prior": r.cfg.loss.w_rho_prior,
                "budget": training_budget(r),
            }
            for r in runs
        },
        "landmarks": landmarks,
        "vs_retrained": versus,
        "neutral_shape": neutral_table(runs, preds, samples, num, progress),
        "rho": rho_table(runs, preds, samples, num),
    }
    replicated = replicate_table(runs, preds, samples, n_boot, seed)
    if replicated is not None:
        results["replicates"] = replicated
    if fits:
        results["fit"] = fit_results(runs, preds, samples, num, progress, photometric_fit)
    results["targets"] = targets(results, role_labels(runs))
    results["paper_reference"] = {**PAPER_REFERENCE, "changes_pct": paper_changes()}
    os.makedirs(out, exist_ok=True)
    results["figures"] = figures.draw_all(runs, preds, samples, results, out)
    clean = finite_or_none(results)
    write_text(os.path.join(out, "results.json"), json.dumps(clean, indent=1, allow_nan=False))
    write_text(os.path.join(out, "report.md"), report.render(clean))
    return clean


def rejudge(report_dir: str, command: str | None = None) -> dict:
    """Judge the targets of a written report again with this code, from its
    ``results.json`` alone (no model, no data), and rewrite ``results.json`` and
    ``report.md`` (figures unchanged). For a report whose numbers stand but whose
    targets were judged by older code; ``meta.rejudged`` records when and how."""
    path = os.path.join(report_dir, "results.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{report_dir}: no results.json (not a report folder)")
    with open(path) as f:
        results = json.load(f)
    missing = [k for k in ("runs", "vs_retrained", "rho", "neutral_shape") if k not in results]
    if not isinstance(results, dict) or missing:
        raise ValueError(f"{path}: not a train.evaluate results file (missing {missing})")
    results["targets"] = targets(results, role_labels_of(results))
    results["meta"]["rejudged"] = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": command or f"train.eval.results.rejudge({report_dir!r})",
    }
    clean = finite_or_none(results)
    write_text(path, json.dumps(clean, indent=1, allow_nan=False))
    write_text(os.path.join(report_dir, "report.md"), report.render(clean))
    return clean
