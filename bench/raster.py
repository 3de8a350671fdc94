"""``python -m bench.raster``: speed of the rasterizer, torch vs Triton vs peers.

Frames per second, forward and forward+backward of the full differentiable
pipeline (rasterize + interpolate + antialias), for a FLAME-sized mesh (the
bundled stand-in head when ``flame.load_model("bundled")`` works, else a UV
sphere of about the same size) at 224² and 512², B in {1, 8, 64}, with random
head poses. Backends: minirast's ``torch`` backend, its ``triton`` backend
(GPU only: on a CPU-only machine Triton runs in its interpreter, which is run
once on a tiny case as a correctness smoke test and never timed), and the peers
a user would pick instead, where installed (``bench.peers``), for the visibility
job (triangle id per pixel at pixel centres, with pixel agreement against
minirast's torch ``rasterize``): OpenGL on Mesa's llvmpipe (CPU, through
moderngl: triangle id, barycentrics and depth read back) and Mitsuba 3
(``llvm_ad_rgb``, CPU, triangle index and depth AOVs); PyTorch3D and nvdiffrast
(GPU) are only detected.

Writes ``raster.json``, ``raster.md`` and ``raster.png`` under
``bench/results/<device-name>/``; prints the Triton kernels' register/shared
memory table (compiled for sm_90 and sm_80 without a GPU).

This module holds the pipeline cases, the run, the report and the command line; the
mesh, poses and camera are in :mod:`bench.raster_scene`, the visibility job against
the peers in :mod:`bench.peers.visibility`.

Peers are optional: ``pip install moderngl`` and, on Debian/Ubuntu,
``apt-get install libegl-mesa0 libgl1-mesa-dri`` for llvmpipe; ``pip install
mitsuba`` for Mitsuba 3 (on Debian 12 its LLVM backend needs ``apt-get install
libllvm19`` and, when it still finds LLVM 15,
``DRJIT_LIBLLVM_PATH=/usr/lib/x86_64-linux-gnu/libLLVM-19.so``; the bench sets
that path itself when the file exists).
"""

from __future__ import annotations

import argparse
import os
import time

# On a shared CPU, OpenMP threads that spin at barriers while another process holds the
# core make every torch op wait for a time slice (a 2-thread run measured 10x slower than
# 1 thread here); passive waiting avoids that. Must be set before torch starts OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

if not torch.cuda.is_available():  # must precede the first import of triton
    os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

import minirast  # noqa: E402
from _common.atomic import write_json, write_text  # noqa: E402
from _common.figures import pyplot, save_figure
from bench.common import (  # noqa: E402
    cpu_model,
    device_name,
    time_call,
)
from bench.peers.visibility import visibility_table, visibility_vs_peers  # noqa: E402
from bench.raster_scene import RHO, SCALE, load_mesh, make_batch  # noqa: E402

RESOLUTIONS = (224, 512)
BATCHES = (1, 8, 64)
MODES = ("forward", "forward+backward")
#: On a CPU, cases with more pixels than this (B*H*W) are skipped as too slow
#: (every default case runs since the span rasterizer: 64 x 512² takes about 2 s).
CPU_MAX_PIXELS = 64 * 512 * 512
#: The visibility job (rasterize alone, beside the peers) runs up to this many pixels
#: B*H*W on a CPU: all of 512² x 64 (about 4 s a call for minirast on a 2-core CPU).
VISIBILITY_MAX_PIXELS = 64 * 512 * 512


# --------------------------------------------------------------------- minirast


def pipeline(pos, faces, colors, res, backend, weights=None):
    """rasterize + interpolate + antialias; with ``weights``, also backward of a weighted sum."""
    frag = minirast.rasterize(pos, faces, (res, res), backend=backend)
    img = minirast.interpolate(colors, frag, faces)
    out = minirast.antialias(img, frag, pos, faces)
    if weights is not None:
        (out * weights).sum().backward()
    return frag, out


