"""``python -m bench.faces [--detectors auto mediapipe dlib] [--images PATH ...] [--quick]``:
the face front end (train.faces) on real photographs, per detector backend.

Per photograph (bench.faces_data: every real photo of people the registry's packages
ship, their visible faces marked) and backend: the marked faces found, false
detections, milliseconds per image for detection + landmarks on this machine, and

- where a 300-W ``<stem>.pts`` annotation lies beside an ``--images`` photo, the mean
  68-point error normalised by the outer-eye-corner distance (iBUG points 36 and 45);
- self-consistency of the largest face: the landmarks found on a transformed copy
  (mirrored, half and double size, turned by +-10 degrees, greyscale, JPEG quality 40)
  mapped back to the original and compared with the original's, normalised the same way;
- MediaPipe's 68 points (the mesh mapped by train.faces.mesh68) against dlib's 68-point
  model on each marked face both find: normalised error, all 68 and without the jaw.

Then the stand-in head rendered over real backgrounds, turned by yaw 0-60 degrees in
bins: the detection rate per bin per backend. Writes ``faces.json`` and ``faces.md``
under ``bench/results/<device-name>/``. Needs the ``faces`` extra; prints the licence of
each model used. ``--offline`` uses only photographs already cached.
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/raster.py

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _common.atomic import write_json, write_text  # noqa: E402
from bench.common import cpu_model, device_name, time_call  # noqa: E402
from bench.faces_data import YAW_BINS, Photo, photographs, score_boxes, yaw_renders  # noqa: E402
from bench.faces_transforms import (  # noqa: E402, F401 (MIRROR: the tests' and users' import)
    MIRROR,
    nearest,
    normalised_error,
    transforms,
)
from train.faces.detect import (  # noqa: E402
    DetectorUnavailable,
    Face,
    FaceDetector,
    find_faces,
    licence,
    load_detector,
)
from train.faces.images import read_image  # noqa: E402
from train.faces.landmark_files import read_pts  # noqa: E402

BACKENDS = ("auto", "mediapipe", "dlib")
#: iBUG points without the jaw line (17-67), whose definitions differ least
INNER = slice(17, 68)


def measure_image(photo: Photo, detector: FaceDetector, budget: float, quick: bool) -> dict:
    """One photograph's row for one backend: faces found, timing, errors, consistency."""
    image = read_image(photo.path)
    faces = find_faces(image, detector)
    ms = time_call(lambda: find_faces(image, detector), torch.device("cpu"), warmup=1,
                   min_repeats=1 if quick else 3, budget_s=budget)  # fmt: skip
    hits, false = score_boxes([f.box.as_tuple() for f in faces], photo.faces)
    row = {
        "image": photo.name,
        "detector": detector.name,
        "file": os.path.basename(photo.path),
        "size": [int(image.shape[1]), int(image.shape[0])],
        "faces_marked": len(photo.faces),
        "faces_found": int(sum(hits)) if len(photo.faces) else len(faces),
        "false_detections": false if len(photo.faces) else None,
        "sources": [f.box.source for f in faces],
        "scores": [round(f.box.score, 3) for f in faces],
        "ms_per_image": round(ms, 1),
        "error_vs_annotation": None,
        "consistency": {},
    }
    annotation = os.path.splitext(photo.path)[0] + ".pts"
    if os.path.isfile(annotation) and faces:
        truth = read_pts(annotation)
        best = nearest(faces, truth.mean(0))
        row["error_vs_annotation"] = round(normalised_error(best.landmarks, truth), 4)
    if not faces:
        return row
    reference = faces[0].landmarks  # the largest face
    for label, img, back, order in transforms(image):
        if quick and label not in ("mirror", "greyscale"):
            continue
        found = find_faces(img, detector)
        mapped = [Face(f.box, back(f.landmarks)[order]) for f in found]
        match = nearest(mapped, reference.mean(0))
        ok = match is not None and normalised_error(match.landmarks, reference) < 0.5
        row["consistency"][label] = (
            round(normalised_error(match.landmarks, reference), 4) if ok else None
        )
    return row


