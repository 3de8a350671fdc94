"""Pictures for checking detections by eye: the image with each face's box, index and
68 landmarks drawn (jaw line, brows, nose, eyes and mouth in their own colours)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from _common.atomic import atomic_path

#: iBUG-68 groups and the colour each is drawn in.
GROUPS = {
    "jaw": (range(0, 17), (255, 210, 0)),
    "brows": (range(17, 27), (255, 90, 0)),
    "nose": (range(27, 36), (0, 220, 255)),
    "eyes": (range(36, 48), (0, 255, 90)),
    "mouth": (range(48, 68), (255, 40, 160)),
}


def draw_faces(
    image: np.ndarray,
    landmarks: Sequence[np.ndarray],
    boxes: Sequence[tuple[float, float, float, float]] = (),
    path: str | os.PathLike | None = None,
    max_side: int = 1024,
    labels: Sequence[str] | None = None,
) -> Image.Image:
    """``image`` (``[H,W,3]`` uint8) with every face's landmarks (``[68,2]`` source pixels)
    and boxes (``left, top, right, bottom``) drawn, each box with its label (default: its
    index), shrunk so its longer side is at most ``max_side``; saved as PNG to ``path``
    (atomically) when given."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"image must be [H,W,3] uint8, got {list(arr.shape)} {arr.dtype}")
    h, w = arr.shape[:2]
    k = min(1.0, max_side / max(h, w))
    # tiny images are enlarged so the points stay visible
    if max(h, w) < 256:
        k = 256 / max(h, w)
    pil = Image.fromarray(arr).resize((max(1, round(w * k)), max(1, round(h * k))), Image.BILINEAR)
    draw = ImageDraw.Draw(pil)
    r = max(1.5, 0.004 * max(pil.size))
    for index, box in enumerate(boxes):
        left, top, right, bottom = (v * k for v in box)
        draw.rectangle((left, top, right, bottom), outline=(255, 255, 255), width=max(1, int(r)))
        text = str(index) if labels is None else labels[index]
        draw.text((left + 2, top + 2), text, fill=(255, 255, 255))
    for points in landmarks:
        pts = (np.asarray(points, dtype=np.float64) + 0.5) * k - 0.5
        for idx, colour in GROUPS.values():
            for x, y in pts[list(idx)]:
                draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    if path is not None:
        with atomic_path(path) as tmp:
            pil.save(tmp, format="PNG")
    return pil
