"""Forward and forward+backward throughput of ``flame.FLAME`` on this machine.

    python -m flame.throughput [--batch 64] [--threads N] [--repeats 9] [--flame PATH]

Prints the median wall time and process CPU time per call for a batch of
random parameters (all inputs requiring gradients; the loss is the sum of
squared vertices and landmarks). On a loaded machine the CPU time is the
steadier number.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from .cli import add_flame_arguments, model_from_args
from .layer import FLAME


def measure(layer: FLAME, batch: int, repeats: int) -> dict[str, float]:
    """Median milliseconds: forward / forward+backward, wall and CPU."""
    g = torch.Generator().manual_seed(0)
    dtype = layer.v_template.dtype

    def rnd(*shape: int, scale: float) -> torch.Tensor:
        return (torch.randn(*shape, generator=g, dtype=dtype) * scale).requires_grad_(True)

    args = {
        "shape": rnd(batch, layer.n_shape, scale=0.5),
        "expression": rnd(batch, layer.n_expr, scale=0.5),
        "global_pose": rnd(batch, 3, scale=0.2),
        "neck_pose": rnd(batch, 3, scale=0.1),
        "jaw_pose": rnd(batch, 3, scale=0.1),
        "eye_pose": rnd(batch, 6, scale=0.1),
    }
    if layer.has_eyelids:
        args["eyelids"] = rnd(batch, 2, scale=0.5)

    def forward() -> None:
        with torch.no_grad():
            layer(**args)

    def forward_backward() -> None:
        out = layer(**args)
        loss = out.vertices.square().sum()
        if out.landmarks is not None:
            loss = loss + out.landmarks.square().sum()
        loss.backward()

    result: dict[str, float] = {}
    for name, fn in (("forward", forward), ("forward+backward", forward_backward)):
        fn()  # warm-up
        walls, cpus = [], []
        for _ in range(repeats):
            w, c = time.perf_counter(), time.process_time()
            fn()
            walls.append(time.perf_counter() - w)
            cpus.append(time.process_time() - c)
        result[f"{name} wall ms"] = 1e3 * statistics.median(walls)
        result[f"{name} cpu ms"] = 1e3 * statistics.median(cpus)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flame.throughput", description=__doc__)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--n-shape", type=int, default=300)
    parser.add_argument("--n-expr", type=int, default=100)
    add_flame_arguments(parser)
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeats < 1:
        parser.error("--batch and --repeats must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    layer = FLAME(model_from_args(args), n_shape=args.n_shape, n_expr=args.n_expr)
    res = measure(layer, args.batch, args.repeats)
    print(
        f"FLAME B={args.batch} n_shape={layer.n_shape} n_expr={layer.n_expr} "
        f"V={layer.v_template.shape[0]} threads={torch.get_num_threads()}"
    )
    for key, value in res.items():
        print(f"  {key}: {value:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
