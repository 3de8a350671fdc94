"""The Triton antialias op (``minirast/_triton/antialias.py``) against the torch version.

Both run on the same Triton fragments (``tri_id``, ``depth``), so the pairs they blend
are decided from the same visibility: the Triton op through the public
:func:`minirast.antialias`, the torch one by calling
:func:`minirast._cpu.antialias.blend_silhouettes` (the spec) directly, with gradients
from autograd. Under the interpreter (CPU, tiny sizes) the kernels do the same float32
operations as torch, so even exact ties (edges through pixel centres, 45-degree edges,
drawn on a grid by hypothesis) are decided alike. The last test runs the bundled head at
a realistic size on a GPU (``cuda`` marker; it skips here).
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import minirast
from _common.backend import triton_available, triton_interpreted
from minirast._cpu.antialias import blend_silhouettes
from tests.minirast.scenes import perspective_clip, random_scene
from tests.minirast.strategies import grid_points, vertex_depths, vertex_ws

pytestmark = pytest.mark.skipif(
    not triton_available() or (not torch.cuda.is_available() and not triton_interpreted()),
    reason="needs triton (CUDA, or TRITON_INTERPRET=1 on CPU)",
)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _op():
    from minirast._triton import antialias

    return antialias


def _both(color, pos, faces, size, grad_out):
    """``(out, grad_color, grad_pos)`` of the Triton op (public API on Triton fragments)
    and of the torch blend on the same fragments, for the loss ``sum(out * grad_out)``;
    and the fragments. ``pos`` may be ``[V,4]``, shared by the batch of ``color``."""
    raster_pos = pos.expand(color.shape[0], -1, -1) if pos.dim() == 2 else pos
    frag = minirast.rasterize(raster_pos, faces, size, backend="triton")
    results = []
    for use_triton in (True, False):
        c = color.clone().requires_grad_(True)
        p = pos.clone().requires_grad_(True)
        if use_triton:
            out = minirast.antialias(c, frag, p, faces)
        else:
            out = blend_silhouettes(c, frag.tri_id, frag.depth, p, faces.long())
        # The torch version leaves the positions out of the graph when nothing blends.
        gc, gp = torch.autograd.grad((out * grad_out).sum(), (c, p), allow_unused=True)
        results.append((out.detach(), gc, torch.zeros_like(p) if gp is None else gp))
    return results[0], results[1], frag


def _assert_agree(triton_res, torch_res, color):
    (ox, gcx, gpx), (ot, gct, gpt) = triton_res, torch_res
    assert ox.dtype == ot.dtype and gpx.shape == gpt.shape and gcx.shape == gct.shape
    torch.testing.assert_close(ox, ot, atol=1e-5, rtol=0)
    torch.testing.assert_close(gcx, gct, atol=1e-5, rtol=1e-5)
    scale = max(1.0, float(gpt.abs().max()))
    torch.testing.assert_close(gpx, gpt, atol=1e-5 * scale, rtol=1e-4)
    # The same pixels blend (a pixel that the torch version changes, Triton changes).
    assert torch.equal((ox != color).any(-1), (ot != color).any(-1))


def _inputs(seed, B, H, W, C, V):
    g = torch.Generator().manual_seed(seed)
    color = torch.rand(B, H, W, C, generator=g).to(DEVICE)
    grad_out = torch.randn(B, H, W, C, generator=g).to(DEVICE)
    return color, grad_out


# --------------------------------------------------------------------------- geometry


@st.composite
def grid_meshes(draw):
    """1 to 4 triangles with vertices on the 1/16 NDC grid (edges through pixel centres
    and at exactly 45 degrees happen), small integer-fraction w and depths; a triangle
    may share an edge with the previous one (the silhouette rule between them)."""
    n = draw(st.integers(1, 4))
    points, ws, zs, faces = [], [], [], []
    for i in range(n):
        share = i > 0 and draw(st.booleans())
        new = 1 if share else 3
        pts = draw(grid_points(3))[:new]
        w = draw(vertex_ws)[:new]
        z = draw(vertex_depths)[:new]
        base = len(points)
        points += list(pts)
        ws += list(w)
        zs += list(z)
        if share:
            a, b, _ = faces[-1]
            faces.append([b, a, base])
        else:
            faces.append([base, base + 1, base + 2])
    xy = torch.stack(points)
    w = torch.stack(ws)[:, None]
    z = torch.stack(zs)[:, None]
    pos = torch.cat([xy * w, z * w, w], 1).float()[None]
    return pos.to(DEVICE), torch.tensor(faces, dtype=torch.int64, device=DEVICE)


# No shrinking phase: the interpreter makes every example slow (a failure still prints
# its example, and the drawn numbers are small grid integers).
@settings(max_examples=12, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(
    mesh=grid_meshes(),
    size=st.sampled_from([(16, 16), (24, 16), (16, 24), (32, 24)]),
    channels=st.sampled_from([1, 3, 5]),
    seed=st.integers(0, 2**16),
)
def test_matches_torch_on_grid_meshes_with_exact_ties(mesh, size, channels, seed):
    pos, faces = mesh
    color, grad_out = _inputs(seed, 1, *size, channels, pos.shape[1])
    tx, tt, _ = _both(color, pos, faces, size, grad_out)
    _assert_agree(tx, tt, color)


@pytest.mark.parametrize(
    ("seed", "batch", "num_faces", "size"),
    [(0, 1, 10, (16, 16)), (1, 2, 16, (24, 20)), (2, 2, 24, (32, 24))],
)
def test_matches_torch_on_random_scenes(seed, batch, num_faces, size):
    pos, faces = random_scene(seed, batch, num_faces, shared=seed != 1)
    pos, faces = pos.to(DEVICE), faces.to(DEVICE)
    color, grad_out = _inputs(seed, batch, *size, 3, pos.shape[1])
    tx, tt, _ = _both(color, pos, faces, size, grad_out)
    _assert_agree(tx, tt, color)
    assert bool((tx[0] != color).any())  # something was blended
    assert float(tx[2].abs().max()) > 0


def _sphere(batch):
    """A closed icosphere, and an open cap of it (its boundary is a mesh boundary),
    turned differently per image."""
    verts, faces = minirast.icosphere(2)
    poses = []
    for b in range(batch):
        a = 0.4 + 0.7 * b
        rot = torch.tensor(
            [[math.cos(a), 0.0, math.sin(a)], [0.0, 1.0, 0.0], [-math.sin(a), 0.0, math.cos(a)]]
        )
        poses.append(perspective_clip((verts.float() @ rot.T) * 0.55, scale=1.4, rho=0.6))
    pos = torch.stack(poses).to(DEVICE)
    cap = faces[(verts[faces][..., 2] > -0.2).all(1)]
    return pos, faces.to(DEVICE), cap.to(DEVICE)


@pytest.mark.parametrize("part", ["closed", "cap"])
def test_matches_torch_on_a_mesh_and_its_boundary(part):
    """A closed mesh blends only its outline; an open cap also its boundary (seen from
    inside or outside), both with position gradients like the torch version's."""
    pos, closed, cap = _sphere(2)
    faces = closed if part == "closed" else cap
    size = (24, 24)
    color, grad_out = _inputs(7, 2, *size, 3, pos.shape[1])
    tx, tt, frag = _both(color, pos, faces, size, grad_out)
    _assert_agree(tx, tt, color)
    changed = (tx[0] != color).any(-1)
    assert bool(changed.any())
    if part == "closed":  # only pixels next to the background change
        bg = ~frag.mask
        near_bg = bg.clone()
        near_bg[:, :, 1:] |= bg[:, :, :-1]
        near_bg[:, :, :-1] |= bg[:, :, 1:]
        near_bg[:, 1:] |= bg[:, :-1]
        near_bg[:, :-1] |= bg[:, 1:]
        assert bool((~changed | near_bg).all())


