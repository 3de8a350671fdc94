"""Properties of rasterize/interpolate that hold for any input (hypothesis)."""

from __future__ import annotations

import math

import torch
from hypothesis import assume, example, given
from hypothesis import strategies as st

import minirast
from tests.minirast.scenes import RECIPROCAL_SLIVER_NDC, RECIPROCAL_SLIVER_W
from tests.minirast.strategies import grid_points, vertex_depths, vertex_ws

seeds = st.integers(min_value=0, max_value=2**31 - 1)


def _clip(ndc: torch.Tensor, z: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return torch.cat([ndc * w[:, None], (z * w)[:, None], w[:, None]], 1).float()


def _area(ndc: torch.Tensor) -> float:
    """Unsigned area of the triangle with corners ``ndc [3,2]``."""
    e1, e2 = ndc[1] - ndc[0], ndc[2] - ndc[0]
    return abs(float(e1[0] * e2[1] - e1[1] * e2[0])) / 2


@given(ndc=grid_points(3), w=vertex_ws, size=st.sampled_from([(32, 32), (24, 40), (50, 30)]))
def test_coverage_of_one_triangle_matches_its_area(ndc, w, size):
    H, W = size
    pos = _clip(ndc, torch.zeros(3, dtype=torch.float64), w)
    frag = minirast.rasterize(pos, torch.tensor([[0, 1, 2]]), (H, W))
    pixels = ndc.clone()
    pixels[:, 0] *= W / 2
    pixels[:, 1] *= H / 2
    area_px = _area(pixels)
    # One pixel row (or column) per edge: the edge's extent in pixels plus one.
    d = pixels[[1, 2, 0]] - pixels
    slack = float((d.abs().amax(1) + 1).sum())
    count = int(frag.mask.sum())
    assert abs(count - area_px) <= slack, (count, area_px, slack)


_faces_on_grid = st.tuples(grid_points(3, -17, 17), vertex_depths, vertex_ws)


@given(tris=st.lists(_faces_on_grid, min_size=1, max_size=6))
@example(tris=[(RECIPROCAL_SLIVER_NDC, torch.zeros(3, dtype=torch.float64), RECIPROCAL_SLIVER_W)])
def test_barycentrics_sum_to_one_and_reproduce_the_pixel_centre(tris):
    H, W = 24, 28
    num_faces = len(tris)
    pos = torch.cat([_clip(ndc, z, w) for ndc, z, w in tris])
    faces = torch.arange(3 * num_faces).reshape(-1, 3)
    frag = minirast.rasterize(pos, faces, (H, W))
    mask = frag.mask[0]
    assume(bool(mask.any()))
    b = frag.bary[0][mask].double()
    torch.testing.assert_close(
        b.sum(-1), torch.ones(len(b), dtype=torch.float64), atol=1e-5, rtol=0
    )
    # The clip-space point sum_i b_i P_i projects to the pixel centre.
    p = pos.double()[faces[frag.tri_id[0][mask].long()]]  # [N,3,4]
    point = (b[..., None] * p).sum(1)
    rows, cols = torch.nonzero(mask, as_tuple=True)
    centre = torch.stack([(2 * cols + 1) / W - 1, (2 * rows + 1) / H - 1], -1).double()
    torch.testing.assert_close(point[:, :2] / point[:, 3:], centre, atol=2e-5, rtol=0)


@given(
    tris=st.tuples(grid_points(3, -16, 16), grid_points(3, -16, 16)),
    depths=st.lists(st.integers(0, 8), min_size=2, max_size=2, unique=True),
    swap=st.booleans(),
)
def test_nearer_triangle_wins(tris, depths, swap):
    H, W = 20, 20
    z_near, z_far = sorted(d / 8 for d in depths)
    assume(z_far - z_near > 1e-3)
    zs = [z_near, z_far] if not swap else [z_far, z_near]
    w = torch.ones(3, dtype=torch.float64)
    pos = torch.cat(
        [_clip(t, torch.full((3,), z, dtype=torch.float64), w) for t, z in zip(tris, zs)]
    )
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]])
    both = minirast.rasterize(pos, faces, (H, W)).tri_id[0]
    alone = [minirast.rasterize(pos, faces[i : i + 1], (H, W)).tri_id[0] >= 0 for i in (0, 1)]
    overlap = alone[0] & alone[1]
    nearer = 1 if swap else 0
    assert bool((both[overlap] == nearer).all())
    assert bool((both[alone[0] & ~alone[1]] == 0).all())
    assert bool((both[alone[1] & ~alone[0]] == 1).all())