def time_minirast(backend, clip, faces, colors, res, mode, device, budget_s):
    pos = clip.to(device)
    f = faces.to(device)
    col = colors.to(device)
    if mode == "forward":

        def step():
            with torch.no_grad():
                pipeline(pos, f, col, res, backend)

    else:
        weights = torch.rand(clip.shape[0], res, res, 3, device=device)
        leaf = pos.clone().requires_grad_(True)
        col_leaf = col.clone().requires_grad_(True)

        def step():
            leaf.grad = None
            col_leaf.grad = None
            pipeline(leaf, f, col_leaf, res, backend, weights)

    heavy = clip.shape[0] * res * res >= 8 * 224 * 224
    return time_call(
        step, device, warmup=1 if heavy else 2, min_repeats=3, max_repeats=20, budget_s=budget_s
    )


def triton_interpreter_smoke(verts, faces):
    """On CPU: the Triton backend under the interpreter on a tiny case, compared with
    the torch backend (agreement only; interpreter times are not speed figures)."""
    _, clip = make_batch(verts, 1, seed=3)
    res = 32
    t0 = time.perf_counter()
    a = minirast.rasterize(clip, faces, (res, res), backend="triton")
    wall = time.perf_counter() - t0
    b = minirast.rasterize(clip, faces, (res, res), backend="torch")
    same = (a.tri_id == b.tri_id).float().mean().item()
    both = (a.tri_id == b.tri_id) & b.mask
    bary_err = (a.bary - b.bary)[both].abs().max().item() if bool(both.any()) else 0.0
    return {
        "case": f"B=1, {res}x{res}, full mesh",
        "tri_id_agreement": same,
        "max_bary_difference": bary_err,
        "interpreter_wall_s_not_a_speed_figure": wall,
    }


# ------------------------------------------------------------------------- run


def kernel_resource_rows():
    from bench.kernel_resources import format_table, module_resources

    rows = module_resources("minirast._triton")
    return [r.__dict__ for r in rows], format_table(rows)


