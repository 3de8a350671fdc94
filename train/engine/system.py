"""The training system: the trainable networks (regressor and neural renderer) over
a fixed FLAME layer, the loss computation of one training step (weights: fields of
:class:`train.engine.config.TrainConfig`), and loading a trained one back."""

from __future__ import annotations

import time

import torch

import flame
import ppcam
from train.engine import checkpoint as ckpt
from train.engine.config import TrainConfig
from train.models.interface import Regressor, Renderer
from train.models.masking import mask_face
from train.models.regressor import FaceRegressor
from train.models.smirk.adapter import SmirkRegressor, SmirkRenderer
from train.models.unet import NeuralRenderer
from train.render.head import camera_vertices, project_landmarks, render_mesh
from train.units import JAW, LANDMARK_UNIT, OTHER

#: The expression cycle's edit: Gaussian changes of this std on the first
#: ``CYCLE_EDITED_MODES`` expression coefficients (the rest kept), and a jaw opening
#: added uniformly in ``[0, CYCLE_JAW_OPEN_MAX]`` radians.
CYCLE_EXPRESSION_STD = 0.5
CYCLE_EDITED_MODES = 10
CYCLE_JAW_OPEN_MAX = 0.25


def make_networks(cfg: TrainConfig) -> tuple[Regressor, Renderer]:
    """The regressor and the neural renderer of ``cfg.model.arch``, freshly initialised.

    ``"small"``: :class:`FaceRegressor` (``width``) and :class:`NeuralRenderer`
    (``renderer_channels``); ``"smirk"``: SMIRK's encoder behind
    :class:`SmirkRegressor` and its generator behind :class:`SmirkRenderer`
    (``renderer_channels`` = the generator's first-level channels, 32 in SMIRK).
    """
    camera = {
        "camera": cfg.model.camera,
        "rho_max": cfg.model.rho_max,
        "rho_init": cfg.model.rho_init,
    }
    if cfg.model.arch == "smirk":
        model = SmirkRegressor(n_shape=cfg.data.n_shape, n_expr=cfg.data.n_expr, **camera)
        return model, SmirkRenderer(init_features=cfg.model.renderer_channels)
    model = FaceRegressor(
        n_shape=cfg.data.n_shape, n_expr=cfg.data.n_expr, width=cfg.model.width, **camera
    )
    return model, NeuralRenderer(base_channels=cfg.model.renderer_channels)


