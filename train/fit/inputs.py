"""The inputs of ``python -m train.fit``: images with 68-point landmark files.

An image ``photo.jpg`` needs ``photo.pts`` (300-W, 1-based), ``photo.npy`` or
``photo.json`` (0-based pixels) beside it (:func:`train.faces.landmark_files.read_landmarks`;
``python -m train.landmarks`` writes them where the face extra is installed).
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
    """One image: its path, size ``(W, H)``, landmarks ``[68,2]`` (NDC) and capture id."""

    path: str
    size: tuple[int, int]
    landmarks: torch.Tensor
    capture: int


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


def _landmark_file(image: str) -> str | None:
    stem = os.path.splitext(image)[0]
    return next((stem + s for s in LANDMARK_SUFFIXES if os.path.isfile(stem + s)), None)


def collect(inputs: list[str], per_capture: bool) -> tuple[list[FitInput], list[tuple[str, str]]]:
    """The usable images of ``inputs`` (files and folders), and ``(path, reason)`` for
    the rest. With ``per_capture`` every folder given (or each of its sub-folders, if
    it has any) is one capture; files given one by one are one capture together."""
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
    for capture, paths in enumerate(groups):
        for path in paths:
            lmk = _landmark_file(path)
            if lmk is None:
                skipped.append((path, f"no landmark file ({', '.join(LANDMARK_SUFFIXES)})"))
                continue
            try:
                height, width = read_image(path).shape[:2]  # upright: EXIF applied
                points = read_landmarks(lmk)
            except (OSError, ValueError) as exc:
                skipped.append((path, f"unreadable: {exc}"))
                continue
            ndc = torch.from_numpy(pixels_to_ndc(points, width, height)).float()
            found.append(FitInput(path, (width, height), ndc, capture if per_capture else 0))
    if not per_capture:
        found = [f._replace(capture=i) for i, f in enumerate(found)]
    return found, skipped


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)
