"""Landmarks for the images of a ``--folder`` that came without a landmark file: found
by the face detector (train.faces, the ``faces`` extra) on first use and cached as 300-W
``.pts`` under the runs' data folder, never written into the user's folder.

The cache of a folder is ``<out_dir>/.data/folder-landmarks/<folder name>-<hash of its
absolute path>[/<detector>]/<image file name>.pts`` (``.noface`` where the detector
found none; one sub-folder per detector other than ``auto``); a cached answer older than
its image is redone.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from _common.atomic import write_text
from train.faces.detect import FaceDetector, find_faces
from train.faces.landmark_files import read_pts, write_pts


def annotation_cache_dir(out_dir: str, folder: str, detector: str = "auto") -> str:
    """Where the landmarks ``detector`` found in ``folder``'s images are cached for runs
    in ``out_dir``."""
    real = os.path.realpath(folder)
    digest = hashlib.sha256(real.encode()).hexdigest()[:12]
    base = os.path.join(out_dir, ".data", "folder-landmarks", f"{os.path.basename(real)}-{digest}")
    return base if detector == "auto" else os.path.join(base, detector)


def detected_landmarks(
    image_path: str, image: np.ndarray, cache_dir: str, detector: FaceDetector
) -> np.ndarray | None:
    """``[68,2]`` float64 0-based pixels of the largest face in ``image`` (the decoded,
    upright ``image_path``), from the cache or the detector (then cached); None when no
    face is found."""
    cached = os.path.join(cache_dir, os.path.basename(image_path) + ".pts")
    none = os.path.join(cache_dir, os.path.basename(image_path) + ".noface")
    stamp = os.path.getmtime(image_path)
    if os.path.isfile(cached) and os.path.getmtime(cached) >= stamp:
        return read_pts(cached)
    if os.path.isfile(none) and os.path.getmtime(none) >= stamp:
        return None
    faces = find_faces(image, detector)
    if not faces:
        write_text(none, f"no face found by the {detector.name} detector\n")
        return None
    write_pts(cached, faces[0].landmarks)
    return faces[0].landmarks
