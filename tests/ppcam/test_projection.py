"""Properties of the projection: limits, exact pinhole equivalence, magnification."""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

import ppcam
from tests.ppcam.strategies import batches, camera_case, drawn_camera_cases, seeds


@given(case=drawn_camera_cases())
def test_rho_zero_is_exactly_orthographic(case):
    points, scale, trans, _, rotation = case
    rho = torch.zeros(points.shape[0], dtype=points.dtype)
    uv = ppcam.project(points, scale, trans, rho, rotation, backend="torch")
    assert torch.equal(uv, ppcam.ortho_project(points, scale, trans, rotation))


@given(case=drawn_camera_cases())
def test_positive_rho_equals_converted_pinhole(case):
    points, scale, trans, rho, rotation = case
    rho = rho + 0.05  # strictly positive
    focal, tz = ppcam.pseudo_to_pinhole(scale, rho)
    trans3 = torch.cat([trans, tz[:, None]], dim=1)
    uv_pseudo = ppcam.project(points, scale, trans, rho, rotation, backend="torch")
    uv_pinhole = ppcam.pinhole_project(points, focal, trans3, rotation)
    torch.testing.assert_close(uv_pseudo, uv_pinhole, rtol=1e-9, atol=1e-12)


@given(seed=seeds, batch=batches)
def test_pinhole_round_trip(seed, batch):
    g = torch.Generator().manual_seed(seed)
    scale = 0.5 + 10 * torch.rand(batch, generator=g, dtype=torch.float64)
    rho = 1e-3 + 10 * torch.rand(batch, generator=g, dtype=torch.float64)
    s2, r2 = ppcam.pinhole_to_pseudo(*ppcam.pseudo_to_pinhole(scale, rho))
    torch.testing.assert_close(s2, scale, rtol=1e-12, atol=0)
    torch.testing.assert_close(r2, rho, rtol=1e-12, atol=0)
    focal, tz = ppcam.pseudo_to_pinhole(scale, rho)
    f2, t2 = ppcam.pseudo_to_pinhole(*ppcam.pinhole_to_pseudo(focal, tz))
    torch.testing.assert_close(f2, focal, rtol=1e-12, atol=0)
    torch.testing.assert_close(t2, tz, rtol=1e-12, atol=0)


@given(
    x=st.floats(0.01, 0.1),
    y=st.floats(-0.1, 0.1),
    depth=st.floats(0.005, 0.1),
    # rho on a 0.01 grid: two draws one float step apart would give equal ratios
    rhos=st.lists(st.integers(1, 800), min_size=2, max_size=6, unique=True),
)
def test_nearer_points_are_magnified_monotonically_in_rho(x, y, depth, rhos):
    """A point in front of the origin (p_z < 0) lands farther from the projected
    origin than its orthographic image, and more so as rho grows."""
    rhos = [r / 100 for r in sorted(rhos)]
    b = len(rhos)
    points = torch.tensor([[[x, y, -depth], [0.0, 0.0, 0.0]]], dtype=torch.float64).expand(b, 2, 3)
    scale = torch.full((b,), 7.0, dtype=torch.float64)
    trans = torch.zeros(b, 2, dtype=torch.float64)
    rho = torch.tensor(rhos, dtype=torch.float64)
    uv = ppcam.project(points, scale, trans, rho, backend="torch")
    ortho = ppcam.ortho_project(points, scale, trans)
    radius = (uv[:, 0] - uv[:, 1]).norm(dim=-1)
    ortho_radius = (ortho[:, 0] - ortho[:, 1]).norm(dim=-1)
    ratio = radius / ortho_radius
    assert bool((ratio > 1).all())
    assert bool((ratio[1:] > ratio[:-1]).all())


def test_to_clip_divides_to_the_projection():
    points, scale, trans, rho, rotation = camera_case(3, 50, seed=7)
    clip = ppcam.to_clip(points, scale, trans, rho, rotation)
    assert clip.shape == (3, 50, 4)
    uv = ppcam.project(points, scale, trans, rho, rotation, backend="torch")
    torch.testing.assert_close(clip[..., :2] / clip[..., 3:], uv, rtol=1e-12, atol=1e-12)
    # depth z/w is monotonic in p_z for w > 0 (same rho, same batch element).
    p_z = clip[..., 2]
    depth = clip[..., 2] / clip[..., 3]
    order = torch.argsort(p_z[0])
    assert bool((depth[0, order][1:] >= depth[0, order][:-1]).all())


def test_flame_to_camera_is_the_documented_involution():
    q = torch.tensor([[1.0, 2.0, 3.0], [-0.5, 0.25, -1.0]])
    out = ppcam.flame_to_camera(q)
    assert torch.equal(out, torch.tensor([[1.0, -2.0, -3.0], [-0.5, -0.25, 1.0]]))
    assert torch.equal(ppcam.flame_to_camera(out), q)


def test_flame_nose_is_magnified_by_rho():
    """A FLAME-frame nose tip (largest z) maps to p_z < 0 and is magnified."""
    nose = torch.tensor([[[0.0, -0.02, 0.11], [0.0, 0.0, 0.0]]])
    cam = ppcam.flame_to_camera(nose)
    assert cam[0, 0, 2] < 0
    args = (torch.tensor([7.0]), torch.zeros(1, 2))
    near = ppcam.project(cam, *args, torch.tensor([4.0]), backend="torch")
    far = ppcam.project(cam, *args, torch.tensor([0.0]), backend="torch")
    assert near[0, 0, 1].abs() > far[0, 0, 1].abs()
