"""The ``ncu`` stage: Nsight Compute on one launch of each Triton kernel.

``python -m bench.gpu.ncu`` is the workload ncu profiles: ``ppcam.project``
forward + backward at B = 4096 (FLAME size), then rasterize + interpolate +
antialias forward + backward of the bundled head at 224², B = 64, through the public
API, once each; every Triton kernel that path launches runs at least once. (The
``deterministic=False`` atomic backward kernels are not on the public path and
are not profiled.) The stage runs it under
``ncu --kernel-name regex:<kernels> --metrics ... --csv --page raw`` and keeps, per
launch, the duration, DRAM bytes and achieved bandwidth, achieved occupancy,
registers per thread and the SM and DRAM throughput in % of peak.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys

#: The metrics asked of ncu (one replay pass or few, unlike ``--set full``).
METRICS = {
    "gpu__time_duration.sum": "duration_ns",
    "dram__bytes.sum": "dram_bytes",
    "dram__throughput.avg.pct_of_peak_sustained_elapsed": "dram_pct_of_peak",
    "sm__throughput.avg.pct_of_peak_sustained_elapsed": "sm_pct_of_peak",
    "sm__warps_active.avg.pct_of_peak_sustained_active": "achieved_occupancy_pct",
    "launch__registers_per_thread": "registers",
    "launch__occupancy_limit_registers": "blocks_per_sm_limit_registers",
}
#: Where ncu lives when it is not on PATH.
NCU_CANDIDATES = ("/usr/local/cuda/bin/ncu", "/opt/nvidia/nsight-compute/ncu")


def find_ncu() -> str | None:
    """Path of the ``ncu`` executable, or None."""
    found = shutil.which("ncu")
    if found:
        return found
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    candidates = ([os.path.join(cuda_home, "bin", "ncu")] if cuda_home else []) + list(
        NCU_CANDIDATES
    )
    return next((c for c in candidates if os.path.isfile(c) and os.access(c, os.X_OK)), None)


def kernel_names() -> list[str]:
    """Names of every Triton kernel of ppcam and minirast (the compiled function names)."""
    import importlib

    names = set()
    for package in ("ppcam._triton", "minirast._triton"):
        names.update(
            spec["fn"].__name__ for spec in importlib.import_module(package).codegen_specs()
        )
    return sorted(names)


def ncu_command(ncu: str, names: list[str], dry_run: bool = False) -> list[str]:
    """The ncu command line that profiles the workload of this module."""
    regex = "regex:^(" + "|".join(names) + ")$"
    workload = [sys.executable, "-m", "bench.gpu.ncu"] + (["--dry-run"] if dry_run else [])
    return [
        ncu,
        "--target-processes",
        "all",
        "--kernel-name",
        regex,
        "--launch-count",
        "64",
        "--metrics",
        ",".join(METRICS),
        "--csv",
        "--page",
        "raw",
        *workload,
    ]


def parse_csv(text: str) -> list[dict]:
    """Rows of ncu's ``--csv --page raw`` output: one dict per profiled launch with the
    kernel name, block and grid size and the :data:`METRICS` (renamed, as numbers).

    Lines before the header (``==PROF==`` messages, the workload's output) and the
    units row after it are skipped."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith('"ID"')), None)
    if start is None:
        return []
    rows = []
    for rec in csv.DictReader(io.StringIO("\n".join(lines[start:]))):
        if not (rec.get("ID") or "").strip().isdigit():
            continue  # the units row, or trailing messages
        row = {
            "kernel": rec.get("Kernel Name"),
            "block": rec.get("Block Size"),
            "grid": rec.get("Grid Size"),
        }
        for metric, name in METRICS.items():
            raw = (rec.get(metric) or "").replace(",", "").strip()
            try:
                row[name] = float(raw)
            except ValueError:
                row[name] = None
        if row.get("dram_bytes") is not None and row.get("duration_ns"):
            row["dram_GBps"] = row["dram_bytes"] / row["duration_ns"]
        rows.append(row)
    return rows


def workload(dry_run: bool) -> None:
    """Each profiled op once: the projection, then the raster pipeline (with backward)."""
    import torch

    import minirast
    import ppcam
    from bench.gpu.determinism import scene_mesh
    from bench.projection import make_inputs
    from bench.raster import make_batch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch, points, res, images = (2, 64, 16, 1) if dry_run else (4096, 5023, 224, 64)
    inputs, grad = make_inputs(batch, points, device)
    leaves = [t.clone().requires_grad_() for t in inputs]
    ppcam.project(*leaves, backend="triton").backward(grad)
    verts, faces, _ = scene_mesh(small=dry_run)
    _, clip = make_batch(verts, images)
    pos = clip.to(device).requires_grad_(True)
    f = faces.to(device)
    colors = minirast.normals_to_rgb(minirast.vertex_normals(verts, faces)).to(device)
    colors.requires_grad_(True)
    frag = minirast.rasterize(pos, f, (res, res), backend="triton")
    img = minirast.interpolate(colors, frag, f)
    aa = minirast.antialias(img, frag, pos, f)
    ((img * img).sum() + (aa * aa).sum() + frag.depth.sum()).backward()
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(dry_run: bool, timeout: float) -> dict:
    """The stage's record: ncu's rows, or why ncu did not run (the workload still runs
    alone, so a dry run proves it works)."""
    import torch

    ncu = find_ncu()
    names = kernel_names()
    if not torch.cuda.is_available() or ncu is None:
        workload(dry_run)
        why = "no CUDA device" if not torch.cuda.is_available() else "ncu not found"
        return {
            "skip_reason": f"{why}; the workload ran without ncu",
            "kernels": names,
            "rows": [],
            "command": " ".join(ncu_command(ncu or "ncu", names, dry_run)),
        }
    cmd = ncu_command(ncu, names, dry_run)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    rows = parse_csv(proc.stdout)
    record = {
        "command": " ".join(cmd),
        "returncode": proc.returncode,
        "kernels": names,
        "rows": rows,
        "profiled": sorted({r["kernel"] for r in rows}),
    }
    if not rows:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-12:]
        record["skip_reason"] = "ncu profiled nothing: " + " | ".join(tail)
    else:
        record["headline"] = f"{len(rows)} launches of {len(record['profiled'])} kernels profiled"
    return record


if __name__ == "__main__":
    workload("--dry-run" in sys.argv[1:])
