"""The photometric fit's variables and objective (:mod:`train.fit.photometric` drives them).

Per capture (group) ``g``: FLAME shape ``z_shape`` (in prior stds), ``log_rho`` and
the albedo map (``albedo [G, T, T, 3]``, at the level's resolution); per frame:
expression, jaw, eyelids (in prior stds), head rotation, ``log_scale``, ``trans`` and
the SH lighting ``sh [B, 9, 3]``. The negative log posterior of a group is

    1/2 PHOTO_WEIGHT mean_{p in mask} log(1 + |I_p - J_p|^2 / ROBUST_SCALE^2)   photo
  + fit_landmarks's landmark term and priors                                   geometry
  + albedo prior (train.fit.albedo)                                            albedo

summed over its frames; ``I`` the render (linear light) of the image's face window
(``Level.window``; the variables and landmarks stay in the square's NDC), ``J`` the
photo there (linear) and ``mask`` the compared pixels of
:func:`train.fit.photo_model.skin_masks` that lie inside the photo. The Cauchy
(Lorentzian) penalty stops counting a pixel that the model cannot explain (hair,
glasses, a hand, a specular highlight) once its residual is a few ``ROBUST_SCALE``
large. Inside the face polygon the render is drawn over black
(the head must cover it); outside, over ``level.background``: the background around
the face filled in behind the band (:func:`train.fit.photo_model.band_background`), so
the silhouette counts both ways (covering background, and leaving face pixels of the
band uncovered); with ``background`` None, over the photo itself (covering only).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

import flame
from train.fit.albedo import albedo_prior
from train.fit.fitting import FitPrior
from train.fit.photo_model import band_background, face_window, photo_in_square, skin_masks
from train.render.head import project_landmarks
from train.render.textured import render_textured, to_window

#: the SH coefficient of band 0 that lights a surface with intensity 1 (minirast.sh_basis)
SH_UNIT = math.sqrt(4 * math.pi)
#: the photometric term counts like this many independent pixels of noise ROBUST_SCALE
PHOTO_WEIGHT = 3000.0
ROBUST_SCALE = 0.05


class Fixed(NamedTuple):
    """What the objective reads besides the variables."""

    layer: flame.FLAME
    target: torch.Tensor  # [B, 68, 2] NDC
    sigma: torch.Tensor  # [B, 68] NDC
    groups: torch.Tensor  # [B] long, 0..G-1
    prior: FitPrior
    expression_std: torch.Tensor  # [n_expr]
    jaw_std: torch.Tensor  # [3]
    skin: torch.Tensor  # [G, 3] linear
    fit_rho: bool


class Level(NamedTuple):
    """One pyramid level: the photo in the render's frame (each image's face window) and
    its masks, ``[B, R, R]``."""

    size: int
    photo: torch.Tensor  # [B, R, R, 3] linear
    inside: torch.Tensor  # bool: the face polygon
    weight: torch.Tensor  # float: compared and valid
    valid: torch.Tensor  # bool: inside the photo
    #: [B, R, R, 3] linear: behind the head outside ``inside`` (photo_model.band_background);
    #: None: the photo itself (a one-sided silhouette)
    background: torch.Tensor | None = None
    #: [B, 3] (cx, cy, half side) in the square's NDC: the window rendered
    #: (photo_model.face_window); None: the whole square
    window: torch.Tensor | None = None


def make_level(
    photos: torch.Tensor, target: torch.Tensor, size: int, window: torch.Tensor | None = None
) -> Level:
    """The level of side ``size`` of the linear ``photos [B, H, W, 3]`` with the target
    landmarks ``[B, 68, 2]`` (NDC of the square): the photo resampled onto the render
    of each image's ``window [B, 3]`` (default the face window of the target,
    :func:`train.fit.photo_model.face_window`), its masks and the two-sided
    silhouette's background (:mod:`train.fit.photo_model`)."""
    window = face_window(target) if window is None else window.to(target)
    photo, valid = photo_in_square(photos, size, window)
    local = to_window(target, window)
    inside, compared = skin_masks(local, size)
    background = band_background(photo, local, valid)
    weight = (compared & valid).to(photo.dtype)
    return Level(size, photo, inside & valid, weight, valid, background, window)


