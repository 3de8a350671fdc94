"""The Triton backend (interpreter on CPU, tiny sizes) agrees with the torch backend
through the public API: forward outputs and gradients of rasterize, interpolate and
antialias."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

import minirast
from _common.backend import triton_available, triton_interpreted
from minirast.reference import reference_rasterize
from tests.minirast.scenes import (
    RECIPROCAL_SLIVER_NDC,
    RECIPROCAL_SLIVER_W,
    clip_from_ndc,
    random_scene,
)

if importlib.util.find_spec("minirast._triton.rasterize") is None:
    pytest.skip(
        "minirast/_triton/rasterize.py (the Triton rasterize op) is absent", allow_module_level=True
    )
if not triton_available():
    pytest.skip("triton is not installed", allow_module_level=True)
if not torch.cuda.is_available() and not triton_interpreted():
    pytest.skip("no CUDA device and TRITON_INTERPRET is not set", allow_module_level=True)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
SIZE = (16, 16)


def _run(backend, pos, faces, attr, weights, cull=False):
    p = pos.clone().to(DEVICE).requires_grad_(True)
    a = attr.clone().to(DEVICE).requires_grad_(True)
    f = faces.to(DEVICE)
    frag = minirast.rasterize(p, f, SIZE, backend=backend, cull_backfaces=cull)
    img = minirast.interpolate(a, frag, f)
    aa = minirast.antialias(img, frag, p, f)
    wb, wd, wi, wa = (w.to(DEVICE) for w in weights)
    loss = (frag.bary * wb).sum() + (frag.depth * wd).sum() + (img * wi).sum() + (aa * wa).sum()
    gp, ga = torch.autograd.grad(loss, (p, a))
    return frag, img.detach(), aa.detach(), gp, ga


@pytest.mark.parametrize(
    ("seed", "batch", "num_faces", "cull"),
    [(0, 1, 8, False), (1, 2, 20, False), (2, 2, 12, True)],
)
def test_triton_matches_torch_forward_and_gradients(seed, batch, num_faces, cull):
    pos, faces = random_scene(seed, batch, num_faces, shared=seed % 2 == 0)
    g = torch.Generator().manual_seed(seed)
    attr = torch.rand(batch, pos.shape[1], 3, generator=g)
    *_, ambiguous_t = reference_rasterize(pos, faces, *SIZE, cull=-1 if cull else 0)
    ambiguous = ambiguous_t.numpy()
    clear = ~ambiguous_t
    # Pixels whose visible face is float-ambiguous (and their neighbours, which the
    # antialiasing pairs read) get no weight in the loss.
    safe = clear.clone()
    safe[:, 1:] &= clear[:, :-1]
    safe[:, :-1] &= clear[:, 1:]
    safe[:, :, 1:] &= clear[:, :, :-1]
    safe[:, :, :-1] &= clear[:, :, 1:]
    B, H, W = batch, *SIZE
    weights = (
        torch.randn(B, H, W, 3, generator=g) * safe[..., None],
        torch.randn(B, H, W, generator=g) * safe,
        torch.randn(B, H, W, 3, generator=g) * safe[..., None],
        torch.randn(B, H, W, 3, generator=g) * safe[..., None],
    )
    ft, it, at, gpt, gat = _run("torch", pos, faces, attr, weights, cull)
    fx, ix, ax, gpx, gax = _run("triton", pos, faces, attr, weights, cull)
    assert fx.backend == "triton" and ft.backend == "torch"
    tri_t, tri_x = ft.tri_id.cpu().numpy(), fx.tri_id.cpu().numpy()
    assert not ((tri_t != tri_x) & ~ambiguous).any()
    covered = torch.from_numpy((tri_t >= 0) & (tri_t == tri_x))
    torch.testing.assert_close(
        fx.bary.detach().cpu()[covered], ft.bary.detach()[covered], atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        fx.depth.detach().cpu()[covered], ft.depth.detach()[covered], atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(ix.cpu()[safe], it[safe], atol=1e-5, rtol=0)
    torch.testing.assert_close(ax.cpu()[safe], at[safe], atol=1e-5, rtol=0)
    scale = max(1.0, float(gpt.abs().max()))
    torch.testing.assert_close(gpx.cpu(), gpt, atol=2e-4 * scale, rtol=1e-3)
    torch.testing.assert_close(gax.cpu(), gat, atol=1e-4, rtol=1e-4)
    assert float(gpt.abs().max()) > 0


def test_triton_shared_attr_and_empty_mesh():
    pos, faces = random_scene(4, 2, 6, shared=True)
    attr = torch.rand(pos.shape[1], 2)
    outs = []
    for backend in ("torch", "triton"):
        frag = minirast.rasterize(pos.to(DEVICE), faces.to(DEVICE), SIZE, backend=backend)
        outs.append(minirast.interpolate(attr.to(DEVICE), frag, faces.to(DEVICE)).cpu())
    mask = outs[0].abs().sum(-1) > 0
    np.testing.assert_allclose(outs[1][mask].numpy(), outs[0][mask].numpy(), atol=1e-5)
    empty = minirast.rasterize(
        pos.to(DEVICE), torch.zeros(0, 3, dtype=torch.int64, device=DEVICE), SIZE, backend="triton"
    )
    assert bool((empty.tri_id == -1).all())


@pytest.mark.parametrize("backend", ["torch", "triton", "reference"])
def test_a_line_made_a_sliver_by_the_reciprocal_covers_nothing(backend):
    """``scenes.RECIPROCAL_SLIVER``: zero up to rounding, so dropped everywhere."""
    pos = clip_from_ndc(RECIPROCAL_SLIVER_NDC, RECIPROCAL_SLIVER_W).to(DEVICE)
    faces = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    if backend == "reference":
        tri_id = reference_rasterize(pos.cpu(), faces, 24, 28)[0]
    else:
        tri_id = minirast.rasterize(pos, faces.to(DEVICE), (24, 28), backend=backend).tri_id
    assert bool((tri_id == -1).all())
