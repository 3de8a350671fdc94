"""The ``"dlib"`` backend of train.faces: dlib's HOG frontal face detector and its
68-point shape predictor, from the ``faces`` extra (``dlib-bin``, Boost licence, and
``face-recognition-models``, whose 68-point model was trained on iBUG 300-W: its licence
excludes commercial use, see :data:`LICENCE_NOTE`)."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
from PIL import Image

from train.faces.face_types import Box, DetectorUnavailable, check_image

#: What the dlib backend's 68-point model may be used for (printed where it is used).
LICENCE_NOTE = (
    "dlib's 68-point landmark model (face-recognition-models) was trained on iBUG 300-W, "
    "whose licence excludes commercial use"
)
#: dlib's face detector alone (no model file).
HOG_LICENCE = "dlib's HOG face detector: Boost Software License"


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
