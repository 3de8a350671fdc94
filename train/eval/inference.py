"""Inference on image files: per image the FLAME parameters and the camera as JSON,
an overlay PNG and the posed mesh as OBJ (``python -m train.infer`` is its command)."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import torch
from PIL import Image, ImageDraw
from tqdm import tqdm

import ppcam
from _common.atomic import atomic_path, write_text
from train.data.folder import IMAGE_SUFFIXES
from train.engine.device import pick_device
from train.engine.system import load_system
from train.models.render import camera_vertices, project_landmarks, render_mesh


def list_images(inputs: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Image paths from files and folders (sorted), and the inputs that are neither."""
    paths, bad = [], []
    for item in inputs:
        if os.path.isdir(item):
            names = sorted(n for n in os.listdir(item) if n.lower().endswith(IMAGE_SUFFIXES))
            paths += [os.path.join(item, n) for n in names]
        elif os.path.isfile(item):
            paths.append(item)
        else:
            bad.append((item, "no such file or folder"))
    return paths, bad


def read_image(path: str, size: int) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """``[3,size,size]`` float in [0,1] and the crop ``(left, top, side)`` in the original."""
    with Image.open(path) as raw:
        img = raw.convert("RGB")
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255.0, (
        left,
        top,
        side,
    )


def write_obj(path: str, vertices: np.ndarray, faces: np.ndarray) -> None:
    """The mesh as a Wavefront OBJ (1-based face indices)."""
    lines = ["# minirast train.infer: FLAME model frame (x left, y up, z out), metres\n"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}\n" for x, y, z in vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}\n" for a, b, c in faces]
    write_text(path, "".join(lines))


def overlay(image: torch.Tensor, render: torch.Tensor, mask: torch.Tensor, lmk_ndc, path: str):
    """The input with the shaded predicted mesh blended in and the landmarks drawn."""
    blend = torch.where(mask, 0.45 * image + 0.55 * render, image)
    arr = (blend.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    size = arr.shape[0]
    scale = 4 if size < 256 else 1
    pil = Image.fromarray(arr).resize((size * scale, size * scale), Image.NEAREST)
    draw = ImageDraw.Draw(pil)
    for x, y in ((lmk_ndc + 1) * size / 2 - 0.5).tolist():
        cx, cy = (x + 0.5) * scale, (y + 0.5) * scale
        draw.ellipse((cx - 2, cy - 2, cx + 2, cy + 2), fill=(255, 40, 40))
    with atomic_path(path) as tmp:
        pil.save(tmp, format="PNG")


@torch.no_grad()
def infer(inputs: list[str], checkpoint: str, out: str, batch: int = 16, device: str = "auto"):
    """Run the model on every image; returns ``(written_names, skipped)``."""
    dev = pick_device(device)
    system = load_system(checkpoint, dev)
    size = system.cfg.image_size
    faces = system.flame_layer.faces
    paths, skipped = list_images(inputs)
    os.makedirs(out, exist_ok=True)
    written = []
    for start in tqdm(range(0, len(paths), batch), desc="infer", unit="batch"):
        images, crops, names = [], [], []
        for path in paths[start : start + batch]:
            try:
                img, crop = read_image(path, size)
            except (OSError, ValueError) as exc:
                skipped.append((path, f"unreadable image: {exc}"))
                continue
            images.append(img)
            crops.append(crop)
            names.append(path)
        if not images:
            continue
        x = torch.stack(images).to(dev)
        pred = system.encode(x)
        out_flame = system.geometry(pred)
        lmk = project_landmarks(out_flame.landmarks, pred.scale, pred.trans, pred.rho)
        shaded = render_mesh(
            camera_vertices(out_flame.vertices), faces, pred.scale, pred.trans, pred.rho, size
        )
        for i, path in enumerate(names):
            stem = os.path.splitext(os.path.basename(path))[0]
            left, top, side = crops[i]
            rho = float(pred.rho[i])
            if rho > 0:
                focal, tz = (float(v) for v in ppcam.pseudo_to_pinhole(pred.scale[i], pred.rho[i]))
            else:
                focal = tz = None  # orthographic: a camera at infinite distance
            record = {
                "image": path,
                "scale": float(pred.scale[i]),
                "trans": pred.trans[i].tolist(),
                "rho": rho,
                "focal_ndc": focal,
                "distance_m": tz,
                "global_pose": pred.global_pose[i].tolist(),
                "shape": pred.shape[i].tolist(),
                "expression": pred.expression[i].tolist(),
                "jaw_pose": pred.jaw_pose[i].tolist(),
                "eyelids": pred.eyelids[i].tolist(),
                "landmarks_ndc": lmk[i].tolist(),
                # pixel centres of the original image are at integer coordinates
                "landmarks_px": (
                    torch.tensor([left, top]) + (lmk[i].cpu() + 1) * side / 2 - 0.5
                ).tolist(),
                "camera_mode": system.cfg.camera,
                "checkpoint": checkpoint,
            }
            write_text(os.path.join(out, f"{stem}.json"), json.dumps(record, indent=1))
            overlay(
                x[i].cpu(),
                shaded.image[i].cpu(),
                shaded.mask[i].cpu(),
                lmk[i].cpu(),
                os.path.join(out, f"{stem}_overlay.png"),
            )
            write_obj(
                os.path.join(out, f"{stem}.obj"),
                out_flame.vertices[i].cpu().numpy(),
                faces.cpu().numpy(),
            )
            written.append(stem)
    for path, why in skipped:
        warnings.warn(f"{path}: skipped ({why})", stacklevel=2)
    write_text(os.path.join(out, "skipped.txt"), "".join(f"{p}\t{why}\n" for p, why in skipped))
    return written, skipped
