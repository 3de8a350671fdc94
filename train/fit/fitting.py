"""Fitting FLAME and the rho camera to 68 landmarks: MAP estimation, batched.

For each image (or each capture: frames that share a subject and a camera
distance) :func:`fit_landmarks` minimises

    1/2 sum_l |P(L_l(theta); S, t, rho) - x_l|^2 / sigma_l^2        landmarks
  + 1/2 |shape / shape_std|^2 + 1/2 |expression_k / expression_std_k|^2
  + 1/2 |jaw / jaw_std|^2 + 1/2 |eyelids / eyelid_std|^2
  + 1/2 |global_pose / pose_std|^2                                  priors
  + 1/2 ((rho - rho_prior) / rho_prior_std)^2                       if a prior is given

over FLAME shape, expression, jaw, eyelids and head rotation and the camera (S, t, rho),
with ``P`` the project's camera (``ppcam.project`` after ``flame_to_camera``) and
``L`` the landmarks of :class:`train.fit.landmark_model.LandmarkModel`. In a
capture, shape and rho are one per capture and the rest per frame. All problems
run together through the batched L-BFGS of :mod:`train.fit.lbfgs`, in normalised
variables (every coordinate moves the objective about equally), from the mean
face at several rho starts (the best is kept) or from a regressor's prediction.

The default priors are those of the synthetic data (:mod:`train.data.synthetic`):
shape N(0, 0.8^2), expression k N(0, (1.2 exp(-k / 20))^2), jaw opening about
0.2 rad, eyelids 0.5 (they move the eye landmarks: a capture, whose shape is shared,
cannot absorb them into its shape), landmark noise 2 px at 224 px, 1.8 times more on the jaw line.

With ``dense=`` / ``iris=`` the objective gains MediaPipe's points and the irises, and
the problem a per-problem iris diameter (:mod:`train.fit.dense`; the objective itself is
:func:`train.fit.problem.objective`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

import flame
from train.fit.dense import DenseTerm, check_dense_inputs
from train.fit.landmark_model import LandmarkModel
from train.fit.lbfgs import minimize
from train.fit.posterior import UNOBSERVABLE_RATIO, FrameProblem, Posterior, refine
from train.fit.problem import FitPrior, Fixed, Layout, Stds, objective, project, unpack
from train.units import REFERENCE_PIXELS, ndc_per_pixel

CAMERAS = ("pseudo", "ortho")
#: rho starts (1 / model unit) of a fit from the mean face: 2 m, 67 cm, 25 cm
RHO_STARTS = (0.5, 1.5, 4.0)
DEFAULT_ITERATIONS = 120
#: a problem stops when a step gains less than this fraction of its objective: the
#: float32 objective's rounding level
RELATIVE_GAIN = 1e-6
#: Gauss-Newton rounds of a capture with the Laplace correction (``fit_landmarks(marginal=True)``)
MARGINAL_ROUNDS = 3


class FitResult(NamedTuple):
    """Per image (B images): the fitted camera and FLAME parameters.

    ``rho [B]`` (0 for ``camera="ortho"``), ``scale [B]``, ``trans [B,2]`` (model
    units, the project's camera), ``global_pose [B,3]``, ``shape [B,n_shape]``,
    ``expression [B,n_expr]``, ``jaw_pose [B,3]``, ``eyelids [B,2]``; ``landmarks [B,68,2]``
    the fitted
    landmarks (NDC); ``residual_px [B]`` their mean distance to the targets in pixels
    of a 224 px image; the pinhole equivalent ``focal [B] = S / rho`` (NDC per unit
    of x/z) and ``distance [B] = 1 / rho`` (model units; inf at rho = 0);
    ``objective [B]`` the final objective of the image's problem (shared by a
    capture's frames); ``rho_interval [B,2]`` rho's 95 % posterior interval and
    ``distance_interval [B,2]`` its image under ``1 / rho`` (a capture's frames share
    them; ``[0, 0]`` and ``[inf, inf]`` for the orthographic camera); ``noise_scale
    [B]`` the landmark noise the residuals show relative to the fit's sigma (NaN for
    the orthographic camera).
    """

    rho: torch.Tensor
    scale: torch.Tensor
    trans: torch.Tensor
    global_pose: torch.Tensor
    shape: torch.Tensor
    expression: torch.Tensor
    jaw_pose: torch.Tensor
    eyelids: torch.Tensor
    landmarks: torch.Tensor
    residual_px: torch.Tensor
    focal: torch.Tensor
    distance: torch.Tensor
    objective: torch.Tensor
    rho_interval: torch.Tensor
    distance_interval: torch.Tensor
    noise_scale: torch.Tensor
    #: with ``dense=``: the fitted dense points ``[B,N,2]`` (NDC); with ``iris=``: the
    #: fitted iris points ``[B,2,5,2]``, the iris diameter in the image ``[B]`` (NDC) and
    #: in model units ``[B]`` (:mod:`train.fit.dense`); else None
    dense: torch.Tensor | None = None
    iris: torch.Tensor | None = None
    iris_diameter: torch.Tensor | None = None
    iris_diameter_model: torch.Tensor | None = None

    def observable(self) -> torch.Tensor:
        """``[B]`` bool: rho's interval spans at most a factor ``UNOBSERVABLE_RATIO``
        (False: "distance not observable from these landmarks")."""
        lo, hi = self.rho_interval.unbind(-1)
        return (lo > 0) & (hi <= UNOBSERVABLE_RATIO * lo)


def _check_inputs(landmarks, layer, groups, sigma, rho_prior, iterations, camera):
    if not isinstance(layer, flame.FLAME):
        raise TypeError(f"layer must be a flame.FLAME, got {type(layer).__name__}")
    if not layer.has_landmarks:
        raise ValueError("layer has no landmark embedding: nothing to fit")
    if not isinstance(landmarks, torch.Tensor) or not landmarks.is_floating_point():
        raise TypeError("landmarks must be a floating-point tensor [B, 68, 2]")
    if landmarks.dim() != 3 or landmarks.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must have shape [B, 68, 2], got {list(landmarks.shape)}")
    if landmarks.shape[0] == 0:
        raise ValueError("landmarks hold no image (batch size 0)")
    if not bool(torch.isfinite(landmarks).all()):
        bad = (~torch.isfinite(landmarks)).flatten(1).any(1).nonzero()[:, 0].tolist()
        raise ValueError(f"landmarks contain NaN or inf (images {bad[:10]})")
    b = landmarks.shape[0]
    if groups is not None:
        if not isinstance(groups, torch.Tensor) or groups.dtype.is_floating_point:
            raise TypeError("groups must be an integer tensor [B] of capture ids")
        if groups.shape != (b,):
            raise ValueError(f"groups must have shape [{b}], got {list(groups.shape)}")
    if sigma is not None:
        s = torch.as_tensor(sigma)
        if s.shape not in ((), (68,), (b, 68)) or not bool((torch.isfinite(s) & (s > 0)).all()):
            raise ValueError("sigma must be positive and finite, a number, [68] or [B, 68] (NDC)")
    if rho_prior is not None:
        p = torch.as_tensor(rho_prior, dtype=torch.float64)
        if p.shape not in ((), (b,)) or bool((p[~torch.isnan(p)] < 0).any()):
            raise ValueError("rho_prior must be a number or [B] of values >= 0 (NaN: none)")
    if iterations is not None and (not isinstance(iterations, int) or iterations < 1):
        raise ValueError(f"iterations must be a positive int, got {iterations!r}")
    if camera not in CAMERAS:
        raise ValueError(f"camera must be one of {CAMERAS}, got {camera!r}")


def _group_slots(groups: torch.Tensor | None, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(index [G, F], valid [G, F])``: the images of each group, padded with -1."""
    if groups is None:
        return torch.arange(b)[:, None], torch.ones(b, 1, dtype=torch.bool)
    ids, inverse = torch.unique(groups, return_inverse=True)
    counts = torch.bincount(inverse, minlength=len(ids))
    index = torch.full((len(ids), int(counts.max())), -1, dtype=torch.long)
    order = torch.argsort(inverse, stable=True)
    slot = torch.arange(b) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    index[inverse[order], slot] = order
    return index, index >= 0


