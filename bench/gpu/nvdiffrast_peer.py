"""The ``nvdiffrast`` stage: nvdiffrast's CUDA rasterizer on minirast's benchmark job.

nvdiffrast is not installed anywhere and never committed here: pass a checkout of
github:NVlabs/nvdiffrast with ``--nvdiffrast PATH`` (bench/GPU.md). Its CUDA
extension is built with this machine's nvcc and ninja through
``torch.utils.cpp_extension.load``: for the current layout (``setup.py`` builds
``_nvdiffrast_c`` ahead of time) from the sources that ``setup.py`` lists, with its
flags; for older checkouts (a JIT plugin in ``nvdiffrast/torch/ops.py``) by
nvdiffrast itself on first use. The build directory is kept (``build_dir``), so a
second run on the same machine only loads it.

Job: the bundled head, the poses and camera of ``bench.raster``, rasterize +
interpolate (vertex colours) + antialias, forward + backward of a weighted image
sum to positions and colours, at 224² and 512², B in {1, 8, 64}; the same job with
minirast's Triton backend, in the same process, and the pixel agreement of the
visible triangle ids (nvdiffrast's ``rast[..., 3] - 1``). Both rasterizers put
pixel row 0 at NDC y = -1 and keep the smallest z/w, so no flip or remap is needed.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

import torch

import minirast
from bench.common import time_call
from bench.raster import load_mesh, make_batch

RESOLUTIONS = (224, 512)
BATCHES = (1, 8, 64)


def default_build_dir() -> str:
    """Where the extension is built (outside the working tree; kept between runs)."""
    return os.path.join(tempfile.gettempdir(), "minirast-bench-nvdiffrast")


def source_layout(path: str) -> str:
    """``"aot"`` (``setup.py`` builds ``_nvdiffrast_c``), ``"jit"`` (ops.py builds its
    plugin), or raise ``FileNotFoundError`` when ``path`` is not an nvdiffrast checkout."""
    ops = os.path.join(path, "nvdiffrast", "torch", "ops.py")
    if not os.path.isfile(ops):
        raise FileNotFoundError(
            f"{path!r} is not an nvdiffrast checkout: {ops} is missing "
            "(fetch github:NVlabs/nvdiffrast and pass its root)"
        )
    with open(ops, encoding="utf-8") as f:
        text = f.read()
    return "aot" if re.search(r"^import _nvdiffrast_c", text, re.M) else "jit"


def setup_sources(path: str) -> list[str]:
    """The extension sources listed in the checkout's ``setup.py``, as absolute paths."""
    with open(os.path.join(path, "setup.py"), encoding="utf-8") as f:
        names = re.findall(r"[\"'](csrc/[^\"']+\.(?:cu|cpp))[\"']", f.read())
    if not names:
        raise RuntimeError(f"no csrc/*.cu or *.cpp sources listed in {path}/setup.py")
    return [os.path.join(path, n) for n in names]


def load(path: str, build_dir: str | None = None):
    """Build (or reuse) nvdiffrast's extension and import ``nvdiffrast.torch`` from
    ``path``; returns the module. Needs CUDA, nvcc and ninja."""
    from torch.utils.cpp_extension import load as load_extension

    build_dir = build_dir or default_build_dir()
    os.makedirs(build_dir, exist_ok=True)
    os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 4))
    if torch.cuda.is_available() and "TORCH_CUDA_ARCH_LIST" not in os.environ:
        major, minor = torch.cuda.get_device_capability()
        os.environ["TORCH_CUDA_ARCH_LIST"] = f"{major}.{minor}"
    path = os.path.abspath(path)
    if source_layout(path) == "aot" and "_nvdiffrast_c" not in sys.modules:
        module = load_extension(
            name="_nvdiffrast_c",
            sources=setup_sources(path),
            extra_cflags=["-DNVDR_TORCH"],
            extra_cuda_cflags=["-DNVDR_TORCH", "-lineinfo"],
            build_directory=build_dir,
            verbose=False,
        )
        sys.modules["_nvdiffrast_c"] = module
    else:
        os.environ.setdefault("TORCH_EXTENSIONS_DIR", build_dir)
    if path not in sys.path:
        sys.path.insert(0, path)
    import nvdiffrast.torch as dr

    return dr


def build(path: str, build_dir: str | None = None) -> dict:
    """Build the extension and create a ``RasterizeCudaContext`` (which triggers the
    JIT build of old checkouts); what the background build step records."""
    import time

    start = time.perf_counter()
    dr = load(path, build_dir)
    dr.RasterizeCudaContext()
    return {
        "layout": source_layout(path),
        "seconds": time.perf_counter() - start,
        "build_dir": build_dir or default_build_dir(),
    }


