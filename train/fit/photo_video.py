"""Footage for ``python -m train.fit VIDEO --photometric``: a video file (or, with
``--sequence``, a folder of frames) becomes one capture of the photometric fit.

One face is tracked through the frames (:class:`train.faces.video.FaceTracker`, as
``train.infer`` tracks it), each frame's 68 landmarks come from its detection, and the
frames with a face are written as ``frames/<stem>/<stem>_<frame>.png`` in the output
folder (the fit, its JSON and overlays read and name them like photos). Frames where
the tracker holds or loses the face have no landmarks of their own and are skipped with
the reason. Needs the ``faces`` extra (detection) and, for video files, the ``video``
extra (PyAV).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from _common.atomic import atomic_path
from train.fit.inputs import FitInput, pixels_to_ndc

#: frames read from one source at most (after ``step``), unless told otherwise
DEFAULT_MAX_FRAMES = 64
#: the tracker's crop side (only its smoothing is used here: the fit reads whole frames)
TRACK_SIZE = 224


def footage_items(
    source: str,
    out: str,
    capture: int,
    *,
    step: int = 1,
    max_frames: int = DEFAULT_MAX_FRAMES,
    detector=None,
) -> tuple[list[FitInput], list[tuple[str, str]]]:
    """The frames of ``source`` (a video file or a folder of frames) with a tracked face,
    as :class:`FitInput` of capture ``capture``, and ``(frame, reason)`` for the frames
    left out. Every ``step``-th frame is read; ``detector`` is a
    :class:`train.faces.FaceDetector` (default: ``train.faces``'s).

    Raises ``ImportError`` (:class:`train.faces.video.VideoUnavailable`) without PyAV for
    a video file, ``ValueError`` naming the source when it cannot be read, has no frames,
    more than ``max_frames`` of them, or no face in any."""
    from train.faces.video import FaceTracker, folder_frames, video_frames

    if not isinstance(max_frames, int) or max_frames < 1:
        raise ValueError(f"max_frames must be a positive int, got {max_frames!r}")
    stem = os.path.basename(os.path.normpath(source))
    stem = os.path.splitext(stem)[0] if os.path.isfile(source) else stem
    frames = folder_frames(source, step) if os.path.isdir(source) else video_frames(source, step)
    tracker = FaceTracker(TRACK_SIZE, detector)
    folder = os.path.join(out, "frames", stem)
    os.makedirs(folder, exist_ok=True)
    items: list[FitInput] = []
    skipped: list[tuple[str, str]] = []
    count = 0
    for frame in frames:
        count += 1
        if count > max_frames:
            raise ValueError(
                f"{source}: more than {max_frames} frames (reading every {step}-th); "
                "fit fewer with --step N (every N-th frame) or allow more with --max-frames"
            )
        found = tracker.update(frame.pixels)
        if found.face is None:
            why = "face held from an earlier frame" if found.held else "no face found"
            skipped.append((f"{source}#{frame.name}", why))
            continue
        name = f"{stem}_{frame.name}"
        path = os.path.join(folder, f"{name}.png")
        with atomic_path(path) as tmp:
            Image.fromarray(frame.pixels).save(tmp, format="PNG")
        h, w = frame.pixels.shape[:2]
        points = np.asarray(found.face.landmarks, dtype=np.float64)
        ndc = torch.from_numpy(pixels_to_ndc(points, w, h)).float()
        items.append(FitInput(path, (w, h), ndc, capture, name))
    if count == 0:
        raise ValueError(f"{source}: no frames")
    if not items:
        raise ValueError(f"{source}: no face found in any of its {count} frame(s)")
    return items, skipped
