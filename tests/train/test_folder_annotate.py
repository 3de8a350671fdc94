"""``--folder`` of raw photographs: images without a landmark file are annotated by the
face detector on first use, cached outside the folder, and cropped SMIRK's way."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from tests.train.conftest import tiny_cli_args
from tests.train.faces_helpers import (
    KnownFaces,
    grace_hopper_path,
    paste,
    photo_canvas,
    standin_face,
)
from train.data.folder import load_folder
from train.data.folder_annotate import annotation_cache_dir
from train.faces.crop_box import SCALE_TEST, landmark_crop
from train.faces.landmark_files import read_pts


class Refusing(KnownFaces):
    def detect_faces(self, image):
        raise AssertionError("the detector ran although the landmarks were cached")


def _raw_folder(tmp_path):
    face, points = standin_face(96)
    photo, moved = paste(photo_canvas(320, 200), face, points, 150, 60)
    root = tmp_path / "raw"
    root.mkdir()
    Image.fromarray(photo).save(root / "head.png")
    Image.fromarray(photo_canvas(80, 60, seed=3)).save(root / "nobody.jpg")
    return root, photo, moved


def test_raw_images_are_annotated_cached_outside_and_landmark_cropped(tmp_path, capsys):
    root, photo, moved = _raw_folder(tmp_path)
    before = sorted(os.listdir(root))
    cache = annotation_cache_dir(str(tmp_path / "runs"), str(root))
    known = KnownFaces([moved], shape=photo.shape[:2])
    data = load_folder(str(root), size=64, crop="auto", annotate_cache=cache, detector=known)
    assert "nobody.jpg: no landmark file" in capsys.readouterr().err
    assert sorted(os.listdir(root)) == before  # nothing written into the user's folder
    assert data.names == ["head.png"]
    assert "no face found" in dict(data.skipped)["nobody.jpg"]
    np.testing.assert_allclose(read_pts(os.path.join(cache, "head.png.pts")), moved, atol=1e-6)
    crop = landmark_crop(moved, SCALE_TEST, 64)
    expected = (2 * crop.to_crop(moved) + 1) / 64 - 1
    torch.testing.assert_close(data.landmarks[0], torch.from_numpy(expected).float())
    # the landmarks' box fills 1 / 1.6 of the crop, centred
    span = data.landmarks[0].amax(0) - data.landmarks[0].amin(0)
    assert float(span.max()) == pytest.approx(2 / SCALE_TEST, abs=1e-4)
    again = load_folder(
        str(root), size=64, crop="auto", annotate_cache=cache, detector=Refusing([])
    )
    torch.testing.assert_close(again.landmarks, data.landmarks)
    assert annotation_cache_dir("runs", str(root)) != annotation_cache_dir("runs", str(tmp_path))


def test_crop_modes_and_bad_arguments(tmp_path):
    root, photo, moved = _raw_folder(tmp_path)
    np.save(root / "head.npy", moved)
    os.remove(root / "nobody.jpg")
    centre = load_folder(str(root), size=64, crop="auto")  # own landmark file: centre crop
    expected = (2 * (moved - [60, 0]) + 1) / 200 - 1
    torch.testing.assert_close(centre.landmarks[0], torch.from_numpy(expected).float())
    boxed = load_folder(str(root), size=64, crop="landmarks")
    span = boxed.landmarks[0].amax(0) - boxed.landmarks[0].amin(0)
    assert float(span.max()) == pytest.approx(2 / SCALE_TEST, abs=1e-4)
    with pytest.raises(ValueError, match="crop must be one of"):
        load_folder(str(root), crop="middle")
    with pytest.raises(ValueError, match="must not be inside the data folder"):
        load_folder(str(root), annotate_cache=str(root / "cache"))


def test_without_a_detector_raw_images_are_skipped_with_the_reason(tmp_path, monkeypatch):
    from train.faces import detect

    def unavailable(name="dlib"):
        raise detect.DetectorUnavailable('dlib is not installed: pip install -e ".[faces]"')

    monkeypatch.setattr(detect, "load_detector", unavailable)
    root, _, _ = _raw_folder(tmp_path)
    with pytest.raises(ValueError, match=r"cannot annotate it: dlib"):
        load_folder(str(root), size=64, annotate_cache=str(tmp_path / "cache"))


def test_finetune_on_a_folder_of_raw_photographs(tmp_path):
    pytest.importorskip("dlib", reason="the faces extra is not installed")
    from train import finetune

    root = tmp_path / "photos"
    root.mkdir()
    hopper = np.asarray(Image.open(grace_hopper_path()).convert("RGB"))
    for k, factor in enumerate((1.0, 0.7, 0.5)):
        img = Image.fromarray(hopper)
        img.resize((round(img.width * factor), round(img.height * factor))).save(root / f"p{k}.jpg")
    shutil.copy(grace_hopper_path(), root / "p3.ppm")
    (root / "rho_prior.json").write_text('{"rho_prior": 4.0}')
    before = sorted(os.listdir(root))
    out = tmp_path / "runs"
    results = finetune.main(
        [*tiny_cli_args(out), "--folder", str(root), "--baselines", "none", "--bootstrap", "0"]
    )
    assert sorted(os.listdir(root)) == before
    cache = annotation_cache_dir(str(out), str(root))
    assert sorted(os.listdir(cache)) == [
        f"p{k}.{s}.pts" for k, s in enumerate("jpg jpg jpg ppm".split())
    ]
    assert results