def test_broadcast_positions_and_float64_color():
    """``pos_clip [V,4]`` shared by the batch and a float64 image: the output keeps the
    promoted dtype, the gradient the shape of ``pos_clip``."""
    pos, faces = random_scene(3, 1, 12, shared=True)
    pos, faces = pos[0].to(DEVICE), faces.to(DEVICE)
    size = (16, 20)
    color, grad_out = _inputs(3, 2, *size, 2, pos.shape[0])
    color, grad_out = color.double(), grad_out.double()
    tx, tt, _ = _both(color, pos, faces, size, grad_out)
    assert tx[0].dtype == torch.float64 and tx[2].shape == pos.shape
    _assert_agree(tx, tt, color)


def test_background_only_image_is_unchanged():
    """Faces that never show (off screen, behind the camera): the image passes through,
    its gradient is the upstream one and the positions get none."""
    pos = torch.tensor(
        [[[3.0, 3.0, 0.5, 1.0], [4.0, 3.0, 0.5, 1.0], [3.0, 4.0, 0.5, 1.0], [0.0, 0.0, 0.5, -1.0]]],
        device=DEVICE,
    )
    faces = torch.tensor([[0, 1, 2], [0, 1, 3]], device=DEVICE)
    size = (16, 16)
    color, grad_out = _inputs(0, 1, *size, 3, 4)
    (ox, gcx, gpx), tt, frag = _both(color, pos, faces, size, grad_out)
    assert bool((frag.tri_id == -1).all())
    assert torch.equal(ox, color) and torch.equal(gcx, grad_out)
    assert bool((gpx == 0).all())
    _assert_agree((ox, gcx, gpx), tt, color)


