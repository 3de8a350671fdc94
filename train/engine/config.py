"""Typed run configuration: every hyperparameter is a field, overridable from the
command line (``--field value``), chosen in bulk by a preset, and saved with the run."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import typing
from collections.abc import Sequence

from train.data.data_config import DataConfig
from train.data.sources import FOLDER, REGIMES
from train.faces.crop_box import FOLDER_CROPS
from train.models.masking import MASKINGS
from train.models.regressor import CAMERA_MODES, RHO_INITS

#: Regressor and neural-renderer architectures: "small" (this project's compact
#: MobileNet-like encoders and UNet, for CPUs) or "smirk" (SMIRK's released encoder and
#: generator, train.models.smirk.networks; its checkpoint converts with train.import_smirk)
ARCHS = ("small", "smirk")
#: learning-rate schedules: constant after the warm-up, or cosine decay to 0 at the last step
LR_SCHEDULES = ("constant", "cosine")
#: The ablations of the rho model (``train.finetune --ablations all``): the report's
#: role of each and the config fields it changes against the rho model.
ABLATIONS = {
    "rho-no-prior": {"w_rho_prior": 0.0},
    "rho-smirk-masking": {"masking": "smirk"},
    "rho-paper-init": {"rho_init": "paper"},
}


#: fields whose default changed when they were added: a saved config without them was
#: trained without them (no weight average, running BatchNorm statistics)
SAVED_BEFORE_FIELD = {"ema_decay": 0.0, "bn_recalibrate": 0}


@dataclasses.dataclass
class TrainConfig:
    """One training run (pretraining or fine-tuning). Units: pixels, steps, seconds."""

    # what and where
    name: str = "finetune"
    preset: str = "default"
    out_dir: str = "runs"
    flame: str = "bundled"
    seed: int = 0  # the data (synthetic samples, splits) and, for replicate 0, the training
    # training replicate: 0 trains with ``seed``; k > 0 draws its own network init, batch
    # order and per-step noise (train_seed) on the same data (train.finetune --seeds N)
    replicate: int = 0
    device: str = "auto"
    # data
    regimes: tuple[str, ...] = REGIMES
    image_size: int = 64
    n_train: int = 1024  # samples per regime
    n_val: int = 64
    n_test: int = 128
    landmark_noise: bool = True
    # a folder of real images + 68-point landmark files (train.data.folder) that joins the
    # fine-tuning with landmark supervision and its rho_prior.json; "" for none
    folder: str = ""
    folder_test_fraction: float = 0.2  # share of the folder held out for evaluation
    folder_rho_prior: float = -1.0  # >= 0 overrides the folder's rho_prior.json
    # images of the folder without a landmark file: annotated by the face detector (the
    # faces extra) and cached under <out_dir>/.data/folder-landmarks/, else skipped
    folder_annotate: bool = True
    # folder crops: "auto" (SMIRK's landmark crop for annotated images, the centre
    # square for images with their own landmark file), "centre" or "landmarks"
    folder_crop: str = "auto"
    # model
    arch: str = "small"
    camera: str = "pseudo"
    rho_max: float = 6.0
    rho_init: str = "zero"
    n_shape: int = 50
    n_expr: int = 50
    width: float = 0.5  # "small" only: channel multiplier of the encoders
    renderer_channels: int = 8  # channels of the renderer's first level (SMIRK's: 32)
    masking: str = "paper"
    # optimisation
    steps: int = 360
    pretrain_steps: int = 360  # used by train.finetune when it trains the pretraining first
    batch_size: int = 32
    lr: float = 1e-3
    # lr * lr_factor(step): linear warm-up over warmup_steps, then constant or cosine to 0
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    grad_clip: float = 5.0
    # exponential moving average of the weights (train.engine.ema): 0 for none, else its
    # decay; validation and final.safetensors (what evaluation and fine-tuning read) then
    # use the average, last.safetensors keeps the raw weights. With bn_recalibrate, the
    # default since the seed-variance study (docs/default-run/): it cut the between-seed
    # spread of the headline (docs/training.md)
    ema_decay: float = 0.99
    # training batches over which the BatchNorm statistics of the delivered weights are
    # recomputed at the end of the run (train.engine.batchnorm); 0 keeps the running ones
    bn_recalibrate: int = 20
    # Learning-rate multiplier of the camera head (rho or f/t_z): Adam moves a weight by
    # about lr per step, and the rho head's sigmoid logit has several units to travel.
    camera_lr_scale: float = 20.0
    # bfloat16 autocast of the encoders and the neural renderer on CUDA (geometry,
    # projection and rasterization stay float32); ignored on CPU
    amp: bool = True
    eval_every: int = 100
    checkpoint_every: int = 50
    max_bad_steps: int = 5
    # loss weights (SMIRK's published values, docs/design.md section 6; rho prior 0.1)
    w_landmarks: float = 100.0
    w_photometric: float = 10.0
    w_shape_reg: float = 100.0 / 300.0
    w_expr_reg: float = 1e-3
    w_jaw_reg: float = 1e-2
    w_cycle: float = 1.0
    w_rho_prior: float = 0.1
    # per-regime rho priors (the paper: 4.0 for head-mounted footage, 0 elsewhere)
    rho_prior_hmc: float = 4.0
    rho_prior_studio: float = 0.0
    rho_prior_wild: float = 0.0

    def validate(self) -> TrainConfig:
        """Raise ``ValueError`` naming the field when a value is out of range."""
        choices = {
            "arch": ARCHS,
            "camera": CAMERA_MODES,
            "masking": MASKINGS,
            "rho_init": RHO_INITS,
            "folder_crop": FOLDER_CROPS,
            "lr_schedule": LR_SCHEDULES,
        }
        for field, allowed in choices.items():
            if getattr(self, field) not in allowed:
                raise ValueError(f"{field} must be one of {allowed}, got {getattr(self, field)!r}")
        bad = [r for r in self.regimes if r not in REGIMES]
        if bad or not self.regimes:
            raise ValueError(f"regimes must be a non-empty subset of {REGIMES}, got {self.regimes}")
        positive = (
            "image_size",
            "n_train",
            "n_test",
            "n_val",
            "steps",
            "pretrain_steps",
            "batch_size",
            "n_shape",
            "n_expr",
            "renderer_channels",
            "eval_every",
            "checkpoint_every",
            "max_bad_steps",
        )
        for field in positive:
            if getattr(self, field) <= 0:
                raise ValueError(f"{field} must be > 0, got {getattr(self, field)}")
        if self.image_size < 32 or self.image_size % 8:
            raise ValueError(f"image_size must be a multiple of 8 and >= 32, got {self.image_size}")
        if self.arch == "smirk" and self.image_size % 16:
            raise ValueError(
                f"image_size must be a multiple of 16 for arch 'smirk' (its generator pools "
                f"four times), got {self.image_size}"
            )
        for field in ("lr", "rho_max", "width", "grad_clip", "camera_lr_scale"):
            if not getattr(self, field) > 0:
                raise ValueError(f"{field} must be > 0, got {getattr(self, field)}")
        for f in dataclasses.fields(self):
            if f.name.startswith("w_") and getattr(self, f.name) < 0:
                raise ValueError(f"loss weight {f.name} must be >= 0, got {getattr(self, f.name)}")
        if self.folder and not os.path.isdir(self.folder):
            raise ValueError(
                f"folder not found: {self.folder!r} (a directory of images and "
                "landmark files, see train.data.folder)"
            )
        if not 0.0 < self.folder_test_fraction < 1.0:
            raise ValueError(
                f"folder_test_fraction must be in (0, 1), got {self.folder_test_fraction}"
            )
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(
                f"warmup_steps must be >= 0 and below steps ({self.steps}), got {self.warmup_steps}"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.bn_recalibrate < 0:
            raise ValueError(f"bn_recalibrate must be >= 0, got {self.bn_recalibrate}")
        if self.replicate < 0:
            raise ValueError(f"replicate must be >= 0, got {self.replicate}")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"name must be a plain directory name, got {self.name!r}")
        return self

    def lr_factor(self, step: int) -> float:
        """Multiplier of every group's learning rate at optimizer step ``step`` (0-based):
        ``(step + 1) / warmup_steps`` during the warm-up, then 1 (``constant``) or
        ``(1 + cos(pi t)) / 2`` with t going from 0 after the warm-up to 1 at the last step
        (``cosine``)."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.lr_schedule == "constant":
            return 1.0
        span = max(self.steps - 1 - self.warmup_steps, 1)
        t = min((step - self.warmup_steps) / span, 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * t))

    @property
    def train_seed(self) -> int:
        """Seed of the network init, batch order and per-step noise: ``seed`` for
        replicate 0 (runs trained before replicates existed are unchanged), else a hash
        of (seed, replicate)."""
        if self.replicate == 0:
            return self.seed
        key = f"{self.seed}/replicate/{self.replicate}".encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:4], "little")

    def rho_prior(self, regime: str) -> float:
        """The rho prior of a regime, or of the folder (NaN: the folder has none)."""
        if regime == FOLDER:
            if self.folder_rho_prior >= 0:
                return float(self.folder_rho_prior)
            from train.data.folder import read_rho_prior

            prior = read_rho_prior(self.folder) if self.folder else None
            return float("nan") if prior is None else float(prior)
        return float(getattr(self, f"rho_prior_{regime}"))

    def sources(self) -> tuple[str, ...]:
        """The data sources a run trains and evaluates on: its regimes and the folder."""
        return (*self.regimes, FOLDER) if self.folder else tuple(self.regimes)

    @property
    def data(self) -> DataConfig:
        """The data section (what train.data receives)."""
        names = [f.name for f in dataclasses.fields(DataConfig)]
        return DataConfig(**{k: getattr(self, k) for k in names})

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Build from a saved dict; unknown keys are an error (a config from another version).
        A field the dict lacks (saved before the field existed) takes the value that
        reproduces how that run was trained: :data:`SAVED_BEFORE_FIELD`, else the default."""
        values = {**SAVED_BEFORE_FIELD, **values}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown config fields {unknown}")
        hints = typing.get_type_hints(cls)
        fixed = {k: tuple(v) if hints[k] == tuple[str, ...] else v for k, v in values.items()}
        return cls(**fixed).validate()


def config_diff(saved: TrainConfig, wanted: TrainConfig, ignore=()) -> dict[str, tuple]:
    """``{field: (saved value, wanted value)}`` for the fields that differ, except ``ignore``."""
    return {
        k: (v, getattr(wanted, k))
        for k, v in dataclasses.asdict(saved).items()
        if v != getattr(wanted, k) and k not in ignore
    }


#: Presets: field overrides applied before command-line flags.
PRESETS: dict[str, dict] = {
    # a minute or two on 2 CPU cores: used by the tests
    "smoke": dict(
        image_size=32,
        n_train=48,
        n_val=8,
        n_test=16,
        steps=6,
        pretrain_steps=6,
        batch_size=8,
        width=0.25,
        eval_every=3,
        checkpoint_every=3,
        n_shape=20,
        n_expr=20,
        renderer_channels=8,
        bn_recalibrate=2,
    ),
    # the README's main command: pretraining, fine-tuning, baseline and evaluation;
    # 16.5 minutes on 2 CPU cores from a fresh clone (docs/default-run/)
    "default": {},
    # paper scale, for GPUs
    "full": dict(
        image_size=224,
        n_train=20000,
        n_val=500,
        n_test=1000,
        steps=60000,
        pretrain_steps=60000,
        batch_size=32,
        width=1.0,
        n_shape=300,
        n_expr=50,
        renderer_channels=32,
        eval_every=2000,
        checkpoint_every=1000,
    ),
}


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def add_config_arguments(parser: argparse.ArgumentParser, defaults: dict | None = None) -> None:
    """One ``--field`` flag per config field, typed from the annotations."""
    hints = typing.get_type_hints(TrainConfig)
    defaults = defaults or {}
    for f in dataclasses.fields(TrainConfig):
        kind = hints[f.name]
        flag = "--" + f.name.replace("_", "-")
        default = defaults.get(f.name, f.default)
        help_text = f"(default: {default})"
        if f.name == "preset":
            parser.add_argument(flag, choices=sorted(PRESETS), default=None, help=help_text)
        elif kind is bool:
            parser.add_argument(flag, type=_parse_bool, default=None, help=help_text)
        elif kind == tuple[str, ...]:
            parser.add_argument(
                flag,
                type=lambda s: tuple(x for x in s.split(",") if x),
                default=None,
                help="comma-separated " + help_text,
            )
        else:
            parser.add_argument(flag, type=kind, default=None, help=help_text)


def config_from_args(args: argparse.Namespace, base: dict | None = None) -> TrainConfig:
    """Defaults < ``base`` (the entry point's own defaults) < preset < explicit flags."""
    values = dataclasses.asdict(TrainConfig())
    values.update(base or {})
    preset = args.preset or values["preset"]
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    values.update(PRESETS[preset])
    values["preset"] = preset
    for f in dataclasses.fields(TrainConfig):
        given = getattr(args, f.name, None)
        if given is not None and f.name != "preset":
            values[f.name] = given
    return TrainConfig(**values).validate()


def parse_config(argv: Sequence[str] | None, base: dict | None = None, prog: str | None = None):
    """Parse a command line into a :class:`TrainConfig` (plus the parser's namespace)."""
    parser = argparse.ArgumentParser(prog=prog)
    add_config_arguments(parser, base)
    parser.add_argument("--resume", action="store_true", help="continue the run in out_dir/name")
    args = parser.parse_args(argv)
    try:
        return config_from_args(args, base), args
    except ValueError as exc:
        parser.error(str(exc))
