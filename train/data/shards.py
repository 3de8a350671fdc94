"""Samples on disk: safetensors shards, written atomically, read without running code."""

from __future__ import annotations

import os

import torch
from safetensors.torch import load_file, save_file

from _common.atomic import atomic_path


def save_shards(
    samples: dict[str, torch.Tensor],
    out_dir: str,
    prefix: str,
    metadata: dict,
    shard_size: int = 1000,
) -> list[str]:
    """Write samples to ``<out_dir>/<prefix>-NNNNN.safetensors`` (atomic per shard)."""
    os.makedirs(out_dir, exist_ok=True)
    n = len(samples["image"])
    paths = []
    for k, start in enumerate(range(0, n, shard_size)):
        shard = {key: v[start : start + shard_size].contiguous() for key, v in samples.items()}
        path = os.path.join(out_dir, f"{prefix}-{k:05d}.safetensors")
        with atomic_path(path) as tmp:
            save_file(shard, tmp, metadata={k2: str(v2) for k2, v2 in metadata.items()})
        paths.append(path)
    return paths


def load_shards(paths: list[str]) -> dict[str, torch.Tensor]:
    """Concatenate shards written by :func:`save_shards` (safetensors: no code runs)."""
    if not paths:
        raise ValueError("no shard paths given")
    parts = []
    for path in paths:
        if not os.path.exists(path):
            raise FileNotFoundError(f"shard not found: {path}")
        parts.append(load_file(path))
    keys = set(parts[0])
    for path, part in zip(paths, parts):
        if set(part) != keys:
            raise ValueError(f"shard {path} has keys {sorted(part)}, expected {sorted(keys)}")
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
