"""Face crops the way SMIRK makes them: the box of the 68 landmarks, enlarged by a scale
(1.4 at inference, random 1.2-1.8 in training, 1.6 at test), warped to the network's
input size by a similarity transform; points carried into the crop and back.

Coordinates are 0-based pixels with pixel centres at integers (docs/design.md section 2):
pixel ``c`` covers ``[c - 0.5, c + 0.5]``. A crop of ``side`` source pixels centred at
``(cx, cy)`` and turned by ``angle`` maps onto an ``size x size`` output whose pixel
centres are also at integers, so the crop square's edges land on ``-0.5`` and
``size - 0.5``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image

#: SMIRK's enlargement of the landmark box: at inference, at test, and the training range.
SCALE_INFER = 1.4
SCALE_TEST = 1.6
SCALE_TRAIN = (1.2, 1.8)
#: How ``--folder`` images are cropped (train.data.folder.load_folder's ``crop``): the
#: landmark crop for images annotated on the fly and the centre square for the others,
#: the centre square for all, or the landmark crop for all
FOLDER_CROPS = ("auto", "centre", "landmarks")


@dataclasses.dataclass(frozen=True)
class CropBox:
    """A square crop of an image: centre ``(cx, cy)`` and ``side`` in source pixels, turned
    by ``angle`` radians (counter-clockwise on screen, y down), resampled to ``size`` px."""

    cx: float
    cy: float
    side: float
    size: int
    angle: float = 0.0

    def __post_init__(self):
        values = (self.cx, self.cy, self.side, self.angle)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"crop box values must be finite, got {values}")
        if not self.side > 0:
            raise ValueError(f"crop side must be > 0 pixels, got {self.side}")
        if int(self.size) != self.size or self.size < 1:
            raise ValueError(f"crop size must be a positive integer, got {self.size}")

    @property
    def zoom(self) -> float:
        """Output pixels per source pixel."""
        return self.size / self.side

    def matrix(self) -> np.ndarray:
        """``[2,3]`` float64: ``crop = A @ (x, y, 1)`` from source to crop pixels."""
        k = self.zoom
        c, s = math.cos(self.angle), math.sin(self.angle)
        # rotate about the crop centre, scale, then put the centre at (size - 1) / 2
        rot = k * np.array([[c, s], [-s, c]])
        mid = (self.size - 1) / 2.0
        shift = np.array([mid, mid]) - rot @ np.array([self.cx, self.cy])
        return np.concatenate([rot, shift[:, None]], axis=1)

    def inverse_matrix(self) -> np.ndarray:
        """``[2,3]`` float64: ``source = A @ (u, v, 1)`` from crop to source pixels."""
        fwd = self.matrix()
        inv = np.linalg.inv(fwd[:, :2])
        return np.concatenate([inv, (-inv @ fwd[:, 2])[:, None]], axis=1)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Source pixels ``[...,2]`` (x, y) to crop pixels, float64."""
        return _apply(self.matrix(), points)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Crop pixels ``[...,2]`` (x, y) back to source pixels, float64."""
        return _apply(self.inverse_matrix(), points)

    def to_json(self) -> dict:
        """A JSON-ready record (the same fields, plus the source-to-crop matrix)."""
        return {
            "center_px": [self.cx, self.cy],
            "side_px": self.side,
            "size": self.size,
            "angle_rad": self.angle,
            "matrix_image_to_crop": self.matrix().tolist(),
        }


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim < 1 or pts.shape[-1] != 2:
        raise ValueError(f"points must have shape [..., 2] (x, y), got {list(pts.shape)}")
    return pts @ matrix[:, :2].T + matrix[:, 2]


def landmark_crop(points: np.ndarray, scale: float, size: int, angle: float = 0.0) -> CropBox:
    """SMIRK's crop of a face: the square around the landmarks' bounding box, its side the
    box's longer side times ``scale``, centred on the box's centre.

    ``points`` ``[N,2]`` (N >= 2) in source pixels; ``scale`` > 0 (1.4 inference, 1.6
    test, 1.2-1.8 training); ``size`` the output side in pixels.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 2:
        raise ValueError(f"points must have shape [N>=2, 2], got {list(pts.shape)}")
    if not np.isfinite(pts).all():
        raise ValueError("points contain NaN or inf")
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    side = float(max(hi - lo)) * scale
    if side <= 0:
        raise ValueError("the landmarks are all at one point: no box to crop")
    centre = (lo + hi) / 2.0
    return CropBox(float(centre[0]), float(centre[1]), side, int(size), angle)


def box_crop(box: tuple[float, float, float, float], scale: float, size: int) -> CropBox:
    """A square crop around a detector box ``(left, top, right, bottom)`` in pixels."""
    left, top, right, bottom = (float(v) for v in box)
    if not (right > left and bottom > top):
        raise ValueError(f"box must have right > left and bottom > top, got {box}")
    side = max(right - left, bottom - top) * scale
    return CropBox((left + right) / 2, (top + bottom) / 2, side, int(size))


def random_scale(rng: np.random.Generator, low: float = SCALE_TRAIN[0], high=SCALE_TRAIN[1]):
    """A training scale drawn uniformly from ``[low, high]`` (SMIRK: 1.2-1.8)."""
    return float(rng.uniform(low, high))


def warp(image: np.ndarray, crop: CropBox) -> np.ndarray:
    """The crop of ``image`` (``[H,W,3]`` uint8) as ``[size,size,3]`` uint8, bilinear, zero
    outside the image. A crop more than twice larger than its output is first reduced by
    an integer factor with a box filter, so strong downscaling does not alias."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"image must be [H,W,3] uint8, got {list(arr.shape)} {arr.dtype}")
    pil = Image.fromarray(arr)
    inv = crop.inverse_matrix()
    factor = int(1.0 / crop.zoom // 2) if crop.zoom < 0.5 else 1
    if factor >= 2:
        # reduced pixel c' covers source pixels [c' k, c' k + k - 1]: x' = (x + 0.5) / k - 0.5
        pil = pil.reduce(factor)
        inv = np.concatenate([inv[:, :2] / factor, ((inv[:, 2] + 0.5) / factor - 0.5)[:, None]], 1)
    # PIL samples its input at A (u + 0.5, v + 0.5) and puts pixel centres at + 0.5: shift
    # both ends to our integer-centre convention
    lin, off = inv[:, :2], inv[:, 2]
    pil_off = off + 0.5 - lin @ np.array([0.5, 0.5])
    coeffs = (lin[0, 0], lin[0, 1], pil_off[0], lin[1, 0], lin[1, 1], pil_off[1])
    out = pil.transform((crop.size, crop.size), Image.AFFINE, coeffs, resample=Image.BILINEAR)
    return np.asarray(out).copy()
