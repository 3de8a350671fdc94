"""``python -m train.infer``: per-image JSON, overlay and OBJ; unreadable files skipped."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from PIL import Image

from tests.train.conftest import tiny_config
from train import infer
from train.data.cache import load_data
from train.engine.run import Run


@pytest.fixture(scope="module")
def checkpoint(data_root):
    cfg = tiny_config(data_root, name="for-infer", steps=1)
    Run(cfg, progress=False).train(load_data(cfg, progress=False))
    return os.path.join(cfg.out_dir, cfg.name, "final.safetensors")


def test_folder_of_images(checkpoint, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / "b.jpg")
    (folder / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    argv = [str(folder), str(tmp_path / "missing.png"), "--checkpoint", checkpoint]
    with pytest.warns(UserWarning) as warned:
        infer.main([*argv, "--out", str(out), "--batch", "2"])
    messages = " ".join(str(w.message) for w in warned)
    assert "broken.png: skipped" in messages and "missing.png: skipped" in messages
    for stem in ("a", "b"):
        record = json.loads((out / f"{stem}.json").read_text())
        assert len(record["landmarks_px"]) == 68 and len(record["shape"]) == 10
        assert all(math.isfinite(v) for v in [record["scale"], record["rho"], *record["trans"]])
        if record["rho"] > 0:
            assert record["distance_m"] == pytest.approx(1 / record["rho"], rel=1e-5)
        assert (out / f"{stem}_overlay.png").stat().st_size > 0
        obj = (out / f"{stem}.obj").read_text().splitlines()
        assert sum(line.startswith("v ") for line in obj) > 1000
        assert sum(line.startswith("f ") for line in obj) > 1000
    # a's 64x48 image is cropped to its central 48x48: landmark pixels are shifted by 8
    a = json.loads((out / "a.json").read_text())
    ndc, px = np.array(a["landmarks_ndc"]), np.array(a["landmarks_px"])
    np.testing.assert_allclose(px, [8, 0] + (ndc + 1) * 48 / 2 - 0.5, atol=1e-4)
    skipped = (out / "skipped.txt").read_text()
    assert "broken.png" in skipped and "missing.png" in skipped


def test_bad_arguments(checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit):
        infer.main(
            [
                str(tmp_path),
                "--checkpoint",
                str(tmp_path / "nope.safetensors"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        infer.main(
            [
                str(tmp_path),
                "--checkpoint",
                checkpoint,
                "--out",
                str(tmp_path / "o"),
                "--batch",
                "0",
            ]
        )
