"""The inputs of ``python -m train.fit``: images with 68-point landmark files.

An image ``photo.jpg`` needs ``photo.pts`` (300-W, 1-based), ``photo.npy`` or
``photo.json`` (0-based pixels) beside it (:func:`train.faces.landmark_files.read_landmarks`;
``python -m train.landmarks`` writes them where the face extra is installed), or one file
per face, ``photo_0.pts``, ``photo_1.pts``, ... (``train.landmarks --all-faces``): each
face is then fitted on its own, as ``photo_<k>``.
Landmarks go to the NDC of the whole image with the principal point at its centre:
``x = (2 c + 1 - W) / s``, ``y = (2 r + 1 - H) / s`` with ``s = max(W, H)``, the
project's pixel-centre convention (docs/design.md section 2) on the square of side
``s`` centred on the upright image (EXIF orientation applied, as ``train.landmarks``
reads it). Cropping would move the principal point, which the
camera's perspective depends on, so the fit sees the whole frame.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
import torch

from train.faces.images import IMAGE_SUFFIXES, read_image
from train.faces.landmark_files import LANDMARK_SUFFIXES, read_landmarks


class FitInput(NamedTuple):
    """One face: its image's path, size ``(W, H)``, landmarks ``[68,2]`` (NDC), capture id
    and the stem its results are written under (the image's, or ``<stem>_<k>`` for face
    k of an image annotated with ``--all-faces``)."""

    path: str
    size: tuple[int, int]
    landmarks: torch.Tensor
    capture: int
    name: str = ""


def pixels_to_ndc(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """0-based pixel coordinates ``[N,2]`` -> NDC of the centred square (module docstring)."""
    side = max(width, height)
    return np.stack(
        [(2 * points[:, 0] + 1 - width) / side, (2 * points[:, 1] + 1 - height) / side], axis=1
    )


def ndc_to_pixels(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """The inverse of :func:`pixels_to_ndc`."""
    side = max(width, height)
    return np.stack(
        [(points[:, 0] * side + width - 1) / 2, (points[:, 1] * side + height - 1) / 2], axis=1
    )


def _landmark_file(stem: str) -> str | None:
    return next((stem + s for s in LANDMARK_SUFFIXES if os.path.isfile(stem + s)), None)


def landmark_files(image: str) -> list[tuple[str, str]]:
    """``(result stem, landmark file)`` per face of ``image``: its own ``<stem>.*``, else
    ``<stem>_0.*``, ``<stem>_1.*``, ... for as long as they follow on; empty if none."""
    stem = os.path.splitext(image)[0]
    single = _landmark_file(stem)
    if single is not None:
        return [(os.path.basename(stem), single)]
    faces = []
    while (path := _landmark_file(f"{stem}_{len(faces)}")) is not None:
        faces.append((f"{os.path.basename(stem)}_{len(faces)}", path))
    return faces


def collect(inputs: list[str], per_capture: bool) -> tuple[list[FitInput], list[tuple[str, str]]]:
    """The faces of the usable images of ``inputs`` (files and folders), and ``(path,
    reason)`` for the rest. With ``per_capture`` every folder given (or each of its
    sub-folders, if it has any) is one capture, and face k of its images one person
    (each ``(folder, k)`` its own capture); files given one by one are one capture
    together."""
    groups: list[list[str]] = []
    loose: list[str] = []
    skipped: list[tuple[str, str]] = []
    for item in inputs:
        if os.path.isdir(item):
            subdirs = sorted(d.path for d in os.scandir(item) if d.is_dir())
            for folder in subdirs if per_capture and subdirs else [item]:
                names = sorted(os.listdir(folder))
                groups.append([os.path.join(folder, n) for n in names if _is_image(n)])
        elif os.path.isfile(item):
            loose.append(item)
        else:
            skipped.append((item, "no such file or folder"))
    if loose:
        groups.append(loose)
    found: list[FitInput] = []
    captures: dict[tuple[int, int], int] = {}  # (group, face index) -> capture id
    for group, paths in enumerate(groups):
        for path in paths:
            faces = landmark_files(path)
            if not faces:
                names = ", ".join(f"<stem>{s} or <stem>_0{s}" for s in LANDMARK_SUFFIXES)
                skipped.append((path, f"no landmark file ({names})"))
                continue
            try:
                height, width = read_image(path).shape[:2]  # upright: EXIF applied
            except (OSError, ValueError) as exc:
                skipped.append((path, f"unreadable: {exc}"))
                continue
            for k, (name, lmk) in enumerate(faces):
                try:
                    points = read_landmarks(lmk)
                except (OSError, ValueError) as exc:
                    skipped.append((lmk, f"unreadable: {exc}"))
                    continue
                ndc = torch.from_numpy(pixels_to_ndc(points, width, height)).float()
                # with --per-capture, face k of every frame is one person
                capture = captures.setdefault((group, k), len(captures)) if per_capture else 0
                found.append(FitInput(path, (width, height), ndc, capture, name))
    if not per_capture:
        found = [f._replace(capture=i) for i, f in enumerate(found)]
    return found, skipped


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)
