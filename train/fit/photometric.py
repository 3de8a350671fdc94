"""Fitting FLAME, the rho camera, an albedo map and SH lighting to photos, through minirast.

:func:`fit_images` starts from :func:`train.fit.fit_landmarks` and then minimises
the objective of :mod:`train.fit.photo_objective` (the render of a square window
around each face, :func:`train.fit.photo_model.face_window`, against the photo in
the face's skin, robustly; the landmark term and priors of ``fit_landmarks``; an
albedo prior) coarse to fine over an image pyramid (the render's side halved twice,
each level's albedo map at half a texel per pixel, ``TEXELS_PER_PIXEL``, and the
full ``texture_size`` map solved at the end with the geometry held), with Adam
on the geometry (per-coordinate steps, so every image's and capture's problem moves
independently: batched, and the same code on CPU and GPU), the SH lighting and the
albedo re-solved in closed form after every step (:mod:`train.fit.appearance`).
Shading is in linear light: the sRGB photos are converted
(:func:`train.render.textured.srgb_to_linear`), the albedo map is linear, and the
rendered images and the texture are returned in sRGB.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from tqdm import tqdm

import flame
from train.fit.albedo import mean_skin_colour
from train.fit.appearance import solve_albedo, solve_albedo_exact, solve_lighting
from train.fit.fitting import FitPrior, FitResult, _check_inputs, fit_landmarks
from train.fit.photo_objective import (
    Fixed,
    Level,
    make_level,
    objective,
    quadratic_weights,
    uniform_light,
)
from train.fit.photo_posterior import fit_posterior, per_image
from train.render.textured import linear_to_srgb, srgb_to_linear
from train.units import REFERENCE_PIXELS, ndc_per_pixel

#: Adam steps over all levels: 80 left a larger drift in rho and shape less recovered
#: (``bench.photo_fit``, docs/fitting.md); 160 fit the CPU speed target (16 frames at
#: 224 px in 51 s on the 2-core CPU)
DEFAULT_ITERATIONS = 160
#: the albedo maps' side of the result (``fit_images(texture_size=)``)
DEFAULT_TEXTURE_SIZE = 256
#: the finest render side (pixels of the photo's centred square), and the coarsest
DEFAULT_RESOLUTION, MIN_LEVEL = 224, 32
#: the share of the iterations each level gets, coarse to fine
LEVEL_SHARES = (0.4, 0.35, 0.25)
#: Adam's step per geometry variable (their units: prior stds, log units, radians,
#: model units); each level decays it linearly to a tenth
STEPS = {
    "z_shape": 0.06,
    "log_rho": 0.015,
    "z_expression": 0.06,
    "z_jaw": 0.06,
    "z_eyelids": 0.06,
    "global_pose": 0.006,
    "log_scale": 0.006,
    "trans": 0.0015,
}
#: appearance solves before the first geometry step, and after the last (at full size)
WARM_UP = 4
#: while the geometry moves, the albedo map has this many texels a side per render
#: pixel of the level: a map finer than the pixels re-solved after every step repaints
#: any misalignment and pins the geometry where it is (on hmc captures at 64 px a
#: 128-texel map left the capture's rho at 2.5 % median error, a 32-texel one 1.2 %)
TEXELS_PER_PIXEL = 0.5


@dataclasses.dataclass(frozen=True)
class PhotoFitResult:
    """What :func:`fit_images` returns; every :class:`FitResult` field reads through
    (``result.rho`` is ``result.fit.rho``).

    ``fit``: the photometric fit as a :class:`FitResult` (per image; ``objective`` is
    the photometric objective of the image's problem); ``start``: the landmark-only
    fit it started from; ``albedo [G, T, T, 3]`` linear and ``texture [G, T, T, 3]``
    sRGB, one map per capture in the head's UV layout (row 0 is ``v = 0``);
    ``capture [B]`` the map of each image; ``sh [B, 9, 3]`` the SH lighting (camera
    frame, ``minirast.shade_sh``'s basis, linear light); ``window [B, 3]`` each image's
    face window ``(cx, cy, half side)`` in the NDC of the photo's centred square
    (:func:`train.fit.photo_model.face_window`: the target landmarks' box, its longer
    side times ``WINDOW_MARGIN``, kept inside the square), the square the images
    below cover: ``render [B, R, R, 3]`` sRGB and ``valid``, ``mask [B, R, R]``
    bool the render of the window, the pixels inside the photo and the compared skin
    pixels; ``photo [B, R, R, 3]`` the photo in that frame (sRGB); ``photo_residual
    [B]`` the photometric term; ``psnr [B]`` dB of the render against the photo in
    sRGB inside ``mask``. A window pixel ``(i, j)`` (row, column) has its centre at
    ``c + h ((2 (j, i) + 1) / R - 1)`` in the square's NDC.
    """

    fit: FitResult
    start: FitResult
    albedo: torch.Tensor
    texture: torch.Tensor
    capture: torch.Tensor
    sh: torch.Tensor
    render: torch.Tensor
    photo: torch.Tensor
    valid: torch.Tensor
    mask: torch.Tensor
    photo_residual: torch.Tensor
    psnr: torch.Tensor
    window: torch.Tensor

    def __getattr__(self, name: str):
        if name in FitResult._fields:
            return getattr(self.fit, name)
        raise AttributeError(f"PhotoFitResult has no field {name!r}")


def _check_images(images, landmarks, texture_size, resolution) -> None:
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise TypeError("images must be a floating-point tensor [B, H, W, 3] in [0, 1]")
    if images.dim() != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must have shape [B, H, W, 3] (RGB), got {list(images.shape)}")
    if min(images.shape[1:3]) < 16:
        raise ValueError(f"images must be at least 16 x 16 pixels, got {list(images.shape[1:3])}")
    if isinstance(landmarks, torch.Tensor) and landmarks.shape[:1] != images.shape[:1]:
        raise ValueError(
            f"images and landmarks must hold the same number of images, got "
            f"{images.shape[0]} and {landmarks.shape[0]}"
        )
    if not bool(torch.isfinite(images).all()):
        bad = (~torch.isfinite(images)).flatten(1).any(1).nonzero()[:, 0].tolist()
        raise ValueError(f"images contain NaN or inf (images {bad[:10]})")
    if float(images.min()) < 0 or float(images.max()) > 1:
        raise ValueError("images must hold values in [0, 1] (sRGB as read, divided by 255)")
    if not isinstance(texture_size, int) or texture_size < 8 or texture_size & (texture_size - 1):
        raise ValueError(f"texture_size must be a power of two >= 8, got {texture_size!r}")
    if not isinstance(resolution, int) or resolution < MIN_LEVEL:
        raise ValueError(f"resolution must be an int >= {MIN_LEVEL}, got {resolution!r}")


def level_sizes(resolution: int) -> list[int]:
    """The pyramid's render sides, coarse to fine: ``resolution`` halved twice,
    none below ``MIN_LEVEL``."""
    sizes = [resolution]
    while len(sizes) < len(LEVEL_SHARES) and sizes[0] // 2 >= MIN_LEVEL:
        sizes.insert(0, sizes[0] // 2)
    return sizes


def fit_images(
    images: torch.Tensor,
    landmarks: torch.Tensor,
    layer: flame.FLAME,
    *,
    groups: torch.Tensor | None = None,
    init: dict | None = None,
    iterations: int | None = None,
    device: str | torch.device | None = None,
    camera: str = "pseudo",
    texture_size: int = DEFAULT_TEXTURE_SIZE,
    resolution: int | None = None,
    landmark_iterations: int | None = None,
    prior: FitPrior | None = None,
    progress: bool = False,
    intervals: bool = True,
) -> PhotoFitResult:
    """Fit FLAME, the camera, one albedo map per capture and SH lighting per image to
    ``images`` and their ``landmarks`` (module docstring).

    Args:
        images: ``[B, H, W, 3]`` float sRGB in [0, 1] as read from the files, one size.
        landmarks: ``[B, 68, 2]`` NDC of each photo's centred square of side
            ``max(W, H)`` (:mod:`train.fit.inputs`), iBUG order.
        layer: the ``flame.FLAME`` fitted; it needs landmarks and a UV layout.
        groups: ``[B]`` integer capture ids (frames sharing shape, rho and albedo).
        init: a regressor's prediction for :func:`fit_landmarks` (default the mean face).
        iterations: Adam steps over all levels (default ``DEFAULT_ITERATIONS``).
        device: where to fit (default the images' device).
        camera: ``"pseudo"`` (fit rho) or ``"ortho"`` (rho 0).
        texture_size: the albedo maps' side (a power of two).
        resolution: the finest render side (of each image's face window), default
            ``min(224, max(W, H))``.
        landmark_iterations: the start's L-BFGS iterations (``fit_landmarks``'s default).
        prior: the geometry priors (:class:`FitPrior`).
        progress: show a progress bar.
        intervals: compute rho's interval (:mod:`train.fit.photo_posterior`: on the
            CPU in float64, ``2 (S + L)`` renders of 64 px per frame); False leaves
            ``rho_interval`` and ``distance_interval`` NaN.

    Raises ``TypeError`` / ``ValueError`` naming the problem: images and landmarks of
    different counts, a wrong layout, NaN, values outside [0, 1], a layer without UVs,
    or an image whose landmarks enclose no pixel of the photo (no face).
    """
    side = max(images.shape[1:3]) if isinstance(images, torch.Tensor) and images.dim() == 4 else 0
    resolution = resolution or min(DEFAULT_RESOLUTION, max(side, MIN_LEVEL))
    _check_inputs(landmarks, layer, groups, None, None, landmark_iterations, camera)
    _check_images(images, landmarks, texture_size, resolution)
    if isinstance(layer, flame.FLAME) and not layer.has_uvs:
        raise ValueError("the FLAME layer has no UV layout (layer.uvs): nothing to texture")
    if iterations is not None and (not isinstance(iterations, int) or iterations < 1):
        raise ValueError(f"iterations must be a positive int, got {iterations!r}")
    prior = prior or FitPrior()
    out_device = images.device
    dev = torch.device(device) if device is not None else out_device
    dtype = torch.float32
    b = images.shape[0]
    if groups is None:
        gid = torch.arange(b, device=dev)
    else:
        gid = torch.unique(groups.cpu(), return_inverse=True)[1].to(dev)
    n_groups = int(gid.max()) + 1
    target = landmarks.detach().to(dev, dtype)
    photos = srgb_to_linear(images.detach().to(dev, dtype))
    sizes = level_sizes(resolution)
    levels = [make_level(photos, target, size) for size in sizes]
    empty = (levels[-1].inside.flatten(1).sum(1) == 0).nonzero()[:, 0].tolist()
    if empty:
        raise ValueError(
            f"images {empty[:10]}: the landmarks enclose no pixel of the photo (no face); "
            "landmarks are NDC of the photo's centred square (train.fit.inputs)"
        )
    start = fit_landmarks(
        landmarks,
        layer,
        init=init,
        groups=groups,
        iterations=landmark_iterations,
        device=device,
        camera=camera,
        prior=prior,
    )
    layer = layer.to(dev, dtype)
    fixed = fixed_inputs(layer, target, gid, prior, levels[-1], camera)
    textures = [level_texels(s, texture_size) for s in sizes]
    variables = start_variables(start, fixed, textures[0], n_groups, dev)
    total = iterations or DEFAULT_ITERATIONS
    counts = _level_iterations(total, len(sizes))
    bar = tqdm(total=sum(counts), desc="photometric fit", unit="step", disable=not progress)
    for k, (level, count) in enumerate(zip(levels, counts)):
        albedo = variables["albedo"].permute(0, 3, 1, 2)
        albedo = F.interpolate(albedo, size=(textures[k],) * 2, mode="bilinear", antialias=True)
        variables["albedo"] = albedo.permute(0, 2, 3, 1).contiguous()
        if k == 0:  # appearance first: geometry would bend to a uniform albedo's errors
            resolve_appearance(variables, fixed, level, WARM_UP)
        _descend(variables, fixed, level, count, bar)
    bar.close()
    albedo = variables["albedo"].permute(0, 3, 1, 2)  # the map at full size, geometry held
    albedo = F.interpolate(albedo, size=(texture_size,) * 2, mode="bilinear", antialias=True)
    variables["albedo"] = albedo.permute(0, 2, 3, 1).contiguous()
    resolve_appearance(variables, fixed, levels[-1], WARM_UP)
    with torch.no_grad():
        value, parts = objective(variables, fixed, levels[-1])
    posterior = (
        fit_posterior(variables, fixed, photos, resolution, textures[-1]) if intervals else None
    )
    return _result(variables, value, parts, fixed, levels[-1], start, out_device, posterior)


def level_texels(size: int, texture_size: int) -> int:
    """The albedo map's side while the geometry moves at the level of render side
    ``size``: ``TEXELS_PER_PIXEL`` texels per pixel, at least 8, at most ``texture_size``."""
    return min(texture_size, max(8, round(TEXELS_PER_PIXEL * size)))


def fixed_inputs(
    layer: flame.FLAME,
    target: torch.Tensor,
    groups: torch.Tensor,
    prior: FitPrior,
    level: Level,
    camera: str = "pseudo",
) -> Fixed:
    """What the objective reads besides the variables (:class:`Fixed`): the ``layer``
    (already on the target's device and dtype), the target landmarks ``[B, 68, 2]``,
    capture ids ``groups [B]`` (``0..G-1``), the ``prior``, each capture's skin colour
    (the mean colour of ``level``'s compared pixels) and whether rho is fitted
    (``camera``)."""
    dev, dtype = target.device, target.dtype
    return Fixed(
        layer=layer,
        target=target,
        sigma=prior.sigma().to(dev, dtype).expand(target.shape[0], 68),
        groups=groups,
        prior=prior,
        expression_std=prior.expression_stds(layer.n_expr).to(dev, dtype),
        jaw_std=torch.tensor(prior.jaw_std, device=dev, dtype=dtype),
        skin=mean_skin_colour(level.photo, level.weight > 0, groups),
        fit_rho=camera == "pseudo",
    )


def _level_iterations(total: int, n_levels: int) -> list[int]:
    shares = LEVEL_SHARES[-n_levels:]
    counts = [max(1, math.floor(total * s / sum(shares))) for s in shares]
    counts[-1] = max(1, total - sum(counts[:-1]))
    return counts


def start_variables(
    start: FitResult, fixed: Fixed, texture_size: int, n_groups: int, dev
) -> dict[str, torch.Tensor]:
    """The objective's variables (module docstring of :mod:`train.fit.photo_objective`;
    float32 on ``dev``, those in ``STEPS`` requiring grad) at the fit ``start``: each
    capture's shape and rho from its first frame, every frame's own variables, uniform
    light, and ``[G, texture_size, texture_size, 3]`` albedo maps at the skin colour."""
    p = fixed.prior
    b = len(fixed.groups)
    first = torch.full((n_groups,), b, dtype=torch.long, device=dev)
    first = first.scatter_reduce(0, fixed.groups, torch.arange(b, device=dev), "amin")

    def per(x):  # a copy: Adam updates the variables in place, `start` must stay as it was
        return x.detach().to(dev, torch.float32, copy=True)

    rho = per(start.rho)[first]
    v = {
        "z_shape": per(start.shape)[first] / p.shape_std,
        "log_rho": torch.log(rho.clamp_min(1e-3)),
        "albedo": fixed.skin[:, None, None, :].expand(-1, texture_size, texture_size, 3),
        "z_expression": per(start.expression) / fixed.expression_std,
        "z_jaw": per(start.jaw_pose) / fixed.jaw_std,
        "z_eyelids": per(start.eyelids) / p.eyelid_std,
        "global_pose": per(start.global_pose),
        "log_scale": torch.log(per(start.scale).clamp_min(1e-6)),
        "trans": per(start.trans),
        "sh": uniform_light(b, dev),
    }
    if not fixed.fit_rho:
        v["log_rho"] = torch.zeros(n_groups, device=dev)
    return {k: t.contiguous().requires_grad_(k in STEPS) for k, t in v.items()}


def _descend(variables: dict, fixed: Fixed, level: Level, steps: int, bar) -> None:
    """``steps`` Adam steps of the geometry at one level, each variable's step decaying
    to a tenth, the appearance re-solved after each."""
    names = [k for k in STEPS if fixed.fit_rho or k != "log_rho"]
    groups = [{"params": [variables[k]], "lr": STEPS[k], "name": k} for k in names]
    opt = torch.optim.Adam(groups, betas=(0.9, 0.99))
    for i in range(steps):
        decay = 1.0 - 0.9 * i / max(1, steps - 1)
        for g in opt.param_groups:
            g["lr"] = STEPS[g["name"]] * decay
        opt.zero_grad(set_to_none=True)
        total, parts = objective(variables, fixed, level)
        total.sum().backward()
        opt.step()
        with torch.no_grad():
            solve_appearance(variables, fixed, level, parts)
        bar.update(1)
        bar.set_postfix(size=level.size, objective=f"{float(total.detach().mean()):.1f}")


def solve_appearance(
    variables: dict, fixed: Fixed, level: Level, parts: dict, exact: bool = False
) -> None:
    """Re-solve ``variables["sh"]``, then ``variables["albedo"]`` (in place), in closed
    form on the render in ``parts`` (:func:`objective`'s, at ``level``) with its robust
    weights (:mod:`train.fit.appearance`). ``exact``: the albedo by conjugate gradients on
    the objective's quadratic model (:func:`train.fit.appearance.solve_albedo_exact`),
    from the current map, instead of the fit's Jacobi solve."""
    r = parts["render"]
    weight = parts["weight"] * r.covered
    colour, basis = r.colour.detach(), r.basis.detach()
    sh = solve_lighting(basis, colour, level.photo, weight, variables["sh"])
    shading = basis @ sh[:, None]
    size = variables["albedo"].shape[1]
    uv = r.uv.detach()
    if exact:
        pixel_weight = 0.5 * quadratic_weights(weight, level)
        start = variables["albedo"].detach()
        albedo = solve_albedo_exact(
            uv, shading, level.photo, pixel_weight, fixed.groups, fixed.skin, start
        )
    else:
        albedo = solve_albedo(uv, shading, level.photo, weight, fixed.groups, fixed.skin, size)
    variables["sh"], variables["albedo"] = sh, albedo


def resolve_appearance(
    variables: dict, fixed: Fixed, level: Level, rounds: int, exact: bool = False
) -> None:
    """Render and re-solve the appearance (:func:`solve_appearance`) ``rounds`` times,
    the geometry held: each round's albedo solve sees the lighting the last one left."""
    for _ in range(rounds):
        with torch.no_grad():
            parts = objective(variables, fixed, level)[1]
            solve_appearance(variables, fixed, level, parts, exact=exact)


def _result(v, value, parts, fixed: Fixed, level: Level, start: FitResult, out_device, posterior):
    to = lambda x: x.detach().to(out_device)  # noqa: E731
    rho = parts["rho"]
    positive = rho > 0
    focal = torch.where(positive, parts["scale"] / rho.clamp_min(1e-12), math.inf)
    distance = torch.where(positive, 1.0 / rho.clamp_min(1e-12), math.inf)
    lmk = parts["landmarks"]
    residual = (lmk - fixed.target).norm(dim=-1).mean(-1) / ndc_per_pixel(REFERENCE_PIXELS)
    rho_interval, distance_interval, noise = per_image(posterior, fixed.groups)
    fit = FitResult(
        rho=to(rho),
        scale=to(parts["scale"]),
        trans=to(parts["trans"]),
        global_pose=to(parts["global_pose"]),
        shape=to(parts["shape"]),
        expression=to(parts["expression"]),
        jaw_pose=to(parts["jaw_pose"]),
        eyelids=to(parts["eyelids"]),
        landmarks=to(lmk),
        residual_px=to(residual),
        focal=to(focal),
        distance=to(distance),
        objective=to(value[fixed.groups]),
        # train.fit.photo_posterior's Laplace approximation (NaN: ortho, or intervals=False)
        rho_interval=to(rho_interval),
        distance_interval=to(distance_interval),
        noise_scale=to(noise),
    )
    render = linear_to_srgb(parts["render"].image)
    photo = linear_to_srgb(level.photo)
    mask = level.weight > 0
    err = ((render - photo).square().mean(-1) * mask).sum((1, 2)) / mask.sum((1, 2)).clamp_min(1)
    return PhotoFitResult(
        fit=fit,
        start=start,
        albedo=to(v["albedo"].clamp(0, 1)),
        texture=to(linear_to_srgb(v["albedo"])),
        capture=to(fixed.groups),
        sh=to(v["sh"]),
        render=to(render),
        photo=to(photo),
        valid=to(level.valid),
        mask=to(mask),
        photo_residual=to(parts["photo"]),
        psnr=to(-10 * torch.log10(err.clamp_min(1e-10))),
        window=to(level.window),
    )
