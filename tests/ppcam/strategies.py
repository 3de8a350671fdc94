"""Hypothesis strategies and builders for camera tests."""

from __future__ import annotations

import torch
from hypothesis import strategies as st


def random_rotation(batch: int, generator: torch.Generator, dtype=torch.float64) -> torch.Tensor:
    """Uniformly random proper rotations ``[B,3,3]`` (QR of a Gaussian, det fixed to +1)."""
    a = torch.randn(batch, 3, 3, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    det = torch.linalg.det(q)
    q[:, :, 0] *= det[:, None]
    return q.to(dtype)


def camera_case(
    batch: int,
    n: int,
    seed: int,
    *,
    dtype=torch.float64,
    rho_max: float = 5.0,
    with_rotation: bool = True,
):
    """A head-like random case: points within 0.12 m of the origin, S in [4, 10],
    translations of a few cm, rho in [0, rho_max] (so w > 0.4 everywhere)."""
    g = torch.Generator().manual_seed(seed)
    points = (torch.rand(batch, n, 3, generator=g, dtype=torch.float64) * 2 - 1) * 0.12 / 3**0.5
    scale = 4 + 6 * torch.rand(batch, generator=g, dtype=torch.float64)
    trans = (torch.rand(batch, 2, generator=g, dtype=torch.float64) * 2 - 1) * 0.03
    rho = rho_max * torch.rand(batch, generator=g, dtype=torch.float64)
    rotation = random_rotation(batch, g) if with_rotation else None
    cast = lambda t: None if t is None else t.to(dtype)  # noqa: E731
    return tuple(cast(t) for t in (points, scale, trans, rho, rotation))


seeds = st.integers(min_value=0, max_value=2**31 - 1)
batches = st.integers(min_value=1, max_value=4)
counts = st.integers(min_value=1, max_value=40)
