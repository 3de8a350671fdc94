"""``python -m bench.projection``: throughput and gradient parity of the projection.

Compares the fused Triton kernels, the torch reference in eager mode and
``torch.compile`` of the reference, forward and forward+backward, for
FLAME-sized point sets (N = 5023) and B in {1, 8, 64, 512, 4096}, float32.
On a GPU it also reports achieved bandwidth against a device-to-device copy
of the same bytes measured in the same run. Everywhere it reports gradient
parity against a float64 reference, the per-kernel resource table of the
sm_90 compile, and a roofline estimate at H100 bandwidth.

Writes ``projection.json``, ``projection.md`` and ``projection.png`` under
``bench/results/<device-name>/``. On a machine without a GPU, Triton runs in
its CPU interpreter: those runs check that it works, and their times are not
speed figures (the report says so).
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

if not torch.cuda.is_available():  # must precede the first import of triton
    os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")

from tqdm import tqdm  # noqa: E402

import ppcam  # noqa: E402
from _common.atomic import write_json, write_text  # noqa: E402
from _common.figures import pyplot, save_figure
from bench.common import (  # noqa: E402
    H100_BANDWIDTH,
    cpu_model,
    device_name,
    synchronize,
    time_call,
)

FLAME_POINTS = 5023
DEFAULT_BATCHES = (1, 8, 64, 512, 4096)
#: Batch sizes the Triton interpreter runs on a CPU-only machine (a smoke run).
INTERPRETER_BATCHES = (1, 8)
#: Bytes per point each kernel must move (float32): forward reads q (12 B) and
#: writes uv (8 B) and the validity byte (1 B); backward reads q (12 B) and the
#: upstream gradient (8 B) and writes dL/dq (12 B). Per-batch values are noise.
BYTES_PER_POINT = {"forward": 21, "forward+backward": 21 + 32}
MODES = ("forward", "forward+backward")


def make_inputs(batch: int, n: int, device: torch.device, dtype=torch.float32, seed: int = 0):
    """Head-sized random points (within 0.12 m), S ~ 7, small translations,
    rho in [0, 5] and random rotations, as in a face regressor's batch."""
    g = torch.Generator().manual_seed(seed)
    points = (torch.rand(batch, n, 3, generator=g) * 2 - 1) * 0.07
    scale = 6 + 2 * torch.rand(batch, generator=g)
    trans = (torch.rand(batch, 2, generator=g) * 2 - 1) * 0.02
    rho = 5 * torch.rand(batch, generator=g)
    q, r = torch.linalg.qr(torch.randn(batch, 3, 3, generator=g))
    rotation = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    grad = torch.randn(batch, n, 2, generator=g)
    cast = [t.to(device=device, dtype=dtype) for t in (points, scale, trans, rho, rotation, grad)]
    return cast[:5], cast[5]


def _compiled_reference():
    fn = torch.compile(
        lambda q, s, t, r, rot: ppcam.project_reference(q, s, t, r, rot, ppcam.DEFAULT_MIN_W)[0],
        dynamic=True,
    )
    return lambda *args: fn(*args)


def backends_for(device: torch.device, use_compile: bool) -> dict:
    """name -> callable(points, scale, trans, rho, rotation) -> uv."""
    out = {
        "triton": lambda *a: ppcam.project(*a, backend="triton"),
        "torch": lambda *a: ppcam.project(*a, backend="torch"),
    }
    if use_compile:
        out["torch.compile"] = _compiled_reference()
    return out


def measure(fn, inputs, grad, mode: str, device: torch.device, budget_s: float) -> float:
    if mode == "forward":

        def step():
            with torch.no_grad():
                fn(*inputs)

    else:
        leaves = [t.detach().clone().requires_grad_() for t in inputs]

        def step():
            fn(*leaves).backward(grad)

    return time_call(step, device, budget_s=budget_s)


