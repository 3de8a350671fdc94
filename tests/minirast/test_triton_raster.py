"""Triton rasterizer ops (``minirast._triton``) against float64 references.

Runs in the Triton interpreter on CPU (the root conftest sets ``TRITON_INTERPRET=1``
when there is no CUDA), so every size here is tiny. The references are written
independently of the kernels (:mod:`minirast.reference`): a per-pixel,
per-triangle edge-function rasterizer and a differentiable recomputation of
barycentrics and depth, both in float64.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from _common.backend import triton_available, triton_interpreted
from minirast.reference import EPS_W, recompute_bary_depth, reference_rasterize

pytestmark = pytest.mark.skipif(
    not triton_available() or (not torch.cuda.is_available() and not triton_interpreted()),
    reason="needs triton (CUDA, or TRITON_INTERPRET=1 on CPU)",
)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _raster():
    from minirast._triton import rasterize

    return rasterize


def _interp():
    from minirast._triton import interpolate

    return interpolate


# --------------------------------------------------------------------------- scenes


def make_scene(seed, batch, n_faces, *, n_bad_w=0, n_degenerate=0, shared=True):
    """Random well-shaped triangles (min angle bounded) at random depths and w.

    Returns float32 ``pos [B, V, 4]`` and int32 ``faces [F, 3]``. With ``shared``,
    some faces reuse two vertices of an earlier face (a fan), as meshes do.
    ``n_bad_w`` faces get a vertex with ``w <= EPS_W``; ``n_degenerate`` faces repeat
    a vertex index or are exactly collinear.
    """
    g = torch.Generator().manual_seed(seed)
    n_faces = max(n_faces, n_bad_w + n_degenerate)
    verts, faces = [], []
    for i in range(n_faces):
        if shared and i > 0 and torch.rand((), generator=g) < 0.3:
            a, b = faces[int(torch.randint(0, i, (), generator=g))][:2]
            ca = verts[a][0]
            cb = verts[b][0]
            # A third point on the far side of edge (a, b), well shaped.
            mx, my = (ca[0] + cb[0]) / 2, (ca[1] + cb[1]) / 2
            nx, ny = -(cb[1] - ca[1]), cb[0] - ca[0]
            s = 0.5 + torch.rand((), generator=g).item()
            verts.append(([mx + s * nx, my + s * ny], None))
            faces.append([a, b, len(verts) - 1])
            continue
        cx, cy = (torch.rand(2, generator=g) * 2.4 - 1.2).tolist()
        rad = 0.15 + 0.6 * torch.rand((), generator=g).item()
        base = torch.rand((), generator=g).item() * 2 * math.pi
        gaps = 0.7 + torch.rand(3, generator=g) * 0.7
        gaps = gaps / gaps.sum() * 2 * math.pi
        ang = [base, base + gaps[0].item(), base + gaps[0].item() + gaps[1].item()]
        if torch.rand((), generator=g) < 0.5:
            ang = ang[::-1]
        idx = []
        for a in ang:
            verts.append(([cx + rad * math.cos(a), cy + rad * math.sin(a)], None))
            idx.append(len(verts) - 1)
        faces.append(idx)
    V = len(verts)
    xy = torch.tensor([v[0] for v in verts], dtype=torch.float64).view(V, 2)  # NDC
    pos = torch.empty((batch, V, 4), dtype=torch.float64)
    for b in range(batch):
        w = 0.5 + 1.5 * torch.rand(V, generator=g, dtype=torch.float64)
        z = torch.rand(V, generator=g, dtype=torch.float64) * 2 - 0.5
        # Keep each face roughly planar in depth so different faces rarely tie.
        pos[b, :, 0] = xy[:, 0] * w
        pos[b, :, 1] = xy[:, 1] * w
        pos[b, :, 2] = z * w
        pos[b, :, 3] = w
    faces_t = torch.tensor(faces, dtype=torch.int32).view(-1, 3)
    for k in range(n_bad_w):
        f = faces_t[k]
        pos[:, int(f[k % 3]), 3] = [EPS_W, 0.0, -0.7][k % 3]
    for k in range(n_degenerate):
        fi = n_bad_w + k
        if k % 2 == 0:
            faces_t[fi, 2] = faces_t[fi, 1]
        else:
            v0, v1, v2 = (int(i) for i in faces_t[fi])
            pos[:, v0] = torch.tensor([0.0, 0.0, 0.5, 1.0], dtype=torch.float64)
            pos[:, v1] = torch.tensor([0.25, 0.25, 0.5, 1.0], dtype=torch.float64)
            pos[:, v2] = torch.tensor([0.5, 0.5, 0.5, 1.0], dtype=torch.float64)
    return pos.float().to(DEVICE), faces_t.to(DEVICE)


def assert_matches_reference(pos, faces, height, width, cull=0):
    tri, bary, depth = _raster().rasterize_forward(pos, faces, height, width, EPS_W, cull)
    assert tri.dtype == torch.int32 and bary.dtype == torch.float32 and depth.dtype == torch.float32
    assert tri.shape == (pos.shape[0], height, width) and bary.shape == (*tri.shape, 3)
    rt, rb, rd, amb = reference_rasterize(pos, faces, height, width, cull=cull)
    tri, bary, depth = tri.cpu().long(), bary.cpu().double(), depth.cpu().double()
    ok = ~amb
    bad = ok & (tri != rt)
    assert not bad.any(), f"{int(bad.sum())} pixels disagree on the triangle id"
    cov = ok & (rt >= 0)
    assert torch.allclose(bary[cov], rb[cov], atol=1e-5, rtol=0)
    assert torch.allclose(depth[cov], rd[cov], atol=1e-5, rtol=1e-6)
    bg = tri < 0
    assert (bary[bg] == 0).all() and (depth[bg] == 0).all()
    return tri, rt


# --------------------------------------------------------------------------- forward


@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(1, 2),
    n_faces=st.integers(0, 14),
    height=st.integers(8, 24),
    width=st.integers(8, 24),
    cull=st.sampled_from([0, 1, -1]),
    n_bad_w=st.integers(0, 2),
    n_degenerate=st.integers(0, 2),
)
def test_forward_matches_float64_reference(
    seed, batch, n_faces, height, width, cull, n_bad_w, n_degenerate
):
    pos, faces = make_scene(seed, batch, n_faces, n_bad_w=n_bad_w, n_degenerate=n_degenerate)
    assert_matches_reference(pos, faces, height, width, cull)


def test_empty_face_list_renders_background():
    pos = torch.rand(2, 5, 4, device=DEVICE) + 0.5
    faces = torch.zeros((0, 3), dtype=torch.int32, device=DEVICE)
    tri, bary, depth = _raster().rasterize_forward(
        pos, faces, 9, 13, EPS_W, 0, background_depth=7.5
    )
    assert (tri == -1).all() and (bary == 0).all() and (depth == 7.5).all()


def test_dropped_triangles_never_drawn():
    """w <= eps_w (at eps, zero, negative) and degenerate (repeated index, collinear)."""
    pos, faces = make_scene(3, 2, 5, n_bad_w=3, n_degenerate=2, shared=False)
    tri, _, _ = _raster().rasterize_forward(pos, faces, 16, 16, EPS_W, 0)
    assert not ((tri >= 0) & (tri < 5)).any()


def test_culling_signs():
    # One triangle with A > 0 (id 0) and one with A < 0 (id 1), side by side.
    pos = torch.tensor(
        [
            [-0.9, -0.5, 0.1, 1.0],
            [-0.1, -0.5, 0.1, 1.0],
            [-0.5, 0.5, 0.1, 1.0],
            [0.1, -0.5, 0.1, 1.0],
            [0.5, 0.5, 0.1, 1.0],
            [0.9, -0.5, 0.1, 1.0],
        ],
        device=DEVICE,
    )[None]
    faces = torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=torch.int32, device=DEVICE)
    ids = {}
    for cull in (0, 1, -1):
        tri, _, _ = _raster().rasterize_forward(pos, faces, 12, 16, EPS_W, cull)
        ids[cull] = set(tri.unique().tolist()) - {-1}
        assert_matches_reference(pos, faces, 12, 16, cull)
    assert ids == {0: {0, 1}, 1: {0}, -1: {1}}


def test_pixels_on_shared_edge_and_depth_ties_go_to_lower_id():
    """A square of two coplanar triangles whose corners and diagonal lie on pixel centres.

    Centres on the boundary are covered ("inside or on"); centres on the shared
    diagonal tie in depth and go to the lower id; a duplicate of triangle 1 with a
    higher id never shows.
    """
    H = W = 8  # centres at odd multiples of 1/8: exact in float32
    a, b = -5 / 8, 3 / 8  # centres of columns/rows 1 and 5
    for order in ((0, 1, 2), (2, 1, 0)):
        pos = torch.tensor(
            [[a, a, 0.5, 1.0], [b, a, 0.5, 1.0], [b, b, 0.5, 1.0], [a, b, 0.5, 1.0]],
            device=DEVICE,
        )[None]
        tris = [[0, 1, 2], [0, 2, 3], [0, 2, 3]]
        faces = torch.tensor([[t[i] for i in order] for t in tris], dtype=torch.int32)
        tri, bary, _ = _raster().rasterize_forward(pos, faces.to(DEVICE), H, W, EPS_W, 0)
        tri = tri[0].cpu()
        inside = torch.zeros(H, W, dtype=torch.bool)
        inside[1:6, 1:6] = True
        assert ((tri >= 0) == inside).all()
        rows, cols = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
        # triangle 0 holds the diagonal (r == c) and the part above it (r < c)
        assert (tri[inside & (rows <= cols)] == 0).all()
        assert (tri[inside & (rows > cols)] == 1).all()
        assert torch.allclose(bary.sum(-1)[0][inside.to(DEVICE)], torch.ones(1, device=DEVICE))


def test_watertight_grid_mesh_has_no_cracks():
    """A jittered grid mesh covering the whole screen: every pixel is drawn."""
    g = torch.Generator().manual_seed(0)
    n = 6
    lin = torch.linspace(-1.3, 1.3, n, dtype=torch.float64)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    jit = (torch.rand(2, n, n, generator=g, dtype=torch.float64) - 0.5) * 0.2
    jit[:, [0, -1], :] = 0
    jit[:, :, [0, -1]] = 0
    X, Y = (gx + jit[0]).reshape(-1), (gy + jit[1]).reshape(-1)
    w = 0.6 + torch.rand(n * n, generator=g, dtype=torch.float64)
    pos = torch.stack([X * w, Y * w, 0.3 * w, w], -1).float()[None].to(DEVICE)
    faces = []
    for r in range(n - 1):
        for c in range(n - 1):
            i = r * n + c
            faces += [[i, i + 1, i + n + 1], [i, i + n + 1, i + n]]
    faces = torch.tensor(faces, dtype=torch.int32, device=DEVICE)
    for H, W in ((17, 23), (24, 9)):
        tri, _, _ = _raster().rasterize_forward(pos, faces, H, W, EPS_W, 0)
        assert (tri >= 0).all()
        assert_matches_reference(pos, faces, H, W)


def test_forward_is_deterministic_and_tile_lists_ascend():
    pos, faces = make_scene(11, 2, 14)
    out1 = _raster().rasterize_forward(pos, faces, 19, 21, EPS_W, 0, return_bins=True)
    out2 = _raster().rasterize_forward(pos, faces, 19, 21, EPS_W, 0, return_bins=True)
    for x, y in zip(out1[:3], out2[:3], strict=True):
        assert torch.equal(x, y)
    bins = out1[3]
    # every tile list is in ascending triangle id order
    for k in range(bins.tile_start.numel()):
        s, c = int(bins.tile_start[k]), int(bins.tile_count[k])
        ids = bins.bin_tri[s : s + c]
        assert (ids[1:] > ids[:-1]).all()


# --------------------------------------------------------------------------- backward


def _bary_grad_reference(pos, faces, tri, gb, gd):
    pos64 = pos.detach().double().cpu().requires_grad_(True)
    H, W = tri.shape[1:]
    rb, rd = recompute_bary_depth(pos64, faces, tri, H, W)
    loss = (rb * gb.double().cpu()).sum()
    if gd is not None:
        loss = loss + (rd * gd.double().cpu()).sum()
    (grad,) = torch.autograd.grad(loss, pos64)
    return rb.detach(), grad


@given(
    seed=st.integers(0, 2**31 - 1),
    batch=st.integers(1, 2),
    n_faces=st.integers(1, 12),
    height=st.integers(8, 20),
    width=st.integers(8, 20),
    with_depth=st.booleans(),
)
def test_bary_backward_matches_autograd(seed, batch, n_faces, height, width, with_depth):
    pos, faces = make_scene(seed, batch, n_faces, n_bad_w=1 if n_faces > 3 else 0)
    tri, bary, _, bins = _raster().rasterize_forward(
        pos, faces, height, width, EPS_W, 0, return_bins=True
    )
    g = torch.Generator().manual_seed(seed)
    gb = torch.randn(batch, height, width, 3, generator=g).to(DEVICE)
    gd = torch.randn(batch, height, width, generator=g).to(DEVICE) if with_depth else None
    rb, ref = _bary_grad_reference(pos, faces, tri, gb, gd)
    assert torch.allclose(bary.cpu().double(), rb, atol=1e-5)
    scale = max(ref.abs().max().item(), 1e-3)
    for kwargs in ({"bins": bins}, {}, {"deterministic": False}):
        got = _raster().rasterize_backward(gb, gd, pos, faces, tri, bary, **kwargs)
        assert got.shape == pos.shape and got.dtype == torch.float32
        err = (got.cpu().double() - ref).abs().max().item()
        assert err <= 1e-4 * scale, (kwargs, err, scale)


def test_backward_is_bitwise_deterministic():
    """Bitwise the same gradients from the same inputs.

    On CPU (Triton's interpreter, as in CI) programs run one after another, so even
    float atomics repeat: this cannot catch an order-dependent race there, only
    uninitialised memory, unstable sorts or a reduction that changes with the data's
    layout. On a GPU (``python -m bench.gpu`` runs it) it checks the fixed-order sums.
    """
    pos, faces = make_scene(5, 2, 14)
    H, W = 18, 15
    tri, bary, _, bins = _raster().rasterize_forward(pos, faces, H, W, EPS_W, 0, return_bins=True)
    g = torch.Generator().manual_seed(1)
    gb = torch.randn(2, H, W, 3, generator=g).to(DEVICE)
    gd = torch.randn(2, H, W, generator=g).to(DEVICE)
    attr = torch.randn(2, pos.shape[1], 5, generator=g).to(DEVICE)
    go = torch.randn(2, H, W, 5, generator=g).to(DEVICE)
    for kwargs in ({"bins": bins}, {}):
        a = _raster().rasterize_backward(gb, gd, pos, faces, tri, bary, **kwargs)
        b = _raster().rasterize_backward(gb, gd, pos, faces, tri, bary, **kwargs)
        assert torch.equal(a, b)
        a = _interp().interpolate_backward(go, attr, faces, tri, bary, **kwargs)
        b = _interp().interpolate_backward(go, attr, faces, tri, bary, **kwargs)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# --------------------------------------------------------------------------- interpolation


def _interp_reference(attr64, faces, tri, bary64):
    B = attr64.shape[0]
    cov = (tri >= 0).cpu()
    f = faces.long().cpu()[tri.long().cpu().clamp(min=0)]  # [B,H,W,3]
    gathered = torch.stack([attr64[b][f[b]] for b in range(B)])  # [B,H,W,3,C]
    out = torch.einsum("bhwk,bhwkc->bhwc", bary64, gathered)
    return out * cov[..., None]


@pytest.mark.parametrize("seed,batch,channels", [(0, 1, 1), (1, 2, 3), (2, 2, 20)])
def test_interpolate_forward_and_backward(seed, batch, channels):
    H, W = 14, 17
    pos, faces = make_scene(seed, batch, 10)
    tri, bary, _, bins = _raster().rasterize_forward(pos, faces, H, W, EPS_W, 0, return_bins=True)
    g = torch.Generator().manual_seed(seed)
    V = pos.shape[1]
    attr = torch.randn(batch, V, channels, generator=g).to(DEVICE)
    go = torch.randn(batch, H, W, channels, generator=g).to(DEVICE)
    out = _interp().interpolate_forward(attr, faces, tri, bary)
    attr64 = attr.double().cpu().requires_grad_(True)
    bary64 = bary.double().cpu().requires_grad_(True)
    ref = _interp_reference(attr64, faces, tri, bary64)
    assert out.shape == ref.shape
    assert torch.allclose(out.cpu().double(), ref.detach(), atol=1e-5)
    ga_ref, gb_ref = torch.autograd.grad((ref * go.double().cpu()).sum(), (attr64, bary64))
    gb_ref = gb_ref * (tri >= 0).cpu()[..., None]
    for kwargs in ({"bins": bins}, {}, {"deterministic": False}):
        ga, gbar = _interp().interpolate_backward(go, attr, faces, tri, bary, **kwargs)
        assert ga.shape == attr.shape and gbar.shape == bary.shape
        assert torch.allclose(ga.cpu().double(), ga_ref, atol=1e-4), kwargs
        assert torch.allclose(gbar.cpu().double(), gb_ref, atol=1e-4), kwargs


def test_empty_inputs_give_zero_gradients():
    pos = torch.rand(2, 4, 4, device=DEVICE) + 0.5
    faces = torch.zeros((0, 3), dtype=torch.int32, device=DEVICE)
    tri, bary, _ = _raster().rasterize_forward(pos, faces, 8, 8, EPS_W, 0)
    gb = torch.ones(2, 8, 8, 3, device=DEVICE)
    assert (_raster().rasterize_backward(gb, None, pos, faces, tri, bary) == 0).all()
    attr = torch.ones(2, 4, 2, device=DEVICE)
    assert (_interp().interpolate_forward(attr, faces, tri, bary) == 0).all()
    ga, gbar = _interp().interpolate_backward(
        torch.ones(2, 8, 8, 2, device=DEVICE), attr, faces, tri, bary
    )
    assert (ga == 0).all() and (gbar == 0).all()


def test_bins_of_another_shape_are_refused():
    pos, faces = make_scene(0, 1, 4)
    tri, bary, _, bins = _raster().rasterize_forward(pos, faces, 8, 8, EPS_W, 0, return_bins=True)
    tri2, bary2, _ = _raster().rasterize_forward(pos, faces, 9, 8, EPS_W, 0)
    gb = torch.zeros(1, 9, 8, 3, device=DEVICE)
    with pytest.raises(ValueError, match="bins were made for"):
        _raster().rasterize_backward(gb, None, pos, faces, tri2, bary2, bins=bins)


# --------------------------------------------------------------------------- codegen


def test_every_kernel_compiles_for_sm90_and_sm80_without_spills():
    import importlib

    from bench.kernel_resources import module_resources
    from minirast import _triton

    rows = module_resources("minirast._triton")
    specs = _triton.codegen_specs()
    names = {spec["name"] for spec in specs}
    assert {(r.kernel, r.target) for r in rows} == {
        (n, t) for n in names for t in ("sm_90", "sm_80")
    }
    jitted = {
        name
        for module in _triton.KERNEL_MODULES
        for name, obj in vars(importlib.import_module(f"minirast._triton.{module}")).items()
        if type(obj).__name__ in ("JITFunction", "InterpretedFunction") and name.endswith("_kernel")
    }
    assert jitted == {spec["fn"].__name__ for spec in specs}
    for r in rows:
        assert r.local_bytes == 0 and r.stack_bytes == 0, r
        assert 0 < r.registers <= 128, r
