"""``python -m bench.faces --quick`` (faces extra; skipped without it): its rows and files,
per backend, and how detections are scored against the marked faces."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytest.importorskip("dlib", reason="the faces extra (dlib-bin) is not installed")

from bench import faces  # noqa: E402
from bench.faces_data import score_boxes  # noqa: E402
from tests.train.faces_helpers import grace_hopper_path  # noqa: E402
from train.faces import available, find_faces, load_detector, read_image  # noqa: E402
from train.faces.landmark_files import write_pts  # noqa: E402


def test_mirror_order_is_an_involution_that_swaps_sides():
    assert (faces.MIRROR[faces.MIRROR] == np.arange(68)).all()
    assert faces.MIRROR[36] == 45 and faces.MIRROR[8] == 8 and faces.MIRROR[48] == 54


def test_boxes_find_the_marked_faces_they_hold():
    marked = np.array([[10.0, 10.0], [50.0, 50.0]])
    hits, false = score_boxes([(0, 0, 20, 20), (100, 100, 120, 120), (5, 5, 15, 15)], marked)
    assert hits == [True, False] and false == 1
    assert score_boxes([], marked) == ([False, False], 0)


def test_quick_run_with_an_annotated_copy(tmp_path):
    copy = tmp_path / "hopper.png"
    image = read_image(grace_hopper_path())
    from PIL import Image

    Image.fromarray(image).save(copy)
    truth = find_faces(image, load_detector("dlib"))[0].landmarks + [2.0, 0.0]  # 2 px right
    write_pts(str(tmp_path / "hopper.pts"), truth)
    backends = ["dlib"] + (["mediapipe"] if available("mediapipe") else [])
    payload = faces.main(
        ["--quick", "--offline", "--budget", "0.1", "--out", str(tmp_path / "o"),
         "--images", str(copy), "--detectors", *backends]
    )  # fmt: skip
    with open(os.path.join(payload["out_dir"], "faces.json")) as f:
        rows = {(r["image"], r["detector"]): r for r in json.load(f)["rows"]}
    hopper = rows[("grace_hopper", "dlib")]
    assert hopper["faces_found"] == 1 and hopper["false_detections"] == 0
    assert hopper["ms_per_image"] > 0 and hopper["error_vs_annotation"] is None
    expected = 2.0 / np.linalg.norm(truth[36] - truth[45])
    assert rows[("hopper", "dlib")]["error_vs_annotation"] == pytest.approx(expected, abs=1e-3)
    assert set(rows[("hopper", "dlib")]["consistency"]) == {"mirror", "greyscale"}
    assert all(v < 0.1 for v in rows[("hopper", "dlib")]["consistency"].values())
    report = open(os.path.join(payload["out_dir"], "faces.md")).read()
    assert "| hopper |" in report and "excludes commercial use" in report
    if "mediapipe" in backends:
        assert rows[("grace_hopper", "mediapipe")]["sources"] == ["mediapipe"]
        (agree,) = [a for a in payload["mediapipe_vs_dlib"] if a["image"] == "grace_hopper"]
        assert agree["error_without_jaw"] < agree["error"] < 0.1
