"""Predictions of a trained system, and the per-regime summary of the validation log."""

from __future__ import annotations

import torch

from train.data.batches import Samples
from train.data.sources import SOURCES
from train.engine.system import TrainingSystem
from train.metrics import landmark_errors, rho_summary
from train.render.head import project_landmarks


@torch.no_grad()
def predict(system: TrainingSystem, samples: Samples, device, batch: int = 64) -> dict:
    """Predicted landmarks (NDC), rho, scale and FLAME parameters for ``samples``."""
    system.eval()
    outs = []
    for start in range(0, len(samples["image"]), batch):
        images = samples["image"][start : start + batch].to(device).float() / 255.0
        pred = system.encode(images)
        out = system.geometry(pred)
        lmk = project_landmarks(out.landmarks, pred.scale, pred.trans, pred.rho)
        outs.append(
            {
                "landmarks": lmk.cpu(),
                "rho": pred.rho.cpu(),
                "scale": pred.scale.cpu(),
                "shape": pred.shape.cpu(),
                "trans": pred.trans.cpu(),
                "expression": pred.expression.cpu(),
                "jaw_pose": pred.jaw_pose.cpu(),
                "global_pose": pred.global_pose.cpu(),
            }
        )
    return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}


def evaluate_system(system: TrainingSystem, samples: Samples, device) -> dict:
    """Per-regime landmark errors (clean landmarks) and rho statistics."""
    pred = predict(system, samples, device)
    size = samples["image"].shape[-1]
    result = {}
    for rid, regime in enumerate(SOURCES):
        sel = samples["regime"] == rid
        if not bool(sel.any()):
            continue
        errs = landmark_errors(pred["landmarks"][sel], samples["landmarks"][sel], size)
        rho = rho_summary(pred["rho"][sel], samples["rho"][sel])
        result[regime] = {**errs, **{f"rho_{k}": v for k, v in rho.items()}}
    return result