def _face_at(faces: list[Face], point: np.ndarray) -> Face | None:
    inside = [f for f in faces if f.box.left <= point[0] < f.box.right
              and f.box.top <= point[1] < f.box.bottom]  # fmt: skip
    return min(inside, key=lambda f: f.box.area, default=None)


def mediapipe_vs_dlib(photos: list[Photo], mediapipe, dlib) -> list[dict]:
    """Per marked face both backends find: MediaPipe's 68 against dlib's, normalised."""
    rows = []
    for photo in photos:
        image = read_image(photo.path)
        mp_faces, dl_faces = find_faces(image, mediapipe), find_faces(image, dlib)
        for k, point in enumerate(photo.faces):
            a, b = _face_at(mp_faces, point), _face_at(dl_faces, point)
            if a is None or b is None:
                continue
            scale = np.linalg.norm(b.landmarks[36] - b.landmarks[45])
            err = np.linalg.norm(a.landmarks - b.landmarks, axis=1) / scale
            rows.append({"image": photo.name, "face": k, "error": round(float(err.mean()), 4),
                         "error_without_jaw": round(float(err[INNER].mean()), 4),
                         "error_by_point": np.round(err, 3).tolist()})  # fmt: skip
    return rows


def yaw_rates(detectors: dict[str, FaceDetector], per_bin: int) -> dict:
    """Detection rate of the turned stand-in head per yaw bin and backend."""
    found = {name: [0] * len(YAW_BINS) for name in detectors}
    false = {name: 0 for name in detectors}
    for b, _, image, centre in yaw_renders(per_bin):
        for name, det in detectors.items():
            boxes = [f.box.as_tuple() for f in find_faces(image, det)]
            hits, extra = score_boxes(boxes, centre[None])
            found[name][b] += int(hits[0])
            false[name] += extra
    return {"bins_deg": [list(b) for b in YAW_BINS], "per_bin": per_bin,
            "rate": {n: [c / per_bin for c in v] for n, v in found.items()},
            "false_detections": false}  # fmt: skip


def _mean(values) -> str:
    values = [v for v in values if v is not None]
    return f"{statistics.mean(values):.3f}, {max(values):.3f}" if values else "n/a"


