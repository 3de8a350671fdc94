"""MediaPipe's face mesh (468 points) on a rotated face crop, refined by the iris model
per eye: together MediaPipe's 478-point layout (468 mesh points, then the five iris
points of the eye around mesh points 33/133, then the five of the eye around 362/263;
each five are the centre and four points on the iris edge).

The crops follow MediaPipe's graphs: from a detection, the box's centre, its longer
side x 1.5, turned so the eye keypoints are level (``face_detection_front_detection_to_roi
.pbtxt``); from a mesh, the points' bounding box the same way, levelled by points 33 and
263 (``face_landmark_landmarks_to_roi.pbtxt``); per eye, its two corners' box, side
x 2.3, levelled by the corners, the second eye mirrored (``iris_landmark_cpu.pbtxt``).
Crops reaching past the image repeat its border pixels (``BORDER_REPLICATE``).
The iris model's 16 eyelid points replace the mesh's (x, y) there, as MediaPipe's
``update_face_landmarks_calculator.cc`` does with the first 16 of its index table.

Points are source pixels (0-based, pixel centres at integers); ``z`` is MediaPipe's
relative depth (smaller is nearer the camera) in the same pixel units as x.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from train.faces.crop_box import CropBox, warp

MESH_SIZE = 192
IRIS_SIZE = 64
#: MediaPipe's enlargement of the face box and of the eye-corner box
FACE_SCALE = 1.5
EYE_SCALE = 2.3
#: eye corners (mesh indices) that place each eye's crop: the first eye as the model
#: sees it, the second mirrored
EYE_CORNERS = ((33, 133), (362, 263))
#: the mesh indices of the iris model's first 16 eye-contour points (lower lid from one
#: corner to the other, then the upper lid between them), per eye, from MediaPipe's
#: update_face_landmarks_calculator.cc (kEyeLandmarkIndicesInFaceLandmarks)
EYELIDS = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173),
    (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398),
)


@dataclasses.dataclass
class Mesh:
    """One face's 478 points ``[478,3]`` float64 (x, y, z source pixels, module
    docstring), the face-presence score of the mesh model in (0, 1), and its crop."""

    points: np.ndarray
    presence: float
    crop: CropBox


def _levelled_crop(points: np.ndarray, start: int, end: int, scale: float, size: int) -> CropBox:
    """A square over ``points``' bounding box (longer side x ``scale``), turned so that
    ``points[start] -> points[end]`` runs along the crop's x axis."""
    lo, hi = points[:, :2].min(0), points[:, :2].max(0)
    dx, dy = points[end, :2] - points[start, :2]
    side = float(max(hi - lo)) * scale
    if not side > 0:
        raise ValueError("the points span no area: no crop")
    return CropBox(*((lo + hi) / 2.0), side, size, math.atan2(dy, dx))


def crop_from_detection(box: np.ndarray, eyes: np.ndarray) -> CropBox:
    """The mesh's crop from a detector box ``[4]`` (left, top, right, bottom edges, as
    train.faces.detect.Box) and its two eye keypoints ``[2,2]`` (image-left eye first)."""
    left, top, right, bottom = (float(v) for v in box)
    dx, dy = eyes[1] - eyes[0]
    side = max(right - left, bottom - top) * FACE_SCALE
    centre = ((left + right) / 2.0 - 0.5, (top + bottom) / 2.0 - 0.5)
    return CropBox(*centre, side, MESH_SIZE, math.atan2(dy, dx))


def crop_from_mesh(points: np.ndarray) -> CropBox:
    """The mesh's crop from a previous mesh ``[>=468, 2+]`` (MediaPipe's tracking step)."""
    return _levelled_crop(np.asarray(points)[:468], 33, 263, FACE_SCALE, MESH_SIZE)


