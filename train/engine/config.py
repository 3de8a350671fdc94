"""Typed run configuration in five sections, each received by the part that uses it:
``data`` (:class:`~train.data.data_config.DataConfig`, train.data), ``model``
(:class:`~train.models.model_config.ModelConfig`, the networks), ``loss``, ``schedule``
and ``run`` (this module, the training engine). Every field is a command-line flag
(``--field-name value``, grouped by section in ``--help``), chosen in bulk by a preset,
and saved with the run as ``config.json`` (sections as objects; files saved before the
sections existed, one flat object, still load)."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import math
import typing
from collections.abc import Sequence
from typing import Any

from train.data.data_config import DataConfig
from train.data.folder import read_rho_prior
from train.data.sources import FOLDER
from train.models.model_config import ModelConfig
from train.options import check_options, option

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
class RunConfig:
    """Where a run lives, what it is called, the device, and its bookkeeping."""

    name: str = option("finetune", "run name: the run's folder is <out-dir>/<name>")
    preset: str = option("default", "preset the run started from (see --preset)")
    out_dir: str = option("runs", "folder of the runs and their shared data cache (.data/)")
    replicate: int = option(
        0,
        "training replicate: 0 trains with --seed; k > 0 draws its own network init, "
        "batch order and per-step noise on the same data (train.finetune --seeds N)",
    )
    device: str = option("auto", "'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:K'")
    amp: bool = option(
        True,
        "bfloat16 autocast of the encoders and the neural renderer on CUDA (geometry, "
        "projection and rasterization stay float32); ignored on CPU",
    )
    eval_every: int = option(100, "validate every this many steps", unit="steps", positive=True)
    checkpoint_every: int = option(
        50, "save last.safetensors every this many steps", unit="steps", positive=True
    )
    max_bad_steps: int = option(
        5, "stop after this many consecutive steps with a non-finite loss", positive=True
    )

    def validate(self) -> RunConfig:
        """Raise ``ValueError`` naming the field when a value is out of range."""
        check_options(self)
        if self.replicate < 0:
            raise ValueError(f"replicate must be >= 0, got {self.replicate}")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"name must be a plain directory name, got {self.name!r}")
        return self


@dataclasses.dataclass
class ScheduleConfig:
    """How long and how fast a run trains, and what weights it delivers."""

    steps: int = option(360, "optimizer steps of this run", unit="steps", positive=True)
    pretrain_steps: int = option(
        360,
        "steps of the pretraining train.finetune trains first when it is absent",
        unit="steps",
        positive=True,
    )
    batch_size: int = option(32, "samples per step (over all ranks)", positive=True)
    lr: float = option(1e-3, "Adam learning rate (peak, after the warm-up)", positive=True)
    lr_schedule: str = option(
        "constant",
        "after the warm-up: 'constant', or 'cosine' decay to 0 at the last step",
        choices=LR_SCHEDULES,
    )
    warmup_steps: int = option(
        0, "linear learning-rate warm-up from lr / warmup_steps to lr", unit="steps"
    )
    grad_clip: float = option(5.0, "gradient norm clip", positive=True)
    camera_lr_scale: float = option(
        20.0,
        "learning-rate multiplier of the camera head (rho, or f and t_z): Adam moves a "
        "weight by about lr per step, and the rho head's sigmoid logit has several units "
        "to travel",
        positive=True,
    )
    ema_decay: float = option(
        0.99,
        "decay of the exponential moving average of the weights (train.engine.ema) that "
        "validation and final.safetensors use; 0 for none (last.safetensors keeps the raw "
        "weights)",
    )
    bn_recalibrate: int = option(
        20,
        "training batches over which the BatchNorm statistics of the delivered weights "
        "are recomputed after the last step; 0 keeps the running ones",
        unit="batches",
    )

    def validate(self) -> ScheduleConfig:
        """Raise ``ValueError`` naming the field when a value is out of range."""
        check_options(self)
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(
                f"warmup_steps must be >= 0 and below steps ({self.steps}), got {self.warmup_steps}"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.bn_recalibrate < 0:
            raise ValueError(f"bn_recalibrate must be >= 0, got {self.bn_recalibrate}")
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


@dataclasses.dataclass
class LossConfig:
    """The loss weights (SMIRK's published values, docs/design.md section 6) and the
    rho priors of the data sources (the paper: 4.0 for head-mounted footage, 0 elsewhere)."""

    w_landmarks: float = option(100.0, "weight of the 2D landmark loss")
    w_photometric: float = option(10.0, "weight of the photometric reconstruction loss")
    w_shape_reg: float = option(100.0 / 300.0, "weight of the shape regulariser")
    w_expr_reg: float = option(1e-3, "weight of the expression regulariser")
    w_jaw_reg: float = option(1e-2, "weight of the jaw-pose regulariser")
    w_cycle: float = option(1.0, "weight of the expression cycle loss")
    w_rho_prior: float = option(0.1, "weight of the per-source rho prior loss")
    rho_prior_hmc: float = option(4.0, "rho prior of the hmc regime", unit="1 / model unit")
    rho_prior_studio: float = option(0.0, "rho prior of the studio regime", unit="1 / model unit")
    rho_prior_wild: float = option(0.0, "rho prior of the wild regime", unit="1 / model unit")
    folder_rho_prior: float | None = option(
        None,
        "rho prior of the --folder images: 'none' reads the folder's rho_prior.json "
        "(no prior where it has none), a number >= 0 overrides it",
        unit="1 / model unit",
    )

    def validate(self) -> LossConfig:
        """Raise ``ValueError`` naming the field when a value is out of range."""
        check_options(self)
        for f in dataclasses.fields(self):
            if f.name.startswith("w_") and getattr(self, f.name) < 0:
                raise ValueError(f"loss weight {f.name} must be >= 0, got {getattr(self, f.name)}")
        if self.folder_rho_prior is not None and not self.folder_rho_prior >= 0:
            raise ValueError(f"folder_rho_prior must be >= 0 or none, got {self.folder_rho_prior}")
        return self


#: the sections in the order of config.json and --help, with their --help titles
SECTIONS = {
    "run": (RunConfig, "run: name, folders, device, bookkeeping"),
    "data": (DataConfig, "data: what is rendered and read (train.data)"),
    "model": (ModelConfig, "model: the networks and the camera (train.models)"),
    "loss": (LossConfig, "loss: weights and rho priors"),
    "schedule": (ScheduleConfig, "schedule: steps, learning rate, delivered weights"),
}


@functools.cache
def section_fields() -> dict[str, tuple[str, dataclasses.Field]]:
    """``{field name: (section, field)}`` of every field (names are unique across sections);
    computed once, shared by every caller: read it, do not change it."""
    return {
        f.name: (section, f)
        for section, (cls, _) in SECTIONS.items()
        for f in dataclasses.fields(cls)
    }


@dataclasses.dataclass
class TrainConfig:
    """One training run (pretraining or fine-tuning), in sections."""

    run: RunConfig = dataclasses.field(default_factory=RunConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)

    @classmethod
    def of(cls, **values: Any) -> TrainConfig:
        """A config from field names (``TrainConfig.of(image_size=32, camera="ortho")``),
        the rest default. Not validated."""
        return cls().replace(**values)

    def replace(self, **values: Any) -> TrainConfig:
        """A copy with the named fields (of any section) changed. Not validated."""
        where = section_fields()
        unknown = sorted(set(values) - set(where))
        if unknown:
            raise ValueError(f"unknown config fields {unknown}")
        changes: dict[str, dict] = {}
        for name, value in values.items():
            changes.setdefault(where[name][0], {})[name] = value
        return dataclasses.replace(
            self,
            **{s: dataclasses.replace(getattr(self, s), **v) for s, v in changes.items()},
        )

    def get(self, name: str) -> Any:
        """The value of field ``name``, whichever section holds it."""
        return getattr(getattr(self, section_fields()[name][0]), name)

    def flat(self) -> dict[str, Any]:
        """``{field name: value}`` over every section."""
        return {name: self.get(name) for name in section_fields()}

    def validate(self) -> TrainConfig:
        """Raise ``ValueError`` naming the field when a value is out of range."""
        for section in SECTIONS:
            getattr(self, section).validate()
        if self.model.arch == "smirk" and self.data.image_size % 16:
            raise ValueError(
                f"image_size must be a multiple of 16 for arch 'smirk' (its generator pools "
                f"four times), got {self.data.image_size}"
            )
        return self

    @property
    def train_seed(self) -> int:
        """Seed of the network init, batch order and per-step noise: ``seed`` for
        replicate 0 (runs trained before replicates existed are unchanged), else a hash
        of (seed, replicate)."""
        if self.run.replicate == 0:
            return self.data.seed
        key = f"{self.data.seed}/replicate/{self.run.replicate}".encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:4], "little")

    def rho_prior(self, regime: str) -> float:
        """The rho prior of a regime, or of the folder (NaN: the folder has none)."""
        if regime == FOLDER:
            if self.loss.folder_rho_prior is not None:
                return float(self.loss.folder_rho_prior)
            prior = read_rho_prior(self.data.folder) if self.data.folder else None
            return float("nan") if prior is None else float(prior)
        return float(getattr(self.loss, f"rho_prior_{regime}"))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Build from a saved dict: sections as objects, or one flat object (configs saved
        before the sections existed). Unknown keys are an error (a config from another
        version). A field the dict lacks (saved before the field existed) takes the value
        that reproduces how that run was trained: :data:`SAVED_BEFORE_FIELD`, else the
        default. A flat config's ``folder_rho_prior`` of -1 meant none."""
        if set(values) <= set(SECTIONS):
            flat = {k: v for section in values.values() for k, v in section.items()}
        else:
            flat = dict(values)
            if flat.get("folder_rho_prior") is not None and flat["folder_rho_prior"] < 0:
                flat["folder_rho_prior"] = None
        flat = {**SAVED_BEFORE_FIELD, **flat}
        unknown = sorted(set(flat) - set(section_fields()))
        if unknown:
            raise ValueError(f"unknown config fields {unknown}")
        if "regimes" in flat:
            flat["regimes"] = tuple(flat["regimes"])
        return cls.of(**flat).validate()


def config_diff(saved: TrainConfig, wanted: TrainConfig, ignore=()) -> dict[str, tuple]:
    """``{field: (saved value, wanted value)}`` for the fields that differ, except ``ignore``."""
    new = wanted.flat()
    return {k: (v, new[k]) for k, v in saved.flat().items() if v != new[k] and k not in ignore}


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


def _optional_float(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None


def _help(f: dataclasses.Field, default: Any, list_choices: bool) -> str:
    """A flag's help line: what it does, its unit, its choices (``list_choices``: when
    argparse does not show them) and its default."""
    meta = f.metadata
    text = meta["help"]
    if meta.get("unit"):
        text += f" [{meta['unit']}]"
    if list_choices and meta.get("choices"):
        text += f"; choices: {', '.join(meta['choices'])}"
    if isinstance(default, float):
        default = f"{default:g}"
    elif isinstance(default, tuple):
        default = ",".join(default)
    elif default is None:
        default = "none"
    elif isinstance(default, bool):
        default = "on" if default else "off"
    elif default == "":
        default = "''"
    return text.replace("%", "%%") + f" (default: {default})"


def add_config_arguments(parser: argparse.ArgumentParser, defaults: dict | None = None) -> None:
    """One ``--field-name`` flag per config field, in one ``--help`` group per section,
    typed from the annotations: booleans as ``--x/--no-x``, choices listed, tuples
    comma-separated, ``none`` for an optional number. ``defaults``: the command's own."""
    hints = {}
    for cls, _ in SECTIONS.values():
        hints.update(typing.get_type_hints(cls))
    defaults = defaults or {}
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="field values chosen in bulk, before the flags below: 'smoke' (a minute or two "
        "on 2 CPU cores), 'default' (the README's command), 'full' (paper scale, for GPUs) "
        "(default: default)",
    )
    for cls, title in SECTIONS.values():
        group = parser.add_argument_group(title)
        for f in dataclasses.fields(cls):
            if f.name == "preset":
                continue
            kind = hints[f.name]
            flag = "--" + f.name.replace("_", "-")
            default = defaults.get(f.name, f.default)
            help_text = _help(f, default, list_choices=kind == tuple[str, ...])
            if kind is bool:
                group.add_argument(
                    flag, action=argparse.BooleanOptionalAction, default=None, help=help_text
                )
            elif kind == tuple[str, ...]:
                group.add_argument(
                    flag,
                    type=lambda s: tuple(x for x in s.split(",") if x),
                    default=None,
                    metavar="A,B",
                    help=help_text,
                )
            elif kind == float | None:
                group.add_argument(
                    flag, type=_optional_float, default=None, metavar="X|none", help=help_text
                )
            elif f.metadata.get("choices"):
                group.add_argument(
                    flag, choices=f.metadata["choices"], default=None, help=help_text
                )
            else:
                metavar = {int: "N", float: "X", str: "TEXT"}[kind]
                group.add_argument(flag, type=kind, default=None, metavar=metavar, help=help_text)


def config_from_args(args: argparse.Namespace, base: dict | None = None) -> TrainConfig:
    """Defaults < ``base`` (the entry point's own defaults) < preset < explicit flags."""
    values = TrainConfig().flat()
    values.update(base or {})
    preset = args.preset or values["preset"]
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    values.update(PRESETS[preset])
    values["preset"] = preset
    for name in section_fields():
        given = getattr(args, name, None)
        if given is not None and name != "preset":
            values[name] = given
    return TrainConfig.of(**values).validate()


def parse_config(
    argv: Sequence[str] | None,
    base: dict | None = None,
    prog: str | None = None,
    description: str | None = None,
):
    """Parse a command line into a :class:`TrainConfig` (plus the parser's namespace)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_config_arguments(parser, base)
    parser.add_argument("--resume", action="store_true", help="continue the run in out_dir/name")
    args = parser.parse_args(argv)
    try:
        return config_from_args(args, base), args
    except ValueError as exc:
        parser.error(str(exc))