def copy_bandwidth(n_bytes: int, device: torch.device, budget_s: float) -> float:
    """Bytes/s of a device-to-device copy moving ``n_bytes`` in total (read + write)."""
    numel = max(1, n_bytes // 2 // 4)
    src = torch.empty(numel, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    ms = time_call(lambda: dst.copy_(src), device, budget_s=budget_s)
    return 2 * numel * 4 / (ms * 1e-3)


def gradient_parity(backends: dict, device: torch.device, batch: int, n: int) -> list[dict]:
    """Max abs/rel error of each backend's output and gradients vs float64 torch."""
    inputs64, grad64 = make_inputs(batch, n, device, torch.float64, seed=1)
    leaves64 = [t.clone().requires_grad_() for t in inputs64]
    ref_out = ppcam.project(*leaves64, backend="torch")
    ref_grads = torch.autograd.grad(ref_out, leaves64, grad64)
    names = ("uv", "points", "scale", "trans", "rho", "rotation")
    rows = []
    for name, fn in backends.items():
        leaves = [t.detach().float().requires_grad_() for t in inputs64]
        out = fn(*leaves)
        grads = torch.autograd.grad(out, leaves, grad64.float())
        for what, a, b in zip(names, (out, *grads), (ref_out, *ref_grads)):
            err = (a.double() - b).abs().max().item()
            rows.append(
                {
                    "backend": name,
                    "tensor": what,
                    "max_abs_error": err,
                    "max_rel_error": err / max(b.abs().max().item(), 1e-30),
                }
            )
    return rows


def kernel_resource_rows() -> list[dict]:
    from bench.kernel_resources import module_resources

    return [r.__dict__ for r in module_resources("ppcam._triton", targets=("sm_90",))]


def run(
    batches,
    n: int,
    use_compile: bool,
    budget_s: float,
    out_root: str,
    parity_batch: int = 8,
    resources: bool = True,
) -> dict:
    """Time every case and write the report; ``resources``: also compile the kernels for
    sm_90 and report their registers (a child process)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    interpreted = device.type != "cuda"
    backends = backends_for(device, use_compile)
    cases = []
    for batch in batches:
        for name in backends:
            if name == "triton" and interpreted and batch not in INTERPRETER_BATCHES:
                continue
            for mode in MODES:
                cases.append((batch, name, mode))

    rows = []
    copy_bw: dict[tuple[int, str], float] = {}
    bar = tqdm(cases, desc="bench.projection", unit="case")
    for batch, name, mode in bar:
        bar.set_postfix_str(f"B={batch} {name} {mode}")
        inputs, grad = make_inputs(batch, n, device)
        budget = 0.2 if (name == "triton" and interpreted) else budget_s
        ms = measure(backends[name], inputs, grad, mode, device, budget)
        n_bytes = BYTES_PER_POINT[mode] * batch * n
        row = {
            "batch": batch,
            "points": n,
            "backend": name,
            "mode": mode,
            "ms": ms,
            "points_per_s": batch * n / (ms * 1e-3),
            "interpreter": name == "triton" and interpreted,
            "roofline_ms_h100": n_bytes / H100_BANDWIDTH * 1e3,
        }
        if device.type == "cuda":
            key = (batch, mode)
            if key not in copy_bw:
                copy_bw[key] = copy_bandwidth(n_bytes, device, budget_s)
            row["achieved_GBps"] = n_bytes / (ms * 1e-3) / 1e9
            row["copy_GBps"] = copy_bw[key] / 1e9
            row["fraction_of_copy"] = row["achieved_GBps"] / row["copy_GBps"]
        rows.append(row)
        del inputs, grad
        synchronize(device)

    parity = gradient_parity(backends, device, parity_batch, n)
    if not resources:
        resources, resources_error = [], "not asked for (resources=False)"
    else:
        try:
            resources = kernel_resource_rows()
            resources_error = None
        except Exception as exc:  # reported, not fatal: the timings stand on their own
            resources, resources_error = [], str(exc)

    name = device_name(device)
    out_dir = os.path.join(out_root, name)
    os.makedirs(out_dir, exist_ok=True)
    payload = {
        "benchmark": "projection",
        "device": name,
        "device_description": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{cpu_model()} ({os.cpu_count()} cores)",
        "triton_interpreted": interpreted,
        "torch_version": torch.__version__,
        "dtype": "float32",
        "points": n,
        "bytes_per_point": BYTES_PER_POINT,
        "h100_bandwidth_Bps": H100_BANDWIDTH,
        "rows": rows,
        "gradient_parity": parity,
        "kernel_resources_sm90": resources,
        "kernel_resources_error": resources_error,
        "command": "python -m bench.projection " + " ".join(sys.argv[1:]),
    }
    write_json(os.path.join(out_dir, "projection.json"), payload)
    write_text(os.path.join(out_dir, "projection.md"), markdown_report(payload))
    plot(payload, os.path.join(out_dir, "projection.png"))
    payload["out_dir"] = out_dir
    return payload


def markdown_report(p: dict) -> str:
    gpu = not p["triton_interpreted"]
    lines = [
        f"# bench.projection on {p['device_description']}",
        "",
        f"float32, N = {p['points']} points per batch element, torch {p['torch_version']}.",
        f"Command: `{p['command']}`",
        "",
    ]
    if not gpu:
        lines += [
            "**No GPU: Triton ran in its CPU interpreter (`TRITON_INTERPRET=1`), only at "
            f"B in {list(INTERPRETER_BATCHES)}. Those times check that the kernels run; "
            "they are not speed figures.**",
            "",
        ]
    head = "| B | mode | backend | ms | Mpoints/s | H100 roofline ms |"
    sep = "|---|---|---|---|---|---|"
    if gpu:
        head += " GB/s | copy GB/s | % of copy |"
        sep += "---|---|---|"
    lines += ["## Throughput", "", head, sep]
    for r in p["rows"]:
        backend = r["backend"] + (" (interpreter)" if r["interpreter"] else "")
        line = (
            f"| {r['batch']} | {r['mode']} | {backend} | {r['ms']:.3f} | "
            f"{r['points_per_s'] / 1e6:.2f} | {r['roofline_ms_h100']:.3g} |"
        )
        if gpu:
            line += (
                f" {r['achieved_GBps']:.0f} | {r['copy_GBps']:.0f} | "
                f"{100 * r['fraction_of_copy']:.0f} % |"
            )
        lines.append(line)
    lines += [
        "",
        "## Roofline",
        "",
        "Bytes each kernel must move per point (float32): "
        + ", ".join(f"{k}: {v} B" for k, v in p["bytes_per_point"].items())
        + f"; the H100 roofline column divides them by {p['h100_bandwidth_Bps'] / 1e12:.2f} TB/s "
        "(H100 SXM HBM3 peak).",
        "",
        "## Gradient parity against a float64 torch reference (B = 8)",
        "",
        "| backend | tensor | max abs error | max rel error |",
        "|---|---|---|---|",
    ]
    for r in p["gradient_parity"]:
        lines.append(
            f"| {r['backend']} | {r['tensor']} | {r['max_abs_error']:.2e} | "
            f"{r['max_rel_error']:.2e} |"
        )
    lines += ["", "## Kernel resources (sm_90 compile, no GPU needed)", ""]
    if p["kernel_resources_sm90"]:
        from bench.kernel_resources import KernelResources, format_table

        lines.append(format_table([KernelResources(**r) for r in p["kernel_resources_sm90"]]))
    else:
        lines.append(f"Not available: {p['kernel_resources_error']}")
    return "\n".join(lines) + "\n"


def plot(p: dict, path: str) -> None:
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=False)
    for ax, mode in zip(axes, MODES):
        rows = [r for r in p["rows"] if r["mode"] == mode]
        for backend in dict.fromkeys(r["backend"] for r in rows):
            pts = sorted(
                (r["batch"], r["ms"], r["interpreter"]) for r in rows if r["backend"] == backend
            )
            interp = any(i for _, _, i in pts)
            ax.plot(
                [b for b, _, _ in pts],
                [m for _, m, _ in pts],
                marker="o",
                linestyle=":" if interp else "-",
                label=backend + (" (interpreter: not a speed figure)" if interp else ""),
            )
        roof = sorted({(r["batch"], r["roofline_ms_h100"]) for r in rows})
        ax.plot([b for b, _ in roof], [m for _, m in roof], "k--", lw=1, label="H100 roofline")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"batch size B (N = {p['points']} points each)")
        ax.set_ylabel("time per call (ms)")
        ax.set_title(mode)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"ppcam.project, float32, {p['device_description']}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
    plt.close(fig)


def _positive_ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers, got {text!r}"
        ) from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers, got {text!r}"
        )
    return values


def _positive_int(text: str) -> int:
    values = _positive_ints(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one positive integer, got {text!r}")
    return values[0]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m bench.projection", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--batches",
        type=_positive_ints,
        default=list(DEFAULT_BATCHES),
        help="comma-separated batch sizes (default: 1,8,64,512,4096)",
    )
    parser.add_argument(
        "--points", type=_positive_int, default=FLAME_POINTS, help="points per element (5023)"
    )
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--budget", type=float, default=1.0, help="timing seconds per case")
    parser.add_argument("--out", default=os.path.join("bench", "results"), help="output root")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: B in {1, 8}, N = 1000, no torch.compile, short timing",
    )
    args = parser.parse_args(argv)
    if args.budget <= 0:
        parser.error(f"--budget must be > 0, got {args.budget}")
    batches, n, use_compile, budget = args.batches, args.points, not args.no_compile, args.budget
    if args.quick:
        batches, n, use_compile, budget = [1, 8], 1000, False, 0.05
    payload = run(batches, n, use_compile, budget, args.out, parity_batch=min(8, max(batches)))
    print(markdown_report(payload))
    print(f"wrote {payload['out_dir']}/projection.{{json,md,png}}")
    return payload


if __name__ == "__main__":
    main()
