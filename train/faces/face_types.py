"""The face front end's shared types: a detector's :class:`Box`, a :class:`Face` with its
landmarks, the :class:`FaceDetector` interface every backend implements, and the check
every backend applies to its input image (train.faces.detect has the backends)."""

from __future__ import annotations

import dataclasses
from typing import Protocol, runtime_checkable

import numpy as np


class DetectorUnavailable(ImportError):
    """The detector's package or model file is not installed; the message says how."""


@dataclasses.dataclass(frozen=True)
class Box:
    """A face box in source pixels: ``left, top, right, bottom`` (right/bottom exclusive
    edges, so ``right - left`` is the width) and the detector's confidence."""

    left: float
    top: float
    right: float
    bottom: float
    score: float = 0.0
    #: the backend that found the face: "dlib", "mediapipe", or "mediapipe+dlib"
    source: str = ""
    #: the detector's keypoints ``((x, y), ...)`` in source pixels, if it gives any
    #: (BlazeFace: the two eyes, nose tip, mouth, the two ear tragions)
    keypoints: tuple[tuple[float, float], ...] = ()

    @property
    def area(self) -> float:
        return max(self.right - self.left, 0.0) * max(self.bottom - self.top, 0.0)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.left, self.top, self.right, self.bottom)

    def scaled(self, factor: float) -> Box:
        """The box in an image resized by ``factor``: edges times ``factor``, keypoints
        (pixel centres at integers) to ``(p + 0.5) * factor - 0.5``."""
        left, top, right, bottom = (v * factor for v in self.as_tuple())
        points = tuple(((x + 0.5) * factor - 0.5, (y + 0.5) * factor - 0.5)
                       for x, y in self.keypoints)  # fmt: skip
        return dataclasses.replace(
            self, left=left, top=top, right=right, bottom=bottom, keypoints=points
        )


@runtime_checkable
class FaceDetector(Protocol):
    """What a detector backend provides. Images are ``[H,W,3]`` uint8 RGB, upright."""

    name: str

    def detect_faces(self, image: np.ndarray) -> list[Box]:
        """Every face found, largest first."""
        ...

    def landmarks68(self, image: np.ndarray, box: Box) -> np.ndarray:
        """``[68,2]`` float64 (x, y) source pixels in iBUG order for the face in ``box``."""
        ...


def check_image(image: np.ndarray) -> np.ndarray:
    """``image`` as a C-contiguous ``[H,W,3]`` uint8 array, or ``ValueError`` saying why not."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(
            f"image must be [H,W,3] uint8 RGB (train.faces.read_image gives that), got "
            f"{list(arr.shape)} {arr.dtype}"
        )
    return np.ascontiguousarray(arr)


@dataclasses.dataclass
class Face:
    """One detected face: its box (``box.source`` names the backend that found it), its 68
    landmarks ``[68,2]`` in source pixels, and where MediaPipe's mesh ran, its 478 points
    ``mesh`` ``[478,3]`` (x, y, relative z; source pixels) and face-presence score."""

    box: Box
    landmarks: np.ndarray
    mesh: np.ndarray | None = None
    presence: float | None = None
