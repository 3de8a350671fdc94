"""``python -m bench.interpolate``: what ``interpolate(..., derivatives=True)`` costs.

Times rasterize + interpolate of a 2-channel attribute (UV-like) on the FLAME-sized
head of :mod:`bench.raster_scene`, values only against values and derivatives,
forward and forward+backward (gradients to the clip positions and the attribute),
per backend (``torch``; ``triton`` on a GPU only: the interpreter is never timed).
The two variants are timed in alternating rounds in one process and the report
gives the per-round ratio's median, so load from other processes on a shared
machine mostly cancels. Prints a table and writes ``interpolate.json`` under
``bench/results/<device-name>/`` (atomically).
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as bench.raster: shared CPUs

import torch  # noqa: E402

import minirast  # noqa: E402
from _common.atomic import write_json  # noqa: E402
from bench.common import bench_device, device_name, time_call  # noqa: E402
from bench.raster_scene import load_mesh, make_batch  # noqa: E402


def _step(clip, faces, attr, res, backend, derivatives, backward):
    """One rasterize + interpolate (+ backward of a fixed linear loss)."""
    pos = clip.detach().requires_grad_(backward)
    a = attr.detach().requires_grad_(backward)
    with torch.set_grad_enabled(backward):
        frag = minirast.rasterize(pos, faces, (res, res), backend=backend)
        out = minirast.interpolate(a, frag, faces, derivatives=derivatives)
        if backward:
            loss = out[0].sum() + out[1].square().sum() if derivatives else out.sum()
            loss.backward()


def measure(backend, device, res, batch, rounds, budget_s):
    """Median times (ms) of both variants and the median per-round ratio, per mode."""
    verts, faces, mesh = load_mesh()
    _, clip = make_batch(verts, batch, seed=1)
    clip, faces = clip.to(device), faces.to(device)
    attr = torch.rand(verts.shape[0], 2, generator=torch.Generator().manual_seed(0)).to(device)
    rows = []
    for backward in (False, True):
        times = {False: [], True: []}
        for _ in range(rounds):
            for deriv in (False, True):
                times[deriv].append(
                    time_call(
                        lambda d=deriv, bw=backward: _step(clip, faces, attr, res, backend, d, bw),
                        device,
                        warmup=1,
                        min_repeats=2,
                        max_repeats=10,
                        budget_s=budget_s,
                    )
                )
        ratios = [d / v for v, d in zip(times[False], times[True], strict=True)]
        rows.append(
            {
                "backend": backend,
                "mode": "forward+backward" if backward else "forward",
                "resolution": res,
                "batch": batch,
                "values_ms": statistics.median(times[False]),
                "values_and_derivatives_ms": statistics.median(times[True]),
                "ratio": statistics.median(ratios),
                "mesh": mesh,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--res", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget-s", type=float, default=1.0, help="per timed block")
    parser.add_argument("--out", default=os.path.join("bench", "results"))
    args = parser.parse_args(argv)
    device = bench_device(args.device)
    backends = ["torch"] + (["triton"] if device.type == "cuda" else [])
    rows = []
    for backend in backends:
        rows += measure(backend, device, args.res, args.batch, args.rounds, args.budget_s)
    print("| backend | mode | values ms | + derivatives ms | ratio (per-round median) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['backend']} | {r['mode']} | {r['values_ms']:.1f} | "
            f"{r['values_and_derivatives_ms']:.1f} | {r['ratio']:.2f} |"
        )
    path = os.path.join(args.out, device_name(device), "interpolate.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(path, {"device": device_name(device), "rows": rows})
    return rows


if __name__ == "__main__":
    main()