def report_markdown(payload: dict) -> str:
    lines = [
        "# Face front end on real photographs (`python -m bench.faces`)",
        "",
        f"{payload['cpu']}, {payload['threads']} threads. Licences: "
        + " | ".join(f"{k}: {v}" for k, v in payload["licences"].items()) + ".",
        "",
        "| image | size | detector | found / marked (false) | found by | ms per image | "
        "error vs annotation | consistency (mean, worst) |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in payload["rows"]:
        missed = [k for k, v in r["consistency"].items() if v is None]
        cons = _mean(r["consistency"].values())
        if missed:
            cons += f" (face lost: {', '.join(missed)})"
        err = "-" if r["error_vs_annotation"] is None else f"{r['error_vs_annotation']:.3f}"
        false = "" if r["false_detections"] is None else f" ({r['false_detections']})"
        by = ", ".join(sorted(set(r["sources"]))) or "-"
        lines.append(
            f"| {r['image']} | {r['size'][0]}x{r['size'][1]} | {r['detector']} | "
            f"{r['faces_found']} / {r['faces_marked']}{false} | {by} | {r['ms_per_image']} | "
            f"{err} | {cons} |"
        )
    lines += [
        "",
        "Faces are marked by hand (a point inside each face a person would call visible and "
        "larger than 40 px); a detection finds the face whose point is in its box, any "
        "other is false. Consistency compares the largest face's landmarks on a transformed "
        "copy (mirror, scale 0.5 and 2, +-10 degrees, greyscale, JPEG q40), mapped back, with "
        "the original's: it bounds the jitter, not the bias against human annotation.",
    ]
    agree = payload.get("mediapipe_vs_dlib") or []
    if agree:
        lines += ["", "## MediaPipe's 68 points against dlib's (faces both find)", "",
                  "| image | face | error, 68 points | without the jaw (17-67) |",
                  "|---|---|---|---|"]  # fmt: skip
        for a in agree:
            lines.append(
                f"| {a['image']} | {a['face']} | {a['error']:.3f} | {a['error_without_jaw']:.3f} |"
            )
        by_point = np.mean([a["error_by_point"] for a in agree], axis=0)
        groups = {"jaw 0-16": slice(0, 17), "brows 17-26": slice(17, 27),
                  "nose 27-35": slice(27, 36), "eyes 36-47": slice(36, 48),
                  "mouth 48-67": slice(48, 68)}  # fmt: skip
        lines += ["", "Mean by region: " + ", ".join(
            f"{k} {by_point[v].mean():.3f}" for k, v in groups.items()) + "."]  # fmt: skip
    yaw = payload.get("yaw")
    if yaw:
        bins = [f"{lo}-{hi} deg" for lo, hi in yaw["bins_deg"]]
        lines += ["", f"## The stand-in head turned (yaw bins, {yaw['per_bin']} renders each)",
                  "", "| detector | " + " | ".join(bins) + " | false detections |",
                  "|---" * (len(bins) + 2) + "|"]  # fmt: skip
        for name, rates in yaw["rate"].items():
            cells = " | ".join(f"{r:.0%}" for r in rates)
            lines.append(f"| {name} | {cells} | {yaw['false_detections'][name]} |")
    if payload.get("missing"):
        lines += ["", "Not measured: " + "; ".join(payload["missing"])]
    return "\n".join(lines) + "\n"


def _available(names: list[str]) -> tuple[dict[str, FaceDetector], list[str]]:
    detectors, missing = {}, []
    for name in names:
        try:
            detectors[name] = load_detector(name)
        except DetectorUnavailable as exc:
            missing.append(f"{name}: {exc}")
    return detectors, missing


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.faces", description=__doc__)
    parser.add_argument("--images", nargs="*", default=[],
                        help="more photographs (faces counted, not marked; a <stem>.pts "
                        "beside one gives the true error)")  # fmt: skip
    parser.add_argument("--detectors", "--detector", nargs="+", choices=BACKENDS,
                        default=list(BACKENDS),
                        help="backends measured (default: all that are installed)")  # fmt: skip
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of timing per image")
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer transforms")
    parser.add_argument("--offline", action="store_true", help="only photographs cached here")
    parser.add_argument("--yaw-per-bin", type=int, default=None,
                        help="renders per yaw bin (default 12; 0 skips; --quick: 0)")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.budget > 0:
        parser.error(f"--budget must be > 0, got {args.budget}")
    missing = [p for p in args.images if not os.path.isfile(p)]
    if missing:
        parser.error(f"--images: no such file(s) {missing}")
    per_bin = args.yaw_per_bin if args.yaw_per_bin is not None else (0 if args.quick else 12)
    if per_bin < 0:
        parser.error(f"--yaw-per-bin must be >= 0, got {per_bin}")
    detectors, absent = _available(args.detectors)
    if not detectors:
        parser.error("no detector is installed: " + "; ".join(absent))
    photos, not_here = photographs(allow_download=not args.offline)
    photos += [Photo(os.path.splitext(os.path.basename(p))[0], p, np.zeros((0, 2)))
               for p in args.images]  # fmt: skip
    rows = [measure_image(p, d, args.budget, args.quick) for p in photos
            for d in detectors.values()]  # fmt: skip
    agree = []
    if {"mediapipe", "dlib"} <= set(detectors):
        agree = mediapipe_vs_dlib(photos, detectors["mediapipe"], detectors["dlib"])
    out_dir = os.path.join(args.out, device_name(torch.device("cpu")))
    payload = {
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "quick": args.quick,
        "licences": {n: licence(d) for n, d in detectors.items()},
        "rows": rows,
        "mediapipe_vs_dlib": agree,
        "yaw": yaw_rates(detectors, per_bin) if per_bin else None,
        "missing": absent + not_here,
        "out_dir": out_dir,
    }
    write_json(os.path.join(out_dir, "faces.json"), payload)
    write_text(os.path.join(out_dir, "faces.md"), report_markdown(payload))
    print(report_markdown(payload))
    return payload


if __name__ == "__main__":
    main()
