"""Gradients: interpolate (exactly linear in attr), positions at interior pixels,
antialias at silhouettes, vertex normals; float64 finite differences."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minirast
from tests.minirast.scenes import perspective_clip, random_scene

seeds = st.integers(min_value=0, max_value=2**31 - 1)


@given(seed=seeds, shared_attr=st.booleans(), channels=st.integers(1, 4))
def test_interpolate_is_linear_in_attr_like_an_einsum(seed, shared_attr, channels):
    pos, faces = random_scene(seed, 2, 10, shared=True)
    frag = minirast.rasterize(pos, faces, (20, 24))
    g = torch.Generator().manual_seed(seed)
    V = pos.shape[1]
    shape = (V, channels) if shared_attr else (2, V, channels)
    attr = torch.randn(shape, generator=g, dtype=torch.float64).requires_grad_(True)
    out = minirast.interpolate(attr, frag, faces)
    # Independent formula: gather the three vertices of the visible face, weight, sum.
    attr_b = attr.expand(2, V, channels) if shared_attr else attr
    if faces.shape[0] == 0:  # random_scene dropped every face as ill-shaped: all background
        expect = torch.zeros(out.shape, dtype=attr.dtype) + 0.0 * attr_b.sum()
    else:
        tri = frag.tri_id.long().clamp_min(0)
        corner = faces[tri]  # [B,H,W,3]
        gathered = torch.stack([attr_b[b][corner[b]] for b in range(2)])  # [B,H,W,3,C]
        bary = frag.bary.detach().double()
        expect = torch.einsum("bhwk,bhwkc->bhwc", bary, gathered)
        expect = expect * frag.mask[..., None]
    torch.testing.assert_close(out, expect, atol=1e-12, rtol=0)
    up = torch.randn(out.shape, generator=g, dtype=torch.float64)
    (grad,) = torch.autograd.grad((out * up).sum(), attr)
    (grad_expect,) = torch.autograd.grad((expect * up).sum(), attr)
    torch.testing.assert_close(grad, grad_expect, atol=1e-12, rtol=0)


def _interior_loss_and_fd(pos, faces, size, weights_seed, h=1e-6, max_coords=None):
    """Analytic and central-difference gradients of a random linear function of
    (bary, depth, interpolated attribute) over pixels well inside their triangles
    (at most ``max_coords`` coordinates differenced; the others keep the analytic value)."""
    g = torch.Generator().manual_seed(weights_seed)
    frag0 = minirast.rasterize(pos, faces, size, backend="torch")
    B, H, W = frag0.tri_id.shape
    interior = frag0.mask & (frag0.bary.detach().amin(-1) > 0.02)
    wb = torch.randn(B, H, W, 3, generator=g, dtype=torch.float64) * interior[..., None]
    wd = torch.randn(B, H, W, generator=g, dtype=torch.float64) * interior
    attr = torch.randn(pos.shape[1], 2, generator=g, dtype=torch.float64)
    wa = torch.randn(B, H, W, 2, generator=g, dtype=torch.float64) * interior[..., None]

    def loss(p):
        frag = minirast.rasterize(p, faces, size, backend="torch")
        assert torch.equal(frag.tri_id, frag0.tri_id), "a step changed the visible faces"
        img = minirast.interpolate(attr, frag, faces)
        return (frag.bary * wb).sum() + (frag.depth * wd).sum() + (img * wa).sum()

    p = pos.clone().requires_grad_(True)
    (analytic,) = torch.autograd.grad(loss(p), p)
    numeric = analytic.clone()
    flat = numeric.view(-1)
    coords = range(pos.numel())
    if max_coords is not None and pos.numel() > max_coords:
        # The largest analytic entries plus a random sample of the others (zeros included).
        top = analytic.abs().view(-1).argsort(descending=True)[: max_coords // 2]
        rest = torch.randperm(pos.numel(), generator=g)[: max_coords // 2]
        coords = torch.cat([top, rest]).unique().tolist()
    for i in coords:
        dp = torch.zeros_like(pos).view(-1)
        dp[i] = h
        dp = dp.view_as(pos)
        flat[i] = (loss(pos + dp) - loss(pos - dp)) / (2 * h)
    return analytic, numeric, interior


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_position_gradients_at_interior_pixels_match_finite_differences(seed):
    pos, faces = random_scene(seed, 1, 4, shared=False)
    analytic, numeric, interior = _interior_loss_and_fd(pos.double(), faces, (20, 22), seed)
    assert int(interior.sum()) > 10
    assert float(analytic.abs().max()) > 0
    torch.testing.assert_close(analytic, numeric, atol=1e-6, rtol=1e-5)


def test_position_gradients_through_a_perspective_mesh():
    verts, faces = minirast.icosphere(1, dtype=torch.float64)
    verts = verts * 0.3
    pos = perspective_clip(verts, scale=2.0, rho=1.5)[None]
    analytic, numeric, interior = _interior_loss_and_fd(pos, faces, (16, 16), 5, max_coords=40)
    assert int(interior.sum()) > 30
    torch.testing.assert_close(analytic, numeric, atol=1e-6, rtol=1e-5)


def _aa_image_sum(pos, faces, size, colors):
    frag = minirast.rasterize(pos, faces, size, backend="torch")
    img = minirast.interpolate(colors, frag, faces)
    return minirast.antialias(img, frag, pos, faces).sum(), frag.tri_id


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_antialias_gradient_at_a_silhouette_vertex_matches_finite_differences(seed):
    """A triangle over an empty background: the image sum after antialiasing is a smooth
    function of each vertex (between pixel-centre crossings), and its gradient comes
    from the silhouette blend. Steps are far smaller than a pixel."""
    g = torch.Generator().manual_seed(seed)
    size = (16, 18)
    base = torch.tensor([[-0.6, -0.5], [0.6, -0.4], [0.0, 0.6]], dtype=torch.float64)
    ndc = base + (torch.rand(3, 2, generator=g, dtype=torch.float64) * 2 - 1) * 0.25
    w = 0.8 + 0.6 * torch.rand(3, 1, generator=g, dtype=torch.float64)
    z = torch.rand(3, 1, generator=g, dtype=torch.float64)
    pos = torch.cat([ndc * w, z * w, w], 1)[None]
    faces = torch.tensor([[0, 1, 2]])
    colors = 0.5 + 0.5 * torch.rand(3, 3, generator=g, dtype=torch.float64)
    p = pos.clone().requires_grad_(True)
    total, tri0 = _aa_image_sum(p, faces, size, colors)
    (analytic,) = torch.autograd.grad(total, p)
    h = 1e-6
    for vertex in range(3):
        for coord in range(2):  # the screen-space position of the vertex
            dp = torch.zeros_like(pos)
            dp[0, vertex, coord] = h
            plus, tri_p = _aa_image_sum(pos + dp, faces, size, colors)
            minus, tri_m = _aa_image_sum(pos - dp, faces, size, colors)
            assert torch.equal(tri_p, tri0) and torch.equal(tri_m, tri0)
            numeric = float((plus - minus) / (2 * h))
            torch.testing.assert_close(
                float(analytic[0, vertex, coord]), numeric, atol=1e-5, rtol=1e-4
            )
    assert float(analytic[0, :, :2].abs().max()) > 1.0  # coverage really moves


def test_antialias_coverage_gradient_of_a_flat_triangle_tracks_its_area():
    """With colour 1 inside and 0 outside, d(image sum)/d(vertex) approximates the
    derivative of the triangle's area in pixels (sampling noise aside)."""
    size = (64, 64)
    ndc = torch.tensor([[-0.7, -0.6], [0.65, -0.5], [0.1, 0.7]], dtype=torch.float64)
    pos = torch.cat(
        [ndc, torch.zeros(3, 1, dtype=torch.float64), torch.ones(3, 1, dtype=torch.float64)], 1
    )
    p = pos.clone().requires_grad_(True)
    faces = torch.tensor([[0, 1, 2]])
    frag = minirast.rasterize(p, faces, size)
    img = minirast.antialias(frag.mask[..., None].double(), frag, p, faces)
    (grad,) = torch.autograd.grad(img.sum(), p)
    # Area in pixels = |cross| / 2 * (W/2) * (H/2); analytic derivative w.r.t. the NDC corners.
    q = ndc.clone().requires_grad_(True)
    e1, e2 = q[1] - q[0], q[2] - q[0]
    area = (e1[0] * e2[1] - e1[1] * e2[0]).abs() / 2 * (size[0] / 2) * (size[1] / 2)
    (expect,) = torch.autograd.grad(area, q)
    torch.testing.assert_close(grad[:, :2], expect, atol=0.05 * float(expect.abs().max()), rtol=0)


