"""``python -m train.import_smirk SMIRK.pt -o smirk.safetensors [--flame ...]``.

Converts SMIRK's released checkpoint (its encoder and generator; github
georgeretsi/smirk) into this project's training checkpoint (``arch="smirk"``,
orthographic camera), so that

    python -m train.infer photo.jpg --checkpoint smirk.safetensors --out out/
    python -m train.evaluate --runs smirk.safetensors runs/finetune
    python -m train.finetune --init smirk.safetensors --preset full

take it like any run of ours. The checkpoint is read with
``torch.load(weights_only=True)``: nothing in it is executed. The FLAME model is
recorded in the checkpoint's config: ``--flame generic_model.pkl --landmarks
landmark_embedding.npy --eyelids l_eyelid.npy r_eyelid.npy`` (FLAME 2020 and
SMIRK's assets) is converted once to ``<output>.flame.safetensors``; a model
converted before (``python -m flame.convert``) is used as it is; the default is
the bundled stand-in head (for trying the pipeline; its shape space is not
FLAME's, so SMIRK's shape coefficients mean nothing on it).
"""

from __future__ import annotations

import argparse
import sys

from train.smirk import import_smirk


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.import_smirk", description=__doc__)
    parser.add_argument("checkpoint", help="SMIRK's checkpoint (e.g. SMIRK_em1.pt)")
    parser.add_argument("-o", "--output", required=True, help="output .safetensors checkpoint")
    parser.add_argument(
        "--flame",
        default="bundled",
        help="FLAME 2020 generic_model.pkl, a converted .safetensors/.npz, or 'bundled' "
        "(default: bundled)",
    )
    parser.add_argument(
        "--landmarks", nargs="+", default=None, help="landmark embedding (landmark_embedding.npy)"
    )
    parser.add_argument(
        "--eyelids",
        nargs=2,
        default=None,
        metavar=("L_EYELID", "R_EYELID"),
        help="SMIRK's eyelid blendshapes (added after skinning, as SMIRK does)",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=224,
        help="input size recorded in the config (default 224, SMIRK's; multiple of 16)",
    )
    args = parser.parse_args(argv)
    try:
        cfg = import_smirk(
            args.checkpoint,
            args.output,
            flame_path=args.flame,
            landmarks=args.landmarks,
            eyelids=args.eyelids,
            image_size=args.image_size,
        )
    except (FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))
    print(
        f"wrote {args.output}: arch smirk, {cfg.n_shape} shape + {cfg.n_expr} expression "
        f"coefficients, generator {cfg.renderer_channels} channels, {cfg.image_size} px, "
        f"FLAME {cfg.flame}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
