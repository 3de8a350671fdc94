"""What ``python -m train.fit`` writes per image, shared by the landmark command
(:mod:`train.fit.__main__`) and the photometric one (:mod:`train.fit.photo_command`):
the JSON record of one fitted image and its posed mesh."""

from __future__ import annotations

import math

import torch

import flame
from train.fit.inputs import FitInput, ndc_to_pixels
from train.fit.posterior import distance_text

#: the FLAME inputs of a fit besides the eyelids (which a layer may not have)
POSE_KEYS = ("shape", "expression", "global_pose", "jaw_pose")


def finite_or_none(values: list[float]) -> list[float | None]:
    """JSON has no inf or NaN: such a value (an unbounded end) is None."""
    return [v if math.isfinite(v) else None for v in values]


def has_interval(fit, i: int) -> bool:
    """Whether row ``i`` of ``fit`` (a ``FitResult`` or ``PhotoFitResult``) has rho's
    interval: rho > 0 (not the orthographic camera) and an interval computed (NaN when
    the photometric fit skipped it); an end may be open (inf)."""
    return float(fit.rho[i]) > 0 and not bool(torch.isnan(fit.distance_interval[i]).any())


def interval_text(fit, i: int, evidence: str = "these landmarks") -> str | None:
    """Row ``i``'s :func:`train.fit.posterior.distance_text` (None without an interval)."""
    if not has_interval(fit, i):
        return None
    return distance_text(float(fit.distance[i]), *fit.distance_interval[i].tolist(), evidence)


def fit_record(item: FitInput, fit, i: int, camera: str, evidence: str) -> dict:
    """The JSON record of row ``i`` of ``fit`` for the image ``item``: the camera
    ``(S, t, rho)`` and its pinhole equivalent, rho's interval and its text (from
    ``evidence``), the FLAME parameters, the fitted landmarks in the image's pixels and
    their residual (px at 224)."""
    width, height = item.size
    rho = float(fit.rho[i])
    interval = has_interval(fit, i)
    return {
        "image": item.path,
        "capture": item.capture,
        "camera_mode": camera,
        "rho": rho,
        "scale": float(fit.scale[i]),
        "trans": fit.trans[i].tolist(),
        "focal_ndc": float(fit.focal[i]) if rho > 0 else None,
        "distance_m": float(fit.distance[i]) if rho > 0 else None,
        "rho_interval": finite_or_none(fit.rho_interval[i].tolist()) if interval else None,
        "distance_interval_m": finite_or_none(fit.distance_interval[i].tolist())
        if interval
        else None,
        "distance_text": interval_text(fit, i, evidence),
        "landmark_noise_scale": float(fit.noise_scale[i]) if interval else None,
        "global_pose": fit.global_pose[i].tolist(),
        "shape": fit.shape[i].tolist(),
        "expression": fit.expression[i].tolist(),
        "jaw_pose": fit.jaw_pose[i].tolist(),
        "eyelids": fit.eyelids[i].tolist(),
        "landmarks_px": ndc_to_pixels(fit.landmarks[i].numpy(), width, height).tolist(),
        "residual_px224": float(fit.residual_px[i]),
    }


@torch.no_grad()
def posed_vertices(fit, i: int, layer: flame.FLAME) -> torch.Tensor:
    """``[1, V, 3]``: the FLAME mesh of row ``i`` of ``fit`` (model frame, metres), on
    the layer's device."""
    dev = layer.v_template.device
    params = {k: getattr(fit, k)[i : i + 1].to(dev) for k in POSE_KEYS}
    lids = fit.eyelids[i : i + 1].to(dev) if layer.has_eyelids else None
    return layer(**params, eyelids=lids).vertices
