"""``python -m train.fit VIDEO --photometric``: a tiny video of textured synthetic frames
(written here with PyAV) fitted end to end as one capture, landmarks from a known-answer
detector standing in for ``train.faces``; a folder with ``--sequence``; clear errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image

import train.faces.detect as detect
from tests.train.faces_helpers import KnownFaces
from train.data.textured_faces import TexturedFaceGenerator
from train.fit.__main__ import main as fit_main
from train.fit.inputs import ndc_to_pixels

SIZE, FRAMES = 64, 3
OPTIONS = ["--photometric", "--iterations", "3", "--texture-size", "16"]
OPTIONS += ["--n-shape", "5", "--n-expr", "5"]


@pytest.fixture(scope="module")
def footage():
    gen = TexturedFaceGenerator("bundled", size=SIZE, n_shape=5, n_expr=5, texture_size=32)
    data = gen.generate_textured_capture("hmc", "test", 0, list(range(FRAMES)))
    frames = [(data["image"][k].numpy() * 255).round().astype(np.uint8) for k in range(FRAMES)]
    points = [ndc_to_pixels(data["landmarks"][k].numpy(), SIZE, SIZE) for k in range(FRAMES)]
    return frames, points


def _detector(monkeypatch, points, missing=()):
    """``train.faces``' default detector replaced: call t (frame t) finds frame t's face
    (none for the frames in ``missing``)."""

    class Sequence(KnownFaces):
        calls = -1

        def detect_faces(self, image):
            Sequence.calls += 1
            self.faces = [] if self.calls in missing else [points[self.calls]]
            return super().detect_faces(image)

    monkeypatch.setattr(detect, "load_detector", lambda *a, **k: Sequence([]))


def test_a_video_is_fitted_as_one_capture(tmp_path, monkeypatch, footage, single_thread):
    pytest.importorskip("av", reason="the video extra (PyAV) is not installed")
    from tests.train.test_faces_video import write_video

    frames, points = footage
    write_video(tmp_path / "walk.mp4", frames)
    _detector(monkeypatch, points, missing={1})
    out = tmp_path / "out"
    summary = fit_main([str(tmp_path / "walk.mp4"), "--out", str(out), *OPTIONS])
    names = ["walk_000000", "walk_000002"]  # frame 1: no face found, the crop held
    assert [r["image"] for r in summary["images"]] == [
        str(out / "frames" / "walk" / f"{n}.png") for n in names
    ]
    assert summary["skipped"] == [
        [f"{tmp_path / 'walk.mp4'}#000001", "face held from an earlier frame"]
    ]
    records = [json.loads((out / f"{n}.json").read_text()) for n in names]
    assert records[0]["rho"] == records[1]["rho"] > 0  # one rho for the capture
    lo, hi = records[0]["rho_interval"]
    assert 0 < lo < records[0]["rho"] < hi and records[0]["distance_text"].count("m [") == 1
    assert "landmark_fit_rho_interval" in records[0]
    for n in names:
        assert Image.open(out / f"{n}_photometric.png").size == (3 * 256, 256)
        assert (out / f"{n}.obj").exists()
    sheet = Image.open(out / "contact_sheet_walk.png")
    assert sheet.size == (4 * 256, 256)  # the two blends, padded to a row of four


def test_a_folder_with_sequence_and_clear_errors(tmp_path, monkeypatch, footage, capsys):
    frames, points = footage
    folder = tmp_path / "clip"
    folder.mkdir()
    for k, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"f{k}.png")
    out = str(tmp_path / "out")
    _detector(monkeypatch, points, missing={0, 1, 2})
    with pytest.raises(SystemExit):
        fit_main([str(folder), "--sequence", "--out", out, *OPTIONS])
    assert "no face found in any of its 3 frame(s)" in capsys.readouterr().err
    _detector(monkeypatch, points)
    with pytest.raises(SystemExit):
        fit_main([str(folder), "--sequence", "--out", out, "--max-frames", "2", *OPTIONS])
    assert "more than 2 frames" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        fit_main([str(folder), "--sequence", "--out", out])  # not photometric
    assert "need --photometric" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "av", None)  # the video extra missing
    (tmp_path / "clip.mp4").write_bytes(b"\0" * 16)
    with pytest.raises(SystemExit):
        fit_main([str(tmp_path / "clip.mp4"), "--out", out, *OPTIONS])
    assert "PyAV" in capsys.readouterr().err


def test_sequence_folder_every_second_frame_without_intervals(
    tmp_path, monkeypatch, footage, single_thread
):
    frames, points = footage
    folder = tmp_path / "clip"
    folder.mkdir()
    for k, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"f{k}.png")
    _detector(monkeypatch, [points[0], points[2]])  # the frames read: 0 and 2
    out = tmp_path / "out"
    argv = [str(folder), "--sequence", "--step", "2", "--out", str(out), "--no-intervals"]
    summary = fit_main(argv + OPTIONS)
    assert [r["image"].rsplit("/", 1)[1] for r in summary["images"]] == [
        "clip_f0.png",
        "clip_f2.png",
    ]
    assert summary["images"][0]["rho"] == summary["images"][1]["rho"]
    # --no-intervals: no interval and no distance text, the landmark start's kept
    assert summary["images"][0]["rho_interval"] is None
    assert summary["images"][0]["distance_text"] is None
    assert summary["images"][0]["landmark_fit_distance_text"].count("m [") == 1
    assert (out / "contact_sheet_clip.png").exists()
