"""``python -m train.infer IMAGES_OR_FOLDERS --checkpoint CKPT --out DIR``.

For each image: the FLAME parameters, the camera (scale, translation, rho) with
its exact pinhole equivalent (focal length and distance, ``f = S/rho``,
``t_z = 1/rho``; none for rho = 0) as JSON, an overlay PNG (the predicted mesh
and landmarks over the input) and the posed mesh as OBJ (model frame, metres).
Folders are processed in batches with a progress bar; unreadable images are
listed, skipped, and written to ``skipped.txt``.

Images are centre-cropped to a square and resized to the checkpoint's input size;
landmarks are reported in NDC of that crop and in pixels of the original image.
"""

from __future__ import annotations

import argparse
import os
import sys

from train.eval.inference import infer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m train.infer", description=__doc__)
    parser.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    parser.add_argument("--checkpoint", required=True, help="a training checkpoint (.safetensors)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.batch <= 0:
        parser.error(f"--batch must be > 0, got {args.batch}")
    if not os.path.isfile(args.checkpoint):
        parser.error(f"--checkpoint: no such file {args.checkpoint}")
    written, skipped = infer(args.inputs, args.checkpoint, args.out, args.batch, args.device)
    print(f"wrote {len(written)} result(s) to {args.out}; skipped {len(skipped)}", file=sys.stderr)


if __name__ == "__main__":
    main()
