"""The ``--flame PATH`` convention shared by every entry point.

    parser = argparse.ArgumentParser()
    flame.cli.add_flame_arguments(parser)
    args = parser.parse_args()
    model = flame.cli.model_from_args(args)      # FlameModel; "bundled" by default

``--flame`` takes ``bundled`` (the default: the stand-in head) or a model
file (``.safetensors`` from ``python -m flame.convert``, or directly a
``generic_model.pkl`` / ``.npz``); ``--flame-landmarks`` optionally gives the
landmark embedding file(s) for a model file that lacks one, and ``--flame-uv``
a UV layout (FLAME's ``FLAME_texture.npz`` or the template ``.obj``).
"""

from __future__ import annotations

import argparse

from .io import load_model
from .model import FlameModel


def add_flame_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--flame PATH``, ``--flame-landmarks FILE [FILE]`` and ``--flame-uv FILE``
    to ``parser``."""
    parser.add_argument(
        "--flame",
        default="bundled",
        metavar="PATH",
        help="FLAME model: 'bundled' (the stand-in head, default) or a .safetensors / "
        "generic_model.pkl / .npz file",
    )
    parser.add_argument(
        "--flame-landmarks",
        nargs="+",
        default=None,
        metavar="FILE",
        help="landmark embedding for --flame: DECA landmark_embedding.npy, or "
        "flame_static_embedding.pkl flame_dynamic_embedding.npy",
    )
    parser.add_argument(
        "--flame-uv",
        default=None,
        metavar="FILE",
        help="UV layout for --flame: FLAME_texture.npz (vt, ft) or the template .obj "
        "(the stand-in head has its own)",
    )


def model_from_args(args: argparse.Namespace) -> FlameModel:
    """Load the model named by the arguments of :func:`add_flame_arguments`."""
    landmarks = getattr(args, "flame_landmarks", None)
    return load_model(
        args.flame,
        landmarks=tuple(landmarks) if landmarks else None,
        uv=getattr(args, "flame_uv", None),
    )
