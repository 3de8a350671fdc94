"""Stage 4 of the stand-in head: the random parts of the shape and expression bases.

Smooth random normal-displacement fields (Gaussian blobs of random weight over
the surface) that fill the bases after the named modes, and the ordering of a
basis by variance (RMS displacement), named modes and random fields together.
"""

from __future__ import annotations

import numpy as np

from .mesh import _Geometry


def _random_fields(g: _Geometry, n: int, seed: int, region: np.ndarray, width: float) -> np.ndarray:
    """n smooth random normal-displacement fields [V,3,n], unit RMS over ``region``."""
    rng = np.random.default_rng(seed)
    pool = np.nonzero(region > 0.5)[0]
    centres = g.v[rng.choice(pool, size=min(160, len(pool)), replace=False)]
    d2 = ((g.v[:, None, :] - centres[None]) ** 2).sum(-1)
    phi = np.exp(-d2 / (2 * width**2))
    coeff = rng.normal(size=(len(centres), n))
    s = (phi @ coeff) * region[:, None]  # [V, n]
    s -= (s * region[:, None]).sum(0) / region.sum() * region[:, None]
    fields = g.smooth_normals[:, :, None] * s[:, None, :]
    rms = np.sqrt((fields**2).sum(1).mean(0))
    return fields / rms


def _rms(d: np.ndarray) -> float:
    """RMS displacement of a field [V,3]: root of the mean squared vertex displacement."""
    return float(np.sqrt((d**2).sum(-1).mean()))


def _sorted_basis(
    named: dict[str, np.ndarray], random: np.ndarray, prefix: str
) -> tuple[np.ndarray, list[str]]:
    """The named fields and the random ones ([V,3,n], named ``prefix`` + index) as one
    basis [V,3,K], sorted by decreasing RMS (stable), and its mode names."""
    names = list(named) + [f"{prefix}{i}" for i in range(random.shape[2])]
    fields = [named[k] for k in named] + [random[:, :, i] for i in range(random.shape[2])]
    order = np.argsort([-_rms(f) for f in fields], kind="stable")
    return np.stack([fields[i] for i in order], axis=2), [names[i] for i in order]
