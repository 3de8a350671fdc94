"""``python -m train.landmarks``: .pts files that --folder reads, --all-faces, overlays,
skipped.txt naming every file not used and why (bombs, non-images, faceless images)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from tests.train.faces_helpers import (
    KnownFaces,
    grace_hopper_path,
    paste,
    photo_canvas,
    standin_face,
)
from tests.train.test_faces_images import bomb_png
from train.data.folder import load_folder
from train.faces.annotate import annotate
from train.faces.landmark_files import read_pts


def test_known_landmarks_are_written_exactly_and_read_back_by_folder(tmp_path, capsys):
    """With a plugged-in detector that knows the stand-in heads' true landmarks."""
    face_a, pts_a = standin_face(128, 0)
    face_b, pts_b = standin_face(96, 1)
    photo, moved_a = paste(photo_canvas(480, 320), face_a, pts_a, 20, 60)
    photo, moved_b = paste(photo, face_b, pts_b, 300, 150)
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "two.ppm")
    report = tmp_path / "report"
    result = annotate(
        [str(folder)], report=str(report), detector=KnownFaces([moved_a, moved_b]), progress=False
    )
    assert sorted(p.name for p in folder.iterdir()) == ["two.ppm", "two.pts"]
    assert (report / "skipped.txt").read_text() == ""
    assert result.written == [str(folder / "two.pts")] and result.skipped == []
    np.testing.assert_allclose(read_pts(str(folder / "two.pts")), moved_a, atol=1e-6)
    # a second run keeps the (perhaps hand-made) file unless told to overwrite it
    (folder / "two.pts").write_text(
        (folder / "two.pts").read_text().replace("version: 1", "version: 1\n")
    )
    mine = (folder / "two.pts").read_text()
    again = annotate(
        [str(folder)], report=str(report), detector=KnownFaces([moved_a]), progress=False
    )
    assert again.written == [] and (folder / "two.pts").read_text() == mine
    assert "has a landmark file already" in capsys.readouterr().err
    annotate(
        [str(folder)],
        report=str(report),
        detector=KnownFaces([moved_b]),
        progress=False,
        overwrite=True,
    )
    np.testing.assert_allclose(read_pts(str(folder / "two.pts")), moved_b, atol=1e-6)
    data = load_folder(str(folder), size=64)  # the .pts is exactly what --folder reads
    assert data.names == ["two.ppm"]
    out = tmp_path / "all"
    annotate(
        [str(folder / "two.ppm")],
        out=str(out),
        all_faces=True,
        overlay=True,
        detector=KnownFaces([moved_a, moved_b]),
        progress=False,
    )
    np.testing.assert_allclose(read_pts(str(out / "two_0.pts")), moved_a, atol=1e-6)
    np.testing.assert_allclose(read_pts(str(out / "two_1.pts")), moved_b, atol=1e-6)
    assert Image.open(out / "two_landmarks.png").size == (480, 320)
    assert (out / "skipped.txt").read_text() == ""


@pytest.fixture()
def mixed_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(grace_hopper_path(), folder / "hopper.jpg")
    Image.open(grace_hopper_path()).save(folder / "hopper_copy.ppm")
    Image.fromarray(photo_canvas(160, 120)).save(folder / "empty.png")
    bomb_png(folder / "bomb.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_command_line_on_a_folder_of_photographs(mixed_folder, tmp_path, capsys):
    pytest.importorskip("dlib", reason="the faces extra is not installed")
    from train import landmarks

    report = tmp_path / "report"
    landmarks.main([str(mixed_folder), "--overlay", "--report", str(report)])
    err = capsys.readouterr().err
    assert "licen" in err.lower() and "wrote 2 landmark file(s)" in err and "skipped 3" in err
    assert "skipped " + str(mixed_folder / "empty.png") + ": no face found" in err
    a, b = (
        read_pts(str(mixed_folder / "hopper.pts")),
        read_pts(str(mixed_folder / "hopper_copy.pts")),
    )
    assert a.shape == (68, 2) and np.abs(a - b).max() < 3  # JPEG re-encoded as PPM
    assert sorted(p.name for p in report.iterdir()) == [
        "faces.tsv",
        "hopper_copy_landmarks.png",
        "hopper_landmarks.png",
        "skipped.txt",
    ]
    skipped = dict(line.split("\t") for line in (report / "skipped.txt").read_text().splitlines())
    skipped = {k.rsplit("/", 1)[1]: v for k, v in skipped.items()}
    assert set(skipped) == {"bomb.png", "empty.png", "notes.txt"}
    assert "over the limit" in skipped["bomb.png"] and "no face found" in skipped["empty.png"]
    assert "not an image" in skipped["notes.txt"]
    # the folder now fine-tunes: --folder reads both images with their landmarks
    data = load_folder(str(mixed_folder), size=64)
    assert data.names == ["hopper.jpg", "hopper_copy.ppm"]


def test_command_line_without_the_extra_is_a_clear_error(monkeypatch, tmp_path, capsys):
    from train import landmarks
    from train.faces import detect, detector_options

    def unavailable(name="dlib"):
        raise detect.DetectorUnavailable('dlib is not installed: pip install -e ".[faces]"')

    monkeypatch.setattr(detector_options, "load_detector", unavailable)
    with pytest.raises(SystemExit):
        landmarks.main([str(tmp_path)])
    assert ".[faces]" in capsys.readouterr().err
