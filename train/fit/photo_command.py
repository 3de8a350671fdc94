"""``python -m train.fit IMAGES --photometric --out DIR``: the photometric fit
(:func:`train.fit.fit_images`) of every image, or of every capture with ``--per-capture``.

Landmarks come from the landmark files beside the images (:mod:`train.fit.inputs`), or,
for an image without one, from ``train.faces`` detection (the largest face; needs the
``faces`` extra). Images are fitted in groups of one size. Writes per image
``<stem>.json`` (the parameters of ``train.fit``'s JSON with the photometric fit's rho
interval (:mod:`train.fit.photo_posterior`), plus the SH lighting, the PSNR inside the
face mask, the photometric term and the landmark-only start's rho and interval),
``<stem>_photometric.png`` (photo | render | blend of the face's window that the fit
rendered, ``PhotoFitResult.window``, captioned with the distance and its interval,
"0.62 m [0.48, 0.91]") and
``<stem>.obj`` with ``<stem>.mtl`` and the capture's albedo texture ``<stem>.png``
(sRGB); for a capture of several frames a
``contact_sheet_<capture>.png`` of the blends (``contact_sheet_<stem>.png`` for footage,
:mod:`train.fit.photo_video`); ``fit.json`` summarising them.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch
from PIL import Image, ImageDraw

import flame
from _common.atomic import atomic_path, write_json, write_text
from train.faces.images import read_image
from train.fit.inputs import FitInput, pixels_to_ndc
from train.fit.photometric import fit_images
from train.fit.posterior import distance_text
from train.fit.records import finite_or_none, fit_record, posed_vertices
from train.render.writers import write_obj

#: the side of each panel of the overlays and the contact sheets
PANEL = 256


def detect_missing(skipped: list[tuple[str, str]]) -> tuple[list[FitInput], list]:
    """Landmarks by ``train.faces`` for the images skipped for want of a landmark file;
    ``(found, still skipped)``."""
    missing = [p for p, why in skipped if why.startswith("no landmark file")]
    rest = [s for s in skipped if not s[1].startswith("no landmark file")]
    if not missing:
        return [], rest
    from train.faces.detect import DetectorUnavailable, available, find_faces

    if not available():
        return [], rest + [(p, "no landmark file, and no face detector installed") for p in missing]
    found = []
    for path in missing:
        try:
            image = read_image(path)
            faces = find_faces(image)
        except (OSError, ValueError, DetectorUnavailable) as exc:
            rest.append((path, f"unreadable: {exc}"))
            continue
        if not faces:
            rest.append((path, "no face detected"))
            continue
        h, w = image.shape[:2]
        ndc = torch.from_numpy(pixels_to_ndc(faces[0].landmarks, w, h)).float()
        found.append(FitInput(path, (w, h), ndc, -1))
    return found, rest


def run(
    args,
    items: list[FitInput],
    skipped: list,
    layer: flame.FLAME,
    device,
    sequences: dict[int, str] | None = None,
) -> dict:
    """Fit ``items`` photometrically and write the outputs (module docstring);
    ``sequences`` maps the capture ids of footage (:mod:`train.fit.photo_video`), always
    fitted as captures, to their names."""
    sequences = sequences or {}
    extra, skipped = detect_missing(skipped)
    items = items + [e._replace(capture=len(items) + i) for i, e in enumerate(extra)]
    write_text(os.path.join(args.out, "skipped.txt"), "".join(f"{p}\t{r}\n" for p, r in skipped))
    records = []
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, item in enumerate(items):
        by_size.setdefault(item.size, []).append(i)
    for size, index in by_size.items():
        chosen = [items[i] for i in index]
        images = torch.stack([torch.from_numpy(read_image(i.path)) for i in chosen]).float() / 255
        landmarks = torch.stack([i.landmarks for i in chosen])
        groups = None
        if args.per_capture or sequences:
            alone = [
                i.capture if args.per_capture or i.capture in sequences else -1 - k
                for k, i in enumerate(chosen)
            ]
            groups = torch.tensor(alone)
        print(f"photometric fit of {len(chosen)} image(s) of {size} on {device}", file=sys.stderr)
        fit = fit_images(
            images,
            landmarks,
            layer,
            groups=groups,
            iterations=args.iterations,
            device=device,
            camera=args.camera,
            texture_size=args.texture_size,
            progress=True,
            intervals=not getattr(args, "no_intervals", False),
        )
        layer_dev = layer.to(fit.rho.device)
        records += [_write(args, item, fit, k, layer_dev) for k, item in enumerate(chosen)]
        for capture in sorted({i.capture for i in chosen}):
            if args.per_capture or capture in sequences:
                frames = [k for k, i in enumerate(chosen) if i.capture == capture]
                if len(frames) > 1:
                    name = sequences.get(capture, capture)
                    sheet = os.path.join(args.out, f"contact_sheet_{name}.png")
                    _contact_sheet(fit, frames, sheet)
    summary = {"images": records, "skipped": [list(s) for s in skipped], "photometric": True}
    write_json(os.path.join(args.out, "fit.json"), summary)
    print(f"wrote {len(records)} result(s) to {args.out}; skipped {len(skipped)}", file=sys.stderr)
    return summary


def _write(args, item: FitInput, fit, k: int, layer: flame.FLAME) -> dict:
    stem = item.name or os.path.splitext(os.path.basename(item.path))[0]
    record = {
        **fit_record(item, fit, k, args.camera, "this photo"),
        "landmark_fit_rho": float(fit.start.rho[k]),
        "landmark_fit_rho_interval": finite_or_none(fit.start.rho_interval[k].tolist()),
        "landmark_fit_distance_text": distance_text(
            float(fit.start.distance[k]), *fit.start.distance_interval[k].tolist()
        ),
        "sh": fit.sh[k].tolist(),
        "psnr_db": float(fit.psnr[k]),
        "photo_term": float(fit.photo_residual[k]),
    }
    write_text(os.path.join(args.out, f"{stem}.json"), json.dumps(record, indent=1))
    write_obj(
        os.path.join(args.out, f"{stem}.obj"),
        posed_vertices(fit, k, layer)[0].cpu().numpy(),
        layer.faces.cpu().numpy(),
        uvs=layer.uvs.cpu().numpy(),
        uv_faces=layer.uv_faces.cpu().numpy(),
        texture=fit.texture[int(fit.capture[k])].numpy(),
        producer="train.fit --photometric",
    )
    panels = _panels(fit, k)
    if record["distance_text"]:
        panels = _caption(panels, record["distance_text"])
    _save(panels, os.path.join(args.out, f"{stem}_photometric.png"))
    return record


def _panels(fit, k: int) -> np.ndarray:
    """photo | render | blend (inside the photo), each the whole of the face's window
    that the fit rendered (``fit.window``), ``PANEL`` px square."""
    photo, render = fit.photo[k], fit.render[k]
    blend = torch.where(fit.valid[k][..., None], 0.5 * photo + 0.5 * render, render)
    panels = []
    for image in (photo, render, blend):
        img = Image.fromarray((image.clamp(0, 1).numpy() * 255).round().astype(np.uint8))
        panels.append(np.asarray(img.resize((PANEL, PANEL), Image.BILINEAR)))
    return np.concatenate(panels, 1)


def _caption(array: np.ndarray, text: str) -> np.ndarray:
    """``text`` (the distance and its interval) written at the top left, white on black."""
    img = Image.fromarray(array)
    draw = ImageDraw.Draw(img)
    box = draw.textbbox((4, 4), text)
    draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill=(0, 0, 0))
    draw.text((4, 4), text, fill=(255, 255, 255))
    return np.asarray(img)


def _contact_sheet(fit, frames: list[int], path: str) -> None:
    """The blends of a capture's frames, 4 per row."""
    tiles = [_panels(fit, k)[:, 2 * PANEL :] for k in frames]
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i : i + 4], 1) for i in range(0, len(tiles), 4)]
    _save(np.concatenate(rows, 0), path)


def _save(array: np.ndarray, path: str) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
