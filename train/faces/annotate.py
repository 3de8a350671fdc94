"""Landmark files for a set of photographs (``python -m train.landmarks`` is its command):
per image the 300-W ``.pts`` of the largest face (``<stem>.pts``) or of every face
(``<stem>_<k>.pts``, k = 0 the largest), optional overlays, and ``skipped.txt``."""

from __future__ import annotations

import dataclasses
import os
import warnings

from tqdm import tqdm

from _common.atomic import write_text
from train.faces.detect import FaceDetector, find_faces, load_detector
from train.faces.draw import draw_faces
from train.faces.images import ImageError, is_video, list_inputs, read_image
from train.faces.landmark_files import LANDMARK_SUFFIXES, write_pts


@dataclasses.dataclass
class AnnotateResult:
    """What :func:`annotate` wrote: landmark files, overlays, and ``(path, why)`` skipped."""

    written: list[str]
    overlays: list[str]
    skipped: list[tuple[str, str]]


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
    made by hand) unless ``overwrite``.
    """
    det = detector or load_detector()
    paths, skipped = list_inputs(inputs)
    report_dir = report or out or "landmarks-report"
    written, overlays = [], []
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
            written.append(target)
        if overlay:
            target = os.path.join(report_dir, f"{stem}_landmarks.png")
            draw_faces(
                image, [f.landmarks for f in chosen], [f.box.as_tuple() for f in chosen], target
            )
            overlays.append(target)
    for path, why in skipped:
        warnings.warn(f"{path}: skipped ({why})", stacklevel=2)
    write_text(
        os.path.join(report_dir, "skipped.txt"), "".join(f"{p}\t{why}\n" for p, why in skipped)
    )
    return AnnotateResult(written, overlays, skipped)
