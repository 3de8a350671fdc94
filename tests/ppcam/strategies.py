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


def rotation_from_degrees(angles: torch.Tensor) -> torch.Tensor:
    """Rotations ``R_z R_y R_x`` ``[B,3,3]`` float64 from angles ``[B,3]`` (x, y, z) in degrees."""
    ax, ay, az = torch.deg2rad(angles.double()).unbind(-1)
    one, zero = torch.ones_like(ax), torch.zeros_like(ax)

    def mat(rows):
        return torch.stack([torch.stack(r, -1) for r in rows], -2)

    rx = mat([[one, zero, zero], [zero, ax.cos(), -ax.sin()], [zero, ax.sin(), ax.cos()]])
    ry = mat([[ay.cos(), zero, ay.sin()], [zero, one, zero], [-ay.sin(), zero, ay.cos()]])
    rz = mat([[az.cos(), -az.sin(), zero], [az.sin(), az.cos(), zero], [zero, zero, one]])
    return rz @ ry @ rx


@st.composite
def drawn_camera_cases(draw, max_batch: int = 4, max_points: int = 40, rho_max: float = 5.0):
    """A head-like case drawn by hypothesis on small grids (a failure shrinks to readable
    numbers): points on a millimetre grid within 69 mm of the origin, S in [4, 10] by
    quarters, translations of whole millimetres (up to 3 cm), rho in [0, rho_max] by
    quarters (so w > 0.4 everywhere), a rotation from whole degrees or None.
    Returns float64 ``(points [B,N,3], scale [B], trans [B,2], rho [B], rotation)``."""
    batch = draw(st.integers(1, max_batch))
    n = draw(st.integers(1, max_points))
    mm = st.integers(-69, 69)
    points = draw(st.lists(st.tuples(mm, mm, mm), min_size=batch * n, max_size=batch * n))
    scale = draw(st.lists(st.integers(16, 40), min_size=batch, max_size=batch))
    trans = draw(
        st.lists(
            st.tuples(st.integers(-30, 30), st.integers(-30, 30)), min_size=batch, max_size=batch
        )
    )
    rho = draw(st.lists(st.integers(0, int(4 * rho_max)), min_size=batch, max_size=batch))
    degrees = st.tuples(st.integers(-180, 180), st.integers(-180, 180), st.integers(-180, 180))
    angles = draw(st.none() | st.lists(degrees, min_size=batch, max_size=batch))
    f64 = torch.float64
    return (
        torch.tensor(points, dtype=f64).reshape(batch, n, 3) / 1000,
        torch.tensor(scale, dtype=f64) / 4,
        torch.tensor(trans, dtype=f64).reshape(batch, 2) / 1000,
        torch.tensor(rho, dtype=f64) / 4,
        None if angles is None else rotation_from_degrees(torch.tensor(angles, dtype=f64)),
    )
