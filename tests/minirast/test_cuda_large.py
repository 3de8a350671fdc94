"""The Triton rasterizer on a real GPU at the benchmark's sizes (``cuda`` marker).

The bundled head (about 5k vertices, 10k faces) with random poses, B = 64 at 224²
and 512²: the Triton backend against the torch backend on the same GPU through the
public API (rasterize + interpolate + antialias, forward and gradients), and the
bitwise repeatability of the Triton backward. Pixels whose visible triangle the two
backends decide differently (float ties on shared edges) and their neighbours get no
weight in the loss, as in ``test_backends_agree.py``. They skip without CUDA;
``python -m bench.gpu`` runs them (``pytest -m cuda``).
"""

from __future__ import annotations

import pytest
import torch

import minirast
from bench.raster import load_mesh, make_batch

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

DEVICE = torch.device("cuda")


def _scene(batch):
    verts, faces, _ = load_mesh()
    _, clip = make_batch(verts, batch, seed=5)
    colors = minirast.normals_to_rgb(minirast.vertex_normals(verts, faces))
    return clip.to(DEVICE), faces.to(DEVICE), colors.to(DEVICE)


def _run(backend, pos, faces, colors, res, weights):
    p = pos.clone().requires_grad_(True)
    c = colors.clone().requires_grad_(True)
    frag = minirast.rasterize(p, faces, (res, res), backend=backend)
    img = minirast.interpolate(c, frag, faces)
    out = minirast.antialias(img, frag, p, faces)
    w_img, w_out = weights
    loss = (img * w_img).sum() + (out * w_out).sum()
    gp, gc = torch.autograd.grad(loss, (p, c))
    return frag, out.detach(), gp, gc


@pytest.mark.parametrize("res", [224, 512])
def test_triton_matches_torch_backend_at_batch_64(res):
    pos, faces, colors = _scene(64)
    with torch.no_grad():
        ids_t = minirast.rasterize(pos, faces, (res, res), backend="torch").tri_id
        ids_x = minirast.rasterize(pos, faces, (res, res), backend="triton").tri_id
    same = ids_t == ids_x
    assert same.float().mean().item() > 0.999
    safe = same.clone()
    safe[:, 1:] &= same[:, :-1]
    safe[:, :-1] &= same[:, 1:]
    safe[:, :, 1:] &= same[:, :, :-1]
    safe[:, :, :-1] &= same[:, :, 1:]
    g = torch.Generator(device=DEVICE).manual_seed(res)
    weights = tuple(
        torch.randn(64, res, res, 3, generator=g, device=DEVICE) * safe[..., None] for _ in range(2)
    )
    ft, ot, gpt, gct = _run("torch", pos, faces, colors, res, weights)
    fx, ox, gpx, gcx = _run("triton", pos, faces, colors, res, weights)
    cov = safe & (ids_t >= 0)
    assert cov.sum() > 64 * res * res // 20  # the head covers a good part of each image
    torch.testing.assert_close(fx.bary[cov], ft.bary[cov], atol=1e-5, rtol=0)
    torch.testing.assert_close(fx.depth[cov], ft.depth[cov], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ox[safe], ot[safe], atol=1e-5, rtol=0)
    # Sums over thousands of pixels per vertex, in different orders: float32 tolerances
    # relative to the largest gradient.
    scale = max(1.0, float(gpt.abs().max()))
    torch.testing.assert_close(gpx, gpt, atol=1e-3 * scale, rtol=1e-3)
    scale = max(1.0, float(gct.abs().max()))
    torch.testing.assert_close(gcx, gct, atol=1e-4 * scale, rtol=1e-3)


@pytest.mark.parametrize(("res", "batch"), [(224, 64), (512, 64)])
def test_triton_backward_is_bitwise_repeatable(res, batch):
    from bench.gpu.determinism import raster_backward

    row = raster_backward(DEVICE, batch, res, 3)
    assert row["bitwise_equal"], row
