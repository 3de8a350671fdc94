"""The network's input crops of one photograph, for each ``--crop`` mode of
``train.infer``: ``detect`` (one SMIRK crop per detected face, train.faces.crop_box),
``centre`` (the central square, the behaviour before faces were detected) and ``none``
(the image is a ready square crop)."""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from train.faces.crop_box import SCALE_INFER, CropBox, landmark_crop, warp
from train.faces.detect import Box, FaceDetector, find_faces

CROP_MODES = ("detect", "centre", "none")


@dataclasses.dataclass
class FaceCrop:
    """One network input: ``pixels`` ``[size,size,3]`` uint8, the crop's geometry in the
    source image, and for ``detect`` the detector's box and landmarks (source pixels)
    and, where MediaPipe's mesh ran, its face-presence score."""

    pixels: np.ndarray
    crop: CropBox
    index: int = 0
    box: Box | None = None
    landmarks: np.ndarray | None = None
    presence: float | None = None


def centre_crop(image: np.ndarray, size: int) -> FaceCrop:
    """The central square (side ``min(H, W)``, integer offsets) resized to ``size``."""
    h, w = image.shape[:2]
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    pil = Image.fromarray(image).crop((left, top, left + side, top + side))
    pixels = np.asarray(pil.resize((size, size), Image.BILINEAR)).copy()
    # the square [left - 0.5, left + side - 0.5] in pixel-centre coordinates
    crop = CropBox(left + side / 2 - 0.5, top + side / 2 - 0.5, float(side), size)
    return FaceCrop(pixels, crop)


def face_crops(
    image: np.ndarray,
    mode: str,
    size: int,
    detector: FaceDetector | None = None,
    scale: float = SCALE_INFER,
    faces=None,
) -> list[FaceCrop]:
    """The crops of ``image`` (``[H,W,3]`` uint8) to run the network on, for ``mode``.

    ``detect``: one per face found (largest first; empty when none), the landmark box
    enlarged by ``scale`` (1.4, SMIRK's inference value); ``faces`` (a list of
    ``train.faces.Face``) skips the detector. ``centre``: one, the central square.
    ``none``: one, the whole image, which must be square (``ValueError`` otherwise).
    """
    if mode not in CROP_MODES:
        raise ValueError(f"crop mode must be one of {CROP_MODES}, got {mode!r}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if mode == "centre":
        return [centre_crop(image, size)]
    if mode == "none":
        h, w = image.shape[:2]
        if h != w:
            raise ValueError(
                f"--crop none needs a square image (a ready face crop), got {w}x{h}; use "
                "--crop detect or centre"
            )
        return [centre_crop(image, size)]
    found = find_faces(image, detector) if faces is None else faces
    out = []
    for k, face in enumerate(found):
        crop = landmark_crop(face.landmarks, scale, size)
        pixels = warp(image, crop)
        out.append(FaceCrop(pixels, crop, k, face.box, face.landmarks, face.presence))
    return out
