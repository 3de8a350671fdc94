"""The UV layout of a FLAME-format head drawn as a wireframe (Pillow only).

    python -m flame.uv_figure [-o docs/flame/standin_uv_layout.png] [--size 1024]
        [--flame PATH] [--flame-uv FILE]

The texture square as the image shows it (``v = 0`` at the top, :mod:`flame.uv`'s
convention), every UV triangle's edges in grey, and the face region (the model's
``"face"`` mask, when it has one) filled by its area distortion
(:func:`flame.uv.area_distortion`): white at 1, red where the texture is denser than
the face's mean (up to 2x), blue where sparser (down to 0.5x). A caption under the
square gives the distortion's median and 5th / 95th percentiles.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw

from _common.atomic import atomic_path

from .cli import add_flame_arguments, model_from_args
from .model import FlameModel
from .uv import area_distortion, distortion_summary, faces_in_region

CAPTION = 40  # pixels under the square for the caption


def face_distortion(model: FlameModel) -> tuple[np.ndarray, np.ndarray] | None:
    """(boolean [F] face region, ratios [n]) of the model's ``"face"`` mask, or None."""
    if "face" not in model.masks:
        return None
    region = faces_in_region(model.faces, model.masks["face"], model.n_vertices)
    ratios = area_distortion(model.v_template, model.faces, model.uvs, model.uv_faces, region)
    return region, ratios


def draw_layout(model: FlameModel, size: int = 1024) -> Image.Image:
    """The layout as an RGB image of ``size`` x ``size + CAPTION`` pixels."""
    if not model.has_uvs:
        raise ValueError("the model has no UV layout (give one with --flame-uv)")
    if size < 64:
        raise ValueError(f"size must be at least 64 pixels, got {size}")
    img = Image.new("RGB", (size, size + CAPTION), "white")
    draw = ImageDraw.Draw(img)
    pts = model.uvs.astype(np.float64)[model.uv_faces] * size  # [F, 3, 2] pixels
    caption = "UV layout (v = 0 at the top); no face mask"
    measured = face_distortion(model)
    if measured is not None:
        region, ratios = measured
        shade = np.clip(np.log2(ratios), -1.0, 1.0)
        for tri, s in zip(pts[region], shade):
            draw.polygon([tuple(p) for p in tri], fill=_colour(float(s)))
        summary = distortion_summary(ratios)
        caption = (
            "face region coloured by area distortion (blue 0.5x, white 1x, red 2x): "
            f"median {summary['median']:.2f}, 5%-95% {summary['p5']:.2f}-{summary['p95']:.2f}"
        )
    for tri in pts:
        draw.line([tuple(p) for p in tri] + [tuple(tri[0])], fill=(70, 70, 70), width=1)
    draw.rectangle([0, 0, size - 1, size - 1], outline=(0, 0, 0))
    draw.text((8, size + 12), caption, fill=(0, 0, 0))
    return img


def _colour(s: float) -> tuple[int, int, int]:
    """White at 0, red towards +1, blue towards -1."""
    t = int(round(200 * abs(s)))
    return (255, 255 - t, 255 - t) if s > 0 else (255 - t, 255 - t, 255)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flame.uv_figure", description="Draw a head's UV layout."
    )
    parser.add_argument("-o", "--output", default="docs/flame/standin_uv_layout.png")
    parser.add_argument("--size", type=int, default=1024, help="side of the square, pixels")
    add_flame_arguments(parser)
    args = parser.parse_args(argv)
    img = draw_layout(model_from_args(args), args.size)
    with atomic_path(args.output) as tmp:
        img.save(tmp, format="PNG")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
