"""``python -m bench.regressor``: training throughput of the face regressors.

Images per second of one forward + backward pass (the loss is the sum of every
predicted tensor, so every parameter gets a gradient) of

- ``smirk``: SMIRK's encoder with the paper's rho head (``arch="smirk"``, the
  released model's structure: two MobileNetV3-large-minimal and one
  small-minimal backbone, about 3.6 M parameters), and
- ``small``: this project's regressor at the default preset's width (0.5) and at
  the full preset's (1.0),

at 224 px and batch 32 by default, in train mode. On a GPU each runs in float32
and under bfloat16 autocast (what ``TrainConfig.amp`` does); on a CPU in float32.
Writes ``regressor.json``, ``regressor.md`` and ``regressor.png`` under
``bench/results/<device-name>/``.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/raster.py

import torch  # noqa: E402

from _common.figures import pyplot, save_figure
from bench.common import bench_device, machine_fields, time_call, write_results  # noqa: E402
from train.models.regressor import FaceRegressor  # noqa: E402
from train.models.smirk.adapter import SmirkRegressor  # noqa: E402

#: model name -> constructor (all with the rho camera, SMIRK's 300 shape / 50 expression)
MODELS = {
    "smirk": lambda: SmirkRegressor(n_shape=300, n_expr=50, camera="pseudo"),
    "small-w0.5": lambda: FaceRegressor(n_shape=300, n_expr=50, camera="pseudo", width=0.5),
    "small-w1.0": lambda: FaceRegressor(n_shape=300, n_expr=50, camera="pseudo", width=1.0),
}


def train_step(model: torch.nn.Module, images: torch.Tensor, autocast: bool):
    """One forward + backward pass; returns a closure for the timer."""

    def step():
        model.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            pred = model(images)
        loss = sum(v.float().sum() for v in pred if isinstance(v, torch.Tensor))
        loss.backward()

    return step


def measure(size: int, batch: int, device: torch.device, budget: float) -> list[dict]:
    """One row per (model, precision): ms per step and images per second."""
    rows = []
    images = torch.rand(batch, 3, size, size, device=device)
    precisions = ("float32", "bfloat16-autocast") if device.type == "cuda" else ("float32",)
    for name, make in MODELS.items():
        torch.manual_seed(0)
        model = make().to(device).train()
        params = sum(p.numel() for p in model.parameters())
        for precision in precisions:
            step = train_step(model, images, precision != "float32")
            ms = time_call(step, device, warmup=1, min_repeats=2, budget_s=budget)
            rows.append(
                {
                    "model": name,
                    "parameters": params,
                    "precision": precision,
                    "size": size,
                    "batch": batch,
                    "ms_per_step": ms,
                    "images_per_s": batch / (ms / 1e3),
                }
            )
    return rows


def markdown(payload: dict) -> str:
    lines = [
        "# Regressor training throughput (forward + backward)",
        "",
        f"Device: {payload['device']} ({payload['device_model']}), torch {payload['torch']}, "
        f"{payload['threads']} CPU threads; {payload['size']} px, batch {payload['batch']}, "
        "train mode, rho camera, 300 shape / 50 expression coefficients.",
        "",
        "| model | parameters | precision | ms / step | images / s |",
        "|---|---:|---|---:|---:|",
    ]
    for r in payload["rows"]:
        lines.append(
            f"| {r['model']} | {r['parameters']:,} | {r['precision']} | "
            f"{r['ms_per_step']:.1f} | {r['images_per_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def plot(payload: dict, path: str) -> None:
    plt = pyplot()

    rows = payload["rows"]
    labels = [f"{r['model']}\n{r['precision']}" for r in rows]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(rows), 3.2))
    ax.bar(labels, [r["images_per_s"] for r in rows], color="#4c72b0")
    ax.set_ylabel("images / s (forward + backward)")
    ax.set_title(f"{payload['device']}: {payload['size']} px, batch {payload['batch']}")
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m bench.regressor", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--size", type=int, default=224, help="image size in pixels (>= 32)")
    parser.add_argument("--batch", type=int, default=32, help="images per step")
    parser.add_argument("--budget", type=float, default=5.0, help="timing seconds per case")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--out", default=os.path.join("bench", "results"), help="output root")
    parser.add_argument("--quick", action="store_true", help="smoke run: 32 px, batch 2")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.batch, args.budget = 32, 2, 0.01
    if args.size < 32:
        parser.error(f"--size must be >= 32, got {args.size}")
    if args.batch < 2:
        parser.error(f"--batch must be >= 2 (BatchNorm in train mode), got {args.batch}")
    if not args.budget > 0:
        parser.error(f"--budget must be > 0, got {args.budget}")
    device = bench_device(args.device)
    rows = measure(args.size, args.batch, device, args.budget)
    payload = {
        **machine_fields(device),
        "size": args.size,
        "batch": args.batch,
        "rows": rows,
    }
    write_results(args.out, "regressor", payload, markdown, plot)
    return payload


if __name__ == "__main__":
    main()