def test_dispatches_to_the_kernels_for_triton_fragments(monkeypatch):
    calls = []
    op = _op()
    apply = op.AntialiasFunction.apply
    monkeypatch.setattr(op.AntialiasFunction, "apply", lambda *a: calls.append(1) or apply(*a))
    pos, faces = random_scene(0, 1, 8, shared=True)
    pos, faces = pos.to(DEVICE), faces.to(DEVICE)
    color = torch.rand(1, 16, 16, 3, device=DEVICE)
    for backend in ("torch", "triton"):
        frag = minirast.rasterize(pos, faces, (16, 16), backend=backend)
        minirast.antialias(color, frag, pos, faces)
    assert calls == [1]


def test_bitwise_deterministic():
    """The same inputs give bitwise the same image and gradients (the position
    gradients of many pairs meet at shared vertices: summed in a fixed order).

    On CPU (Triton's interpreter, as in CI) programs run one after another, so even
    float atomics repeat: this cannot catch an order-dependent race there, only
    uninitialised memory, unstable sorts or a reduction that changes with the data's
    layout. On a GPU (``python -m bench.gpu`` runs it) it checks the fixed-order sums.
    """
    pos, faces, _ = _sphere(2)
    size = (24, 20)
    color, grad_out = _inputs(1, 2, *size, 3, pos.shape[1])
    frag = minirast.rasterize(pos, faces, size, backend="triton")
    runs = []
    for _ in range(2):
        c = color.clone().requires_grad_(True)
        p = pos.clone().requires_grad_(True)
        out = minirast.antialias(c, frag, p, faces)
        runs.append((out.detach(), *torch.autograd.grad((out * grad_out).sum(), (c, p))))
    for a, b in zip(*runs, strict=True):
        assert torch.equal(a, b)
    assert float(runs[0][2].abs().max()) > 0


# --------------------------------------------------------------------------- GPU, real size


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bundled_head_224_batch_8_matches_torch_and_repeats():
    from bench.raster import load_mesh, make_batch

    verts, faces, _ = load_mesh()
    _, clip = make_batch(verts, 8, seed=3)
    pos, faces = clip.to(DEVICE), faces.to(DEVICE)
    colors = minirast.normals_to_rgb(minirast.vertex_normals(verts, faces.cpu())).to(DEVICE)
    frag = minirast.rasterize(pos, faces, (224, 224), backend="triton")
    img = minirast.interpolate(colors, frag, faces).detach()
    g = torch.Generator(device=DEVICE).manual_seed(0)
    grad_out = torch.randn(img.shape, generator=g, device=DEVICE)
    tx, tt, _ = _both(img, pos, faces, (224, 224), grad_out)
    (ox, gcx, gpx), (ot, gct, gpt) = tx, tt
    torch.testing.assert_close(ox, ot, atol=1e-5, rtol=0)
    torch.testing.assert_close(gcx, gct, atol=1e-5, rtol=1e-5)
    # Per-vertex sums over many pairs, in different orders: float32 tolerances.
    scale = max(1.0, float(gpt.abs().max()))
    torch.testing.assert_close(gpx, gpt, atol=1e-4 * scale, rtol=1e-3)
    # The outlines of 8 heads blend (the torch version changes about 220 pixels per image).
    assert int((ox != img).any(-1).sum()) > 8 * 100
    tx2, _, _ = _both(img, pos, faces, (224, 224), grad_out)
    for a, b in zip(tx, tx2, strict=True):
        assert torch.equal(a, b)
