"""The files a prediction (``train.infer``) or a fit (``train.fit``) writes beside its
JSON: the mesh as a Wavefront OBJ, and the photograph with the shaded mesh blended in
and the landmarks drawn."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from _common.atomic import atomic_path, write_text


def write_obj(path: str, vertices: np.ndarray, faces: np.ndarray) -> None:
    """The mesh as a Wavefront OBJ (1-based face indices)."""
    lines = ["# minirast train.infer: FLAME model frame (x left, y up, z out), metres\n"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in faces]
    write_text(path, "".join(lines))


def overlay(
    image: torch.Tensor,
    render: torch.Tensor,
    mask: torch.Tensor,
    lmk_ndc,
    path: str,
    caption: str | None = None,
):
    """The input with the shaded predicted mesh blended in and the landmarks drawn;
    ``caption`` (one line) written at the top left."""
    blend = torch.where(mask, 0.45 * image + 0.55 * render, image)
    arr = (blend.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    size = arr.shape[0]
    scale = 4 if size < 256 else 1
    pil = Image.fromarray(arr).resize((size * scale, size * scale), Image.NEAREST)
    draw = ImageDraw.Draw(pil)
    for x, y in ((lmk_ndc + 1) * size / 2 - 0.5).tolist():
        cx, cy = (x + 0.5) * scale, (y + 0.5) * scale
        draw.ellipse((cx - 2, cy - 2, cx + 2, cy + 2), fill=(255, 40, 40))
    if caption:
        box = draw.textbbox((4, 4), caption)
        draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
        draw.text((4, 4), caption, fill=(255, 255, 255))
    with atomic_path(path) as tmp:
        pil.save(tmp, format="PNG")
