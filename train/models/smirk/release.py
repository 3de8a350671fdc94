"""SMIRK's released checkpoint: read it safely, load it strictly, convert it to ours.

SMIRK (Retsinas et al. 2024, github georgeretsi/smirk, code under MIT) saves one
flat ``torch.save`` dict whose keys start with ``smirk_encoder.`` or
``smirk_generator.`` (BatchNorm ``num_batches_tracked`` included). This module

- reads it with ``torch.load(weights_only=True)``: tensors and plain containers
  only, nothing in the file is executed; a file that needs more is refused;
- builds :class:`~train.models.smirk.networks.SmirkEncoder` and
  :class:`~train.models.smirk.networks.SmirkGenerator` at the sizes the tensors say
  and loads each strictly (:func:`load_smirk`);
- checks the FLAME model a converted checkpoint uses (:func:`smirk_flame`); the
  conversion to the project's training checkpoint is ``python -m train.import_smirk``
  (:func:`train.import_smirk.import_smirk`).

Conventions (ty sign, eyelids after skinning) are mapped by
:mod:`train.models.smirk.adapter` and ``flame.FLAME(eyelid_space=...)``;
docs/design.md section 6.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import warnings
import zipfile

import torch

import flame
from _common.atomic import atomic_path
from train.models.smirk.networks import SmirkEncoder, SmirkGenerator

ENCODER_PREFIX = "smirk_encoder."
GENERATOR_PREFIX = "smirk_generator."
#: keys whose shapes give the sizes of a SMIRK checkpoint's networks
SHAPE_KEY = "shape_encoder.shape_layers.0.weight"  # [n_shape, 960]
EXPRESSION_KEY = "expression_encoder.expression_layers.0.weight"  # [n_expr + 5, 960]
GENERATOR_KEY = "encoder1.enc1conv1.weight"  # [init_features, 6, 3, 3]


def read_smirk_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The flat tensor dict of a SMIRK checkpoint, read without running code.

    Accepts SMIRK's flat dict, or one nested under ``"state_dict"`` / ``"model"``.
    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the
    file for anything that is not such a dict of tensors (a truncated file, a
    pickled object, a checkpoint without SMIRK's keys).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"SMIRK checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{path}: refused: the file asks to unpickle more than tensors and plain "
            f"containers ({first}); only weights are read (torch.load weights_only=True), "
            "code in a checkpoint is never run. Re-save the state dict alone: "
            "torch.save(model.state_dict(), path)"
        ) from exc
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise ValueError(
            f"{path}: not a readable torch checkpoint (truncated or corrupt?): {exc}"
        ) from exc
    if isinstance(obj, dict):
        for nested in ("state_dict", "model"):
            if isinstance(obj.get(nested), dict):
                obj = obj[nested]
                break
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise ValueError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    state = {k: v for k, v in obj.items() if k.startswith((ENCODER_PREFIX, GENERATOR_PREFIX))}
    if not any(k.startswith(ENCODER_PREFIX) for k in state):
        sample = sorted(obj)[:5]
        raise ValueError(
            f"{path}: no key starts with {ENCODER_PREFIX!r}: not a SMIRK checkpoint "
            f"(first keys: {sample})"
        )
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{path}: entries that are not tensors: {bad[:5]}")
    return state


def split_smirk_state(
    state: dict[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(encoder state, generator state)`` with SMIRK's prefixes stripped."""
    parts = []
    for prefix in (ENCODER_PREFIX, GENERATOR_PREFIX):
        parts.append({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    return parts[0], parts[1]


def _sizes(encoder: dict, generator: dict, path: str) -> dict[str, int]:
    """n_shape, n_expr, the generator's first-level channels and residual blocks."""
    for key, part in ((SHAPE_KEY, encoder), (EXPRESSION_KEY, encoder)):
        if key not in part or part[key].dim() != 2:
            raise ValueError(f"{path}: missing or malformed {ENCODER_PREFIX}{key}")
    sizes = {
        "n_shape": int(encoder[SHAPE_KEY].shape[0]),
        "n_expr": int(encoder[EXPRESSION_KEY].shape[0]) - 5,
        "init_features": 0,
        "res_blocks": 0,
    }
    if sizes["n_expr"] < 1:
        raise ValueError(f"{path}: {EXPRESSION_KEY} has {sizes['n_expr'] + 5} rows, expected >= 6")
    if generator:
        if GENERATOR_KEY not in generator or generator[GENERATOR_KEY].dim() != 4:
            raise ValueError(f"{path}: missing or malformed {GENERATOR_PREFIX}{GENERATOR_KEY}")
        sizes["init_features"] = int(generator[GENERATOR_KEY].shape[0])
        blocks = {re.match(r"resnet_blocks\.(\d+)\.", k) for k in generator} - {None}
        sizes["res_blocks"] = len({m.group(1) for m in blocks})
    return sizes


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """``module.load_state_dict(state, strict=True)`` with an error that lists the
    missing and unexpected keys and the first shape difference."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        (k, list(state[k].shape), list(own[k].shape))
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        lines = [f"{what} does not match SMIRK's layout:"]
        if missing:
            lines.append(f"  missing {len(missing)} key(s): {missing[:8]}")
        if unexpected:
            lines.append(f"  unexpected {len(unexpected)} key(s): {unexpected[:8]}")
        if shapes:
            key, got, want = shapes[0]
            lines.append(f"  first shape difference: {key} is {got}, expected {want}")
        raise ValueError("\n".join(lines))
    module.load_state_dict(state, strict=True)


def load_smirk(path: str | os.PathLike) -> tuple[SmirkEncoder, SmirkGenerator | None]:
    """SMIRK's encoder and generator from its checkpoint, loaded strictly, in eval mode.

    ``encoder(images [B,3,224,224] in [0, 1])`` returns SMIRK's dict: ``pose_params
    [B,3]``, ``cam [B,3]``, ``shape_params [B,300]``, ``expression_params [B,50]``,
    ``eyelid_params [B,2]``, ``jaw_params [B,3]`` (sizes as the checkpoint's). The
    generator is None when the file holds no ``smirk_generator.`` keys.
    """
    path = os.fspath(path)
    enc_state, gen_state = split_smirk_state(read_smirk_state(path))
    sizes = _sizes(enc_state, gen_state, path)
    encoder = SmirkEncoder(n_shape=sizes["n_shape"], n_expr=sizes["n_expr"])
    load_strict(encoder, enc_state, f"{path}: the encoder")
    generator = None
    if gen_state:
        generator = SmirkGenerator(6, 3, sizes["init_features"], sizes["res_blocks"])
        load_strict(generator, gen_state, f"{path}: the generator")
        generator.eval()
    return encoder.eval(), generator


def save_smirk(
    path: str | os.PathLike, encoder: SmirkEncoder, generator: SmirkGenerator | None
) -> None:
    """Write ``encoder`` (and ``generator``) in SMIRK's checkpoint layout, atomically
    (a flat ``torch.save`` dict with SMIRK's prefixes, as SMIRK's trainer saves it)."""
    state = {ENCODER_PREFIX + k: v.detach().cpu() for k, v in encoder.state_dict().items()}
    if generator is not None:
        state.update(
            {GENERATOR_PREFIX + k: v.detach().cpu() for k, v in generator.state_dict().items()}
        )
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def smirk_flame(
    flame_path: str,
    landmarks: list[str] | None,
    eyelids: list[str] | None,
    n_shape: int,
    n_expr: int,
    write_to: str,
) -> str:
    """The FLAME model a converted checkpoint uses, checked for SMIRK's needs.

    ``flame_path`` is ``"bundled"``, a converted model (``.safetensors``/``.npz``), or
    FLAME 2020's ``generic_model.pkl`` with ``landmarks`` (DECA's
    ``landmark_embedding.npy``) and ``eyelids`` (SMIRK's ``l_eyelid.npy``,
    ``r_eyelid.npy``); a ``.pkl`` (or any model with ``landmarks``/``eyelids``
    given) is converted to ``write_to`` (``flame.convert``'s format, eyelids after
    skinning). Returns the path to put in the config (absolute, or ``"bundled"``).
    """
    needs_writing = flame_path.lower().endswith(".pkl") or landmarks or eyelids
    model = flame.load_model(
        flame_path,
        landmarks=tuple(landmarks) if landmarks else None,
        eyelids=tuple(eyelids) if eyelids else None,
    )
    if not model.has_landmarks:
        raise ValueError(
            f"{flame_path}: the FLAME model has no landmark embedding; pass --landmarks "
            "landmark_embedding.npy (DECA's, as SMIRK uses)"
        )
    if model.n_shape < n_shape or model.n_expr < n_expr:
        raise ValueError(
            f"{flame_path}: SMIRK predicts {n_shape} shape and {n_expr} expression "
            f"coefficients; the model holds {model.n_shape} and {model.n_expr}"
        )
    if flame_path != "bundled":  # the stand-in head's eyelids are its own: no warning
        _warn_about_eyelids(flame_path, model)
    if not needs_writing:
        return flame_path if flame_path == "bundled" else os.path.abspath(flame_path)
    flame.save_model(model, write_to)
    return os.path.abspath(write_to)


def _warn_about_eyelids(flame_path: str, model: flame.FlameModel) -> None:
    """Warn when a FLAME model cannot place SMIRK's eyelids as SMIRK does."""
    if not model.has_eyelids:
        warnings.warn(
            f"{flame_path}: no eyelid blendshapes (SMIRK's l_eyelid.npy / r_eyelid.npy, "
            "--eyelids): the predicted eyelids will not move the mesh",
            stacklevel=3,
        )
    elif model.metadata.get("eyelid_space", "rest") != "posed":
        warnings.warn(
            f"{flame_path}: its eyelids are added in the rest pose; SMIRK adds them after "
            "skinning (convert with flame.convert --eyelid-space posed)",
            stacklevel=3,
        )


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
