"""The transforms of ``bench.faces``'s consistency measure (mirror, scale, rotation,
greyscale, JPEG), each with the map of its pixels back to the original's, and the
normalised landmark error it is measured in."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from train.faces.detect import Face

#: iBUG-68 index of each point's mirror image (left-right flip)
MIRROR = np.array(
    [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    + [26, 25, 24, 23, 22, 21, 20, 19, 18, 17]
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65]
)


def normalised_error(points: np.ndarray, truth: np.ndarray) -> float:
    """Mean point distance over the outer-eye-corner distance (iBUG 36-45)."""
    return float(
        np.linalg.norm(points - truth, axis=1).mean() / np.linalg.norm(truth[36] - truth[45])
    )


def _rotate(image: np.ndarray, degrees: float):
    """The image turned by ``degrees`` (counter-clockwise on screen, expanded canvas) and a
    map of its pixel coordinates back to the original's."""
    pil = Image.fromarray(image)
    turned = pil.rotate(degrees, resample=Image.BILINEAR, expand=True)
    h, w = image.shape[:2]
    H, W = turned.height, turned.width
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)

    def back(p):  # turned pixel -> original pixel, about the two centres
        q = p - [(W - 1) / 2, (H - 1) / 2]
        # PIL turns counter-clockwise on screen (y down): undo with the opposite turn
        x = c * q[..., 0] - s * q[..., 1]
        y = s * q[..., 0] + c * q[..., 1]
        return np.stack([x, y], -1) + [(w - 1) / 2, (h - 1) / 2]

    return np.asarray(turned).copy(), back


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB")).copy()


def transforms(image: np.ndarray):
    """``(name, transformed image, map of its pixels back to the original, index order)``."""
    h, w = image.shape[:2]
    identity = np.arange(68)
    yield (
        "mirror",
        image[:, ::-1].copy(),
        lambda p: np.stack([w - 1 - p[..., 0], p[..., 1]], -1),
        MIRROR,
    )
    for k in (0.5, 2.0):
        size = (round(w * k), round(h * k))
        small = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
        kx = size[0] / w
        yield f"scale {k}", small, lambda p, kx=kx: (p + 0.5) / kx - 0.5, identity
    for degrees in (10.0, -10.0):
        turned, back = _rotate(image, degrees)
        yield f"rotate {degrees:+.0f} deg", turned, back, identity
    grey = np.repeat(np.asarray(Image.fromarray(image).convert("L"))[..., None], 3, axis=2)
    yield "greyscale", grey, lambda p: p, identity
    yield "jpeg q40", _jpeg(image, 40), lambda p: p, identity


def nearest(faces: list[Face], centre: np.ndarray) -> Face | None:
    """The face whose landmarks' mean is nearest ``centre`` (None when there is none)."""
    if not faces:
        return None
    return min(faces, key=lambda f: np.linalg.norm(f.landmarks.mean(0) - centre))