def photo_count(level: Level) -> torch.Tensor:
    """``[B]``: the compared pixels of each image at ``level`` (at least 1), which the
    photometric term's mean divides by."""
    return level.weight.sum((1, 2)).clamp_min(1.0)


def quadratic_weights(weight: torch.Tensor, level: Level) -> torch.Tensor:
    """``[B, R, R]``: ``W_p = PHOTO_WEIGHT weight_p / (ROBUST_SCALE^2 count)``, the weights
    with which the photometric term is, at its IRLS weights ``weight [B, R, R]``
    (:func:`objective`'s ``parts["weight"]``) held, ``1/2 sum_p W_p |I_p - J_p|^2``: the
    quadratic model the exact albedo solve and rho's interval both use."""
    count = photo_count(level)
    return PHOTO_WEIGHT * weight / (ROBUST_SCALE**2 * count[:, None, None])


def geometry(v: dict, fixed: Fixed) -> dict:
    """The model quantities of the variables ``v`` per image."""
    g = fixed.groups
    p = fixed.prior
    shape = v["z_shape"][g] * p.shape_std
    rho = torch.exp(v["log_rho"])[g] if fixed.fit_rho else torch.zeros_like(v["log_scale"])
    return {
        "shape": shape,
        "expression": v["z_expression"] * fixed.expression_std,
        "jaw_pose": v["z_jaw"] * fixed.jaw_std,
        "eyelids": v["z_eyelids"] * p.eyelid_std,
        "global_pose": v["global_pose"],
        "scale": torch.exp(v["log_scale"]),
        "trans": v["trans"],
        "rho": rho,
    }


def uniform_light(b: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """``[B, 9, 3]`` SH of uniform light of intensity 1."""
    sh = torch.zeros(b, 9, 3, device=device, dtype=dtype)
    sh[:, 0] = SH_UNIT
    return sh


def objective(v: dict, fixed: Fixed, level: Level) -> tuple[torch.Tensor, dict]:
    """``(total [G], parts)``: each group's negative log posterior (module docstring),
    and per image ``render`` (the :class:`TexturedRender`), ``landmarks [B, 68, 2]``,
    ``landmark_term [B]``, ``photo [B]`` (the photometric term), ``weight [B, R, R]``
    (each pixel's robust weight: mask times the Cauchy penalty's ``1 / (1 + r^2 / c^2)``)
    and the geometry."""
    q = geometry(v, fixed)
    layer = fixed.layer
    out = layer(
        shape=q["shape"],
        expression=q["expression"],
        global_pose=q["global_pose"],
        jaw_pose=q["jaw_pose"],
        eyelids=q["eyelids"] if layer.has_eyelids else None,
    )
    lmk = project_landmarks(out.landmarks, q["scale"], q["trans"], q["rho"])
    lmk_term = 0.5 * ((lmk - fixed.target) / fixed.sigma[..., None]).square().sum((-1, -2))
    behind = level.photo if level.background is None else level.background
    background = torch.where(level.inside[..., None], torch.zeros_like(level.photo), behind)
    rendered = render_textured(
        layer,
        out.vertices,
        q["scale"],
        q["trans"],
        q["rho"],
        v["albedo"][fixed.groups],
        v["sh"],
        background,
        level.size,
        window=level.window,
    )
    render = rendered.image.clamp(0.0, 1.0)  # a camera saturates
    squared = (render - level.photo).square().sum(-1) / ROBUST_SCALE**2
    robust = torch.log1p(squared)
    count = photo_count(level)
    photo = 0.5 * PHOTO_WEIGHT * (robust * level.weight).sum((1, 2)) / count
    local = v["z_expression"].square().sum(-1) + v["z_jaw"].square().sum(-1)
    local = local + v["z_eyelids"].square().sum(-1)
    local = 0.5 * (local + (q["global_pose"] / fixed.prior.pose_std).square().sum(-1))
    per_image = photo + lmk_term + local
    total = per_image.new_zeros(v["z_shape"].shape[0]).index_add(0, fixed.groups, per_image)
    total = total + 0.5 * v["z_shape"].square().sum(-1) + albedo_prior(v["albedo"], fixed.skin)
    weight = (level.weight / (1 + squared)).detach()
    parts = {
        "render": rendered,
        "landmarks": lmk,
        "landmark_term": lmk_term,
        "photo": photo,
        "weight": weight,
        **q,
    }
    return total, parts
