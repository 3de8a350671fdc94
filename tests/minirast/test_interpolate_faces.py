"""``interpolate(attr, fragments, faces)`` with attribute faces of their own (nvdiffrast's
``tri``): attributes split at seams interpolate as the per-vertex attribute does where
the split copies agree, attr may have any vertex count, and bad faces are refused."""

from __future__ import annotations

import functools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minirast
from _common.backend import triton_available, triton_interpreted
from tests.minirast.scenes import perspective_clip

seeds = st.integers(min_value=0, max_value=2**31 - 1)
needs_triton = pytest.mark.skipif(
    not triton_available() or (not torch.cuda.is_available() and not triton_interpreted()),
    reason="needs triton (CUDA, or TRITON_INTERPRET=1 on CPU)",
)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BACKENDS = ["torch", pytest.param("triton", marks=needs_triton)]
SIZE = (14, 17)


def _sphere(dtype=torch.float32):
    """A closed mesh (42 vertices, 80 faces) in front of the camera, in clip space."""
    verts, faces = minirast.icosphere(1)
    verts = verts * 0.7 + torch.tensor([0.05, -0.03, 2.0], dtype=verts.dtype)
    return perspective_clip(verts.to(dtype), scale=2.4, rho=0.5), faces


def _split(faces: torch.Tensor, chosen: torch.Tensor, num_vertices: int):
    """Attribute faces in which the ``chosen`` faces get three new vertices of their own
    (copies of their corners: ``source[t]`` is the mesh vertex of attribute vertex t)."""
    new = num_vertices + torch.arange(3 * len(chosen)).reshape(-1, 3)
    attr_faces = faces.clone()
    attr_faces[chosen] = new
    source = torch.cat([torch.arange(num_vertices), faces[chosen].reshape(-1)])
    return attr_faces, source


def _interp(backend, attr, pos, faces, attr_faces, **kw):
    device = "cpu" if backend == "torch" else DEVICE
    frag = minirast.rasterize(pos.to(device), faces.to(device), SIZE, backend=backend)
    return frag, minirast.interpolate(attr.to(device), frag, attr_faces.to(device), **kw)


@functools.cache
def _sphere_fragments(backend):
    pos, faces = _sphere()
    device = "cpu" if backend == "torch" else DEVICE
    return pos, faces, minirast.rasterize(pos.to(device), faces.to(device), SIZE, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=8)
@given(seed=seeds)
def test_seam_split_copies_interpolate_like_the_per_vertex_attribute(backend, seed):
    pos, faces, frag = _sphere_fragments(backend)
    V, F = pos.shape[0], faces.shape[0]
    device = frag.tri_id.device
    g = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(F, generator=g)[: int(torch.randint(1, F, (), generator=g))]
    attr_faces, source = _split(faces, chosen, V)
    attr = torch.randn(V, 2, generator=g)

    def interp(a, af):
        return minirast.interpolate(a.to(device), frag, af.to(device), derivatives=True)

    v_mesh, d_mesh = interp(attr, faces)
    v_split, d_split = interp(attr[source], attr_faces)
    assert int(frag.mask.sum()) > 50
    # Same numbers in the same order: bitwise equal.
    assert torch.equal(v_split, v_mesh) and torch.equal(d_split, d_mesh)

    # A real seam: the split copies get other values; only the chosen faces' pixels change.
    seam = attr[source].clone()
    seam[V:] += 1.0 + torch.rand(seam.shape[0] - V, 2, generator=g)
    v_seam, d_seam = interp(seam, attr_faces)
    on_chosen = torch.isin(frag.tri_id.cpu(), chosen.to(frag.tri_id.dtype))
    other = frag.mask.cpu() & ~on_chosen
    assert torch.equal(v_seam.cpu()[other], v_mesh.cpu()[other])
    assert torch.equal(d_seam.cpu()[other], d_mesh.cpu()[other])
    # sum_k b_k (a_k + delta_k) > sum_k b_k a_k where every delta_k >= 1 and b sums to 1.
    diff = (v_seam - v_mesh).cpu()[on_chosen]
    assert bool((diff > 0.99).all())