def run(
    resolutions,
    batches,
    budget_s,
    out_root,
    with_peers,
    with_resources,
    cpu_max_pixels,
    mesh=None,
    visibility_max_pixels=VISIBILITY_MAX_PIXELS,
):
    """Every case; ``mesh``: ``(verts, faces, name)`` instead of :func:`load_mesh`'s.
    ``cpu_max_pixels`` bounds the pipeline cases on a CPU, ``visibility_max_pixels`` the
    visibility job beside the peers."""
    from bench.peers import load_peers

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    verts, faces, mesh_name = mesh if mesh is not None else load_mesh()
    colors = minirast.normals_to_rgb(minirast.vertex_normals(verts, faces))
    backends = ["torch"] + (["triton"] if device.type == "cuda" else [])
    if with_peers:
        peers, notes = load_peers(
            faces, len(verts), scale=SCALE, rho=RHO, threads=torch.get_num_threads()
        )
    else:
        peers, notes = [], ["peers skipped"]
    load_before = os.getloadavg()
    cases = [(r, b, be, m) for r in resolutions for b in batches for be in backends for m in MODES]
    results, skipped = [], []
    batches_cache = {}
    for res, batch, backend, mode in tqdm(cases, desc="minirast", unit="case"):
        if device.type == "cpu" and batch * res * res > cpu_max_pixels:
            skipped.append(
                {"backend": backend, "mode": mode, "resolution": res, "batch": batch,
                 "reason": f"B*H*W > {cpu_max_pixels} pixels: too slow on this CPU"}
            )  # fmt: skip
            continue
        if batch not in batches_cache:
            batches_cache[batch] = make_batch(verts, batch)
        _, clip = batches_cache[batch]
        ms = time_minirast(backend, clip, faces, colors, res, mode, device, budget_s)
        results.append(
            {"backend": backend, "mode": mode, "resolution": res, "batch": batch,
             "ms": ms, "fps": batch / (ms * 1e-3)}
        )  # fmt: skip
    visibility = visibility_vs_peers(
        peers,
        verts,
        faces,
        resolutions,
        batches,
        device,
        budget_s,
        visibility_max_pixels,
        batches_cache,
    )
    peer_info = [
        {"name": peer.name, "short": peer.short, "version": peer.version, **peer.details}
        for peer in peers
    ]
    for peer in peers:
        if hasattr(peer, "close"):
            peer.close()
    smoke = triton_interpreter_smoke(verts, faces) if device.type == "cpu" else None
    resources, resource_table = ([], "")
    if with_resources:
        try:
            resources, resource_table = kernel_resource_rows()
        except Exception as exc:
            resource_table = f"kernel resources unavailable: {type(exc).__name__}: {exc}"
    out_dir = os.path.join(out_root, device_name(device))
    os.makedirs(out_dir, exist_ok=True)
    payload = {
        "device": device_name(device),
        "cpu_model": cpu_model(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "mesh": mesh_name,
        "vertices": len(verts),
        "faces": int(faces.shape[0]),
        "camera": {"scale": SCALE, "rho": RHO, "poses": "random yaw/pitch within 30 degrees"},
        "results": results,
        "skipped": skipped,
        "visibility_max_pixels": visibility_max_pixels,
        "peers": peer_info,
        "visibility_vs_peers": visibility,
        "peer_notes": notes,
        "triton_interpreter_smoke": smoke,
        "kernel_resources": resources,
        "out_dir": out_dir,
    }
    write_json(os.path.join(out_dir, "raster.json"), payload)
    write_text(os.path.join(out_dir, "raster.md"), markdown_report(payload, resource_table))
    plot(payload, os.path.join(out_dir, "raster.png"))
    return payload, resource_table


def markdown_report(p: dict, resource_table: str = "") -> str:
    lines = [
        "# minirast rasterizer benchmark",
        "",
        f"Device `{p['device']}` ({p['cpu_model']}), torch {p['torch']}, "
        f"{p['torch_threads']} torch threads (OMP_WAIT_POLICY={p['omp_wait_policy']}); "
        "load average before/after "
        f"{p['load_average_before'][0]:.1f} / {p['load_average_after'][0]:.1f} "
        "(the machine may be shared: times are medians of a few runs).",
        f"Mesh: {p['mesh']} ({p['vertices']} vertices, {p['faces']} faces), random poses, "
        f"ppcam camera S={p['camera']['scale']}, rho={p['camera']['rho']}.",
        "Pipeline: rasterize + interpolate (3 channels) + antialias; forward+backward adds "
        "the backward of a weighted image sum to positions and colours.",
        "",
        "| backend | mode | resolution | B | ms | images/s |",
        "|---|---|---|---|---|---|",
    ]
    for r in p["results"]:
        lines.append(
            f"| {r['backend']} | {r['mode']} | {r['resolution']}² | {r['batch']} | "
            f"{r['ms']:.1f} | {r['fps']:.1f} |"
        )
    for s in p["skipped"]:
        lines.append(
            f"| {s['backend']} | {s['mode']} | {s['resolution']}² | {s['batch']} | "
            f"skipped: {s['reason']} | |"
        )
    if p["visibility_vs_peers"]:
        lines += ["", *visibility_table(p)]
    lines += ["", "Peers: " + "; ".join(p["peer_notes"]) + "."]
    if p["triton_interpreter_smoke"]:
        s = p["triton_interpreter_smoke"]
        lines += [
            "",
            "Triton backend: no GPU here, so it ran only in the Triton CPU interpreter on a "
            f"tiny case ({s['case']}) as a correctness check, not timed as speed: triangle ids "
            f"agree with the torch backend on {100 * s['tri_id_agreement']:.2f} % of pixels, "
            f"barycentrics differ by at most {s['max_bary_difference']:.2e}.",
        ]
    if resource_table:
        lines += [
            "",
            "## Triton kernels (compiled without a GPU)",
            "",
            "```",
            resource_table,
            "```",
        ]
    return "\n".join(lines) + "\n"


def plot(p: dict, path: str) -> None:
    plt = pyplot()
    import matplotlib.ticker

    vis_all = p["visibility_vs_peers"]
    resolutions = sorted(
        {r["resolution"] for r in p["results"]} | {v["resolution"] for v in vis_all}
    )
    panels = max(1, len(resolutions))
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.2))
    axes = np.atleast_1d(axes)
    for ax, res in zip(axes, resolutions):
        for backend in sorted({r["backend"] for r in p["results"]}):
            for mode, style in zip(MODES, ("-o", "--s")):
                rows = [
                    r
                    for r in p["results"]
                    if r["resolution"] == res and r["backend"] == backend and r["mode"] == mode
                ]
                if rows:
                    ax.plot(
                        [r["batch"] for r in rows],
                        [r["fps"] for r in rows],
                        style,
                        label=f"minirast {backend} {mode}",
                    )
        vis = [v for v in vis_all if v["resolution"] == res]
        for peer in dict.fromkeys(v["peer"] for v in vis):
            rows = [v for v in vis if v["peer"] == peer]
            ax.plot(
                [v["batch"] for v in rows],
                [v["batch"] / (v["peer_ms"] * 1e-3) for v in rows],
                ":^",
                label=f"{peer} visibility only",
            )
        ours = {v["batch"]: v["torch_rasterize_ms"] for v in vis}
        if ours:
            ax.plot(
                list(ours),
                [b / (ms * 1e-3) for b, ms in ours.items()],
                ":v",
                label="minirast torch rasterize only",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        shown = sorted(
            {r["batch"] for r in p["results"] if r["resolution"] == res} | {v["batch"] for v in vis}
        )
        ax.set_xticks(shown, [str(b) for b in shown])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel("batch size B")
        ax.set_ylabel("images / s")
        ax.set_title(f"{res}x{res}, {p['device']}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m bench.raster", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--resolutions", type=_ints, default=list(RESOLUTIONS))
    parser.add_argument("--batches", type=_ints, default=list(BATCHES))
    parser.add_argument("--budget", type=float, default=2.0, help="timing seconds per case")
    parser.add_argument("--out", default=os.path.join("bench", "results"), help="output root")
    parser.add_argument(
        "--no-peers", action="store_true", help="skip the peers (OpenGL llvmpipe, Mitsuba 3)"
    )
    parser.add_argument(
        "--no-resources", action="store_true", help="skip compiling the kernels for sm_90/sm_80"
    )
    parser.add_argument(
        "--cpu-max-pixels",
        type=int,
        default=CPU_MAX_PIXELS,
        help=f"on CPU, skip cases with B*H*W above this (default {CPU_MAX_PIXELS})",
    )
    parser.add_argument(
        "--visibility-max-pixels",
        type=int,
        default=VISIBILITY_MAX_PIXELS,
        help="on CPU, skip visibility cases (rasterize alone vs the peers) with B*H*W above "
        f"this (default {VISIBILITY_MAX_PIXELS}: every default case)",
    )
    parser.add_argument(
        "--threads", type=_ints, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 64², B in {1, 2}")
    args = parser.parse_args(argv)
    if args.budget <= 0:
        parser.error(f"--budget must be > 0, got {args.budget}")
    if args.threads is not None:
        if len(args.threads) != 1:
            parser.error("--threads takes one number")
        torch.set_num_threads(args.threads[0])
    resolutions, batches, budget = args.resolutions, args.batches, args.budget
    if args.quick:
        resolutions, batches, budget = [64], [1, 2], 0.05
    payload, table = run(
        resolutions,
        batches,
        budget,
        args.out,
        not args.no_peers,
        not args.no_resources,
        args.cpu_max_pixels,
        visibility_max_pixels=args.visibility_max_pixels,
    )
    print(markdown_report(payload, table))
    print(f"wrote {payload['out_dir']}/raster.{{json,md,png}}")
    return payload


if __name__ == "__main__":
    main()
