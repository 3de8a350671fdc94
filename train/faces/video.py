"""Footage: frames from a video file (PyAV, the ``video`` extra) or a folder of frames,
one face tracked through them with a smoothed crop box (the sequence's rho summary is
:func:`train.metrics.sequence_rho_summary`).

Tracking: in each frame every face is detected; the one whose landmark crop overlaps the
previous frame's smoothed crop most (intersection over union) continues the track (the
largest face starts it). Its crop centre and side are smoothed exponentially
(``new = a * measured + (1 - a) * previous``, ``a = smoothing``), so the network sees a
steady crop. Where no face is found the last crop is held for up to ``max_hold`` frames
(and the frame is marked ``held``); after that the frame has no result.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import numpy as np

from train.faces.crop_box import SCALE_INFER, CropBox, landmark_crop
from train.faces.detect import Face, FaceDetector, find_faces
from train.faces.images import IMAGE_SUFFIXES, ImageError, read_image


class VideoUnavailable(ImportError):
    """The video reader (PyAV) is not installed; the message says how to install it."""


@dataclasses.dataclass
class Frame:
    """One frame: its index in the sequence, its time in seconds (None when unknown: a
    folder of frames), its source name and pixels ``[H,W,3]`` uint8."""

    index: int
    time_s: float | None
    name: str
    pixels: np.ndarray


def video_frames(path: str, step: int = 1) -> Iterator[Frame]:
    """Decode every ``step``-th frame of a video file as RGB. Needs PyAV
    (``pip install -e ".[video]"``); raises :class:`VideoUnavailable` without it and
    ``ValueError`` naming the file when it cannot be decoded."""
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    try:
        import av
    except ImportError as exc:
        raise VideoUnavailable(
            f'reading video needs PyAV ({exc}): pip install -e ".[video]" (docs/faces.md)'
        ) from None
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError) as exc:
        raise ValueError(f"{path}: not a readable video ({exc})") from None
    with container:
        if not container.streams.video:
            raise ValueError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        try:
            for i, frame in enumerate(container.decode(stream)):
                if i % step:
                    continue
                yield Frame(i, frame.time, f"{i:06d}", frame.to_ndarray(format="rgb24"))
        except av.FFmpegError as exc:
            raise ValueError(f"{path}: decoding failed at a frame ({exc})") from None


def folder_frames(folder: str, step: int = 1) -> Iterator[Frame]:
    """The images of ``folder`` in name order as a sequence (every ``step``-th one);
    unreadable images raise ``ValueError`` naming the file."""
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_SUFFIXES))
    if not names:
        raise ValueError(f"{folder}: no image files to read as frames")
    for i, name in enumerate(names[::step]):
        try:
            pixels = read_image(os.path.join(folder, name))
        except ImageError as exc:
            raise ValueError(str(exc)) from None
        yield Frame(i * step, None, os.path.splitext(name)[0], pixels)


def _iou(a: CropBox, b: CropBox) -> float:
    ax0, ay0, ax1, ay1 = a.cx - a.side / 2, a.cy - a.side / 2, a.cx + a.side / 2, a.cy + a.side / 2
    bx0, by0, bx1, by1 = b.cx - b.side / 2, b.cy - b.side / 2, b.cx + b.side / 2, b.cy + b.side / 2
    w = max(0.0, min(ax1, bx1) - max(ax0, bx0))
    h = max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = w * h
    return inter / (a.side**2 + b.side**2 - inter)


@dataclasses.dataclass
class TrackStep:
    """The tracker's answer for one frame: the (smoothed) crop, the face it measured
    (None when held or lost) and whether the crop was held from an earlier frame."""

    crop: CropBox | None
    face: Face | None
    held: bool


class FaceTracker:
    """Follows one face through a sequence with an exponentially smoothed crop box."""

    def __init__(
        self,
        size: int,
        detector: FaceDetector | None = None,
        scale: float = SCALE_INFER,
        smoothing: float = 0.5,
        max_hold: int = 5,
        min_iou: float = 0.1,
    ):
        if not 0 < smoothing <= 1:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
        if max_hold < 0 or not 0 <= min_iou < 1:
            raise ValueError(f"need max_hold >= 0 and 0 <= min_iou < 1, got {max_hold}, {min_iou}")
        self.size, self.detector, self.scale = size, detector, scale
        self.smoothing, self.max_hold, self.min_iou = smoothing, max_hold, min_iou
        self.crop: CropBox | None = None
        self.missed = 0

    def pick(self, faces: list[Face]) -> tuple[Face, CropBox] | None:
        """The face continuing the track (the largest when there is no track yet)."""
        if not faces:
            return None
        crops = [landmark_crop(f.landmarks, self.scale, self.size) for f in faces]
        if self.crop is None:
            return faces[0], crops[0]
        overlaps = [_iou(self.crop, c) for c in crops]
        best = int(np.argmax(overlaps))
        if overlaps[best] < self.min_iou:
            return None
        return faces[best], crops[best]

    def update(self, image: np.ndarray, faces: list[Face] | None = None) -> TrackStep:
        """Track into the next frame (``faces``: its detections, else the detector runs)."""
        found = find_faces(image, self.detector) if faces is None else faces
        picked = self.pick(found)
        if picked is None:
            self.missed += 1
            if self.crop is not None and self.missed <= self.max_hold:
                return TrackStep(self.crop, None, True)
            self.crop = None
            return TrackStep(None, None, False)
        face, measured = picked
        self.missed = 0
        if self.crop is None:
            self.crop = measured
        else:
            a = self.smoothing
            prev = self.crop
            self.crop = CropBox(
                a * measured.cx + (1 - a) * prev.cx,
                a * measured.cy + (1 - a) * prev.cy,
                a * measured.side + (1 - a) * prev.side,
                self.size,
            )
        return TrackStep(self.crop, face, False)