@pytest.mark.parametrize("backend", BACKENDS)
def test_seam_split_gradients_fold_back_onto_the_mesh_vertices(backend):
    pos, faces = _sphere()
    V = pos.shape[0]
    attr_faces, source = _split(faces, torch.arange(0, faces.shape[0], 3), V)
    g = torch.Generator().manual_seed(3)
    device = "cpu" if backend == "torch" else DEVICE
    attr = torch.randn(V, 3, generator=g).to(device).requires_grad_(True)
    split = attr.detach()[source.to(device)].requires_grad_(True)
    wv = torch.randn(1, *SIZE, 3, generator=g).to(device)
    wd = torch.randn(1, *SIZE, 3, 2, generator=g).to(device)
    grads = []
    for a, af in ((attr, faces), (split, attr_faces)):
        _, (v, d) = _interp(backend, a, pos, faces, af, derivatives=True)
        (grad,) = torch.autograd.grad((v * wv).sum() + (d * wd).sum(), a)
        grads.append(grad.cpu())
    folded = torch.zeros(V, 3).index_add_(0, source, grads[1])
    torch.testing.assert_close(folded, grads[0], atol=1e-5, rtol=1e-5)
    assert float(grads[1][V:].abs().max()) > 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("num_attr", [3, 100])
def test_attr_with_its_own_vertex_count(backend, num_attr):
    """T fewer or more than the mesh's V: the value is the barycentric blend of the rows
    the attribute faces name (an einsum written independently)."""
    pos, faces = _sphere()
    g = torch.Generator().manual_seed(num_attr)
    attr = torch.randn(2, num_attr, 2, generator=g)
    attr_faces = torch.randint(0, num_attr, faces.shape, generator=g)
    pos2 = torch.stack([pos, pos * torch.tensor([1.1, 0.9, 1.0, 1.0])])
    frag, out = _interp(backend, attr, pos2, faces, attr_faces.to(torch.int32))
    tri = frag.tri_id.long().clamp_min(0).cpu()
    corner = attr_faces[tri]  # [B,H,W,3]
    gathered = torch.stack([attr[b][corner[b]] for b in range(2)])  # [B,H,W,3,C]
    expect = torch.einsum("bhwk,bhwkc->bhwc", frag.bary.detach().cpu(), gathered)
    expect = expect * frag.mask.cpu()[..., None]
    torch.testing.assert_close(out.detach().cpu(), expect, atol=1e-5, rtol=1e-5)


def test_bad_attribute_faces_are_refused():
    pos, faces = _sphere()
    frag = minirast.rasterize(pos, faces, (8, 8))
    attr = torch.rand(10, 2)
    ok = torch.randint(0, 10, faces.shape)
    with pytest.raises(ValueError, match="79 rows but the fragments were rasterized with 80"):
        minirast.interpolate(attr, frag, ok[:-1])
    bad = ok.clone()
    bad[5, 1] = 10
    with pytest.raises(ValueError, match="vertex index 10, out of range for attr's 10 vertices"):
        minirast.interpolate(attr, frag, bad)
    bad[5, 1] = -1
    with pytest.raises(ValueError, match="vertex index -1"):
        minirast.interpolate(attr, frag, bad)
    with pytest.raises(TypeError, match="integer tensor"):
        minirast.interpolate(attr, frag, ok.float())
    with pytest.raises(TypeError, match="int32 or int64"):
        minirast.interpolate(attr, frag, ok.to(torch.int16))
    with pytest.raises(ValueError, match=r"faces must have shape \[F,3\]"):
        minirast.interpolate(attr, frag, ok[:, :2])
    with pytest.raises(TypeError, match="derivatives must be a bool"):
        minirast.interpolate(attr, frag, ok, derivatives=1)
    with pytest.raises(ValueError, match="batch size 2"):
        minirast.interpolate(attr.expand(2, 10, 2), frag, ok)
