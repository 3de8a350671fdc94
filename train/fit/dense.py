"""Dense points and the iris in the landmark fit (:func:`train.fit.fit_landmarks`'s
``dense=``, ``iris=``, ``iris_mm=``).

Dense points: the model's MediaPipe embedding (SMIRK's 105 points,
:mod:`flame.mediapipe_embedding`), posed as the 68 landmarks are (:class:`PointModel`),
fitted to MediaPipe's points in the same NDC frame with std ``dense_sigma``.

The iris: per eye MediaPipe's five iris points (centre, then four on the edge: the
nasal side, up, the temporal side, down, as seen in the image; the first eye is the
subject's right, around mesh points 33/133). The model's iris is a flat disc of
diameter ``d`` facing forward at each eyeball: its centre ``IRIS_DEPTH`` in front of the
eye joint (FLAME's joints 4, right, and 3, left), where an 11.7 mm iris cuts a 12 mm
radius eyeball (the human eye; the stand-in's eyeballs are 12.2 mm), turning with the
head (the fit's eye poses are zero, as SMIRK's). ``d`` is in model units (metres for
FLAME and the stand-in): a variable of the fit, one per problem, with the prior
``log d ~ N(log(iris_mm / 1000), (IRIS_MM_STD / iris_mm)^2)`` when ``iris_mm`` is given
(the human iris is 11.7 +- 0.5 mm across), else the weak ``N(log 0.0117, WEAK_LOG_STD^2)``
that only keeps ``d`` finite. With a known diameter the iris's image size ties the
head's metric size, and through rho its distance, to millimetres: the cue MediaPipe Iris
uses for metric distance.
"""

from __future__ import annotations

import copy
import math

import torch

from train.render.points import IRIS_MM, PointModel

#: the human iris diameter's spread across people (mm)
IRIS_MM_STD = 0.5
#: std of log d without ``iris_mm``
WEAK_LOG_STD = 0.5


def iris_log_prior(iris_mm: float | None) -> tuple[float, float]:
    """``(mean, std)`` of ``log d`` (d in model units) for ``iris_mm`` (module docstring)."""
    if iris_mm is None:
        return math.log(IRIS_MM / 1000), WEAK_LOG_STD
    return math.log(iris_mm / 1000), IRIS_MM_STD / iris_mm


def projected_diameter(iris_uv: torch.Tensor) -> torch.Tensor:
    """The iris diameter in the image ``[...]`` from its points ``[..., 2, 5, 2]``: the
    mean over both eyes of the horizontal and vertical edge-to-edge distances."""
    across = (iris_uv[..., 1, :] - iris_uv[..., 3, :]).norm(dim=-1)
    down = (iris_uv[..., 2, :] - iris_uv[..., 4, :]).norm(dim=-1)
    return ((across + down) / 2).mean(-1)


def check_dense_inputs(dense, dense_sigma, iris, iris_mm, b: int, layer, has_68: bool) -> None:
    """Shapes, finiteness and the layer's embedding; ``ValueError`` / ``TypeError`` saying
    what was expected."""
    if dense is not None:
        if not layer.has_mediapipe:
            raise ValueError("dense points need a layer with a MediaPipe embedding")
        n = len(layer.mediapipe_indices)
        _check_points(dense, "dense", (b, n, 2))
    elif not has_68:
        raise ValueError("give landmarks [B,68,2], dense points [B,105,2] or both")
    if dense_sigma is not None:
        s = torch.as_tensor(dense_sigma)
        n = len(layer.mediapipe_indices)
        if s.shape not in ((), (n,), (b, n)) or not bool((torch.isfinite(s) & (s > 0)).all()):
            raise ValueError(f"dense_sigma must be positive, a number, [{n}] or [B, {n}] (NDC)")
    if iris is not None:
        _check_points(iris, "iris", (b, 2, 5, 2))
    if iris_mm is not None:
        if iris is None:
            raise ValueError("iris_mm needs the iris points (iris=[B,2,5,2])")
        if not isinstance(iris_mm, int | float) or not 5.0 <= float(iris_mm) <= 20.0:
            raise ValueError(f"iris_mm must be a diameter in mm in [5, 20], got {iris_mm!r}")


def _check_points(x, name: str, shape: tuple[int, ...]) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor {list(shape)}")
    if tuple(x.shape) != shape:
        raise ValueError(f"{name} must have shape {list(shape)}, got {list(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")


#: the optimiser's step of log d (one unit of its variable moves log d by this)
LOG_IRIS_STEP = 0.05


