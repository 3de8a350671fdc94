"""Convert official FLAME files to one safe, fast safetensors file.

    python -m flame.convert generic_model.pkl landmark_embedding.npy -o head.safetensors
    python -m flame.convert flame2023.pkl flame_static_embedding.pkl \
        flame_dynamic_embedding.npy -o head.safetensors
    python -m flame.convert generic_model.pkl landmark_embedding.npy \
        --uv FLAME_texture.npz -o head.safetensors     # with FLAME's UV layout

The pickle and the DECA landmark embedding are read with a restricted
unpickler (no chumpy needed, nothing in the files is executed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .io import FLAME_N_SHAPE, load_model
from .model import EYELID_SPACES
from .storage import save_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flame.convert",
        description="Convert a FLAME model (+ landmark embedding) to .safetensors.",
    )
    parser.add_argument("model", help="generic_model.pkl (or .npz / .safetensors)")
    parser.add_argument(
        "landmarks",
        nargs="*",
        help="DECA landmark_embedding.npy (or .safetensors / .npz), or the two files "
        "flame_static_embedding.pkl flame_dynamic_embedding.npy",
    )
    parser.add_argument("-o", "--output", required=True, help="output .safetensors file")
    parser.add_argument(
        "--eyelids", nargs=2, metavar=("L_EYELID", "R_EYELID"), help="SMIRK's eyelid .npy files"
    )
    parser.add_argument(
        "--eyelid-space",
        choices=EYELID_SPACES,
        default="posed",
        help="where --eyelids are added: after skinning as SMIRK does (posed, the default) "
        "or in the rest pose",
    )
    parser.add_argument(
        "--uv",
        metavar="FILE",
        help="UV layout to store with the model: FLAME_texture.npz (vt, ft) or the "
        "template .obj (v is flipped to v = 0 at the image's top row)",
    )
    parser.add_argument(
        "--n-shape",
        type=int,
        default=FLAME_N_SHAPE,
        help="identity components in the official shapedirs (default 300; the rest are expression)",
    )
    args = parser.parse_args(argv)
    out = Path(args.output)
    if out.suffix.lower() != ".safetensors":
        parser.error(f"the output must end in .safetensors, got {out}")
    model = load_model(
        args.model,
        landmarks=tuple(args.landmarks) or None,
        eyelids=tuple(args.eyelids) if args.eyelids else None,
        n_shape_components=args.n_shape,
        eyelid_space=args.eyelid_space,
        uv=args.uv,
    )
    if not model.has_landmarks:
        print("note: no landmark embedding given; FLAME(...) will return landmarks=None")
    save_model(model, out)
    print(
        f"wrote {out}: {model.n_vertices} vertices, {model.n_faces} faces, "
        f"{model.n_shape} shape + {model.n_expr} expression components, "
        f"landmarks: {'yes' if model.has_landmarks else 'no'}, "
        f"eyelids: {'yes' if model.has_eyelids else 'no'}, "
        f"UV layout: {'yes' if model.has_uvs else 'no'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
