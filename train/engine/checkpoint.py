"""Atomic safetensors checkpoints: model and optimizer tensors, config and progress.

A checkpoint is one ``.safetensors`` file; its metadata holds the run config
(JSON), the step and the optimizer's non-tensor state. Writing goes to a
temporary file that is renamed into place, so a crash never leaves a torn
checkpoint. Loading runs no code from the file (safetensors, not pickle).
"""

from __future__ import annotations

import json
import os

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from _common.atomic import atomic_path


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, pstate in state["state"].items():
        for key, value in pstate.items():
            name = f"optim.{pid}.{key}"
            if isinstance(value, torch.Tensor):
                tensors[name] = value.detach().clone().contiguous()
            else:
                scalars[name] = value
    groups = [{k: v for k, v in g.items() if k != "params"} for g in state["param_groups"]]
    scalars["param_groups"] = groups
    return tensors, scalars


def save_checkpoint(
    path: str,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    config: dict,
    step: int,
    extra: dict | None = None,
    extra_tensors: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write ``model`` (and ``optimizer``) state with ``config`` and ``step`` atomically;
    ``extra_tensors`` (e.g. the weight average, names not starting with ``model.`` or
    ``optim.``) are stored beside them."""
    tensors = {f"model.{k}": v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    for name in extra_tensors or {}:
        if name.startswith(("model.", "optim.")):
            raise ValueError(f"extra tensor name {name!r} collides with the model or optimizer")
    tensors.update(extra_tensors or {})
    meta = {"config": json.dumps(config), "step": str(step), "extra": json.dumps(extra or {})}
    if optimizer is not None:
        opt_tensors, opt_scalars = _optimizer_tensors(optimizer)
        tensors.update(opt_tensors)
        meta["optimizer"] = json.dumps(opt_scalars)
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=meta)


def _open(path: str, with_tensors: bool) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors (if ``with_tensors``) and the decoded metadata of a checkpoint."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()} if with_tensors else {}
    except Exception as exc:
        raise ValueError(f"{path} is not a readable safetensors checkpoint: {exc}") from exc
    if "config" not in meta or "step" not in meta:
        raise ValueError(f"{path} is not a minirast training checkpoint (no config/step metadata)")
    info = {
        "config": json.loads(meta["config"]),
        "step": int(meta["step"]),
        "extra": json.loads(meta.get("extra", "{}")),
        "optimizer": json.loads(meta["optimizer"]) if "optimizer" in meta else None,
    }
    return tensors, info


def read_checkpoint(path: str) -> tuple[dict[str, torch.Tensor], dict]:
    """All tensors and the decoded metadata (config, step, optimizer, extra)."""
    return _open(path, with_tensors=True)


def read_info(path: str) -> dict:
    """A checkpoint's decoded metadata (``config``, ``step``, ``optimizer``, ``extra``),
    without its tensors (``extra["imported_from"]`` marks a converted model,
    train.import_smirk)."""
    return _open(path, with_tensors=False)[1]


def load_model_state(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"checkpoint does not match the model: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}"
        )


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict
) -> None:
    scalars = info["optimizer"]
    if scalars is None:
        raise ValueError("checkpoint holds no optimizer state")
    state: dict[int, dict] = {}
    for name, value in list(tensors.items()) + list(scalars.items()):
        if not name.startswith("optim."):
            continue
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = value
    current = optimizer.state_dict()
    groups = []
    for group, saved in zip(current["param_groups"], scalars["param_groups"]):
        groups.append({**saved, "params": group["params"]})
    optimizer.load_state_dict({"state": state, "param_groups": groups})
