"""``train.infer --refine fit``: the regressor's prediction refined by the landmark fit
(:func:`train.fit.fit_landmarks`) on the whole image's landmarks, with rho's interval.

The regressor sees a crop and predicts its camera ``(S, t, rho)`` in the crop's NDC,
with the principal point at the crop's centre. The fit works in the NDC of the
whole image's centred square (side ``s = max(W, H)``, :mod:`train.fit.inputs`), where
the principal point is the image's centre: the perspective (rho) is only right there.

The crop is a similarity of the image (:class:`train.faces.crop_box.CropBox`, turn 0):
``x_crop = k (x_image - c)`` with ``k = s / side`` (the crop's side in source pixels)
and ``c`` the crop's centre in the image's NDC. With ``u = S (P_x + t_x) / (1 + rho
P_z)`` (docs/design.md section 3) a zoom by ``k`` multiplies S by ``k`` and keeps rho
(rho sets the perspective strength, S the image size), so the image's camera is
``S_image = S / k``, the same rho and head rotation, and ``t_image = t + c / S_image``:
the shift ``c`` lands after the perspective divide, the translation before it, so this
is exact for points at the model origin's depth (``P_z = 0``) and off by ``c rho P_z /
S_image`` elsewhere (a moved principal point is not a change of ``(S, t)``). It is the
fit's start; the fit, from there and from the mean face (the better objective kept,
as the report's "rho model + fit" row does), removes the rest.
"""

from __future__ import annotations

import numpy as np
import torch

import flame
from train.faces.crop_box import CropBox
from train.fit import FitResult, better_of, fit_landmarks
from train.fit.inputs import ndc_to_pixels, pixels_to_ndc
from train.fit.posterior import distance_text
from train.fit.records import finite_or_none

#: the regressor's fields the fit starts from (besides the camera)
_START_FIELDS = ("global_pose", "shape", "expression", "jaw_pose", "eyelids")


def crop_camera_to_image(
    scale: torch.Tensor,
    trans: torch.Tensor,
    crops: list[CropBox],
    sizes: list[tuple[int, int]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """A crop's camera in the NDC of its whole image (module docstring).

    Args:
        scale: ``[B]`` S in the crop's NDC (model units to NDC).
        trans: ``[B,2]`` t in model units.
        crops: B crop boxes (source pixels; turn 0).
        sizes: B image sizes ``(W, H)`` in pixels.

    Returns ``(scale [B], trans [B,2])`` in the NDC of each image's centred square,
    float64; rho and the head's rotation are unchanged.
    """
    if len(crops) != len(sizes) or scale.shape != (len(crops),) or trans.shape != (len(crops), 2):
        raise ValueError(
            f"scale [B], trans [B,2], B crops and B sizes, got {list(scale.shape)}, "
            f"{list(trans.shape)}, {len(crops)} and {len(sizes)}"
        )
    if any(c.angle != 0 for c in crops):
        raise ValueError("a turned crop (angle != 0) cannot be mapped: the head would turn too")
    pairs = list(zip(crops, sizes))
    zoom = torch.tensor([max(w, h) / c.side for c, (w, h) in pairs], dtype=torch.float64)
    centres = [pixels_to_ndc(np.array([[c.cx, c.cy]]), w, h)[0] for c, (w, h) in pairs]
    centre = torch.tensor(np.array(centres), dtype=torch.float64)
    s_image = scale.double() / zoom
    return s_image, trans.double() + centre / s_image[:, None]


def refine_faces(
    prediction: dict,
    landmarks_px: list[np.ndarray],
    crops: list[CropBox],
    sizes: list[tuple[int, int]],
    layer: flame.FLAME,
) -> list[dict]:
    """Refine B faces' predictions by the landmark fit; one JSON-ready block each.

    Args:
        prediction: the regressor's ``[B, ...]`` tensors in the crop's camera:
            ``scale``, ``trans``, ``rho``, ``global_pose``, ``shape``, ``expression``,
            ``jaw_pose``, ``eyelids``.
        landmarks_px: B arrays ``[68,2]``, the faces' landmarks in 0-based source pixels.
        crops: the faces' crop boxes; sizes: their images' ``(W, H)``.
        layer: the FLAME layer the regressor predicts for (its shape and expression
            counts are fitted).

    Returns per face: ``rho``, ``rho_interval``, ``distance_m``, ``distance_interval_m``
    (95 %; None for an unbounded end), ``distance_text`` (``"0.62 m [0.48, 0.91]"`` or
    "distance not observable from these landmarks ..."), ``scale`` and ``trans`` (the
    image's centred square), ``global_pose``, ``shape``, ``expression``, ``jaw_pose``,
    ``eyelids``, ``landmarks_px`` (fitted), ``residual_px`` (their mean distance to
    the targets, source pixels), ``landmark_noise_scale`` and ``start`` (``"regressor"``
    or ``"mean face"``: the start whose fit had the lower objective).
    """
    b = len(landmarks_px)
    target = torch.from_numpy(
        np.stack([pixels_to_ndc(p, w, h) for p, (w, h) in zip(landmarks_px, sizes)])
    ).float()
    scale, trans = crop_camera_to_image(prediction["scale"], prediction["trans"], crops, sizes)
    init = {k: prediction[k].detach().cpu().float() for k in _START_FIELDS}
    init.update(scale=scale.float(), trans=trans.float(), rho=prediction["rho"].detach().cpu())
    device = layer.v_template.device  # the fit runs there; its results come back on CPU
    warm = fit_landmarks(target, layer, init=init, marginal=True, device=device)
    cold = fit_landmarks(target, layer, marginal=True, device=device)
    pick = warm.objective <= cold.objective
    fit = better_of(warm, cold)
    return [_block(fit, i, bool(pick[i]), landmarks_px[i], sizes[i]) for i in range(b)]


def _block(fit: FitResult, i: int, warm: bool, target_px: np.ndarray, size) -> dict:
    width, height = size
    rho = float(fit.rho[i])
    lo, hi = fit.distance_interval[i].tolist()
    fitted = ndc_to_pixels(fit.landmarks[i].double().numpy(), width, height)
    return {
        "rho": rho,
        "rho_interval": finite_or_none(fit.rho_interval[i].tolist()),
        "distance_m": float(fit.distance[i]),
        "distance_interval_m": finite_or_none([lo, hi]),
        "distance_text": distance_text(float(fit.distance[i]), lo, hi),
        "scale": float(fit.scale[i]),
        "trans": fit.trans[i].tolist(),
        "global_pose": fit.global_pose[i].tolist(),
        "shape": fit.shape[i].tolist(),
        "expression": fit.expression[i].tolist(),
        "jaw_pose": fit.jaw_pose[i].tolist(),
        "eyelids": fit.eyelids[i].tolist(),
        "landmarks_px": fitted.tolist(),
        "residual_px": float(np.linalg.norm(fitted - target_px, axis=1).mean()),
        "landmark_noise_scale": float(fit.noise_scale[i]),
        "start": "regressor" if warm else "mean face",
        "camera_frame": "NDC of the whole image's centred square (principal point at its centre)",
    }