class DenseTerm:
    """The dense and iris part of the fit's objective, for :func:`train.fit.fit_landmarks`:
    its targets, noise and priors, the point model, and what goes into the result; and,
    for the fit's posterior (:class:`train.fit.posterior.FrameProblem`), its whitened
    residuals, its prior's curvature, a float64 copy and a noise-scaled copy."""

    def __init__(self, layer, dense, dense_sigma, iris, iris_mm, default_sigma, dev, has_68):
        self.model = PointModel(layer).to(dev, torch.float32)
        self.has_68 = has_68
        b = (dense if dense is not None else iris).shape[0]
        self.dense = None if dense is None else dense.detach().to(dev, torch.float32)
        if dense is not None:
            n = self.dense.shape[1]
            s = default_sigma if dense_sigma is None else dense_sigma
            self.sigma = torch.as_tensor(s, dtype=torch.float32).to(dev).expand(b, n)
        self.iris = None if iris is None else iris.detach().to(dev, torch.float32)
        self.iris_sigma = torch.full((b,), float(default_sigma), device=dev)  # per image
        self.log_d0, self.log_d_std = iris_log_prior(iris_mm)

    @property
    def extra(self) -> int:
        """Variables per problem this term adds (log d of the iris)."""
        return int(self.iris is not None)

    def diameter(self, params: dict) -> torch.Tensor | None:
        if self.iris is None:
            return None
        return torch.exp(self.log_d0 + params["extra"][:, 0] * LOG_IRIS_STEP)

    def project(self, params: dict, safe: torch.Tensor):
        """``(dense [P,F,105,2] or None, iris [P,F,2,5,2] or None)`` in NDC."""
        from train.render.head import project_landmarks

        p, f = safe.shape
        flat = {k: params[k].reshape(p * f, -1) for k in ("expression", "jaw_pose", "global_pose")}
        shape = params["shape"][:, None].expand(p, f, -1).reshape(p * f, -1)
        d = self.diameter(params)
        d = None if d is None else d[:, None].expand(p, f).reshape(-1)
        dense, iris = self.model(
            shape,
            flat["expression"],
            flat["global_pose"],
            flat["jaw_pose"],
            params["eyelids"].reshape(p * f, 2),
            d,
        )
        rho = params["rho"][:, None].expand(p, f).reshape(-1)
        scale, trans = params["scale"].reshape(-1), params["trans"].reshape(p * f, 2)
        out = []
        for pts, lead in ((dense if self.dense is not None else None, ()), (iris, (2,))):
            if pts is None:
                out.append(None)
                continue
            uv = project_landmarks(pts.reshape(p * f, -1, 3), scale, trans, rho)
            out.append(uv.reshape(p, f, *lead, -1, 2))
        return out[0], out[1]

    def residuals(self, params: dict, safe: torch.Tensor) -> torch.Tensor:
        """Whitened residuals ``[P, F, M]`` of every problem's frames: the dense points'
        (``M`` = 2N) then the irises' (20)."""
        dense, iris = self.project(params, safe)
        p, f = safe.shape
        out = []
        if dense is not None:
            out.append((dense - self.dense[safe]) / self.sigma[safe][..., None])
        if iris is not None:
            out.append((iris - self.iris[safe]) / self.iris_sigma[safe][..., None, None, None])
        return torch.cat([r.reshape(p, f, -1) for r in out], -1)

    def objective(self, params: dict, safe: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """This term's part of the negative log posterior ``[P]``."""
        total = 0.5 * (self.residuals(params, safe).square().sum(-1) * valid).sum(1)
        if self.iris is not None:
            log_d = self.log_d0 + params["extra"][:, 0] * LOG_IRIS_STEP
            total = total + 0.5 * ((log_d - self.log_d0) / self.log_d_std) ** 2
        return total

    def prior_curvature(self) -> list[float]:
        """The priors' Hessian diagonal in the per-problem variables (``extra`` of them):
        the log-normal prior of the iris diameter, in the optimiser's unit."""
        return [(LOG_IRIS_STEP / self.log_d_std) ** 2] * self.extra

    def to_dtype(self, dtype: torch.dtype) -> DenseTerm:
        """A copy with its point model, targets and noise in ``dtype``."""
        out = copy.copy(self)
        out.model = copy.deepcopy(self.model).to(dtype)
        for name in ("dense", "sigma", "iris", "iris_sigma"):
            value = getattr(self, name, None)
            if value is not None:
                setattr(out, name, value.to(dtype))
        return out

    def scaled(self, per_image: torch.Tensor) -> DenseTerm:
        """A copy with every image's noise std multiplied by ``per_image [B]``."""
        out = copy.copy(self)
        if self.dense is not None:
            out.sigma = self.sigma * per_image[:, None]
        out.iris_sigma = self.iris_sigma * per_image
        return out

    def mean_and_target(self, dev) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean face's dense points ``[105,3]`` and their targets ``[B,105,2]`` (to
        place the mean face when the 68 are not given)."""
        with torch.no_grad():
            zero = torch.zeros(1, 3, device=dev)
            dense, _ = self.model(
                torch.zeros(1, self.model.n_shape, device=dev),
                torch.zeros(1, self.model.n_expr, device=dev),
                zero,
                zero,
            )
        return dense[0], self.dense

    def result(self, params: dict, safe, per_image, per_group) -> dict:
        """The fitted dense points, iris points and iris diameter, per image."""
        dense, iris = self.project(params, safe)
        out = {}
        if dense is not None:
            out["dense"] = per_image(dense)
        if iris is not None:
            out["iris"] = per_image(iris)
            out["iris_diameter"] = per_image(projected_diameter(iris))
            out["iris_diameter_model"] = per_group(self.diameter(params))
        return out
