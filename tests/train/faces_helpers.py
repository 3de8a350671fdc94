"""Images for the face front end's tests, made here: the bundled stand-in head rendered
over a textured background (known landmarks), pasted into larger photo-like canvases,
and matplotlib's sample photograph of Grace Hopper (a real face, shipped with matplotlib,
a core dependency), plus a detector that returns known landmarks."""

from __future__ import annotations

import functools
import os

import matplotlib
import numpy as np
from PIL import Image

from train.faces.detect import Box


def grace_hopper_path() -> str:
    """matplotlib's sample photograph (600 x 512, one frontal face)."""
    return os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")


@functools.cache
def _standin(size: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    from train.data.synthetic import FaceGenerator

    sample = FaceGenerator("bundled", size=size).generate("studio", "test", [index])
    image = sample["image"][0].permute(1, 2, 0).numpy().copy()
    # NDC -> pixels with centres at integers (docs/design.md section 2)
    points = (sample["landmarks"][0].double().numpy() + 1.0) * size / 2.0 - 0.5
    return image, points


def standin_face(size: int = 128, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The stand-in head rendered at ``size`` px over a textured background:
    ``[size,size,3]`` uint8 and its true landmarks ``[68,2]`` in pixels."""
    image, points = _standin(size, index)
    return image.copy(), points.copy()


def photo_canvas(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth, noisy, photo-like background ``[height,width,3]`` uint8."""
    rng = np.random.default_rng(seed)
    low = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    base = np.asarray(low.resize((width, height), Image.BICUBIC), dtype=np.float64)
    noise = rng.normal(0.0, 6.0, (height, width, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def paste(canvas: np.ndarray, face: np.ndarray, points: np.ndarray, left: int, top: int):
    """``face`` pasted into a copy of ``canvas`` at ``(left, top)``; its points moved."""
    out = canvas.copy()
    h, w = face.shape[:2]
    out[top : top + h, left : left + w] = face
    return out, points + [left, top]


class KnownFaces:
    """A :class:`train.faces.FaceDetector` that 'finds' given landmark sets: the interface
    a real backend implements, with known answers."""

    name = "known"

    def __init__(self, faces: list[np.ndarray], shape: tuple[int, int] | None = None):
        """``faces``: landmark sets ``[68,2]``; ``shape``: ``(H, W)`` of the only image
        they are in (None: every image)."""
        self.faces = [np.asarray(f, dtype=np.float64) for f in faces]
        self.shape = shape

    def detect_faces(self, image):
        if self.shape is not None and tuple(image.shape[:2]) != tuple(self.shape):
            return []
        boxes = [Box(*f.min(0), *(f.max(0) + 1), score=1.0) for f in self.faces]
        return sorted(boxes, key=lambda b: -b.area)

    def landmarks68(self, image, box):
        for f in self.faces:
            if np.allclose(f.min(0), (box.left, box.top)):
                return f.copy()
        raise KeyError(box)
