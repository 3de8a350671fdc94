"""The runs of an evaluation: their roles in the report (from their saved configs),
their checkpoints, and the held-out data they are compared on."""

from __future__ import annotations

import dataclasses
import os
import warnings

import torch

from train.data.batches import Samples, concat_regimes
from train.data.cache import load_data
from train.data.sources import REGIMES
from train.engine.checkpoint import read_info
from train.engine.config import ABLATIONS, TrainConfig
from train.engine.system import TrainingSystem, load_system

#: roles in report order, with their titles
ROLE_TITLES = {
    "ortho-pretrained": "orthographic pretrained (p)",
    "ortho-retrained": "orthographic retrained (r)",
    "rho": "rho model (the paper)",
    "perspective": "full perspective (sec. 6.2)",
    "rho-no-prior": "ablation: no rho prior",
    "rho-smirk-masking": "ablation: SMIRK masking",
    "rho-paper-init": "ablation: paper rho init",
}
#: config fields that decide the test data: runs compared must agree on them
DATA_FIELDS = ("flame", "image_size", "seed", "n_shape", "n_expr", "n_test")
#: the data fields that matter for an imported model (train.import_smirk), which was
#: trained on no data of ours: it is evaluated on the other runs' test split
IMPORTED_DATA_FIELDS = ("flame", "image_size", "n_shape", "n_expr")
#: the role the other runs are compared against
BASELINE = "ortho-retrained"


def run_role(cfg: TrainConfig) -> str:
    """The role of a run in the report, from its config (see the module docstring)."""
    if cfg.model.camera == "ortho":
        return "ortho-retrained" if set(cfg.data.regimes) == set(REGIMES) else "ortho-pretrained"
    if cfg.model.camera == "perspective":
        return "perspective"
    changed = [
        role
        for role, fields in ABLATIONS.items()
        if all(cfg.get(k) == v for k, v in fields.items())
    ]
    if len(changed) > 1:
        return "rho-" + "+".join(c.removeprefix("rho-") for c in changed)
    return changed[0] if changed else "rho"


@dataclasses.dataclass
class EvalRun:
    """A trained run loaded for evaluation."""

    label: str
    role: str
    dir: str
    checkpoint: str
    cfg: TrainConfig
    system: TrainingSystem
    imported: bool = False  # converted from another project (train.import_smirk)


def find_checkpoint(run_dir: str) -> str:
    """``final.safetensors`` of a run directory (``last`` with a warning if unfinished),
    or ``run_dir`` itself when it is a checkpoint file (e.g. from train.import_smirk)."""
    if os.path.isfile(run_dir) and run_dir.endswith(".safetensors"):
        return run_dir
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"{run_dir}: not a run directory or a .safetensors checkpoint")
    for name in ("final.safetensors", "last.safetensors"):
        path = os.path.join(run_dir, name)
        if os.path.exists(path):
            if name != "final.safetensors":
                warnings.warn(f"{run_dir}: training unfinished, evaluating {name}", stacklevel=2)
            return path
    raise FileNotFoundError(
        f"{run_dir}: no final.safetensors or last.safetensors (train it with "
        "python -m train.finetune / train.pretrain first)"
    )


def check_same_data(runs: list[tuple[str, TrainConfig]], imported: set[str] = frozenset()) -> None:
    """Raise ``ValueError`` unless every ``(dir, config)`` shares the test data; the
    runs named in ``imported`` need only agree on :data:`IMPORTED_DATA_FIELDS`."""
    trained = [r for r in runs if r[0] not in imported] or runs[:1]
    ref_dir, ref = trained[0]
    for run_dir, cfg in runs:
        fields = IMPORTED_DATA_FIELDS if run_dir in imported else DATA_FIELDS
        diff = {f: (ref.get(f), cfg.get(f)) for f in fields}
        diff = {f: v for f, v in diff.items() if v[0] != v[1]}
        if diff:
            raise ValueError(
                f"{run_dir} and {ref_dir} were trained on different data and cannot be "
                f"compared on one test set: {diff}"
            )


def load_runs(run_dirs: list[str], device: torch.device) -> list[EvalRun]:
    """The runs in report order (by role), with unique labels; they must share test data."""
    runs = []
    for run_dir in run_dirs:
        path = find_checkpoint(run_dir)
        system = load_system(path, device)
        imported = "imported_from" in read_info(path)["extra"]
        cfg = system.cfg
        runs.append(EvalRun("", run_role(cfg), run_dir, path, cfg, system, imported))
    if not runs:
        raise ValueError("no runs given")
    check_same_data([(r.dir, r.cfg) for r in runs], {r.dir for r in runs if r.imported})
    order = list(ROLE_TITLES)
    runs.sort(key=lambda r: (order.index(r.role) if r.role in order else len(order), r.dir))
    for run in runs:
        same = [r for r in runs if r.role == run.role]
        name = os.path.basename(os.path.normpath(run.dir))
        run.label = run.role if len(same) == 1 else f"{run.role} [{name}]"
    return runs


def data_config(runs: list[EvalRun]) -> TrainConfig:
    """The config whose data fields made the test data: the first run trained here
    (an imported model's config holds no data of ours)."""
    return next((r for r in runs if not r.imported), runs[0]).cfg


def held_out_samples(runs: list[EvalRun], progress: bool = True) -> Samples:
    """The test split of every regime, plus the folder's held-out part if a run used one."""
    folder = next((r.cfg.data.folder for r in runs if r.cfg.data.folder), "")
    cfg = data_config(runs).replace(regimes=REGIMES, folder=folder)
    data = load_data(cfg.data, cfg.run.out_dir, splits=("test",), progress=progress)
    return concat_regimes(data, cfg.data.sources(), "test")


def title(role: str) -> str:
    """The report's title of a role (the role itself when it has none)."""
    return ROLE_TITLES.get(role, role)
