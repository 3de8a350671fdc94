"""``python -m bench.texture``: speed of :func:`minirast.texture` beside
``torch.nn.functional.grid_sample``.

The job: B = 8 images of 512² pixels sampling per-image 512² RGB textures at a smooth,
coherent uv field (an affine warp with a ripple, as a rendered surface gives), forward
and forward + backward (gradients to the texture and to uv of a weighted sum).
Backends: minirast's torch path (``backend="torch"``), bilinear with the clamp and wrap
boundaries and trilinear with mipmaps; ``grid_sample`` (bilinear, ``align_corners=
False``, ``padding_mode="border"``: exactly the clamp mode) on the same inputs; on a GPU
also minirast's Triton backend. Target (issue 25): the torch path's bilinear forward +
backward within 1.5x of grid_sample's. The two are timed interleaved (one call of
each in turn), so a machine shared with other work slows both alike.

Writes ``texture.json``, ``texture.md`` and ``texture.png`` under
``bench/results/<device-name>/``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as bench.raster: shared CPUs

import torch  # noqa: E402

if not torch.cuda.is_available():  # must precede the first import of triton
    os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

import torch.nn.functional as F  # noqa: E402

import minirast  # noqa: E402
from _common.figures import pyplot, save_figure  # noqa: E402
from bench.common import bench_device, machine_fields, synchronize, write_results  # noqa: E402

MODES = ("forward", "forward+backward")
#: The torch path's bilinear forward+backward must stay within this factor of grid_sample.
TARGET_RATIO = 1.5


def make_inputs(batch: int, res: int, tex_size: int, device, seed: int = 0):
    """``(tex [B,T,T,3], uv [B,res,res,2], uv_da [B,res,res,4], weights [B,res,res,3])``:
    per image a rotated, scaled uv grid with a ripple (texels per pixel about 0.7-1.6,
    so trilinear samples levels 0 and 1), and its exact pixel derivatives."""
    g = torch.Generator().manual_seed(seed)
    tex = torch.rand((batch, tex_size, tex_size, 3), generator=g)
    c = (torch.arange(res, dtype=torch.float64) + 0.5) / res
    y, x = torch.meshgrid(c, c, indexing="ij")
    uvs, das = [], []
    for _ in range(batch):
        angle, scale, amp = (torch.rand(3, generator=g, dtype=torch.float64) * 0.6).tolist()
        ca, sa, s = torch.cos(torch.tensor(angle)), torch.sin(torch.tensor(angle)), 0.7 + scale
        k = 2 * torch.pi * 3
        ripple = 0.02 * amp
        u = s * (ca * x - sa * y) + ripple * torch.sin(k * y)
        v = s * (sa * x + ca * y) + ripple * torch.sin(k * x)
        dx = 1.0 / res  # d(x)/d(column), d(y)/d(row)
        du_dx, du_dy = s * ca * dx, (-s * sa + ripple * k * torch.cos(k * y)) * dx
        dv_dx, dv_dy = (s * sa + ripple * k * torch.cos(k * x)) * dx, s * ca * dx
        uvs.append(torch.stack([u, v], -1))
        das.append(torch.stack([du_dx.expand_as(u), du_dy, dv_dx, dv_dy.expand_as(u)], -1))
    uv = torch.stack(uvs).float()
    uv_da = torch.stack(das).float()
    weights = torch.rand((batch, res, res, 3), generator=g)
    return [t.to(device) for t in (tex, uv, uv_da, weights)]


def grid_sample_call(tex, uv, _uv_da):
    image = tex.permute(0, 3, 1, 2)
    out = F.grid_sample(image, 2 * uv - 1, padding_mode="border", align_corners=False)
    return out.permute(0, 2, 3, 1)


def minirast_call(backend: str, filter_mode: str, boundary: str):
    def call(tex, uv, uv_da):
        return minirast.texture(
            tex, uv, uv_da, filter_mode=filter_mode, boundary_mode=boundary, backend=backend
        )

    return call


def step_fn(call, inputs, mode):
    """One timed call: the forward, or forward + backward of ``sum(out * weights)``."""
    tex, uv, uv_da, weights = inputs
    if mode == "forward":

        def step():
            with torch.no_grad():
                call(tex, uv, uv_da)

        return step
    tex_l = tex.clone().requires_grad_(True)
    uv_l = uv.clone().requires_grad_(True)

    def step():
        tex_l.grad = uv_l.grad = None
        (call(tex_l, uv_l, uv_da) * weights).sum().backward()

    return step


def time_interleaved(steps: dict, device, budget_s: float, max_rounds: int = 30) -> dict:
    """Median ms of each step, run in turn (one call each per round) after a warm-up,
    for at least 3 rounds and until ``budget_s`` is spent."""
    for step in steps.values():
        step()
    synchronize(device)
    times = {name: [] for name in steps}
    start = time.perf_counter()
    rounds = 0
    while rounds < max_rounds and (rounds < 3 or time.perf_counter() - start < budget_s):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            synchronize(device)
            times[name].append((time.perf_counter() - t0) * 1e3)
        rounds += 1
    return {name: statistics.median(ts) for name, ts in times.items()}


def cases(device) -> dict:
    """Backend label -> call."""
    out = {
        "grid_sample (bilinear, border)": grid_sample_call,
        "minirast torch, linear, clamp": minirast_call("torch", "linear", "clamp"),
        "minirast torch, linear, wrap": minirast_call("torch", "linear", "wrap"),
        "minirast torch, linear-mipmap-linear, wrap": minirast_call(
            "torch", "linear-mipmap-linear", "wrap"
        ),
    }
    if device.type == "cuda":
        out["minirast triton, linear, clamp"] = minirast_call("triton", "linear", "clamp")
        out["minirast triton, linear-mipmap-linear, wrap"] = minirast_call(
            "triton", "linear-mipmap-linear", "wrap"
        )
    return out


def run(batch: int, res: int, tex_size: int, budget_s: float, out_root: str, device) -> dict:
    inputs = make_inputs(batch, res, tex_size, device)
    calls = cases(device)
    rows = []
    load_before = os.getloadavg()
    for mode in MODES:
        steps = {name: step_fn(call, inputs, mode) for name, call in calls.items()}
        for name, ms in time_interleaved(steps, device, budget_s).items():
            rows.append({"backend": name, "mode": mode, "ms": ms})
    base = {r["mode"]: r["ms"] for r in rows if r["backend"].startswith("grid_sample")}
    for r in rows:
        r["ratio_to_grid_sample"] = r["ms"] / base[r["mode"]]
    ratios = {
        r["backend"]: r["ratio_to_grid_sample"]
        for r in rows
        if r["mode"] == "forward+backward" and r["backend"].startswith("minirast torch, linear,")
    }
    payload = {
        **machine_fields(device),
        "batch": batch,
        "resolution": res,
        "texture": tex_size,
        "rows": rows,
        "target_ratio": TARGET_RATIO,
        "bilinear_fwd_bwd_ratios": ratios,
        "target_met": all(v <= TARGET_RATIO for v in ratios.values()),
        "load_average_before_after": [load_before, os.getloadavg()],
    }
    write_results(out_root, "texture", payload, markdown, plot)
    return payload


def markdown(p: dict) -> str:
    lines = [
        f"# bench.texture on {p['device_model']} ({p['device']})",
        "",
        f"B = {p['batch']}, {p['resolution']}² pixels, per-image {p['texture']}² RGB "
        f"textures, float32; torch {p['torch']}, {p['threads']} threads; load average "
        f"before/after {p['load_average_before_after']}. Each row's calls were interleaved "
        "with grid_sample's.",
        "",
        "| backend | mode | ms | x grid_sample |",
        "|---|---|---|---|",
    ]
    for r in p["rows"]:
        lines.append(
            f"| {r['backend']} | {r['mode']} | {r['ms']:.2f} | {r['ratio_to_grid_sample']:.2f} |"
        )
    verdict = "met" if p["target_met"] else "missed"
    got = ", ".join(
        f"{k.split(', ')[-1]}: {v:.2f}x" for k, v in p["bilinear_fwd_bwd_ratios"].items()
    )
    lines += [
        "",
        f"Target: the torch path's bilinear forward+backward within {p['target_ratio']}x of "
        f"grid_sample: **{verdict}** ({got}).",
    ]
    return "\n".join(lines) + "\n"


def plot(p: dict, path: str) -> None:
    plt = pyplot()

    names = list(dict.fromkeys(r["backend"] for r in p["rows"]))
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(names) + 1.8))
    for k, mode in enumerate(MODES):
        ms = [
            next(r["ms"] for r in p["rows"] if r["backend"] == n and r["mode"] == mode)
            for n in names
        ]
        ax.barh([i + 0.4 * k for i in range(len(names))], ms, height=0.4, label=mode)
    ax.set_yticks([i + 0.2 for i in range(len(names))], names, fontsize=8)
    ax.set_xlabel("ms per call")
    ax.set_title(f"texture sampling, B={p['batch']}, {p['resolution']}², {p['device']}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m bench.texture", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--texture", type=int, default=512)
    parser.add_argument("--budget", type=float, default=3.0, help="timing seconds per mode")
    parser.add_argument("--out", default=os.path.join("bench", "results"), help="output root")
    parser.add_argument("--quick", action="store_true", help="a smoke run: B = 2, 64² pixels")
    args = parser.parse_args(argv)
    for name in ("batch", "resolution", "texture"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1")
    if args.budget <= 0:
        parser.error(f"--budget must be > 0, got {args.budget}")
    batch, res, tex, budget = args.batch, args.resolution, args.texture, args.budget
    if args.quick:
        batch, res, tex, budget = 2, 64, 64, 0.05
    return run(batch, res, tex, budget, args.out, bench_device(args.device))


if __name__ == "__main__":
    main()
