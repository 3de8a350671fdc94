"""``python -m bench.faces [--images PATH ...] [--out bench/results] [--quick]``: the face
front end (train.faces) on real photographs.

Per image: faces found against faces present, the detector's scores, milliseconds per
image for detection + 68 landmarks on this machine, and

- where a 300-W ``<stem>.pts`` annotation lies beside the image, the mean 68-point
  error normalised by the outer-eye-corner distance (iBUG points 36 and 45);
- always, self-consistency: the landmarks found on a transformed copy (mirrored, half
  and double size, turned by +-10 degrees, greyscale, JPEG quality 40) mapped back to the
  original and compared with the original's, normalised the same way.

Real photographs that install offline: matplotlib's ``grace_hopper.jpg`` (a core
dependency) and scikit-image's ``astronaut.png`` (when scikit-image is installed); neither
ships an annotation, so only self-consistency is measured on them. ``--images`` adds
more (with ``.pts`` files for the true error). Writes ``faces.json`` and ``faces.md``
under ``bench/results/<device-name>/``. Needs the ``faces`` extra; the 68-point model
was trained on iBUG 300-W, whose licence excludes commercial use.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import statistics

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/raster.py

import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from _common.atomic import write_json, write_text  # noqa: E402
from bench.common import cpu_model, device_name, time_call  # noqa: E402
from train.faces.detect import LICENCE_NOTE, Face, find_faces, load_detector  # noqa: E402
from train.faces.images import read_image  # noqa: E402
from train.faces.landmark_files import read_pts  # noqa: E402

#: iBUG-68 index of each point's mirror image (left-right flip)
MIRROR = np.array(
    [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    + [26, 25, 24, 23, 22, 21, 20, 19, 18, 17]
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65]
)


def offline_photographs() -> list[tuple[str, str, int]]:
    """``(name, path, faces present)`` of the real photographs installed packages ship."""
    found = [
        (
            "grace_hopper",
            os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"),
            1,
        )
    ]
    spec = importlib.util.find_spec("skimage")
    if spec is not None and spec.submodule_search_locations:
        path = os.path.join(spec.submodule_search_locations[0], "data", "astronaut.png")
        if os.path.isfile(path):
            found.append(("astronaut", path, 1))
    return found


def normalised_error(points: np.ndarray, truth: np.ndarray) -> float:
    """Mean point distance over the outer-eye-corner distance (iBUG 36-45)."""
    return float(
        np.linalg.norm(points - truth, axis=1).mean() / np.linalg.norm(truth[36] - truth[45])
    )


def _rotate(image: np.ndarray, degrees: float):
    """The image turned by ``degrees`` (counter-clockwise on screen, expanded canvas) and a
    map of its pixel coordinates back to the original's."""
    pil = Image.fromarray(image)
    turned = pil.rotate(degrees, resample=Image.BILINEAR, expand=True)
    h, w = image.shape[:2]
    H, W = turned.height, turned.width
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)

    def back(p):  # turned pixel -> original pixel, about the two centres
        q = p - [(W - 1) / 2, (H - 1) / 2]
        # PIL turns counter-clockwise on screen (y down): undo with the opposite turn
        x = c * q[..., 0] - s * q[..., 1]
        y = s * q[..., 0] + c * q[..., 1]
        return np.stack([x, y], -1) + [(w - 1) / 2, (h - 1) / 2]

    return np.asarray(turned).copy(), back


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB")).copy()


def transforms(image: np.ndarray):
    """``(name, transformed image, map of its pixels back to the original, index order)``."""
    h, w = image.shape[:2]
    identity = np.arange(68)
    yield (
        "mirror",
        image[:, ::-1].copy(),
        lambda p: np.stack([w - 1 - p[..., 0], p[..., 1]], -1),
        MIRROR,
    )
    for k in (0.5, 2.0):
        size = (round(w * k), round(h * k))
        small = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
        kx = size[0] / w
        yield f"scale {k}", small, lambda p, kx=kx: (p + 0.5) / kx - 0.5, identity
    for degrees in (10.0, -10.0):
        turned, back = _rotate(image, degrees)
        yield f"rotate {degrees:+.0f} deg", turned, back, identity
    grey = np.repeat(np.asarray(Image.fromarray(image).convert("L"))[..., None], 3, axis=2)
    yield "greyscale", grey, lambda p: p, identity
    yield "jpeg q40", _jpeg(image, 40), lambda p: p, identity


def _nearest(faces: list[Face], centre: np.ndarray) -> Face | None:
    if not faces:
        return None
    return min(faces, key=lambda f: np.linalg.norm(f.landmarks.mean(0) - centre))


