"""Real data from a folder: images plus 68-point landmark files, for fine-tuning and
evaluation on footage without ground truth.

Layout: ``<root>/<name>.<png|jpg|ppm|...>`` (every format PIL reads,
``train.faces.IMAGE_SUFFIXES``) with a landmark file of the same stem:

- ``<name>.npy``: a float array ``[68, 2]`` of (x, y) pixel coordinates, 0-based,
  pixel centres at integers (loaded with ``allow_pickle=False``);
- ``<name>.json``: ``[[x, y], ...]`` or ``{"landmarks": [[x, y], ...]}``, same convention;
- ``<name>.pts``: the 300W format (``version: 1``, ``n_points: 68``, ``{`` x y lines
  ``}``), 1-based as in the 300W annotations.

Images without a landmark file are skipped, or, given an ``annotate_cache`` folder and a
face detector (the ``faces`` extra), annotated on the fly: the largest face's 68
landmarks are detected once and cached there (train.data.folder_annotate), never in
``root``.

Crops (``crop``): ``"centre"`` takes the central square of the image; ``"landmarks"``
SMIRK's crop (train.faces.crop_box: the landmarks' box x 1.6, similarity warp); ``"auto"``
(what ``train.finetune`` uses) the landmark crop for annotated images and the centre
crop for images that came with a landmark file, as before detection existed.

An optional ``<root>/rho_prior.json`` gives the folder's rho prior, either
``{"rho_prior": 4.0}`` or the capture geometry of the paper's eq. 10-11
(``{"sensor_width_cm": 0.455, "face_width_cm": 15, "distance_cm": [15, 30]}``).

Images are cropped to a square and resized to ``size``; landmarks follow and are
returned in NDC (docs/design.md section 2). Every file that cannot be used is
reported by name with the reason, and skipped; nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys

import numpy as np
import torch
from PIL import Image

import ppcam
from train.faces.crop_box import FOLDER_CROPS, SCALE_TEST, landmark_crop, warp
from train.faces.detect import FaceDetector
from train.faces.images import IMAGE_SUFFIXES, read_image, report_skipped
from train.faces.landmark_files import LANDMARK_SUFFIXES, MESH_SUFFIX, read_landmarks
from train.units import REFERENCE_PIXELS


@dataclasses.dataclass
class FolderData:
    """Loaded images ``[N,3,S,S]`` uint8, landmarks ``[N,68,2]`` NDC, the file names,
    what was skipped and why, and the folder's rho prior (None when not given)."""

    image: torch.Tensor
    landmarks: torch.Tensor
    names: list[str]
    skipped: list[tuple[str, str]]
    rho_prior: float | None


