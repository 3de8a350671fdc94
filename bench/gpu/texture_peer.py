"""The ``texture`` stage: minirast's Triton texture op beside nvdiffrast's ``dr.texture``.

Job (``bench.texture.make_inputs``): per-image 1024² RGB textures sampled at 512²
pixels, B in {8, 64}, with a smooth uv field and its exact pixel derivatives; bilinear
(``linear``) and trilinear (``linear-mipmap-linear``, mip levels built inside each
call by both), wrap boundary, forward and forward + backward (gradients to the
texture, uv and uv_da of a weighted sum). Beside them: minirast's torch path on the
same GPU. nvdiffrast comes from ``--nvdiffrast PATH``
(:mod:`bench.gpu.nvdiffrast_peer` builds it); without it, or without CUDA, its rows
are skipped with the reason and the rest still runs. The outputs and gradients of
both ops are compared (largest absolute difference): the same conventions, so no
remapping.
"""

from __future__ import annotations

import torch

import minirast
from bench.common import time_call
from bench.texture import make_inputs

BATCHES = (8, 64)
RESOLUTION = 512
TEXTURE = 1024
FILTERS = ("linear", "linear-mipmap-linear")


def _ours(backend):
    def call(tex, uv, uv_da, filter_mode):
        return minirast.texture(tex, uv, uv_da, filter_mode=filter_mode, backend=backend)

    return call


def _peer(dr):
    def call(tex, uv, uv_da, filter_mode):
        return dr.texture(tex, uv, uv_da, filter_mode=filter_mode, boundary_mode="wrap")

    return call


def _grads(call, inputs, filter_mode):
    """Output and gradients (tex, uv, uv_da) of ``sum(out * weights)``."""
    tex, uv, uv_da, weights = inputs
    leaves = [t.clone().requires_grad_(True) for t in (tex, uv, uv_da)]
    out = call(*leaves, filter_mode)
    grads = torch.autograd.grad((out * weights).sum(), leaves, allow_unused=True)
    return [out.detach()] + [torch.zeros_like(t) if g is None else g for t, g in zip(leaves, grads)]


def _timed(call, inputs, filter_mode, mode, device, budget_s):
    tex, uv, uv_da, weights = inputs
    if mode == "forward":

        def step():
            with torch.no_grad():
                call(tex, uv, uv_da, filter_mode)

    else:
        leaves = [t.clone().requires_grad_(True) for t in (tex, uv, uv_da)]

        def step():
            for t in leaves:
                t.grad = None
            (call(*leaves, filter_mode) * weights).sum().backward()

    return time_call(step, device, max_repeats=20, budget_s=budget_s)


def _max_diff(a, b) -> list[float]:
    return [float((x.float() - y.float()).abs().max()) for x, y in zip(a, b)]


def run(path: str | None, dry_run: bool, build_dir: str | None = None) -> dict:
    """The stage's record (rows of ms per backend, filter, batch and mode)."""
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    dr, peer_note = None, ""
    if not path:
        peer_note = "no --nvdiffrast PATH given (bench/GPU.md: how to carry its source)"
    elif not cuda:
        peer_note = "nvdiffrast's texture op needs a CUDA device"
    else:
        try:
            from bench.gpu import nvdiffrast_peer

            dr = nvdiffrast_peer.load(path, build_dir)
        except Exception as exc:  # a failed build: the other rows still run
            peer_note = f"nvdiffrast could not be loaded: {type(exc).__name__}: {exc}"[:500]
    batches, res, size, budget = (BATCHES, RESOLUTION, TEXTURE, 1.0)
    if dry_run or not cuda:
        batches, res, size, budget = (1,), 16, 16, 0.05
    calls = {"minirast triton": _ours("triton"), "minirast torch": _ours("torch")}
    if dr is not None:
        calls["nvdiffrast"] = _peer(dr)
    rows, agreement = [], []
    for batch in batches:
        inputs = make_inputs(batch, res, size, device)
        for filter_mode in FILTERS:
            for name, call in calls.items():
                for mode in ("forward", "forward+backward"):
                    ms = _timed(call, inputs, filter_mode, mode, device, budget)
                    rows.append({"backend": name, "filter": filter_mode, "batch": batch,
                                 "mode": mode, "ms": ms})  # fmt: skip
            ours = _grads(calls["minirast triton"], inputs, filter_mode)
            for other in [n for n in calls if n != "minirast triton"]:
                diff = _max_diff(ours, _grads(calls[other], inputs, filter_mode))
                agreement.append(
                    {"versus": other, "filter": filter_mode, "batch": batch,
                     **dict(zip(("out", "grad_tex", "grad_uv", "grad_uv_da"), diff))}
                )  # fmt: skip
    record = {
        "rows": rows,
        "max_abs_difference": agreement,
        "nvdiffrast": peer_note or "compared",
        "sizes": {"resolution": res, "texture": size, "channels": 3, "boundary": "wrap"},
    }
    key = [r for r in rows if r["batch"] == batches[0] and r["mode"] == "forward+backward"]
    parts = [f"{r['backend']} {r['filter']} {r['ms']:.2f} ms" for r in key]
    record["headline"] = f"B={batches[0]} {res}² fwd+bwd: " + ", ".join(parts)
    if peer_note:
        record["headline"] += f"; nvdiffrast skipped: {peer_note}"
    return record