def measure_image(name: str, path: str, present: int, budget: float, quick: bool) -> dict:
    """One photograph's row: detection, timing, true error (if annotated), consistency."""
    image = read_image(path)
    detector = load_detector()
    faces = find_faces(image, detector)
    ms = time_call(lambda: find_faces(image, detector), torch.device("cpu"), warmup=1,
                   min_repeats=1 if quick else 3, budget_s=budget)  # fmt: skip
    fit_ms = (
        time_call(lambda: detector.landmarks68(image, faces[0].box), torch.device("cpu"),
                  warmup=1, min_repeats=3, budget_s=min(budget, 1.0))
        if faces else None
    )  # fmt: skip
    row = {
        "image": name,
        "file": os.path.basename(path),
        "size": [int(image.shape[1]), int(image.shape[0])],
        "faces_present": present,
        "faces_found": len(faces),
        "scores": [round(f.box.score, 3) for f in faces],
        "ms_per_image": round(ms, 1),
        "ms_landmarks_per_face": None if fit_ms is None else round(fit_ms, 2),
        "error_vs_annotation": None,
        "consistency": {},
    }
    annotation = os.path.splitext(path)[0] + ".pts"
    if os.path.isfile(annotation) and faces:
        truth = read_pts(annotation)
        best = _nearest(faces, truth.mean(0))
        row["error_vs_annotation"] = round(normalised_error(best.landmarks, truth), 4)
    if not faces:
        return row
    reference = faces[0].landmarks  # the largest face
    for label, img, back, order in transforms(image):
        if quick and label not in ("mirror", "greyscale"):
            continue
        found = find_faces(img, detector)
        mapped = [Face(f.box, back(f.landmarks)[order]) for f in found]
        match = _nearest(mapped, reference.mean(0))
        ok = match is not None and normalised_error(match.landmarks, reference) < 0.5
        row["consistency"][label] = (
            round(normalised_error(match.landmarks, reference), 4) if ok else None
        )
    return row


def report_markdown(payload: dict) -> str:
    lines = [
        "# Face front end on real photographs (`python -m bench.faces`)",
        "",
        f"{payload['cpu']}, {payload['threads']} threads; detector: dlib HOG + 68-point shape "
        f"predictor. {LICENCE_NOTE}.",
        "",
        "| image | size | found / present | scores | ms per image (of which 68 points) | "
        "error vs annotation | consistency (mean, worst) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in payload["rows"]:
        values = [v for v in r["consistency"].values() if v is not None]
        missed = [k for k, v in r["consistency"].items() if v is None]
        cons = f"{statistics.mean(values):.3f}, {max(values):.3f}" if values else "n/a"
        if missed:
            cons += f" (face lost: {', '.join(missed)})"
        err = (
            "no annotation"
            if r["error_vs_annotation"] is None
            else f"{r['error_vs_annotation']:.3f}"
        )
        lines.append(
            f"| {r['image']} | {r['size'][0]}x{r['size'][1]} | {r['faces_found']} / "
            f"{r['faces_present']} | {r['scores']} | {r['ms_per_image']} "
            f"({r['ms_landmarks_per_face']}) | {err} | {cons} |"
        )
    lines += [
        "",
        "Errors are mean 68-point distances over the outer-eye-corner distance. Consistency "
        "compares the landmarks of a transformed copy (mirror, scale 0.5 and 2, +-10 degrees, "
        "greyscale, JPEG q40), mapped back, with the original's: it bounds the detector's "
        "jitter, not its bias against human annotation.",
        "",
    ]
    for r in payload["rows"]:
        lines.append(
            f"- {r['image']}: " + ", ".join(f"{k} {v}" for k, v in r["consistency"].items())
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.faces", description=__doc__)
    parser.add_argument("--images", nargs="*", default=[], help="more photographs (1 face each; "
                        "a <stem>.pts beside one gives the true error)")  # fmt: skip
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of timing per image")
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer transforms")
    args = parser.parse_args(argv)
    if not args.budget > 0:
        parser.error(f"--budget must be > 0, got {args.budget}")
    missing = [p for p in args.images if not os.path.isfile(p)]
    if missing:
        parser.error(f"--images: no such file(s) {missing}")
    photos = offline_photographs() + [
        (os.path.splitext(os.path.basename(p))[0], p, 1) for p in args.images
    ]
    rows = [measure_image(n, p, k, args.budget, args.quick) for n, p, k in photos]
    device = torch.device("cpu")
    out_dir = os.path.join(args.out, device_name(device))
    payload = {
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "quick": args.quick,
        "rows": rows,
        "out_dir": out_dir,
    }
    write_json(os.path.join(out_dir, "faces.json"), payload)
    write_text(os.path.join(out_dir, "faces.md"), report_markdown(payload))
    print(report_markdown(payload))
    return payload


if __name__ == "__main__":
    main()
