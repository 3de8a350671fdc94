"""``python -m train.data build|preview``: cache a synthetic split to safetensors
shards, or write a PNG grid of a few samples."""

from __future__ import annotations

import argparse
import json
import os
import sys

from _common.atomic import write_text
from train.data import synthetic
from train.data.preview import preview_grid
from train.data.shards import save_shards
from train.data.synthetic import REGIME_SPECS, SPLITS, FaceGenerator, generate_split
from train.units import REFERENCE_PIXELS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m train.data", description=synthetic.__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("build", "preview"):
        p = sub.add_parser(name)
        n, out = (20000, "data") if name == "build" else (8, "preview.png")
        p.add_argument(
            "--regime",
            choices=sorted(REGIME_SPECS),
            default="hmc",
            help="synthetic regime (default: hmc)",
        )
        p.add_argument(
            "--split", choices=SPLITS, default="train", help="split drawn from (default: train)"
        )
        p.add_argument("--n", type=int, default=n, help=f"samples (default: {n})")
        p.add_argument(
            "--size",
            type=int,
            default=REFERENCE_PIXELS,
            help=f"image side in pixels (default: {REFERENCE_PIXELS})",
        )
        p.add_argument("--seed", type=int, default=0, help="seed of the samples (default: 0)")
        p.add_argument(
            "--flame", default="bundled", help="FLAME model path, or 'bundled' (default: bundled)"
        )
        p.add_argument(
            "--out",
            default=out,
            help=f"output {'folder of shards' if name == 'build' else 'PNG'} (default: {out})",
        )
    sub.choices["build"].add_argument(
        "--shard-size", type=int, default=1000, help="samples per shard file (default: 1000)"
    )
    args = parser.parse_args(argv)
    if args.n <= 0 or args.size < 16:
        parser.error("--n must be > 0 and --size >= 16")
    gen = FaceGenerator(args.flame, size=args.size, seed=args.seed)
    samples = generate_split(gen, args.regime, args.split, args.n)
    if args.command == "preview":
        preview_grid(samples, args.out, n=args.n)
        print(f"wrote {args.out}")
        return
    meta = {
        "regime": args.regime,
        "split": args.split,
        "seed": args.seed,
        "size": args.size,
        "flame": args.flame,
        "n": args.n,
    }
    paths = save_shards(
        samples, args.out, f"{args.regime}-{args.split}-s{args.size}", meta, args.shard_size
    )
    index = {**meta, "shards": [os.path.basename(p) for p in paths]}
    write_text(
        os.path.join(args.out, f"{args.regime}-{args.split}-s{args.size}.json"),
        json.dumps(index, indent=2),
    )
    print(f"wrote {len(paths)} shard(s) to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
