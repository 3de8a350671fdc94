"""Real photographs and footage: robust image reading (``images``), face detection and
68 landmarks behind one interface (``detect``: the ``mediapipe`` backend with MediaPipe's
478 points, ``dlib``, and ``auto`` merging both; the ``faces`` extra), SMIRK-style
similarity crops (``crop_box``) and the network's input crops
(``input_crops``), landmark files (``landmark_files``), detections drawn for checking
(``draw``) and video frames (``video``, ``video`` extra). See docs/faces.md."""

from train.faces.crop_box import (
    SCALE_INFER,
    SCALE_TEST,
    SCALE_TRAIN,
    CropBox,
    box_crop,
    landmark_crop,
    random_scale,
    warp,
)
from train.faces.detect import (
    DEFAULT_DETECTOR,
    DETECTORS,
    LICENCE_NOTE,
    MEDIAPIPE_LICENCE,
    Box,
    DetectorUnavailable,
    Face,
    FaceDetector,
    available,
    detect_faces,
    find_faces,
    landmarks68,
    licence,
    load_detector,
)
from train.faces.images import (
    IMAGE_SUFFIXES,
    MAX_PIXELS,
    VIDEO_SUFFIXES,
    ImageError,
    list_inputs,
    read_image,
)
from train.faces.mesh68 import MESH_TO_IBUG, mesh_to_68

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "IMAGE_SUFFIXES",
    "LICENCE_NOTE",
    "MAX_PIXELS",
    "MEDIAPIPE_LICENCE",
    "MESH_TO_IBUG",
    "SCALE_INFER",
    "SCALE_TEST",
    "SCALE_TRAIN",
    "VIDEO_SUFFIXES",
    "Box",
    "CropBox",
    "DetectorUnavailable",
    "Face",
    "FaceDetector",
    "ImageError",
    "available",
    "box_crop",
    "detect_faces",
    "find_faces",
    "landmark_crop",
    "landmarks68",
    "licence",
    "list_inputs",
    "load_detector",
    "mesh_to_68",
    "random_scale",
    "read_image",
    "warp",
]