def fit_landmarks(
    landmarks: torch.Tensor,
    layer: flame.FLAME,
    *,
    init: dict | None = None,
    sigma: torch.Tensor | float | None = None,
    groups: torch.Tensor | None = None,
    rho_prior: torch.Tensor | float | None = None,
    iterations: int | None = None,
    device: str | torch.device | None = None,
    camera: str = "pseudo",
    prior: FitPrior | None = None,
    marginal: bool | None = None,
    dense: torch.Tensor | None = None,
    dense_sigma: torch.Tensor | float | None = None,
    iris: torch.Tensor | None = None,
    iris_mm: float | None = None,
) -> FitResult:
    """Fit FLAME and the camera to ``landmarks [B,68,2]`` (NDC, y down; docs/design.md
    section 2) by MAP estimation (module docstring).

    Args:
        landmarks: the targets, NDC ``[B,68,2]``, iBUG order.
        layer: the ``flame.FLAME`` whose landmarks are fitted (its shape and
            expression counts are the fitted ones).
        init: a regressor's prediction (a dict, or an object with attributes,
            holding ``scale``, ``trans``, ``rho``, ``global_pose``, ``shape``,
            ``expression``, ``jaw_pose``), one start; default the mean face with
            the rho starts ``RHO_STARTS``, the best kept.
        sigma: landmark noise std in NDC (a number, ``[68]`` or ``[B,68]``), default
            ``prior.sigma()``.
        groups: ``[B]`` integer capture ids: frames with one id share shape and rho.
            Ids used once are single images (a documented case, not an error).
        rho_prior: a number or ``[B]`` (NaN: none) pulling rho towards it with std
            ``prior.rho_prior_std``; a capture uses the mean of its frames' priors.
        iterations: L-BFGS iterations (default ``DEFAULT_ITERATIONS``).
        device: where to fit (default: the landmarks' device).
        camera: ``"pseudo"`` (fit rho) or ``"ortho"`` (rho fixed at 0, the same
            priors: the orthographic fit).
        prior: the priors and noise model, default :class:`FitPrior`.
        marginal: shape and rho maximise their posterior with every frame's own
            variables (expression, jaw, eyelids, pose, S, t) integrated out (the
            Laplace approximation, :func:`train.fit.posterior.refine`), not the
            joint posterior, whose maximum is biased when each frame brings its own
            nuisance variables (Neyman and Scott: +15-28 % on close-range
            captures); after the L-BFGS fit, ``MARGINAL_ROUNDS`` Gauss-Newton
            rounds with the landmark noise scale estimated. Default (None): for
            captures (``groups`` with repeated ids) only; True: single images too
            (about 1.7 times the fit's time; it removes the +25 % mean rho bias of
            far faces, docs/fitting.md); False: the joint MAP.
        dense: MediaPipe points ``[B,N,2]`` (NDC, the layer's ``mediapipe_indices``
            order; SMIRK's N = 105), fitted beside the 68, or instead of them when
            ``landmarks`` is None (:mod:`train.fit.dense`).
        dense_sigma: their noise std in NDC (a number, ``[N]`` or ``[B,N]``), default
            the 68's ``prior.landmark_sigma_px``.
        iris: MediaPipe's iris points ``[B,2,5,2]`` (NDC; per eye the centre and four
            edge points, the subject's right eye first), noise as ``dense_sigma``'s
            default; the fit adds the iris diameter (one per problem).
        iris_mm: the iris diameter's prior mean in mm (11.7 for people; default None:
            a weak prior only), the metric cue for distance.

    The intervals (``rho_interval``, ``distance_interval``) are 95 % intervals of rho's
    posterior (every other variable integrated out, the iris diameter included, the
    noise scale estimated from the residuals of all the points fitted): the Laplace
    interval in log rho, lengthened on the side where the posterior along log rho
    lies flatter (:mod:`train.fit.profile`; a far face's can reach rho = 0).

    Returns a :class:`FitResult` on the landmarks' device; float32.
    """
    has_68 = landmarks is not None
    if not has_68:  # the dense points alone: the 68's term is switched off below
        if dense is None:
            raise ValueError("give landmarks [B,68,2], dense points [B,N,2] or both")
        landmarks = torch.zeros(dense.shape[0], 68, 2, device=dense.device)
    check_dense_inputs(dense, dense_sigma, iris, iris_mm, landmarks.shape[0], layer, has_68)
    _check_inputs(landmarks, layer, groups, sigma, rho_prior, iterations, camera)
    prior = prior or FitPrior()
    iterations = iterations or DEFAULT_ITERATIONS
    out_device = landmarks.device
    dev = torch.device(device) if device is not None else out_device
    b = landmarks.shape[0]
    model = LandmarkModel(layer).to(dev, torch.float32)
    target = landmarks.detach().to(dev, torch.float32)
    sig = prior.sigma() if sigma is None else torch.as_tensor(sigma, dtype=torch.float32)
    sig = sig.to(dev, torch.float32).expand(b, 68)
    if not has_68:
        sig = torch.full_like(sig, math.inf)
    extra = None
    if dense is not None or iris is not None:
        default = prior.landmark_sigma_px * ndc_per_pixel(REFERENCE_PIXELS)
        extra = DenseTerm(layer, dense, dense_sigma, iris, iris_mm, default, dev, has_68)
    index, valid = _group_slots(None if groups is None else groups.cpu(), b)
    index, valid = index.to(dev), valid.to(dev)
    safe = index.clamp(min=0)
    n_extra = extra.extra if extra is not None else 0
    layout = Layout(model.n_shape, model.n_expr, camera == "pseudo", index.shape[1], n_extra)
    stds = Stds.of(prior, layout, dev)
    fixed = Fixed(
        model=model,
        target=target,
        sigma=sig,
        rho_prior=_group_rho_prior(rho_prior, index, valid, dev),
        prior=prior,
        dense=extra,
    )
    if not layout.fit_rho:
        starts = (0.0,)
    elif init is not None:
        starts = (None,)
    else:
        starts = RHO_STARTS
    packed = [_start(init, rho0, fixed, safe, valid, layout, stds) for rho0 in starts]
    x0 = torch.cat([p[0] for p in packed])
    bases = {k: torch.cat([p[1][k] for p in packed]) for k in packed[0][1]}
    n_starts = len(starts)
    safe_all, valid_all = safe.repeat(n_starts, 1), valid.repeat(n_starts, 1)

    n_groups = index.shape[0]

    def fun(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        params = unpack(x, {k: v[rows] for k, v in bases.items()}, layout, stds)
        prior_rows = fixed.rho_prior[rows % n_groups]
        return objective(params, fixed, safe_all[rows], valid_all[rows], prior_rows)

    result = minimize(fun, x0, iterations=iterations, relative_gain=RELATIVE_GAIN)
    best = result.f.reshape(n_starts, n_groups).argmin(0)
    pick = best * n_groups + torch.arange(n_groups, device=dev)
    bases = {k: v[pick] for k, v in bases.items()}
    x, f = result.x[pick], result.f[pick]
    post = None
    if layout.fit_rho:
        problem = FrameProblem(bases, fixed, safe, valid, layout, stds)
        marginal = layout.frames > 1 if marginal is None else marginal
        rounds = MARGINAL_ROUNDS if marginal else 0
        x64, post = refine(problem, x, marginal, rounds)
        if rounds:
            x, f = x64.to(x.dtype), problem.value(x64).to(f.dtype)
    params = unpack(x, bases, layout, stds)
    return _result(params, f, fixed, safe, valid, b, out_device, post)


def _field(init, name: str):
    if init is None:
        return None
    value = init.get(name) if isinstance(init, dict) else getattr(init, name, None)
    return None if value is None else torch.as_tensor(value).detach()


def _initial(init, name: str, b: int, width: int, dev) -> torch.Tensor:
    """``init``'s field ``[B, width]`` (zero-padded or cut to ``width``), or zeros."""
    value = _field(init, name)
    out = torch.zeros(b, width, device=dev)
    if value is not None:
        value = value.reshape(b, -1).to(dev, torch.float32)
        k = min(width, value.shape[1])
        out[:, :k] = value[:, :k]
    return out


def _group_rho_prior(rho_prior, index, valid, dev) -> torch.Tensor:
    """The rho prior of each group: the mean of its frames' (NaN: none)."""
    n_groups = index.shape[0]
    if rho_prior is None:
        return torch.full((n_groups,), float("nan"), device=dev)
    b = int(index.max()) + 1
    p = torch.as_tensor(rho_prior, dtype=torch.float32).to(dev).expand(b)
    per_slot = torch.where(valid, p[index.clamp(min=0)], torch.nan)
    return per_slot.nanmean(1)


def _mean_over_frames(x: torch.Tensor, safe, valid) -> torch.Tensor:
    """Per group, the mean of the per-image ``x [B, ...]`` over its frames."""
    w = valid.float().reshape(*valid.shape, *([1] * (x.dim() - 1)))
    return (x[safe] * w).sum(1) / w.sum(1)


def _start(init, rho0, fixed: Fixed, safe, valid, layout: Layout, stds: Stds):
    """``(x0 [G, D], bases)`` of one start: from ``init`` (``rho0`` None) or from the
    mean face at ``rho0``."""
    b = fixed.target.shape[0]
    dev = fixed.target.device
    if init is not None:
        shape = _initial(init, "shape", b, layout.n_shape, dev)
        expression = _initial(init, "expression", b, layout.n_expr, dev)
        jaw = _initial(init, "jaw_pose", b, 3, dev)
        eyelids = _initial(init, "eyelids", b, 2, dev)
        pose = _initial(init, "global_pose", b, 3, dev)
        scale = _initial(init, "scale", b, 1, dev)[:, 0].clamp_min(1e-3)
        trans = _initial(init, "trans", b, 2, dev)
        rho = _initial(init, "rho", b, 1, dev)[:, 0]
        rho = rho.clamp_min(0.05) if rho0 is None else torch.full_like(rho, rho0)
    else:
        shape = torch.zeros(b, layout.n_shape, device=dev)
        expression = torch.zeros(b, layout.n_expr, device=dev)
        jaw = torch.zeros(b, 3, device=dev)
        eyelids = torch.zeros(b, 2, device=dev)
        pose = torch.zeros(b, 3, device=dev)
        rho = torch.full((b,), float(rho0), device=dev)
        scale, trans = _rigid_from_mean_face(fixed, rho)
    g, f = safe.shape
    z_shared = [_mean_over_frames(shape, safe, valid) / stds.shape]
    if layout.fit_rho:
        z_shared.append(torch.zeros(g, 1, device=dev))
    z_local = torch.cat(
        [
            expression[safe] / stds.expression,
            jaw[safe] / stds.jaw,
            eyelids[safe] / stds.eyelids,
            torch.zeros(g, f, 6, device=dev),  # pose, log S, t: offsets from the bases
        ],
        dim=-1,
    )
    x0 = torch.cat([*z_shared, z_local.reshape(g, -1), torch.zeros(g, layout.extra, device=dev)], 1)
    log_rho = torch.log(_mean_over_frames(rho, safe, valid).clamp_min(1e-6))
    bases = {
        "log_rho": log_rho,
        "pose": pose[safe],
        "log_scale": torch.log(scale)[safe],
        "trans": trans[safe],
    }
    return x0, bases


def _rigid_from_mean_face(fixed: Fixed, rho: torch.Tensor):
    """Scale and translation that put the mean face's landmarks over the targets."""
    with torch.no_grad():
        zero = torch.zeros(1, 3, device=rho.device)
        mean = fixed.model(
            torch.zeros(1, fixed.model.n_shape, device=rho.device),
            torch.zeros(1, fixed.model.n_expr, device=rho.device),
            zero,
            zero,
        )
    target = fixed.target
    if fixed.dense is not None and not fixed.dense.has_68:
        mean, target = fixed.dense.mean_and_target(rho.device)
        mean = mean[None]
    mean = mean[0] * torch.tensor([1.0, -1.0, -1.0], device=rho.device)  # camera frame
    w = 1.0 + rho[:, None] * mean[None, :, 2]  # [B, 68]
    centred = mean[:, :2] - mean[:, :2].mean(0)
    target, raw = target - target.mean(1, keepdim=True), target
    ratio = (target.square().sum((1, 2)).sqrt() / centred.square().sum().sqrt()).clamp_min(0.1)
    scale = ratio * w.mean(1)
    trans = raw.mean(1) * w.mean(1, keepdim=True) / scale[:, None] - mean[:, :2].mean(0)
    return scale, trans


@torch.no_grad()
def _result(
    params, objective, fixed: Fixed, safe, valid, b: int, out_device, post: Posterior | None
) -> FitResult:
    """Scatter the groups' fitted values back to the images."""
    uv = project(params, fixed, safe)
    g, f = safe.shape
    img = safe[valid]

    def per_image(x: torch.Tensor) -> torch.Tensor:  # [G, F, ...] -> [B, ...]
        out = x.new_zeros(b, *x.shape[2:])
        out[img] = x[valid]
        return out.to(out_device)

    def per_group(x: torch.Tensor) -> torch.Tensor:  # [G, ...] -> [B, ...]
        return per_image(x[:, None].expand(g, f, *x.shape[1:]))

    landmarks = per_image(uv)
    target = fixed.target.to(out_device)
    residual = (landmarks - target).norm(dim=-1).mean(-1) / ndc_per_pixel(REFERENCE_PIXELS)
    rho = per_group(params["rho"])
    scale = per_image(params["scale"])
    positive = rho > 0
    focal = torch.where(positive, scale / rho.clamp_min(1e-12), torch.full_like(rho, math.inf))
    distance = torch.where(positive, 1.0 / rho.clamp_min(1e-12), torch.full_like(rho, math.inf))
    if post is None:  # orthographic: rho is 0 by construction
        rho_interval = torch.zeros(b, 2, device=out_device)
        noise = torch.full((b,), math.nan, device=out_device)
    else:
        rho_interval = per_group(post.rho_interval().float())
        noise = per_group(post.noise_scale.float())
    distance_interval = 1.0 / rho_interval.flip(-1)  # 1 / 0 = inf
    extra = {} if fixed.dense is None else fixed.dense.result(params, safe, per_image, per_group)
    if fixed.dense is not None and not fixed.dense.has_68:  # residual of the dense points
        target = fixed.dense.dense.to(out_device)
        residual = (extra["dense"] - target).norm(dim=-1).mean(-1) / ndc_per_pixel(REFERENCE_PIXELS)
    return FitResult(
        rho=rho,
        scale=scale,
        trans=per_image(params["trans"]),
        global_pose=per_image(params["global_pose"]),
        shape=per_group(params["shape"]),
        expression=per_image(params["expression"]),
        jaw_pose=per_image(params["jaw_pose"]),
        eyelids=per_image(params["eyelids"]),
        landmarks=landmarks,
        residual_px=residual,
        focal=focal,
        distance=distance,
        objective=per_group(objective),
        rho_interval=rho_interval,
        distance_interval=distance_interval,
        noise_scale=noise,
        **extra,
    )


def better_of(a: FitResult, b: FitResult) -> FitResult:
    """Per image, the fit with the lower objective of two fits of the same landmarks
    (e.g. from a regressor's prediction and from the mean face: a start far off can
    leave the fit in a flat region); fields neither fit computed (None) stay None."""
    pick = a.objective <= b.objective

    def choose(x: torch.Tensor | None, y: torch.Tensor | None) -> torch.Tensor | None:
        if x is None or y is None:
            return None
        return torch.where(pick.reshape(-1, *([1] * (x.dim() - 1))), x, y)

    return FitResult(*(choose(x, y) for x, y in zip(a, b)))
