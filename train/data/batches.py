"""Samples as dicts of batched tensors, and the stateless order of training batches."""

from __future__ import annotations

import torch

from train.data.seeding import seeded

#: One split of data: ``{"image": [N,3,H,W] uint8, "landmarks": [N,68,2], ...}``.
Samples = dict[str, torch.Tensor]


def concat_regimes(data: dict, regimes, split: str) -> Samples:
    """The samples of ``split`` of every regime in ``regimes``, concatenated in order."""
    parts = [data[(r, split)] for r in regimes]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def batch_indices(n: int, batch: int, seed: int, step: int) -> torch.Tensor:
    """Indices of the global batch of ``step``: epoch-wise permutations, stateless."""
    per_epoch = max(1, n // batch)
    epoch, k = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=seeded(seed, "epoch", epoch))
    return perm[k * batch : (k + 1) * batch] if n >= batch else perm
