"""``python -m train.fit``: images with landmark files in, the same outputs as
``train.infer`` out, captures with posterior and bootstrap intervals; and synthetic captures."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

from train.data.synthetic import FaceGenerator
from train.fit.__main__ import main as fit_main
from train.fit.inputs import ndc_to_pixels, pixels_to_ndc
from train.fit.posterior import distance_text

SIZE = 64


@pytest.fixture(scope="module")
def generator():
    return FaceGenerator("bundled", size=SIZE, n_shape=20, n_expr=20, seed=3)


def _write(folder, data, name_prefix="img"):
    os.makedirs(folder, exist_ok=True)
    for k in range(len(data["image"])):
        image = data["image"][k].permute(1, 2, 0).numpy()
        Image.fromarray(image).save(os.path.join(folder, f"{name_prefix}{k}.png"))
        px = ndc_to_pixels(data["landmarks_noisy"][k].numpy(), SIZE, SIZE) + 1.0  # 1-based
        lines = ["version: 1", "n_points: 68", "{", *(f"{x:.3f} {y:.3f}" for x, y in px), "}"]
        with open(os.path.join(folder, f"{name_prefix}{k}.pts"), "w") as f:
            f.write("\n".join(lines) + "\n")


def test_pixel_ndc_round_trip():
    rng = np.random.default_rng(0)
    for width, height in ((64, 64), (640, 480), (300, 500)):
        px = rng.uniform(-5, max(width, height), size=(68, 2))
        np.testing.assert_allclose(
            ndc_to_pixels(pixels_to_ndc(px, width, height), width, height), px
        )
    # square images: the project's pixel-centre convention, x = (2c + 1) / W - 1
    np.testing.assert_allclose(
        pixels_to_ndc(np.array([[0.0, 63.0]]), 64, 64), [[-63 / 64, 63 / 64]]
    )


def test_captures_share_subject_and_distance(generator):
    a = generator.generate_capture("hmc", "test", 2, [0, 1, 2], render=False)
    assert "image" not in a
    assert torch.all(a["shape"] == a["shape"][0]) and torch.all(a["rho"] == a["rho"][0])
    assert not torch.equal(a["expression"][0], a["expression"][1])
    again = generator.generate_capture("hmc", "test", 2, [1], render=True)
    torch.testing.assert_close(again["landmarks"][0], a["landmarks"][1])  # pure function
    assert again["image"].shape == (1, 3, SIZE, SIZE)
    other = generator.generate_capture("hmc", "test", 3, [0], render=False)
    assert not torch.equal(other["shape"][0], a["shape"][0])
    single = generator.generate("hmc", "test", [0])
    assert not torch.equal(single["shape"][0], a["shape"][0])  # disjoint streams


def test_fit_command_per_image_and_per_capture(generator, tmp_path, single_thread):
    photos = tmp_path / "photos"
    _write(photos, generator.generate("hmc", "test", [0, 1]))
    Image.new("RGB", (20, 20)).save(photos / "nolandmarks.png")
    out = tmp_path / "out"
    summary = fit_main([str(photos), "--out", str(out), "--iterations", "40"])
    assert len(summary["images"]) == 2
    for stem in ("img0", "img1"):
        record = json.loads((out / f"{stem}.json").read_text())
        assert record["rho"] > 0 and record["distance_m"] == pytest.approx(1 / record["rho"])
        lo, hi = record["rho_interval"]
        assert lo < record["rho"] < hi
        assert record["distance_interval_m"] == pytest.approx([1 / hi, 1 / lo])
        assert record["distance_text"].startswith(f"{record['distance_m']:.2f} m [") or (
            record["distance_text"].startswith("distance not observable")
        )
        assert len(record["landmarks_px"]) == 68 and record["residual_px224"] < 20
        assert (out / f"{stem}_overlay.png").stat().st_size > 0
        assert (out / f"{stem}.obj").read_text().startswith("#")
    assert "nolandmarks.png\tno landmark file" in (out / "skipped.txt").read_text()

    capture = tmp_path / "capture"
    data = generator.generate_capture("hmc", "test", 0, list(range(6)))
    _write(capture / "seq0", data)
    summary = fit_main(
        [str(capture), "--out", str(tmp_path / "cap"), "--per-capture", "--iterations", "40",
         "--bootstrap", "8", "--no-overlay"]
    )  # fmt: skip
    [cap] = summary["captures"]
    assert cap["frames"] == 6 and cap["rho_lo"] <= cap["rho_hi"]
    assert cap["rho_interval"][0] < cap["rho"] < cap["rho_interval"][1]
    rhos = {r["rho"] for r in summary["images"]}
    assert len(rhos) == 1  # one rho per capture


def test_fit_command_errors(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit):
        fit_main([str(empty), "--out", str(tmp_path / "o")])
    assert "no image with a landmark file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        fit_main([str(empty), "--out", str(tmp_path / "o"), "--iterations", "0"])
    assert "--iterations must be >= 1" in capsys.readouterr().err


def test_distance_text():
    assert distance_text(0.62, 0.48, 0.91) == "0.62 m [0.48, 0.91]"
    assert distance_text(2.3, 1.0, 3.0) == "2.30 m [1.00, 3.00]"  # a factor 3: still observable
    wide = distance_text(2.3, 0.9, 3.28)  # 3.28 / 0.9 > 3
    assert wide == "distance not observable from these landmarks (2.30 m [0.90, 3.28])"
    assert distance_text(35.9, 12.0, math.inf).startswith("distance not observable")
    assert "36 m [12, inf]" in distance_text(35.9, 12.0, math.inf)


def test_distance_text_says_far_without_two_dozen_digits():
    text = distance_text(0.41, 0.0, 1.56e23)
    assert text == "distance not observable from these landmarks (0.41 m [0.00, > 1000])"
