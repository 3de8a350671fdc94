"""Landmark files for a set of photographs (``python -m train.landmarks`` is its command):
per image the 300-W ``.pts`` of the largest face (``<stem>.pts``) or of every face
(``<stem>_<k>.pts``, k = 0 the largest), beside each the MediaPipe mesh where that
backend ran (``<stem>.mp.npy`` / ``<stem>_<k>.mp.npy``: ``[478,3]`` float32, x, y, z in
0-based source pixels), optional overlays, ``skipped.txt`` and ``faces.tsv`` (per face
written: the backend that found it, its score and mesh face-presence)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
from tqdm import tqdm

from _common.atomic import atomic_path, write_text
from train.faces.detect import Face, FaceDetector, find_faces, load_detector
from train.faces.draw import draw_faces
from train.faces.images import ImageError, is_video, list_inputs, read_image, report_skipped
from train.faces.landmark_files import LANDMARK_SUFFIXES, MESH_SUFFIX, write_pts


@dataclasses.dataclass
class AnnotateResult:
    """What :func:`annotate` wrote: landmark files, overlays, and ``(path, why)`` skipped."""

    written: list[str]
    overlays: list[str]
    skipped: list[tuple[str, str]]
    #: per landmark file written: ``(its path, the backend that found the face)``
    sources: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def write_mesh(path: str, points: np.ndarray) -> None:
    """MediaPipe's points ``[478,3]`` (or 468) as a float32 ``.npy``, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.asarray(points, dtype=np.float32), allow_pickle=False)


def _face_row(target: str, face: Face) -> str:
    presence = "" if face.presence is None else f"{face.presence:.3f}"
    box = " ".join(f"{v:.1f}" for v in face.box.as_tuple())
    return f"{target}\t{face.box.source}\t{face.box.score:.3f}\t{presence}\t{box}\n"


def annotate(
    inputs: list[str],
    out: str | None = None,
    report: str | None = None,
    all_faces: bool = False,
    overlay: bool = False,
    detector: FaceDetector | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> AnnotateResult:
    """Detect faces and write their 68 landmarks as 300-W ``.pts`` files.

    ``inputs``: image files and folders (every file PIL reads; anything else is listed
    as skipped). ``out``: where the ``.pts`` files go (default: beside each image, which
    is what ``train.finetune --folder`` reads). ``report``: where ``skipped.txt`` and the
    overlays (``<stem>_landmarks.png``) go (default: ``out``, or ``./landmarks-report``
    when ``out`` is None, so no new image lands in a data folder). An image with no face,
    an unreadable file and a decompression bomb are skipped with the reason, and so is an
    image whose landmark file exists already (``.pts``, ``.npy`` or ``.json``, perhaps
    made by hand) unless ``overwrite``. Skips are printed, one plain line each, and
    listed in ``skipped.txt``; ``faces.tsv`` (in ``report``) names for each landmark file
    written the backend that found its face (``path, source, score, presence, box``).
    """
    det = detector or load_detector()
    paths, skipped = list_inputs(inputs)
    report_dir = report or out or "landmarks-report"
    written, overlays, sources, rows = [], [], [], []
    for path in tqdm(paths, desc="landmarks", unit="image", disable=not progress):
        if is_video(path):
            skipped.append((path, "a video: train.landmarks reads still images"))
            continue
        stem = os.path.splitext(os.path.basename(path))[0]
        folder = out if out is not None else os.path.dirname(path)
        first = f"{stem}_0" if all_faces else stem
        existing = [
            first + s for s in LANDMARK_SUFFIXES if os.path.exists(os.path.join(folder, first + s))
        ]
        if existing and not overwrite:
            skipped.append((path, f"has a landmark file already ({existing[0]}; --overwrite)"))
            continue
        try:
            image = read_image(path)
        except ImageError as exc:
            skipped.append((path, str(exc)))
            continue
        faces = find_faces(image, det)
        if not faces:
            h, w = image.shape[:2]
            skipped.append((path, f"no face found by the {det.name} detector ({w}x{h} px)"))
            continue
        chosen = faces if all_faces else faces[:1]
        for k, face in enumerate(chosen):
            name = f"{stem}_{k}.pts" if all_faces else f"{stem}.pts"
            target = os.path.join(folder, name)
            write_pts(target, face.landmarks)
            if face.mesh is not None:
                write_mesh(target[: -len(".pts")] + MESH_SUFFIX, face.mesh)
            written.append(target)
            sources.append((target, face.box.source))
            rows.append(_face_row(target, face))
        if overlay:
            target = os.path.join(report_dir, f"{stem}_landmarks.png")
            labels = [f"{k} {f.box.source}".strip() for k, f in enumerate(chosen)]
            boxes = [f.box.as_tuple() for f in chosen]
            draw_faces(image, [f.landmarks for f in chosen], boxes, target, labels=labels)
            overlays.append(target)
    report_skipped(skipped)
    write_text(
        os.path.join(report_dir, "skipped.txt"), "".join(f"{p}\t{why}\n" for p, why in skipped)
    )
    header = "landmark_file\tsource\tscore\tpresence\tbox_left_top_right_bottom\n"
    write_text(os.path.join(report_dir, "faces.tsv"), header + "".join(rows))
    return AnnotateResult(written, overlays, skipped, sources)
