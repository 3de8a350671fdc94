"""The measures of ``bench.photo_fit``: how far a fit of ``train.fit`` is from the truth
of a synthetic image, per image.

- **rho**: ``|rho / rho_true - 1|`` in % (a capture's frames share rho).
- **neutral shape**: :class:`train.eval.shape_error.NeutralShapeError`, the mean distance
  (mm) from the fitted neutral face to the true neutral surface after a rigid alignment
  on the 68 landmarks (NoW's face region), as the report's table 2.
- **jaw line**: the mean 2-D distance between the fitted and the true (clean) positions
  of the 17 jaw landmarks, in pixels of a 224 px image (``train.units.REFERENCE_PIXELS``,
  the unit of ``FitResult.residual_px``, whatever the size of the photos).
- **silhouette**: ``1 - IoU`` in % of the pixels the fitted head covers and those the
  true head covers, both rasterized by minirast (no antialiasing: pixel centres) at the
  photos' size in the photos' frame, the whole FLAME mesh (face, scalp, neck). 0 when
  the two silhouettes are the same, 100 when they do not overlap.
"""

from __future__ import annotations

import torch

import flame
import minirast
import ppcam
from train.eval.shape_error import NeutralShapeError
from train.units import JAW, REFERENCE_PIXELS, ndc_per_pixel

#: the names of the measures, their units and one-line labels (report and figure)
MEASURES = {
    "rho_pct": "median |rho error| %",
    "neutral_mm": "median neutral-shape error, mm",
    "jaw_px": "median jaw-line error, px at 224",
    "silhouette_pct": "median silhouette 1 - IoU, %",
}
#: images rasterized at a time for the silhouettes
CHUNK = 16


def rho_error_pct(rho: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """``[B]`` ``|rho / true - 1|`` in %, float64 (``rho``, ``true``: ``[B]``, true > 0)."""
    return rho_signed_pct(rho, true).abs()


def rho_signed_pct(rho: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """``[B]`` ``rho / true - 1`` in %, float64: positive when the fit puts the face nearer
    than it is (``rho``, ``true``: ``[B]``, true > 0)."""
    return (rho.double() / true.double() - 1) * 100


def jaw_error_px(landmarks: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """``[B]`` mean distance of the jaw landmarks 0-16 (``landmarks``, ``true``: ``[B,68,2]``
    NDC) in pixels of a 224 px image."""
    d = (landmarks[:, JAW].double() - true[:, JAW].double()).norm(dim=-1)
    return d.mean(-1) / ndc_per_pixel(REFERENCE_PIXELS)


@torch.no_grad()
def silhouettes(layer: flame.FLAME, params: dict, size: int) -> torch.Tensor:
    """``[B, size, size]`` bool: the pixels whose centres the head covers.

    ``params``: ``shape``, ``expression``, ``global_pose``, ``jaw_pose``, ``eyelids``
    (FLAME, model frame) and the camera ``scale [B]``, ``trans [B,2]``, ``rho [B]``, as
    ``train.fit.FitResult`` and the synthetic samples hold them.
    """
    dev = layer.v_template.device
    masks = []
    for a in range(0, len(params["scale"]), CHUNK):
        p = {k: v[a : a + CHUNK].to(dev, torch.float32) for k, v in params.items()}
        out = layer(
            shape=p["shape"],
            expression=p["expression"],
            global_pose=p["global_pose"],
            jaw_pose=p["jaw_pose"],
            eyelids=p["eyelids"] if layer.has_eyelids else None,
        )
        verts = ppcam.flame_to_camera(out.vertices)
        clip = ppcam.to_clip(verts, p["scale"], p["trans"], p["rho"])
        masks.append(minirast.rasterize(clip, layer.faces, (size, size)).tri_id >= 0)
    return torch.cat(masks).cpu()


def silhouette_error_pct(mask: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """``[B]`` ``1 - IoU`` in % of two silhouettes ``[B,H,W]`` bool (0 where both are empty)."""
    inter = (mask & true).flatten(1).sum(1).double()
    union = (mask | true).flatten(1).sum(1).double()
    return (1 - inter / union.clamp_min(1)) * 100 * (union > 0)


class Measures:
    """Every measure of one fit against the truth, per image.

    Args:
        layer: the FLAME layer the images were made with and fitted with.
        flame_model: the model it was loaded from (``"bundled"`` or a path), for the
            neutral heads.
        size: the photos' side in pixels (square synthetic images).
        truth: the samples' ``landmarks [B,68,2]`` (clean), ``rho [B]``, ``shape`` and
            the other FLAME and camera parameters (:func:`silhouettes`).
    """

    def __init__(self, layer: flame.FLAME, flame_model: str, size: int, truth: dict) -> None:
        self.layer, self.size, self.truth = layer, size, truth
        neutral = flame.FLAME(flame_model, n_shape=layer.n_shape, n_expr=0)
        self.neutral = NeutralShapeError(neutral)
        self.true_mask = silhouettes(layer, self._params(truth), size)

    @staticmethod
    def _params(source) -> dict:
        keys = ("shape", "expression", "global_pose", "jaw_pose", "eyelids", "scale", "trans")
        get = source.get if isinstance(source, dict) else lambda k: getattr(source, k)
        return {**{k: get(k).detach().cpu() for k in keys}, "rho": get("rho").detach().cpu()}

    def __call__(self, fit) -> dict[str, torch.Tensor]:
        """``fit``: a ``train.fit.FitResult`` (or ``PhotoFitResult``) of the truth's
        images, in order; returns :data:`MEASURES` ``-> [B]`` float64, plus
        ``rho_signed_pct`` (:func:`rho_signed_pct`, whose median shows a bias)."""
        t = self.truth
        params = self._params(fit)
        mask = silhouettes(self.layer, params, self.size)
        return {
            "rho_pct": rho_error_pct(params["rho"], t["rho"]),
            "rho_signed_pct": rho_signed_pct(params["rho"], t["rho"]),
            "neutral_mm": self.neutral(params["shape"], t["shape"]).double(),
            "jaw_px": jaw_error_px(fit.landmarks.detach().cpu(), t["landmarks"]),
            "silhouette_pct": silhouette_error_pct(mask, self.true_mask),
        }
