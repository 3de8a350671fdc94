"""The ``"auto"`` detector: MediaPipe and dlib, whichever are installed, their faces
merged so that neither's misses are lost.

With both: BlazeFace's faces and dlib's HOG boxes are pooled; a dlib box overlapping a
BlazeFace face (intersection over the smaller box > :data:`SAME_FACE`) is the same face
(``box.source == "mediapipe+dlib"``), any other dlib box is a face BlazeFace missed
(``"dlib"``). Every face then gets MediaPipe's mesh (478 points, and 68 from it), so
dlib's 68-point model, and its non-commercial licence, is not used; a dlib box on which
the mesh finds no face (presence below ``min_presence``) is dropped as a false
detection. With one backend installed, ``auto`` is that backend.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from train.faces.dlib_backend import DlibDetector
from train.faces.face_types import Box, DetectorUnavailable, Face, FaceDetector, check_image
from train.faces.mediapipe import MediaPipeDetector

#: intersection over the smaller box's area above which two boxes are one face
SAME_FACE = 0.5


def overlap(a: Box, b: Box) -> float:
    """Intersection of two boxes over the smaller one's area (0 when either is empty)."""
    w = min(a.right, b.right) - max(a.left, b.left)
    h = min(a.bottom, b.bottom) - max(a.top, b.top)
    smaller = min(a.area, b.area)
    return max(w, 0.0) * max(h, 0.0) / smaller if smaller > 0 else 0.0


class AutoDetector:
    """MediaPipe and dlib together (module docstring). ``min_score`` goes to the MediaPipe
    detector (dlib keeps its default threshold: its scores are on another scale);
    ``min_presence`` is the mesh's face-presence threshold for every face."""

    name = "auto"

    def __init__(self, min_score: float | None = None, min_presence: float = 0.5):
        reasons = []
        self.mediapipe = self.dlib = None
        try:
            self.mediapipe = MediaPipeDetector(min_score=min_score, min_presence=min_presence)
        except DetectorUnavailable as exc:
            reasons.append(f"mediapipe: {exc}")
        try:
            self.dlib = DlibDetector(landmarks=self.mediapipe is None)
        except DetectorUnavailable as exc:
            reasons.append(f"dlib: {exc}")
        if self.mediapipe is None and self.dlib is None:
            raise DetectorUnavailable("no face detector is installed (" + "; ".join(reasons) + ")")
        self.backends = [d.name for d in (self.mediapipe, self.dlib) if d is not None]
        self.licence = "; ".join(d.licence for d in (self.mediapipe, self.dlib) if d is not None)

    def _merged(self, image: np.ndarray) -> tuple[list[Face], list[Box]]:
        """MediaPipe's faces (marked where dlib found them too) and dlib's other boxes."""
        faces = self.mediapipe.find_faces(image)
        extra = []
        for box in self.dlib.detect_faces(image) if self.dlib is not None else []:
            best = max(range(len(faces)), key=lambda k: overlap(faces[k].box, box), default=None)
            if best is not None and overlap(faces[best].box, box) > SAME_FACE:
                if "dlib" not in faces[best].box.source:
                    joined = dataclasses.replace(faces[best].box, source="mediapipe+dlib")
                    faces[best] = dataclasses.replace(faces[best], box=joined)
            else:
                extra.append(box)
        return faces, extra

    def find_faces(self, image: np.ndarray) -> list[Face]:
        """Every face either backend found, with MediaPipe's points; largest first."""
        arr = check_image(image)
        if self.mediapipe is None:
            return [Face(b, self.dlib.landmarks68(arr, b)) for b in self.dlib.detect_faces(arr)]
        faces, extra = self._merged(arr)
        faces += self.mediapipe.faces_in(arr, extra)
        return sorted(faces, key=lambda f: -f.box.area)

    def detect_faces(self, image: np.ndarray) -> list[Box]:
        """The boxes of :meth:`find_faces` (the mesh decides on dlib-only boxes)."""
        return [f.box for f in self.find_faces(image)]

    def landmarks68(self, image: np.ndarray, box: Box) -> np.ndarray:
        backend: FaceDetector = self.mediapipe if self.mediapipe is not None else self.dlib
        return backend.landmarks68(image, box)