def test_exact_depth_tie_goes_to_the_lower_id():
    ndc = torch.tensor([[-0.9, -0.9], [0.9, -0.9], [0.0, 0.9]], dtype=torch.float64)
    one = _clip(ndc, torch.full((3,), 0.5, dtype=torch.float64), torch.ones(3, dtype=torch.float64))
    pos = torch.cat([one, one])
    for faces, winner in (([[0, 1, 2], [3, 4, 5]], 0), ([[3, 5, 4], [0, 2, 1]], 0)):
        tri = minirast.rasterize(pos, torch.tensor(faces), (16, 16)).tri_id
        assert set(tri.unique().tolist()) == {-1, winner}


_F_SHIFTED = 6
_shifted_vertex = st.tuples(st.integers(-96, 96), st.integers(-96, 96), st.integers(0, 16))


@given(
    verts=st.integers(1, 2).flatmap(
        lambda batch: st.lists(
            _shifted_vertex, min_size=batch * 3 * _F_SHIFTED, max_size=batch * 3 * _F_SHIFTED
        )
    ),
    shift=st.tuples(st.integers(-6, 6), st.integers(-6, 6)),
)
def test_translation_by_whole_pixels_translates_the_image(verts, shift):
    """Vertices on a 1/8-pixel grid and w = 1 make every shifted edge function bit-exact."""
    H, W = 32, 32
    dr, dc = shift
    F = _F_SHIFTED
    batch = len(verts) // (3 * F)
    ints = torch.tensor(verts, dtype=torch.float32).reshape(batch, 3 * F, 3)  # x, y, z
    grid = ints[..., :2] / (4 * W)
    z = ints[..., 2:] / 16
    pos = torch.cat([grid, z, torch.ones(batch, 3 * F, 1)], -1)
    faces = torch.arange(3 * F).reshape(-1, 3)
    moved = pos.clone()
    moved[..., 0] += 2 * dc / W
    moved[..., 1] += 2 * dr / H
    a = minirast.rasterize(pos, faces, (H, W))
    b = minirast.rasterize(moved, faces, (H, W))
    rs = slice(max(dr, 0), H + min(dr, 0))
    cs = slice(max(dc, 0), W + min(dc, 0))
    r0 = slice(max(-dr, 0), H + min(-dr, 0))
    c0 = slice(max(-dc, 0), W + min(-dc, 0))
    assert torch.equal(b.tri_id[:, rs, cs], a.tri_id[:, r0, c0])
    torch.testing.assert_close(b.bary[:, rs, cs], a.bary[:, r0, c0], atol=1e-6, rtol=0)
    torch.testing.assert_close(b.depth[:, rs, cs], a.depth[:, r0, c0], atol=1e-6, rtol=0)


@given(seed=seeds, rho=st.floats(0.0, 4.0), scale=st.floats(0.5, 3.0))
def test_perspective_correct_interpolation_of_a_linear_attribute_is_exact(seed, rho, scale):
    """Interpolating camera-frame positions (and any linear function of them) gives the
    surface point seen through the pixel centre, under a strong perspective."""
    H, W = 24, 24
    g = torch.Generator().manual_seed(seed)
    verts = (torch.rand(4, 3, generator=g, dtype=torch.float64) * 2 - 1) * 0.2
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    w = 1 + rho * verts[:, 2]
    clip = torch.stack([scale * verts[:, 0], scale * verts[:, 1], verts[:, 2], w], -1)
    coeff = torch.randn(3, generator=g, dtype=torch.float64)
    linear = verts @ coeff + 0.25
    attr = torch.cat([verts, linear[:, None]], 1)
    frag = minirast.rasterize(clip.float(), faces, (H, W))
    out = minirast.interpolate(attr.float(), frag, faces)[0].double()
    mask = frag.mask[0]
    assume(int(mask.sum()) > 0)
    p = out[mask][:, :3]
    rows, cols = torch.nonzero(mask, as_tuple=True)
    centre = torch.stack([(2 * cols + 1) / W - 1, (2 * rows + 1) / H - 1], -1).double()
    w_p = 1 + rho * p[:, 2]
    projected = scale * p[:, :2] / w_p[:, None]
    assert math.isfinite(float(projected.abs().max()))
    torch.testing.assert_close(projected, centre, atol=5e-5, rtol=0)
    torch.testing.assert_close(out[mask][:, 3], p @ coeff + 0.25, atol=1e-5, rtol=0)
