"""The real-data folder loader: formats, conventions, rho priors, bad files by name."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import ppcam
from train.data.folder import load_folder
from train.faces.landmark_files import read_landmarks


def _points(seed=0):
    return np.random.default_rng(seed).uniform(5, 35, size=(68, 2))


def _write_image(path, w=40, h=40):
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(path)


def test_all_three_formats_and_the_ndc_convention(tmp_path):
    pts = _points()
    _write_image(tmp_path / "a.png")
    np.save(tmp_path / "a.npy", pts)
    _write_image(tmp_path / "b.jpg")
    (tmp_path / "b.json").write_text(json.dumps({"landmarks": pts.tolist()}))
    _write_image(tmp_path / "c.png")
    body = "\n".join(f"{x + 1} {y + 1}" for x, y in pts)  # 300W is 1-based
    (tmp_path / "c.pts").write_text(f"version: 1\nn_points: 68\n{{\n{body}\n}}\n")
    data = load_folder(str(tmp_path), size=32)
    assert data.names == ["a.png", "b.jpg", "c.png"] and data.skipped == []
    assert data.image.shape == (3, 3, 32, 32) and data.image.dtype == torch.uint8
    expected = torch.from_numpy((2 * pts + 1) / 40 - 1).float()
    for i in range(3):
        torch.testing.assert_close(data.landmarks[i], expected)
    assert data.rho_prior is None


def test_non_square_images_are_centre_cropped(tmp_path):
    pts = _points() + [20, 0]
    _write_image(tmp_path / "wide.png", w=80, h=40)
    np.save(tmp_path / "wide.npy", pts)
    data = load_folder(str(tmp_path), size=32)
    torch.testing.assert_close(
        data.landmarks[0], torch.from_numpy((2 * (pts - [20, 0]) + 1) / 40 - 1).float()
    )


def test_bad_and_missing_files_are_reported_by_name_and_skipped(tmp_path, capsys):
    _write_image(tmp_path / "good.png")
    np.save(tmp_path / "good.npy", _points())
    _write_image(tmp_path / "nolmk.png")
    _write_image(tmp_path / "short.png")
    np.save(tmp_path / "short.npy", _points()[:5])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    np.save(tmp_path / "broken.npy", _points())
    np.save(tmp_path / "orphan.npy", _points())
    data = load_folder(str(tmp_path), size=32)
    printed = capsys.readouterr().err.splitlines()
    assert data.names == ["good.png"]
    reasons = dict(data.skipped)
    assert "no landmark file" in reasons["nolmk.png"]
    assert "expected 68" in reasons["short.npy"]
    assert "unreadable image" in reasons["broken.png"]
    assert "without an image" in reasons["orphan.npy"]
    # one plain line per file skipped (no line of source code after it, as warnings add)
    assert len(printed) == 4 and all(line.startswith("skipped ") for line in printed)


def test_rho_prior_from_the_folder_or_the_caller(tmp_path):
    _write_image(tmp_path / "a.png")
    np.save(tmp_path / "a.npy", _points())
    (tmp_path / "rho_prior.json").write_text(json.dumps({"rho_prior": 4.0}))
    assert load_folder(str(tmp_path), size=32).rho_prior == 4.0
    assert load_folder(str(tmp_path), size=32, rho_prior=1.5).rho_prior == 1.5
    geometry = {"sensor_width_cm": 0.455, "face_width_cm": 15, "distance_cm": [15, 30]}
    (tmp_path / "rho_prior.json").write_text(json.dumps(geometry))
    assert load_folder(str(tmp_path), size=32).rho_prior == pytest.approx(
        ppcam.hmc_rho_prior().center
    )
    (tmp_path / "rho_prior.json").write_text(json.dumps({"focal": 3}))
    with pytest.raises(ValueError, match="give 'rho_prior' or the capture geometry"):
        load_folder(str(tmp_path), size=32)


def test_empty_or_missing_folders_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="data folder not found"):
        load_folder(str(tmp_path / "nope"))
    _write_image(tmp_path / "lonely.png")
    with pytest.raises(ValueError, match="lonely.png: no landmark"):
        load_folder(str(tmp_path))


def test_npy_pickles_are_refused(tmp_path):
    np.save(tmp_path / "evil.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        read_landmarks(str(tmp_path / "evil.npy"))


def test_every_pil_format_is_read_and_pts_round_trip(tmp_path):
    from train.faces.landmark_files import read_pts, write_pts

    pts = _points(3)
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "p.ppm")
    write_pts(str(tmp_path / "p.pts"), pts)
    text = (tmp_path / "p.pts").read_text().splitlines()
    assert text[:3] == ["version: 1", "n_points: 68", "{"] and text[-1] == "}"
    assert [float(v) for v in text[3].split()] == pytest.approx(pts[0] + 1, abs=1e-6)  # 1-based
    np.testing.assert_allclose(read_pts(str(tmp_path / "p.pts")), pts, atol=1e-6)
    data = load_folder(str(tmp_path), size=32)
    assert data.names == ["p.ppm"]
    torch.testing.assert_close(data.landmarks[0], torch.from_numpy((2 * pts + 1) / 40 - 1).float())
    with pytest.raises(ValueError, match="expected 68 finite"):
        write_pts(str(tmp_path / "bad.pts"), pts[:3])
