"""Face detection and 68 landmarks behind one small interface, with dlib as the backend.

``detect_faces(image) -> [Box]`` and ``landmarks68(image, box) -> [68,2]`` in source
pixels (0-based, pixel centres at integers; 68 points in iBUG order, docs/design.md
section 2). Another detector plugs in by implementing :class:`FaceDetector` and
registering a factory in :data:`DETECTORS`.

The dlib backend needs the ``faces`` extra (``pip install -e ".[faces]"``): ``dlib-bin``
(Boost licence; its HOG frontal face detector needs no file) and
``face-recognition-models``, which holds ``shape_predictor_68_face_landmarks.dat``.
That model was trained on iBUG 300-W, whose licence excludes commercial use: landmarks
made with it are for research only.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

#: What the dlib backend's 68-point model may be used for (printed where it is used).
LICENCE_NOTE = (
    "dlib's 68-point landmark model (face-recognition-models) was trained on iBUG 300-W, "
    "whose licence excludes commercial use"
)


class DetectorUnavailable(ImportError):
    """The detector's package or model file is not installed; the message says how."""


@dataclasses.dataclass(frozen=True)
class Box:
    """A face box in source pixels: ``left, top, right, bottom`` (right/bottom exclusive
    edges, so ``right - left`` is the width) and the detector's confidence."""

    left: float
    top: float
    right: float
    bottom: float
    score: float = 0.0

    @property
    def area(self) -> float:
        return max(self.right - self.left, 0.0) * max(self.bottom - self.top, 0.0)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.left, self.top, self.right, self.bottom)

    def scaled(self, factor: float) -> Box:
        """The box in an image resized by ``factor``."""
        return Box(*(v * factor for v in self.as_tuple()), score=self.score)


@runtime_checkable
class FaceDetector(Protocol):
    """What a detector backend provides. Images are ``[H,W,3]`` uint8 RGB, upright."""

    name: str

    def detect_faces(self, image: np.ndarray) -> list[Box]:
        """Every face found, largest first."""
        ...

    def landmarks68(self, image: np.ndarray, box: Box) -> np.ndarray:
        """``[68,2]`` float64 (x, y) source pixels in iBUG order for the face in ``box``."""
        ...


def check_image(image: np.ndarray) -> np.ndarray:
    """``image`` as a C-contiguous ``[H,W,3]`` uint8 array, or ``ValueError`` saying why not."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(
            f"image must be [H,W,3] uint8 RGB (train.faces.read_image gives that), got "
            f"{list(arr.shape)} {arr.dtype}"
        )
    return np.ascontiguousarray(arr)


def model_file(name: str, package: str = "face_recognition_models") -> str:
    """The path of a model file shipped in ``package``'s ``models/`` folder, found without
    importing the package (face_recognition_models' ``__init__`` needs pkg_resources)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DetectorUnavailable(
            f'{package} is not installed: pip install -e ".[faces]" (docs/faces.md)'
        )
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "models", name)
        if os.path.isfile(path):
            return path
    raise DetectorUnavailable(f"{package} is installed but has no models/{name}")


class DlibDetector:
    """dlib's HOG frontal face detector and its 68-point shape predictor (iBUG 300-W,
    non-commercial licence, see :data:`LICENCE_NOTE`).

    Detection runs on a copy whose longer side is at most ``max_side`` pixels and, for
    images smaller than ``min_side``, on a copy enlarged to ``min_side`` (HOG finds
    faces of about 80 px; ``upsample`` doubles the image that many more times inside
    dlib). Boxes scoring below ``threshold`` are dropped. Landmarks are fitted on the
    full-resolution image.
    """

    name = "dlib"

    def __init__(
        self,
        upsample: int = 1,
        max_side: int = 1024,
        min_side: int = 320,
        threshold: float = 0.0,
    ):
        if upsample < 0 or max_side < 64 or not 0 < min_side <= max_side:
            raise ValueError(
                f"need upsample >= 0, max_side >= 64, 0 < min_side <= max_side; got "
                f"{upsample}, {max_side}, {min_side}"
            )
        try:
            import dlib
        except ImportError as exc:
            raise DetectorUnavailable(
                f'dlib is not installed ({exc}): pip install -e ".[faces]" (docs/faces.md)'
            ) from None
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(model_file("shape_predictor_68_face_landmarks.dat"))
        self.upsample, self.max_side, self.min_side = upsample, max_side, min_side
        self.threshold = threshold

    def detect_faces(self, image: np.ndarray) -> list[Box]:
        arr = check_image(image)
        h, w = arr.shape[:2]
        factor = min(1.0, self.max_side / max(h, w))
        if max(h, w) < self.min_side:
            factor = self.min_side / max(h, w)
        work = arr
        if factor != 1.0:
            size = (max(1, round(w * factor)), max(1, round(h * factor)))
            work = np.asarray(Image.fromarray(arr).resize(size, Image.BILINEAR))
            factor = size[0] / w
        rects, scores, _ = self._detector.run(work, self.upsample, self.threshold)
        boxes = [
            Box(r.left(), r.top(), r.right() + 1, r.bottom() + 1, float(s)).scaled(1.0 / factor)
            for r, s in zip(rects, scores)
        ]
        return sorted(boxes, key=lambda b: -b.area)

    def landmarks68(self, image: np.ndarray, box: Box) -> np.ndarray:
        arr = check_image(image)
        rect = self._dlib.rectangle(
            round(box.left), round(box.top), round(box.right) - 1, round(box.bottom) - 1
        )
        shape = self._predictor(arr, rect)
        if shape.num_parts != 68:
            raise RuntimeError(f"the shape predictor gave {shape.num_parts} points, expected 68")
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


#: Detector factories by name; ``load_detector(name)`` builds one (cached).
DETECTORS: dict[str, Callable[[], FaceDetector]] = {"dlib": DlibDetector}
_CACHE: dict[str, FaceDetector] = {}


def available(name: str = "dlib") -> bool:
    """True when the detector ``name`` can be built here (its extra is installed)."""
    try:
        load_detector(name)
    except DetectorUnavailable:
        return False
    return True


def load_detector(name: str = "dlib") -> FaceDetector:
    """The detector ``name`` (one of :data:`DETECTORS`), built once and cached.
    Raises :class:`DetectorUnavailable` when its extra is not installed."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}, expected one of {sorted(DETECTORS)}")
    if name not in _CACHE:
        _CACHE[name] = DETECTORS[name]()
    return _CACHE[name]


def detect_faces(image: np.ndarray, detector: FaceDetector | None = None) -> list[Box]:
    """Every face in ``image`` (``[H,W,3]`` uint8 RGB), largest first, in source pixels."""
    return (detector or load_detector()).detect_faces(image)


def landmarks68(image: np.ndarray, box: Box, detector: FaceDetector | None = None) -> np.ndarray:
    """``[68,2]`` float64 (x, y) 0-based source pixels, iBUG order, for the face in ``box``."""
    points = (detector or load_detector()).landmarks68(image, box)
    if points.shape != (68, 2) or not np.isfinite(points).all():
        raise RuntimeError(f"detector returned landmarks of shape {list(points.shape)}")
    return points


@dataclasses.dataclass
class Face:
    """One detected face: its box and its 68 landmarks ``[68,2]`` in source pixels."""

    box: Box
    landmarks: np.ndarray


def find_faces(image: np.ndarray, detector: FaceDetector | None = None) -> list[Face]:
    """Detect every face and fit its landmarks; largest first."""
    det = detector or load_detector()
    return [Face(b, landmarks68(image, b, det)) for b in detect_faces(image, det)]
