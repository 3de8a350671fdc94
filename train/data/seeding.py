"""Reproducible random streams: one generator per identity (a sample, a step)."""

from __future__ import annotations

import hashlib

import torch


def seeded(*parts) -> torch.Generator:
    """A generator seeded by a hash of ``parts`` (joined by "/"): every random draw of the
    project that must be reproducible from an identity (a sample, a step) uses one."""
    key = "/".join(str(p) for p in parts).encode()
    seed = int.from_bytes(hashlib.sha256(key).digest()[:8], "little") & (2**63 - 1)
    return torch.Generator().manual_seed(seed)
