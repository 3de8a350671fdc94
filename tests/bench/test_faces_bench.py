"""``python -m bench.faces --quick`` (faces extra; skipped without it): its rows and files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytest.importorskip("dlib", reason="the faces extra (dlib-bin) is not installed")

from bench import faces  # noqa: E402
from train.faces import find_faces, read_image  # noqa: E402
from train.faces.landmark_files import write_pts  # noqa: E402


def test_mirror_order_is_an_involution_that_swaps_sides():
    assert (faces.MIRROR[faces.MIRROR] == np.arange(68)).all()
    assert faces.MIRROR[36] == 45 and faces.MIRROR[8] == 8 and faces.MIRROR[48] == 54


def test_quick_run_with_an_annotated_copy(tmp_path):
    hopper = faces.offline_photographs()[0][1]
    copy = tmp_path / "hopper.png"
    image = read_image(hopper)
    from PIL import Image

    Image.fromarray(image).save(copy)
    truth = find_faces(image)[0].landmarks + [2.0, 0.0]  # an 'annotation' 2 px to the right
    write_pts(str(tmp_path / "hopper.pts"), truth)
    payload = faces.main(
        ["--quick", "--budget", "0.1", "--out", str(tmp_path / "o"), "--images", str(copy)]
    )
    with open(os.path.join(payload["out_dir"], "faces.json")) as f:
        rows = {r["image"]: r for r in json.load(f)["rows"]}
    assert rows["grace_hopper"]["faces_found"] == 1 and rows["grace_hopper"]["ms_per_image"] > 0
    assert rows["grace_hopper"]["error_vs_annotation"] is None
    expected = 2.0 / np.linalg.norm(truth[36] - truth[45])
    assert rows["hopper"]["error_vs_annotation"] == pytest.approx(expected, abs=1e-3)
    assert set(rows["hopper"]["consistency"]) == {"mirror", "greyscale"}
    assert all(v < 0.1 for v in rows["hopper"]["consistency"].values())
    assert "| hopper |" in open(os.path.join(payload["out_dir"], "faces.md")).read()