def test_vertex_normals_gradcheck_and_orientation():
    verts, faces = minirast.icosphere(1, dtype=torch.float64)
    n = minirast.vertex_normals(verts, faces)
    torch.testing.assert_close(n.norm(dim=-1), torch.ones(len(verts), dtype=torch.float64))
    assert float((n * verts).sum(-1).min()) > 0.95  # outward on a sphere
    v = (verts[:12] + 0.01 * torch.randn(12, 3, dtype=torch.float64)).requires_grad_(True)
    f = faces[(faces < 12).all(1)]
    assert torch.autograd.gradcheck(lambda x: minirast.vertex_normals(x, f), (v,))
    batched = minirast.vertex_normals(torch.stack([verts, 2 * verts]), faces)
    torch.testing.assert_close(batched[0], n)
    torch.testing.assert_close(batched[1], n)


def test_antialias_on_a_closed_mesh_blends_only_silhouettes_and_matches_fd():
    verts, faces = minirast.icosphere(2, dtype=torch.float64)
    pos = perspective_clip(verts * 0.5, scale=1.5, rho=0.8)[None]
    size = (24, 24)
    colors = 0.5 + 0.5 * verts.abs()
    p = pos.clone().requires_grad_(True)
    frag = minirast.rasterize(p, faces, size)
    img = minirast.interpolate(colors, frag, faces)
    out = minirast.antialias(img, frag, p, faces)
    changed = (out - img).abs().amax(-1)[0] > 0
    # Only pixels next to the background (the sphere's outline) change.
    bg = ~frag.mask[0]
    near_bg = torch.zeros_like(bg)
    near_bg[:, 1:] |= bg[:, :-1]
    near_bg[:, :-1] |= bg[:, 1:]
    near_bg[1:] |= bg[:-1]
    near_bg[:-1] |= bg[1:]
    assert bool(changed.any())
    assert bool((~changed | near_bg).all())
    (grad,) = torch.autograd.grad(out.sum(), p)
    vertex = int(grad[0, :, :2].norm(dim=-1).argmax())
    h = 1e-6
    for coord in range(2):
        dp = torch.zeros_like(pos)
        dp[0, vertex, coord] = h
        plus, tri_p = _aa_image_sum(pos + dp, faces, size, colors)
        minus, tri_m = _aa_image_sum(pos - dp, faces, size, colors)
        assert torch.equal(tri_p, frag.tri_id) and torch.equal(tri_m, frag.tri_id)
        numeric = float((plus - minus) / (2 * h))
        torch.testing.assert_close(float(grad[0, vertex, coord]), numeric, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("compiled", [False, True])
def test_barycentric_and_depth_backward_passes_gradcheck(compiled, monkeypatch):
    """The torch backend's analytic backward of barycentrics and depth (tri_id fixed)
    against float64 finite differences, eager and compiled."""
    from minirast._cpu import compiled as compiled_mod
    from minirast._cpu.attributes import fragment_attributes
    from minirast._cpu.rasterize import rasterize_ids

    if compiled and compiled_mod.cxx_compiler() is None:
        pytest.skip("no C++ compiler: the inductor cannot run")
    monkeypatch.setenv("MINIRAST_COMPILE", "1" if compiled else "0")
    pos, faces = random_scene(11, 2, 12, shared=True)
    pos = pos.double()
    tri_id = rasterize_ids(pos, faces, 9, 11, 1e-6, 0)
    assert int((tri_id >= 0).sum()) > 20

    def fn(p):
        bary, depth, covered = fragment_attributes(p, faces, tri_id)
        return bary, depth, *covered.bary

    leaf = pos.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(fn, (leaf,), eps=1e-7, atol=1e-6, rtol=1e-5)