def read_rho_prior(root: str) -> float | None:
    """The folder's rho prior from ``rho_prior.json``, or None."""
    path = os.path.join(root, "rho_prior.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        spec = json.load(f)
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: expected a JSON object")
    if "rho_prior" in spec:
        value = float(spec["rho_prior"])
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{path}: rho_prior must be a finite number >= 0, got {value}")
        return value
    keys = {"sensor_width_cm", "face_width_cm", "distance_cm"}
    if not keys & set(spec):
        raise ValueError(f"{path}: give 'rho_prior' or the capture geometry {sorted(keys)}")
    unknown = set(spec) - keys
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
    kwargs = {k: (tuple(v) if k == "distance_cm" else float(v)) for k, v in spec.items()}
    return ppcam.hmc_rho_prior(**kwargs).center


def _square_crop(img: Image.Image, points: np.ndarray) -> tuple[Image.Image, np.ndarray]:
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return img.crop((left, top, left + side, top + side)), points - [left, top]


def _landmark_crop(image: np.ndarray, points: np.ndarray, size: int, scale: float):
    crop = landmark_crop(points, scale, size)
    return Image.fromarray(warp(image, crop)), crop.to_crop(points), float(size)


def _centre_crop(image: np.ndarray, points: np.ndarray, size: int):
    img, points = _square_crop(Image.fromarray(image), points)
    side = img.size[0]
    return img.resize((size, size), Image.BILINEAR), points, float(side)


def load_folder(
    root: str,
    size: int = REFERENCE_PIXELS,
    rho_prior: float | None = None,
    crop: str = "centre",
    annotate_cache: str | None = None,
    detector: FaceDetector | None = None,
    scale: float = SCALE_TEST,
    detector_name: str = "auto",
) -> FolderData:
    """Load every usable (image, landmarks) pair of ``root``; see the module docstring.

    ``rho_prior`` overrides the folder's ``rho_prior.json``. ``crop``: one of
    :data:`FOLDER_CROPS`; ``scale`` the landmark crop's enlargement (1.6, SMIRK's test
    value). ``annotate_cache``: a folder (outside ``root``) where images without a
    landmark file get their detected landmarks cached; ``detector`` a
    ``train.faces.FaceDetector`` (default: the one named ``detector_name``, built when
    first needed: ``auto``, ``mediapipe`` or ``dlib``, from the ``faces`` extra). Raises
    ``FileNotFoundError`` for a missing folder and ``ValueError`` when nothing in it can
    be used (the message lists each file and why); each file skipped is printed.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f"data folder not found: {root}")
    if size < 16:
        raise ValueError(f"size must be >= 16, got {size}")
    if crop not in FOLDER_CROPS:
        raise ValueError(f"crop must be one of {FOLDER_CROPS}, got {crop!r}")
    if annotate_cache is not None and os.path.realpath(annotate_cache).startswith(
        os.path.realpath(root) + os.sep
    ):
        raise ValueError(f"annotate_cache {annotate_cache!r} must not be inside the data folder")
    files = sorted(os.listdir(root))
    images, marks, names, skipped = [], [], [], []
    stems_with_images = set()
    no_detector = None  # why images cannot be annotated, once known
    for name in files:
        stem, suffix = os.path.splitext(name)
        if suffix.lower() not in IMAGE_SUFFIXES:
            continue
        stems_with_images.add(stem)
        lmk_files = [stem + s for s in LANDMARK_SUFFIXES if stem + s in files]
        missing = f"no landmark file ({', '.join(stem + s for s in LANDMARK_SUFFIXES)})"
        if not lmk_files and annotate_cache is None:
            skipped.append((name, missing))
            continue
        points = None
        if lmk_files:
            try:
                points = read_landmarks(os.path.join(root, lmk_files[0]))
            except (ValueError, OSError) as exc:
                skipped.append((lmk_files[0], str(exc)))
                continue
        elif detector is None and no_detector is None:
            from train.faces.detect import DetectorUnavailable, licence, load_detector

            try:
                detector = load_detector(detector_name)
                print(
                    f"note: annotating {root} with the {detector.name} detector; "
                    f"{licence(detector)}",
                    file=sys.stderr,
                )
            except DetectorUnavailable as exc:
                no_detector = str(exc)
        if points is None and no_detector is not None:
            skipped.append((name, f"{missing}; cannot annotate it: {no_detector}"))
            continue
        try:
            image = read_image(os.path.join(root, name))
        except ValueError as exc:
            skipped.append((name, f"unreadable image: {exc}"))
            continue
        annotated = points is None
        if annotated:
            from train.data.folder_annotate import detected_landmarks

            points = detected_landmarks(os.path.join(root, name), image, annotate_cache, detector)
            if points is None:
                skipped.append((name, f"{missing} and no face found by the detector"))
                continue
        use_landmarks = crop == "landmarks" or (crop == "auto" and annotated)
        if use_landmarks:
            img, points, side = _landmark_crop(image, points, size, scale)
        else:
            img, points, side = _centre_crop(image, points, size)
        # pixel centres: 0-based x maps to NDC (2x + 1) / side - 1
        ndc = (2.0 * points + 1.0) / side - 1.0
        images.append(torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1))
        marks.append(torch.from_numpy(ndc).float())
        names.append(name)
    for name in files:
        stem, suffix = os.path.splitext(name)
        if name.endswith(MESH_SUFFIX):  # MediaPipe's points beside a .pts
            stem = name[: -len(MESH_SUFFIX)]
        if name == "rho_prior.json":
            continue
        # <stem>_<k>.pts: one face of several (train.landmarks --all-faces), not read here
        if suffix.lower() in LANDMARK_SUFFIXES and stem not in stems_with_images:
            why = "landmark file without an image"
            if stem.rpartition("_")[0] in stems_with_images:
                why = "one face of several (--all-faces): --folder reads <stem>.pts only"
            skipped.append((name, why))
    report_skipped([(os.path.join(root, name), why) for name, why in skipped])
    if not images:
        listed = "; ".join(f"{n}: {w}" for n, w in skipped) or "no image files"
        raise ValueError(f"no usable (image, landmarks) pairs in {root} ({listed})")
    prior = rho_prior if rho_prior is not None else read_rho_prior(root)
    return FolderData(torch.stack(images), torch.stack(marks), names, skipped, prior)