def nvdiffrast_pipeline(dr, ctx, pos, tri, colors, res, weights):
    """nvdiffrast's rasterize + interpolate + antialias (+ backward with ``weights``)."""
    rast, _ = dr.rasterize(ctx, pos, tri, resolution=[res, res])
    img, _ = dr.interpolate(colors, rast, tri)
    out = dr.antialias(img, rast, pos, tri)
    if weights is not None:
        (out * weights).sum().backward()
    return rast


def minirast_pipeline(pos, faces, colors, res, weights):
    """minirast's Triton rasterize + interpolate + antialias (+ backward)."""
    frag = minirast.rasterize(pos, faces, (res, res), backend="triton")
    img = minirast.interpolate(colors, frag, faces)
    out = minirast.antialias(img, frag, pos, faces)
    if weights is not None:
        (out * weights).sum().backward()
    return frag


def compare(dr, resolutions=RESOLUTIONS, batches=BATCHES, budget_s: float = 1.0) -> list[dict]:
    """Times of both pipelines (forward+backward) and the triangle-id agreement."""
    device = torch.device("cuda")
    verts, faces, _ = load_mesh()
    colors = minirast.normals_to_rgb(minirast.vertex_normals(verts, faces))
    ctx = dr.RasterizeCudaContext(device=device)
    tri = faces.to(device=device, dtype=torch.int32).contiguous()
    rows = []
    for batch in batches:
        _, clip = make_batch(verts, batch)
        pos = clip.to(device).contiguous().requires_grad_(True)
        col = colors.to(device).expand(batch, -1, -1).contiguous().requires_grad_(True)
        for res in resolutions:
            weights = torch.rand(batch, res, res, 3, device=device)

            def peer(p=pos, c=col, r=res, w=weights):
                p.grad = c.grad = None
                nvdiffrast_pipeline(dr, ctx, p, tri, c, r, w)

            def ours(p=pos, c=col, r=res, w=weights):
                p.grad = c.grad = None
                minirast_pipeline(p, tri, c, r, w)

            peer_ms = time_call(peer, device, max_repeats=20, budget_s=budget_s)
            ours_ms = time_call(ours, device, max_repeats=20, budget_s=budget_s)
            with torch.no_grad():
                rast = nvdiffrast_pipeline(dr, ctx, pos.detach(), tri, col.detach(), res, None)
                theirs = rast[..., 3].round().long() - 1
                mine = minirast.rasterize(pos.detach(), tri, (res, res), backend="triton").tri_id
            mine = mine.long()
            covered = (mine >= 0) | (theirs >= 0)
            rows.append(
                {
                    "resolution": res,
                    "batch": batch,
                    "nvdiffrast_ms": peer_ms,
                    "minirast_triton_ms": ours_ms,
                    "speedup_minirast_vs_nvdiffrast": peer_ms / ours_ms,
                    "pixel_agreement": float((mine == theirs).float().mean()),
                    "covered_pixel_agreement": float((mine == theirs)[covered].float().mean()),
                }
            )
    return rows


def run(path: str | None, dry_run: bool, build_dir: str | None = None) -> dict:
    """The stage's record; ``skipped`` (with the reason) when it cannot run here."""
    if not path:
        return {
            "skip_reason": "no --nvdiffrast PATH given (bench/GPU.md: how to carry its source)",
            "rows": [],
        }
    layout = source_layout(path)
    if not torch.cuda.is_available():
        return {
            "skip_reason": f"nvdiffrast's CUDA rasterizer needs a CUDA device (checkout at "
            f"{path}, {layout} layout, not built)",
            "rows": [],
            "layout": layout,
        }
    dr = load(path, build_dir)
    rows = compare(dr, budget_s=0.5 if dry_run else 1.0)
    worst = min(r["covered_pixel_agreement"] for r in rows)
    key = [r for r in rows if r["resolution"] == 224 and r["batch"] == 64]
    headline = f"layout {layout}; covered-pixel agreement >= {100 * worst:.2f} %"
    if key:
        k = key[0]
        headline += (
            f"; 224² B=64 fwd+bwd: nvdiffrast {k['nvdiffrast_ms']:.2f} ms, minirast "
            f"{k['minirast_triton_ms']:.2f} ms"
        )
    return {"layout": layout, "path": os.path.abspath(path), "rows": rows, "headline": headline}
