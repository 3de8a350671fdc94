"""train.faces.video: frames from files and folders, the face tracker's choice, holding
and smoothing, and the rho summary (hypothesis)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.train.faces_helpers import standin_face
from train.faces.crop_box import landmark_crop
from train.faces.detect import Box, Face
from train.faces.video import (
    FaceTracker,
    VideoUnavailable,
    folder_frames,
    video_frames,
)
from train.metrics import sequence_rho_summary


def _face(points):
    return Face(Box(*points.min(0), *(points.max(0) + 1), score=1.0), points)


def write_video(path, frames, fps=10):
    """Frames ``[H,W,3]`` uint8 as an MPEG-4 video (needs PyAV)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 6, allow_nan=False), min_size=1, max_size=40), st.floats(-2, 2))
def test_rho_summary_is_robust_and_shift_equivariant(values, shift):
    s = sequence_rho_summary(values)
    assert s["n"] == len(values)
    assert s["min"] <= s["q25"] <= s["median"] <= s["q75"] <= s["max"]
    assert s["iqr"] >= 0 and s["mad"] >= 0
    moved = sequence_rho_summary([v + shift for v in values])
    assert moved["median"] == pytest.approx(s["median"] + shift, abs=1e-9)
    assert moved["iqr"] == pytest.approx(s["iqr"], abs=1e-9)
    assert sequence_rho_summary(values[::-1])["median"] == pytest.approx(s["median"])


def test_rho_summary_drops_non_finite_and_empty():
    assert sequence_rho_summary([]) == {"n": 0}
    assert sequence_rho_summary([float("nan"), 2.0])["median"] == 2.0


def test_tracker_follows_one_face_holds_and_smooths():
    _, points = standin_face(96)
    image = np.zeros((300, 400, 3), np.uint8)
    rng = np.random.default_rng(0)
    tracker = FaceTracker(64, smoothing=0.3, max_hold=2)
    other = points + [250, 150]  # a second, larger face elsewhere appears later
    raw, smooth = [], []
    for t in range(12):
        jitter = points + [40 + rng.normal(0, 3), 30 + rng.normal(0, 3)]
        faces = [_face(jitter)] if t == 0 else [_face(other * 1.0), _face(jitter)]
        step = tracker.update(image, faces)
        assert step.face is not None and np.allclose(step.face.landmarks, jitter)
        raw.append(landmark_crop(jitter, 1.4, 64).cx)
        smooth.append(step.crop.cx)
    assert np.std(np.diff(smooth)) < 0.6 * np.std(np.diff(raw))
    held = [tracker.update(image, []) for _ in range(3)]
    assert [h.held for h in held] == [True, True, False] and held[2].crop is None
    assert held[0].crop == held[1].crop


def test_folder_frames_in_name_order(tmp_path):
    for name in ("b.png", "a.png", "c.ppm"):
        Image.new("RGB", (8, 6)).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("x")
    frames = list(folder_frames(str(tmp_path)))
    assert [f.name for f in frames] == ["a", "b", "c"] and frames[0].pixels.shape == (6, 8, 3)
    assert [f.index for f in folder_frames(str(tmp_path), step=2)] == [0, 2]
    (tmp_path / "d.png").write_text("not an image")
    with pytest.raises(ValueError, match="d.png"):
        list(folder_frames(str(tmp_path)))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no image files"):
        list(folder_frames(str(empty)))


def test_video_frames_decode_a_generated_clip(tmp_path):
    pytest.importorskip("av", reason="the video extra (PyAV) is not installed")
    levels = [0, 60, 120, 180, 240]
    write_video(tmp_path / "clip.mp4", [np.full((48, 64, 3), v, np.uint8) for v in levels])
    frames = list(video_frames(str(tmp_path / "clip.mp4")))
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert frames[1].time_s == pytest.approx(0.1)
    assert [round(float(f.pixels.mean()) / 60) for f in frames] == [0, 1, 2, 3, 4]
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="bad.mp4"):
        list(video_frames(str(tmp_path / "bad.mp4")))


def test_without_pyav_the_error_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(VideoUnavailable, match=r"\.\[video\]"):
        list(video_frames(str(tmp_path / "x.mp4")))


def test_bad_tracker_settings():
    with pytest.raises(ValueError, match="smoothing"):
        FaceTracker(64, smoothing=0)
    with pytest.raises(ValueError, match="max_hold"):
        FaceTracker(64, max_hold=-1)