def warp_replicate(image: np.ndarray, crop: CropBox) -> np.ndarray:
    """:func:`train.faces.crop_box.warp`, with the image's border pixels repeated where
    the crop reaches past it (the region under the crop is cut out and padded first)."""
    h, w = image.shape[:2]
    half = crop.side / 2.0
    corners = crop.to_image(np.array([[-0.5, -0.5], [crop.size - 0.5, -0.5],
                                      [-0.5, crop.size - 0.5], [crop.size - 0.5] * 2]))  # fmt: skip
    x0, y0 = np.floor(corners.min(0)).astype(int) - 2
    x1, y1 = np.ceil(corners.max(0)).astype(int) + 3
    if x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h:
        return warp(image, crop)
    if half > 4 * max(h, w):  # far larger than the image: padding would only repeat edges
        x0, y0, x1, y1 = max(x0, -4 * w), max(y0, -4 * h), min(x1, 5 * w), min(y1, 5 * h)
    region = image[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
    if region.size == 0:  # the crop misses the image: its nearest border pixels, repeated
        region = image[min(max(y0, 0), h - 1) : min(max(y0, 0), h - 1) + 1,
                       min(max(x0, 0), w - 1) : min(max(x0, 0), w - 1) + 1]  # fmt: skip
        pad = ((0, y1 - y0 - 1), (0, x1 - x0 - 1), (0, 0))
    else:
        pad = ((max(-y0, 0), max(y1 - h, 0)), (max(-x0, 0), max(x1 - w, 0)), (0, 0))
    padded = np.pad(region, pad, mode="edge")
    moved = dataclasses.replace(crop, cx=crop.cx - x0, cy=crop.cy - y0)
    return warp(padded, moved)


class FaceMesh:
    """The face-mesh and iris models on the LiteRT interpreter (``ai_edge_litert``).

    ``mesh_path``/``iris_path``: the ``.tflite`` files (``face_landmark.tflite``,
    ``iris_landmark.tflite``); ``iris_path=None`` gives 468 points only (z = 0 rows
    are not added)."""

    def __init__(self, mesh_path: str, iris_path: str | None, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self._mesh = Interpreter(model_path=str(mesh_path), num_threads=threads)
        self._mesh.allocate_tensors()
        self._mesh_in = self._mesh.get_input_details()[0]["index"]
        out = {int(np.prod(d["shape"])): d["index"] for d in self._mesh.get_output_details()}
        if set(out) != {1404, 1}:
            raise ValueError(f"{mesh_path}: not MediaPipe's face mesh (outputs {sorted(out)})")
        self._mesh_points, self._mesh_flag = out[1404], out[1]
        self._iris = None
        if iris_path is not None:
            self._iris = Interpreter(model_path=str(iris_path), num_threads=threads)
            self._iris.allocate_tensors()
            self._iris_in = self._iris.get_input_details()[0]["index"]
            out = {int(np.prod(d["shape"])): d["index"] for d in self._iris.get_output_details()}
            if set(out) != {213, 15}:
                raise ValueError(f"{iris_path}: not MediaPipe's iris model ({sorted(out)})")
            self._eye_points, self._iris_points = out[213], out[15]

    def mesh(self, image: np.ndarray, crop: CropBox) -> Mesh:
        """The 468-point mesh of the face in ``crop`` (``MESH_SIZE`` px), and the irises."""
        if crop.size != MESH_SIZE:
            raise ValueError(f"the mesh crop must be {MESH_SIZE} px, got {crop.size}")
        tensor = warp_replicate(image, crop).astype(np.float32) / 255.0
        self._mesh.set_tensor(self._mesh_in, tensor[None])
        self._mesh.invoke()
        raw = self._mesh.get_tensor(self._mesh_points).reshape(468, 3).astype(np.float64)
        logit = float(self._mesh.get_tensor(self._mesh_flag).reshape(()))
        presence = 1.0 / (1.0 + math.exp(-min(max(logit, -100.0), 100.0)))
        points = np.empty((468, 3))
        # model pixels span [0, 192] edge to edge: centres at raw - 0.5
        points[:, :2] = crop.to_image(raw[:, :2] - 0.5)
        points[:, 2] = raw[:, 2] / crop.zoom
        if self._iris is not None:
            points = np.concatenate([points, self._irises(image, points)])
        return Mesh(points, presence, crop)

    def _irises(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Both eyes' iris points ``[10,3]``; refines the eyelids of ``points`` in place."""
        irises = []
        for eye, (start, end) in enumerate(EYE_CORNERS):
            crop = _levelled_crop(points[[start, end]], 0, 1, EYE_SCALE, IRIS_SIZE)
            pixels = warp_replicate(image, crop)
            if eye == 1:  # the model knows one eye: the other is mirrored in and out
                pixels = pixels[:, ::-1]
            tensor = np.ascontiguousarray(pixels, dtype=np.float32) / 255.0
            self._iris.set_tensor(self._iris_in, tensor[None])
            self._iris.invoke()
            contour = self._iris.get_tensor(self._eye_points).reshape(71, 3).astype(np.float64)
            iris = self._iris.get_tensor(self._iris_points).reshape(5, 3).astype(np.float64)
            both = np.concatenate([contour[:16], iris])
            if eye == 1:
                both[:, 0] = IRIS_SIZE - both[:, 0]
            xy = crop.to_image(both[:, :2] - 0.5)
            z = both[:, 2] / crop.zoom
            lids = list(EYELIDS[eye])
            # the iris model's depth is relative to its own crop: put its corners' mean
            # depth at the mesh's
            z = z - z[[0, 8]].mean() + points[[lids[0], lids[8]], 2].mean()
            points[lids, :2] = xy[:16]
            irises.append(np.concatenate([xy[16:], z[16:, None]], axis=1))
        return np.concatenate(irises)
