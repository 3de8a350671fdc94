"""The ``determinism`` stage: is every Triton backward bitwise repeatable at full size?

The backward kernels sum per-point, per-pixel and per-triangle contributions in a
fixed order (docs/design.md sections 3 and 4), so running the same backward twice
must give the same bits. This runs each backward ``repeats`` times on the same
inputs and compares every result with the first: ``ppcam.project`` at FLAME size,
and rasterize + interpolate + antialias through the public API (``backend="triton"``)
on the bundled head.
"""

from __future__ import annotations

import torch

import minirast
import ppcam
from bench.projection import make_inputs
from bench.raster import load_mesh, make_batch


def _compare(results: list[tuple[torch.Tensor, ...]]) -> tuple[bool, float]:
    """(all repeats bitwise equal to the first, largest absolute difference)."""
    first = results[0]
    equal, worst = True, 0.0
    for other in results[1:]:
        for a, b in zip(first, other):
            if not torch.equal(a, b):
                equal = False
                worst = max(worst, float((a.double() - b.double()).abs().max()))
    return equal, worst


def projection_backward(device: torch.device, batch: int, points: int, repeats: int) -> dict:
    """Gradients of ``ppcam.project`` (triton, deterministic) w.r.t. all five inputs."""
    inputs, grad = make_inputs(batch, points, device)
    leaves = [t.clone().requires_grad_() for t in inputs]
    results = []
    for _ in range(repeats):
        uv = ppcam.project(*leaves, backend="triton")
        results.append(torch.autograd.grad(uv, leaves, grad))
    equal, worst = _compare(results)
    return {
        "op": "ppcam.project backward",
        "case": f"B={batch}, N={points}",
        "repeats": repeats,
        "bitwise_equal": equal,
        "max_abs_difference": worst,
    }


def scene_mesh(small: bool) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(vertices, faces, name): the bundled head, or a coarse sphere (about a hundred
    faces) where the Triton interpreter runs (a dry run)."""
    if small:
        verts, faces = minirast.uv_sphere(6, 8, radius=0.1)
        return verts, faces, "UV sphere 6x8"
    return load_mesh()


def raster_backward(
    device: torch.device, batch: int, resolution: int, repeats: int, small: bool = False
) -> dict:
    """Gradients of rasterize (bary, depth) + interpolate + antialias (triton) w.r.t.
    positions and colours, for random upstream gradients; ``small``: see
    :func:`scene_mesh`."""
    verts, faces, mesh = scene_mesh(small)
    _, clip = make_batch(verts, batch)
    pos = clip.to(device).requires_grad_(True)
    f = faces.to(device)
    colors = minirast.normals_to_rgb(minirast.vertex_normals(verts, faces)).to(device)
    colors.requires_grad_(True)
    g = torch.Generator().manual_seed(0)
    size = (batch, resolution, resolution)
    g_bary = torch.randn(*size, 3, generator=g).to(device)
    g_depth = torch.randn(*size, generator=g).to(device)
    g_img = torch.randn(*size, 3, generator=g).to(device)
    g_aa = torch.randn(*size, 3, generator=g).to(device)
    results = []
    for _ in range(repeats):
        frag = minirast.rasterize(pos, f, (resolution, resolution), backend="triton")
        img = minirast.interpolate(colors, frag, f)
        aa = minirast.antialias(img, frag, pos, f)
        loss = (frag.bary * g_bary).sum() + (frag.depth * g_depth).sum() + (img * g_img).sum()
        loss = loss + (aa * g_aa).sum()
        results.append(torch.autograd.grad(loss, (pos, colors)))
    equal, worst = _compare(results)
    return {
        "op": "minirast rasterize + interpolate + antialias backward",
        "case": f"B={batch}, {resolution}x{resolution}, {mesh}",
        "repeats": repeats,
        "bitwise_equal": equal,
        "max_abs_difference": worst,
    }


def run(device: torch.device, dry_run: bool) -> dict:
    """The stage's record: full sizes on a GPU, tiny ones in a dry run."""
    if dry_run:
        rows = [
            projection_backward(device, 2, 64, 2),
            raster_backward(device, 1, 16, 2, small=True),
        ]
    else:
        rows = [
            projection_backward(device, 4096, 5023, 5),
            raster_backward(device, 64, 224, 5),
            raster_backward(device, 64, 512, 3),
        ]
    bad = [f"{r['op']} ({r['case']})" for r in rows if not r["bitwise_equal"]]
    headline = (
        f"all {len(rows)} backward cases bitwise repeatable"
        if not bad
        else "NOT bitwise repeatable: " + "; ".join(bad)
    )
    return {"rows": rows, "all_bitwise_equal": not bad, "headline": headline}