class TrainingSystem(torch.nn.Module):
    """The trainable parts (regressor and neural renderer) and the loss computation."""

    def __init__(self, cfg: TrainConfig, flame_layer: flame.FLAME) -> None:
        super().__init__()
        self.cfg = cfg
        self.model, self.renderer = make_networks(cfg)
        # FLAME is fixed: kept out of the module tree so DDP neither syncs nor saves it.
        object.__setattr__(self, "flame_layer", flame_layer)
        #: seconds spent rendering (rasterize, interpolate, shade, antialias) in the last
        #: forward pass, CUDA-synchronised: the rendering share of a training step
        self.render_seconds = 0.0

    def _autocast(self, device: torch.device):
        """bfloat16 autocast for the networks on CUDA when ``cfg.run.amp``; geometry, projection
        and rasterization always run in float32 (outside this context)."""
        enabled = self.cfg.run.amp and device.type == "cuda"
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled)

    def encode(self, images):
        with self._autocast(images.device):
            pred = self.model(images)
        return pred._replace(
            **{k: v.float() for k, v in pred._asdict().items() if isinstance(v, torch.Tensor)}
        )

    def rebuild(self, masked, rendered):
        with self._autocast(masked.device):
            return self.renderer(masked, rendered).float()

    def geometry(self, pred, expression=None, jaw_pose=None):
        out = self.flame_layer(
            shape=pred.shape,
            expression=pred.expression if expression is None else expression,
            global_pose=pred.global_pose,
            jaw_pose=pred.jaw_pose if jaw_pose is None else jaw_pose,
            eyelids=pred.eyelids if self.flame_layer.has_eyelids else None,
        )
        return out

    def render(self, out, pred, size, detach_camera=False):
        cam = [pred.scale, pred.trans, pred.rho]
        if detach_camera:
            cam = [c.detach() for c in cam]
        if out.vertices.is_cuda:  # the queued encoder work is not rendering
            torch.cuda.synchronize(out.vertices.device)
        start = time.perf_counter()
        rendered = render_mesh(camera_vertices(out.vertices), self.flame_layer.faces, *cam, size)
        if rendered.image.is_cuda:
            torch.cuda.synchronize(rendered.image.device)
        self.render_seconds += time.perf_counter() - start
        return rendered

    def forward(self, images, landmarks, rho_prior, generator, with_images=False):
        """Losses for a batch: ``(total, stats, outputs)``.

        images ``[B,3,H,W]`` in [0, 1]; landmarks ``[B,68,2]`` NDC supervision;
        rho_prior ``[B]`` per-sample priors (NaN: none). Rendering, masking and the
        neural renderer run only when a loss needs them or ``with_images``.
        """
        cfg = self.cfg
        size = images.shape[-1]
        self.render_seconds = 0.0
        pred = self.encode(images)
        out = self.geometry(pred)
        lmk = project_landmarks(out.landmarks, pred.scale, pred.trans, pred.rho)
        sq = ((lmk - landmarks) ** 2).sum(-1)
        losses = {"landmarks": cfg.loss.w_landmarks * sq.mean()}
        stats = {
            "lmk_jaw": sq[:, JAW].mean().detach() * LANDMARK_UNIT,
            "lmk_other": sq[:, OTHER].mean().detach() * LANDMARK_UNIT,
        }

        rendered = masked = recon = None
        if with_images or cfg.loss.w_photometric > 0 or cfg.loss.w_cycle > 0:
            rendered = self.render(out, pred, size)
            masked = mask_face(
                images,
                rendered.mask.detach(),
                landmarks.detach(),
                mode=cfg.model.masking,
                generator=generator,
            )
            recon = self.rebuild(masked.masked, rendered.image)
        if cfg.loss.w_photometric > 0:
            losses["photometric"] = cfg.loss.w_photometric * (recon - images).abs().mean()
        losses["shape_reg"] = cfg.loss.w_shape_reg * pred.shape.square().sum(-1).mean()
        losses["expr_reg"] = cfg.loss.w_expr_reg * pred.expression.square().sum(-1).mean()
        losses["jaw_reg"] = cfg.loss.w_jaw_reg * pred.jaw_pose.square().sum(-1).mean()
        if cfg.model.camera == "pseudo" and cfg.loss.w_rho_prior > 0:
            losses["rho_prior"] = ppcam.rho_prior_loss(pred.rho, rho_prior, cfg.loss.w_rho_prior)
        if cfg.loss.w_cycle > 0:
            losses["cycle"] = cfg.loss.w_cycle * self._cycle(pred, masked.masked, size, generator)
        total = sum(losses.values())
        stats.update({k: v.detach() for k, v in losses.items()})
        stats["rho_mean"] = pred.rho.detach().mean()
        return total, stats, (pred, lmk, rendered, recon, masked)

    def _cycle(self, pred, masked_images, size, generator):
        """Edit the expression, render it, rebuild an image, re-encode: it must come back."""
        b = pred.expression.shape[0]
        delta = torch.randn(pred.expression.shape, generator=generator) * CYCLE_EXPRESSION_STD
        delta[:, CYCLE_EDITED_MODES:] = 0
        expression = pred.expression.detach() + delta.to(pred.expression)
        jaw = pred.jaw_pose.detach().clone()
        jaw[:, 0] = jaw[:, 0] + CYCLE_JAW_OPEN_MAX * torch.rand(b, generator=generator).to(jaw)
        detached = pred._replace(
            **{
                k: getattr(pred, k).detach()
                for k in ("shape", "global_pose", "scale", "trans", "rho", "eyelids")
            }
        )
        out = self.geometry(detached, expression, jaw)
        rendered = self.render(out, detached, size, detach_camera=True)
        edited = self.rebuild(masked_images, rendered.image)
        with self._autocast(edited.device):
            expr_back, jaw_back, _ = self.model.encode_expression(edited)
        expr_back, jaw_back = expr_back.float(), jaw_back.float()
        return (expr_back - expression).abs().mean() + (jaw_back - jaw).abs().mean()


def load_system(path: str, device: torch.device) -> TrainingSystem:
    """The trained regressor (and renderer) of a training checkpoint, in eval mode."""
    return read_system(path, device)[0]


def read_system(path: str, device: torch.device) -> tuple[TrainingSystem, dict]:
    """:func:`load_system` and the checkpoint's metadata (``config``, ``extra``, ...), from
    one read of the file."""
    tensors, info = ckpt.read_checkpoint(path)
    cfg = TrainConfig.from_dict(info["config"])
    layer = flame.FLAME(cfg.data.flame, n_shape=cfg.data.n_shape, n_expr=cfg.data.n_expr).to(device)
    system = TrainingSystem(cfg, layer)
    ckpt.load_model_state(system, tensors)
    return system.to(device).eval(), info
