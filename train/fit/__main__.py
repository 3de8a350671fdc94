"""``python -m train.fit IMAGES_OR_FOLDERS --out DIR``: fit FLAME and the rho camera
to the 68 landmarks of each image (:func:`train.fit.fit_landmarks`).

Every image needs a landmark file beside it (``.pts``, ``.npy`` or ``.json``; see
:mod:`train.fit.inputs`), or one per face (``<stem>_<k>.pts`` from ``train.landmarks
--all-faces``: each face is fitted and written as ``<stem>_<k>``). Writes per image
``<stem>.json`` (FLAME parameters, the camera ``(S, t, rho)`` in the NDC of the image's
centred square, its pinhole equivalent, the fitted landmarks in pixels and their
residual), an overlay ``<stem>_overlay.png`` and the posed mesh ``<stem>.obj``;
``fit.json`` with the per-image (or per-capture) rho; ``skipped.txt`` naming the images
left out and why.
Every rho comes with its 95 % interval (``rho_interval``, ``distance_interval_m``)
and a line saying it (``"0.62 m [0.48, 0.91]"``, or that the distance is not
observable from these landmarks when the interval spans more than a factor of 3),
also drawn on the overlay. Shape and rho are estimated with each image's (each
frame's) own variables integrated out (``fit_landmarks(marginal=True)``).

``--points dense|both`` fits MediaPipe's dense points (``<stem>.mp.npy`` from
``python -m train.landmarks``, :mod:`train.fit.mp_inputs`) instead of or beside the 68,
with the irises; ``--iris-mm 11.7`` adds the iris diameter's prior (the metric cue for
distance; docs/fitting.md). Images without ``.mp.npy`` are then skipped. The JSON
gains the fitted iris diameter (NDC, pixels of the image, mm).

``--photometric`` fits the photos themselves (:mod:`train.fit.photo_command`); a video
file, or with ``--sequence`` a folder of frames, is then one capture whose frames get
their landmarks from ``train.faces`` (:mod:`train.fit.photo_video`; ``--step``,
``--max-frames``), written with a contact sheet of the render over the footage.

``--per-capture`` fits each folder (or each of its sub-folders) as one capture:
one head shape and one rho for all its frames (a head-mounted camera at a fixed
distance), everything else per frame; ``fit.json`` then gives each capture's rho
with its posterior interval and a bootstrap interval over its frames
(``--bootstrap`` resamples, fitted together in one batch; 0: none).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

import flame
from _common.atomic import write_json, write_text
from train.data.folder import read_rho_prior
from train.engine.device import pick_device
from train.faces.images import is_video, read_image
from train.fit import CAMERAS, fit_landmarks
from train.fit.fitting import DEFAULT_ITERATIONS
from train.fit.inputs import collect
from train.fit.mp_inputs import with_mediapipe
from train.fit.photo_video import DEFAULT_MAX_FRAMES, footage_items
from train.fit.records import finite_or_none, fit_record, interval_text, posed_vertices
from train.render.head import camera_vertices, render_mesh
from train.render.writers import overlay, write_obj

#: capture ids of footage start here (clear of the folders' ids)
FOOTAGE_CAPTURES = 1_000_000
#: largest overlay side in pixels (the render is the image's centred square)
OVERLAY_PIXELS = 512


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train.fit", description=__doc__)
    parser.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--flame", default="bundled", help="FLAME model file or 'bundled' (default: bundled)"
    )
    parser.add_argument("--n-shape", type=int, default=50, help="shape coefficients fitted")
    parser.add_argument("--n-expr", type=int, default=50, help="expression coefficients fitted")
    parser.add_argument(
        "--per-capture",
        action="store_true",
        help="each folder (or sub-folder) is one capture: one shape and one rho for its frames",
    )
    parser.add_argument(
        "--camera",
        choices=CAMERAS,
        default="pseudo",
        help="pseudo: fit rho too (distance from perspective); ortho: rho fixed at 0 "
        "(default: pseudo)",
    )
    parser.add_argument(
        "--rho-prior",
        type=float,
        default=None,
        help="pull rho towards this value (1 / model unit; default: the folder's "
        "rho_prior.json if any, else none)",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=None,
        help=f"L-BFGS iterations (default {DEFAULT_ITERATIONS})",
    )
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        help="resamples of a capture's bootstrap rho interval (default 0: the posterior "
        "interval only)",
    )
    parser.add_argument("--no-overlay", action="store_true", help="skip the overlay images")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument(
        "--photometric",
        action="store_true",
        help="fit the photos themselves through minirast (train.fit.photo_command)",
    )
    parser.add_argument(
        "--texture-size", type=int, default=256, help="--photometric: albedo map side"
    )
    parser.add_argument(
        "--no-intervals",
        action="store_true",
        help="--photometric: skip rho's interval (its Jacobian runs on the CPU, "
        "train.fit.photo_posterior)",
    )
    parser.add_argument(
        "--sequence",
        action="store_true",
        help="--photometric: read each folder as the frames of one video (video files "
        "always are): one face tracked, landmarks by train.faces, one capture",
    )
    parser.add_argument(
        "--step", type=int, default=1, help="--photometric footage: fit every N-th frame"
    )
    parser.add_argument(
        "--max-frames",
        type=int,
        default=DEFAULT_MAX_FRAMES,
        help=f"--photometric footage: refuse a source with more frames than this "
        f"(after --step; default {DEFAULT_MAX_FRAMES})",
    )
    parser.add_argument(
        "--points",
        choices=("68", "dense", "both"),
        default="68",
        help="fit the 68 landmarks (default), MediaPipe's dense points (<stem>.mp.npy) or both",
    )
    parser.add_argument(
        "--iris-mm", type=float, default=None, help="iris diameter prior in mm (people: 11.7)"
    )
    return parser


def main(argv: list[str] | None = None) -> dict:
    parser = _parser()
    args = parser.parse_args(argv)
    for name in ("n_shape", "n_expr", "bootstrap"):
        if getattr(args, name) < (0 if name == "bootstrap" else 1):
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.iterations is not None and args.iterations < 1:
        parser.error(f"--iterations must be >= 1, got {args.iterations}")
    if args.rho_prior is not None and not args.rho_prior >= 0:
        parser.error(f"--rho-prior must be >= 0, got {args.rho_prior}")
    for name in ("step", "max_frames"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    footage = [p for p in args.inputs if is_video(p) or (args.sequence and os.path.isdir(p))]
    if footage and not args.photometric:
        parser.error(f"{footage[0]}: videos and --sequence folders need --photometric")
    items, skipped = collect([p for p in args.inputs if p not in footage], args.per_capture)
    os.makedirs(args.out, exist_ok=True)
    if args.photometric and (args.points != "68" or args.iris_mm is not None):
        parser.error("--points and --iris-mm do not apply to --photometric (68 landmarks only)")
    if args.photometric:
        from train.fit import photo_command

        sequences = {}
        for source in footage:
            capture = FOOTAGE_CAPTURES + len(sequences)
            try:
                found, more = footage_items(
                    source, args.out, capture, step=args.step, max_frames=args.max_frames
                )
            except (ImportError, ValueError) as exc:
                parser.error(str(exc))
            items, skipped = items + found, skipped + more
            sequences[capture] = os.path.splitext(os.path.basename(os.path.normpath(source)))[0]
        layer = flame.FLAME(args.flame, n_shape=args.n_shape, n_expr=args.n_expr)
        return photo_command.run(args, items, skipped, layer, pick_device(args.device), sequences)
    write_text(os.path.join(args.out, "skipped.txt"), "".join(f"{p}\t{r}\n" for p, r in skipped))
    if not items:
        parser.error(f"no image with a landmark file in {args.inputs} (see {args.out}/skipped.txt)")
    try:
        layer = flame.FLAME(args.flame, n_shape=args.n_shape, n_expr=args.n_expr)
    except (OSError, ValueError) as exc:
        parser.error(f"--flame: {exc}")
    device = pick_device(args.device)
    extra: dict = {}
    if args.points != "68" or args.iris_mm is not None:
        if not layer.has_mediapipe:
            parser.error(f"--flame {args.flame} has no MediaPipe embedding (needed by --points)")
        items, dense, iris, more = with_mediapipe(items, layer.mediapipe_indices)
        skipped += more
        write_text(
            os.path.join(args.out, "skipped.txt"), "".join(f"{p}\t{r}\n" for p, r in skipped)
        )
        if not items:
            parser.error(f"no image with a .mp.npy file (see {args.out}/skipped.txt)")
        extra = {"iris": iris, "iris_mm": args.iris_mm}
        if args.points != "68":
            extra["dense"] = dense
    landmarks = torch.stack([i.landmarks for i in items])
    groups = torch.tensor([i.capture for i in items]) if args.per_capture else None
    prior = args.rho_prior
    if prior is None:
        folders = {os.path.dirname(i.path) for i in items}
        found = {read_rho_prior(f) for f in folders} - {None}
        prior = found.pop() if len(found) == 1 else None
    print(f"fitting {len(items)} image(s) on {device}", file=sys.stderr)
    fit = fit_landmarks(
        None if args.points == "dense" else landmarks,
        layer,
        groups=groups,
        rho_prior=prior,
        iterations=args.iterations,
        device=device,
        camera=args.camera,
        marginal=True,
        **extra,
    )
    layer = layer.to(device)
    records = [_write_image(args, item, fit, i, layer) for i, item in enumerate(items)]
    summary = {"images": records, "skipped": [list(s) for s in skipped], "rho_prior": prior}
    if args.per_capture:
        summary["captures"] = _capture_summary(args, items, landmarks, layer, prior, fit)
    write_json(os.path.join(args.out, "fit.json"), summary)
    print(f"wrote {len(records)} result(s) to {args.out}; skipped {len(skipped)}", file=sys.stderr)
    return summary


def _write_image(args, item, fit, i: int, layer: flame.FLAME) -> dict:
    stem = item.name or os.path.splitext(os.path.basename(item.path))[0]
    record = {"name": stem, **fit_record(item, fit, i, args.camera, "these landmarks")}
    if fit.iris_diameter is not None:
        record["points"] = args.points
        record["iris_diameter_ndc"] = float(fit.iris_diameter[i])
        record["iris_diameter_px"] = float(fit.iris_diameter[i]) * max(item.size) / 2
        record["iris_diameter_mm"] = float(fit.iris_diameter_model[i]) * 1000
    write_text(os.path.join(args.out, f"{stem}.json"), json.dumps(record, indent=1))
    vertices = posed_vertices(fit, i, layer)
    write_obj(
        os.path.join(args.out, f"{stem}.obj"),
        vertices[0].cpu().numpy(),
        layer.faces.cpu().numpy(),
        uvs=layer.uvs.cpu().numpy() if layer.has_uvs else None,
        uv_faces=layer.uv_faces.cpu().numpy() if layer.has_uvs else None,
        producer="train.fit",
    )
    if not args.no_overlay:
        _overlay(item, fit, i, vertices, layer, os.path.join(args.out, f"{stem}_overlay.png"))
    return record


def _overlay(item, fit, i: int, vertices: torch.Tensor, layer: flame.FLAME, path: str) -> None:
    """The fitted mesh over the image's centred square, downscaled to ``OVERLAY_PIXELS``."""
    width, height = item.size
    side = max(width, height)
    size = min(side, OVERLAY_PIXELS)
    square = Image.new("RGB", (side, side))
    square.paste(
        Image.fromarray(read_image(item.path)), ((side - width) // 2, (side - height) // 2)
    )
    image = torch.from_numpy(np.asarray(square.resize((size, size), Image.BILINEAR)).copy())
    image = image.permute(2, 0, 1).float() / 255.0
    dev = vertices.device
    with torch.no_grad():
        shaded = render_mesh(
            camera_vertices(vertices),
            layer.faces,
            fit.scale[i : i + 1].to(dev),
            fit.trans[i : i + 1].to(dev),
            fit.rho[i : i + 1].to(dev),
            size,
        )
    caption = interval_text(fit, i)
    overlay(image, shaded.image[0].cpu(), shaded.mask[0].cpu(), fit.landmarks[i], path, caption)


def _capture_summary(args, items, landmarks, layer, prior, fit) -> list[dict]:
    """Each capture's rho with its posterior interval and a percentile bootstrap
    interval over its frames (``rho_lo``, ``rho_hi``)."""
    captures = sorted({i.capture for i in items})
    out = []
    gen = torch.Generator().manual_seed(0)
    resampled, groups, owner = [], [], []
    for k, capture in enumerate(captures):
        frames = torch.tensor([j for j, it in enumerate(items) if it.capture == capture])
        for _ in range(args.bootstrap if len(frames) > 1 else 0):
            pick = frames[torch.randint(len(frames), (len(frames),), generator=gen)]
            resampled.append(landmarks[pick])
            groups.append(torch.full((len(frames),), len(owner)))
            owner.append(k)
    boot_rho = {k: [] for k in range(len(captures))}
    if resampled:
        boot = fit_landmarks(
            torch.cat(resampled),
            layer,
            groups=torch.cat(groups),
            rho_prior=prior,
            iterations=args.iterations,
            camera=args.camera,
            device=layer.v_template.device,
        )
        starts = torch.cumsum(torch.tensor([0] + [len(g) for g in groups[:-1]]), 0)
        for k, s in zip(owner, starts.tolist()):
            boot_rho[k].append(float(boot.rho[s]))
    for k, capture in enumerate(captures):
        first = next(j for j, it in enumerate(items) if it.capture == capture)
        rhos = np.array(boot_rho[k])
        lo, hi = np.percentile(rhos, [2.5, 97.5]).tolist() if len(rhos) > 1 else (None, None)
        folder = os.path.dirname(items[first].path)
        frames = sum(it.capture == capture for it in items)
        out.append(
            {
                "capture": folder,
                "frames": frames,
                "rho": float(fit.rho[first]),
                "rho_interval": finite_or_none(fit.rho_interval[first].tolist()),
                "distance_interval_m": finite_or_none(fit.distance_interval[first].tolist()),
                "distance_text": interval_text(fit, first),
                "rho_lo": lo,
                "rho_hi": hi,
            }
        )
    return out


if __name__ == "__main__":
    main()
