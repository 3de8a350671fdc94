"""The files a prediction (``train.infer``) or a fit (``train.fit``) writes beside its
JSON: the mesh as a Wavefront OBJ (optionally with texture coordinates, a material and
its texture image), and the photograph with the shaded mesh blended in and the
landmarks drawn."""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image, ImageDraw

from _common.atomic import atomic_path, write_text
from flame.uv import check_uv_layout


def write_obj(
    path: str | os.PathLike,
    vertices: np.ndarray,
    faces: np.ndarray,
    *,
    uvs: np.ndarray | None = None,
    uv_faces: np.ndarray | None = None,
    texture: np.ndarray | None = None,
    producer: str = "minirast",
) -> None:
    """The mesh as a Wavefront OBJ (1-based indices), each file written atomically.

    Args:
        path: the ``.obj`` file.
        vertices: [V, 3] in the FLAME model frame, metres (written to 1 micrometre).
        faces: [F, 3] vertex indices (0-based).
        uvs: optional [T, 2] texture coordinates in :mod:`flame.uv`'s convention
            (``v = 0`` at the texture image's top row); written as ``vt`` lines with
            ``v`` flipped to OBJ's ``v = 0`` at the bottom row, exactly (17
            significant digits), so reading the file back gives the same values.
        uv_faces: [F, 3] UV indices of each face's corners, with ``uvs``; the faces
            become ``f v/vt v/vt v/vt``.
        texture: optional [Ht, Wt, 3] (or 4) image, uint8 or float in [0, 1], row 0
            at the top (the row ``v = 0`` samples); needs ``uvs``. Written beside the
            OBJ as ``<stem>.png`` with a material ``<stem>.mtl`` whose ``map_Kd``
            names it, which the OBJ uses.
        producer: the command that wrote the file, named in the header comment.
    """
    vertices, faces = np.asarray(vertices), np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"write_obj: vertices must be [V,3], got {list(vertices.shape)}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"write_obj: faces must be [F,3], got {list(faces.shape)}")
    if (uvs is None) != (uv_faces is None):
        raise ValueError("write_obj: uvs and uv_faces come together")
    if texture is not None and uvs is None:
        raise ValueError("write_obj: a texture needs uvs and uv_faces")
    lines = [f"# minirast {producer}: FLAME model frame (x left, y up, z out), metres\n"]
    if texture is not None:
        stem = os.path.splitext(os.path.basename(os.fspath(path)))[0]
        _write_material(os.fspath(path), stem, texture)
        lines += [f"mtllib {stem}.mtl\n", "usemtl head\n"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in vertices]
    if uvs is None:
        lines += [f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in faces]
    else:
        uvs, uv_faces = check_uv_layout(uvs, uv_faces, faces.shape[0], "write_obj")
        flipped = np.asarray(uvs, dtype=np.float64).copy()
        flipped[:, 1] = 1.0 - flipped[:, 1]
        lines += [f"vt {u:.17g} {v:.17g}\n" for u, v in flipped]
        lines += [
            f"f {a + 1}/{ta + 1} {b + 1}/{tb + 1} {c + 1}/{tc + 1}\n"
            for (a, b, c), (ta, tb, tc) in zip(faces.tolist(), uv_faces.tolist())
        ]
    write_text(path, "".join(lines))


def _write_material(obj_path: str, stem: str, texture: np.ndarray) -> None:
    """``<stem>.png`` and ``<stem>.mtl`` (material ``head``, ``map_Kd <stem>.png``)."""
    tex = np.asarray(texture)
    if tex.ndim != 3 or tex.shape[2] not in (3, 4) or tex.shape[0] < 1 or tex.shape[1] < 1:
        raise ValueError(f"write_obj: texture must be [Ht,Wt,3 or 4], got {list(tex.shape)}")
    if tex.dtype.kind == "f":
        if not np.all(np.isfinite(tex)):
            raise ValueError("write_obj: texture contains NaN or inf values")
        tex = (np.clip(tex, 0.0, 1.0) * 255).round().astype(np.uint8)
    elif tex.dtype != np.uint8:
        raise TypeError(f"write_obj: texture must be uint8 or floating, got dtype {tex.dtype}")
    folder = os.path.dirname(obj_path)
    with atomic_path(os.path.join(folder, f"{stem}.png")) as tmp:
        Image.fromarray(tex).save(tmp, format="PNG")
    write_text(
        os.path.join(folder, f"{stem}.mtl"),
        f"# minirast: material of {stem}.obj\nnewmtl head\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\n"
        f"illum 1\nmap_Kd {stem}.png\n",
    )


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
