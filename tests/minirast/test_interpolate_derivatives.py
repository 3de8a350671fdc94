"""``interpolate(..., derivatives=True)``: the screen-space derivatives of the
interpolated attribute, against central differences of the analytic
perspective-correct interpolation at continuous positions
(:func:`minirast.reference.interpolate_at`, float64), ``gradcheck`` on the torch
path, an exact invariant (clip coordinates interpolate to the pixel's NDC position),
and the Triton backend (interpreter on CPU) against the torch backend."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minirast
from _common.backend import triton_available, triton_interpreted
from minirast.reference import interpolate_at, reference_rasterize
from tests.minirast.scenes import random_scene

seeds = st.integers(min_value=0, max_value=2**31 - 1)
needs_triton = pytest.mark.skipif(
    not triton_available() or (not torch.cuda.is_available() and not triton_interpreted()),
    reason="needs triton (CUDA, or TRITON_INTERPRET=1 on CPU)",
)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _attr_and_faces(seed, batch, num_faces, num_attr, channels, shared):
    """Random attributes with their own vertices and random attribute faces."""
    g = torch.Generator().manual_seed(seed + 1)
    shape = (num_attr, channels) if shared else (batch, num_attr, channels)
    attr = torch.randn(shape, generator=g, dtype=torch.float64)
    attr_faces = torch.randint(0, num_attr, (num_faces, 3), generator=g)
    return attr, attr_faces


@given(seed=seeds, shared=st.booleans(), size=st.sampled_from([(9, 13), (14, 10)]))
def test_derivatives_match_central_differences_of_the_formula(seed, shared, size):
    pos, faces = random_scene(seed % 10_000, 2, 8, shared=False)
    pos = pos.double()
    H, W = size
    attr, attr_faces = _attr_and_faces(seed, 2, faces.shape[0], 11, 3, shared)
    frag = minirast.rasterize(pos, faces, size, backend="torch")
    values, d = minirast.interpolate(attr, frag, attr_faces, derivatives=True)
    assert values.dtype == d.dtype == torch.float64 and d.shape == (2, H, W, 3, 2)
    assert not d[~frag.mask].any() and not values[~frag.mask].any()
    image, r, c = torch.nonzero(frag.mask, as_tuple=True)
    tri = frag.tri_id[frag.mask]
    px = (2 * c + 1).double() / W - 1  # float64 pixel centres, as the float64 backend
    py = (2 * r + 1).double() / H - 1

    def at(x, y):
        return interpolate_at(pos, faces, attr, attr_faces, image, tri, x, y)

    h = 1e-5
    dx = (at(px + h, py) - at(px - h, py)) / (2 * h) * (2 / W)  # one column = 2/W in NDC
    dy = (at(px, py + h) - at(px, py - h)) / (2 * h) * (2 / H)
    torch.testing.assert_close(values[frag.mask], at(px, py), atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(d[frag.mask][..., 0], dx, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(d[frag.mask][..., 1], dy, atol=1e-7, rtol=1e-6)
    plain = minirast.interpolate(attr, frag, attr_faces)
    assert torch.equal(plain, values)


def _clip_invariant(frag, dtype):
    """Perspective-correct interpolation of the clip (x, y, w) gives a point that projects
    onto the pixel: ``x/w`` grows by exactly 2/W per column and ``y/w`` by 2/H per row.
    Returns the derivatives of (x/w, y/w) along (column, row), ``[N, 2, 2]``."""
    v, d = minirast.interpolate(frag.pos_clip[..., [0, 1, 3]].to(dtype), frag, frag.faces,
                                derivatives=True)  # fmt: skip
    v, d = v[frag.mask], d[frag.mask]
    w, dw = v[:, 2:3], d[:, 2:3, :]  # [N,1], [N,1,2]
    return (d[:, :2, :] * w[..., None] - v[:, :2, None] * dw) / w[..., None] ** 2


@pytest.mark.parametrize("backend", ["torch", pytest.param("triton", marks=needs_triton)])
def test_clip_coordinates_interpolate_to_the_pixel_position(backend):
    pos, faces = random_scene(7, 2, 12, shared=False)
    dtype = torch.float64 if backend == "torch" else torch.float32
    device = "cpu" if backend == "torch" else DEVICE
    H, W = 11, 16
    frag = minirast.rasterize(pos.to(device, dtype), faces.to(device), (H, W), backend=backend)
    assert int(frag.mask.sum()) > 30
    got = _clip_invariant(frag, dtype).cpu().double()
    expect = torch.zeros_like(got)
    expect[:, 0, 0] = 2 / W
    expect[:, 1, 1] = 2 / H
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    torch.testing.assert_close(got, expect, atol=tol, rtol=0)


def test_gradcheck_values_and_derivatives_torch_path():
    pos, faces = random_scene(3, 2, 4, shared=False)
    pos = pos.double()
    attr, attr_faces = _attr_and_faces(3, 2, faces.shape[0], 7, 2, False)
    size = (5, 7)
    frag0 = minirast.rasterize(pos, faces, size, backend="torch")
    assert int(frag0.mask.sum()) >= 8

    def f(p, a):
        frag = minirast.rasterize(p, faces, size, backend="torch")
        assert torch.equal(frag.tri_id, frag0.tri_id), "a step changed the visible faces"
        return minirast.interpolate(a, frag, attr_faces, derivatives=True)

    inputs = (pos.clone().requires_grad_(True), attr.clone().requires_grad_(True))
    # fast_mode: random projections of the whole Jacobian (any wrong entry shows).
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)


# --------------------------------------------------------------------------- Triton


def _run(backend, pos, faces, attr, attr_faces, size, weights):
    p = pos.clone().to(DEVICE).requires_grad_(True)
    a = attr.clone().to(DEVICE).requires_grad_(True)
    frag = minirast.rasterize(p, faces.to(DEVICE), size, backend=backend)
    values, d = minirast.interpolate(a, frag, attr_faces.to(DEVICE), derivatives=True)
    wv, wd = (w.to(DEVICE) for w in weights)
    gp, ga = torch.autograd.grad((values * wv).sum() + (d * wd).sum(), (p, a))
    return frag, values.detach().cpu(), d.detach().cpu(), gp.cpu(), ga.cpu()


@needs_triton
@pytest.mark.parametrize(
    ("seed", "shared_mesh", "shared_attr"), [(0, False, True), (1, True, False)]
)
def test_triton_matches_torch_values_derivatives_and_gradients(seed, shared_mesh, shared_attr):
    batch, size = 2, (12, 16)
    pos, faces = random_scene(seed, batch, 10, shared=shared_mesh)
    attr, attr_faces = _attr_and_faces(seed, batch, faces.shape[0], 9, 3, shared_attr)
    attr = attr.float()
    *_, ambiguous = reference_rasterize(pos, faces, *size)
    safe = ~ambiguous
    g = torch.Generator().manual_seed(seed)
    weights = (
        torch.randn(batch, *size, 3, generator=g) * safe[..., None],
        torch.randn(batch, *size, 3, 2, generator=g) * safe[..., None, None],
    )
    ft, vt, dt, gpt, gat = _run("torch", pos, faces, attr, attr_faces, size, weights)
    fx, vx, dx, gpx, gax = _run("triton", pos, faces, attr, attr_faces, size, weights)
    assert fx.backend == "triton" and ft.backend == "torch"
    assert int((ft.mask & safe).sum()) > 20
    torch.testing.assert_close(vx[safe], vt[safe], atol=1e-5, rtol=0)
    scale = max(1.0, float(dt.abs().max()))
    torch.testing.assert_close(dx[safe], dt[safe], atol=2e-5 * scale, rtol=1e-4)
    assert not dx[~fx.mask.cpu()].any()
    torch.testing.assert_close(gax, gat, atol=1e-4, rtol=1e-4)
    scale = max(1.0, float(gpt.abs().max()))
    torch.testing.assert_close(gpx, gpt, atol=2e-4 * scale, rtol=1e-3)
    assert float(gpt.abs().max()) > 0 and float(gat.abs().max()) > 0
    if seed == 1:  # The Triton backward sums in a fixed order: bitwise repeatable.
        again = _run("triton", pos, faces, attr, attr_faces, size, weights)
        assert torch.equal(again[3], gpx) and torch.equal(again[4], gax)


@needs_triton
def test_triton_derivative_op_backward_matches_the_torch_formula():
    """The bary-derivative kernels alone: forward and both gradients (positions and
    barycentrics) against autograd through the torch path's formula."""
    from minirast._cpu.interpolate import bary_derivatives as torch_db
    from minirast._triton.bary_derivatives import BaryDerivativesFunction

    pos, faces = random_scene(5, 2, 10, shared=True)
    frag = minirast.rasterize(pos.to(DEVICE), faces.to(DEVICE), (10, 12), backend="triton")
    B, H, W = frag.tri_id.shape
    p = frag.pos_clip.detach().float().contiguous().requires_grad_(True)
    bary = frag.bary.detach().clone().requires_grad_(True)
    f32 = faces.to(DEVICE, torch.int32)
    db = BaryDerivativesFunction.apply(p, bary, frag.tri_id, f32, frag.bins)
    up = torch.randn(db.shape, generator=torch.Generator().manual_seed(0)).to(DEVICE)
    gp, gb = torch.autograd.grad((db * up).sum(), (p, bary))

    p64 = p.detach().cpu().double().requires_grad_(True)
    b64 = bary.detach().cpu().double().requires_grad_(True)
    flat = frag.tri_id.cpu().reshape(-1)
    idx = torch.nonzero(flat >= 0).squeeze(1)
    verts = faces[flat[idx].long()].unbind(1)
    w = b64.reshape(-1, 3)[idx].unbind(1)
    dbx, dby = torch_db(p64, idx // (H * W), verts, w, H, W)
    ref = torch.zeros(2, B * H * W, 3, dtype=torch.float64)
    ref = ref.index_put((torch.tensor([0]), idx[:, None], torch.arange(3)), torch.stack(dbx, 1))
    ref = ref.index_put((torch.tensor([1]), idx[:, None], torch.arange(3)), torch.stack(dby, 1))
    ref = ref.reshape(db.shape)
    rp, rb = torch.autograd.grad((ref * up.cpu().double()).sum(), (p64, b64))
    torch.testing.assert_close(db.detach().cpu().double(), ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(gb.cpu().double(), rb, atol=1e-4, rtol=1e-4)
    scale = max(1.0, float(rp.abs().max()))
    torch.testing.assert_close(gp.cpu().double(), rp, atol=1e-4 * scale, rtol=1e-4)
    assert float(rp.abs().max()) > 0 and float(rb.abs().max()) > 0


@pytest.mark.parametrize("backend", ["torch", pytest.param("triton", marks=needs_triton)])
def test_empty_mesh_gives_zero_derivatives(backend):
    device = "cpu" if backend == "torch" else DEVICE
    pos = torch.rand(1, 4, 4, device=device).requires_grad_(True)
    faces = torch.zeros(0, 3, dtype=torch.int64, device=device)
    frag = minirast.rasterize(pos, faces, (4, 5), backend=backend)
    attr = torch.rand(3, 2, device=device, requires_grad=True)
    values, d = minirast.interpolate(attr, frag, faces, derivatives=True)
    assert values.shape == (1, 4, 5, 2) and d.shape == (1, 4, 5, 2, 2)
    assert not values.any() and not d.any()
    (values.sum() + d.sum()).backward()
    assert not attr.grad.any()


def test_bench_interpolate_runs_and_writes_its_report(tmp_path):
    import json

    from bench import interpolate as bench

    rows = bench.main(["--res", "24", "--batch", "1", "--rounds", "1", "--budget-s", "0",
                       "--device", "cpu", "--out", str(tmp_path)])  # fmt: skip
    assert {(r["backend"], r["mode"]) for r in rows} == {
        ("torch", "forward"),
        ("torch", "forward+backward"),
    }
    assert all(r["values_ms"] > 0 and r["values_and_derivatives_ms"] > 0 for r in rows)
    (report,) = tmp_path.glob("*/interpolate.json")
    assert json.loads(report.read_text())["rows"] == rows
