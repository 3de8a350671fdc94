"""train.faces.detect with the dlib backend (the ``faces`` extra; skipped without it): a real face
(matplotlib's Grace Hopper) found and landmarked through every reading path, and the
answers consistent across sizes, modes, EXIF rotation and a two-face photograph."""

from __future__ import annotations

import importlib.util

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
from train.faces import detect
from train.faces.images import read_image

pytest.importorskip("dlib", reason="the faces extra (dlib-bin) is not installed")
if importlib.util.find_spec("face_recognition_models") is None:
    pytest.skip(
        "the faces extra (face-recognition-models) is not installed", allow_module_level=True
    )


def dlib():
    return detect.load_detector("dlib")


def eye_distance(points):
    """Outer eye corners (iBUG 36 and 45): the normaliser of the 68-point error."""
    return float(np.linalg.norm(points[36] - points[45]))


@pytest.fixture(scope="module")
def hopper():
    image = read_image(grace_hopper_path())
    faces = detect.find_faces(image, dlib())
    assert len(faces) == 1
    return image, faces[0]


def test_model_files_are_found_without_importing_the_package():
    import sys

    path = detect.model_file("shape_predictor_68_face_landmarks.dat")
    assert path.endswith("shape_predictor_68_face_landmarks.dat")
    assert "face_recognition_models" not in sys.modules
    with pytest.raises(detect.DetectorUnavailable, match="no models/nope.dat"):
        detect.model_file("nope.dat")
    with pytest.raises(detect.DetectorUnavailable, match="not installed"):
        detect.model_file("x.dat", package="no_such_package_here")


def test_a_real_face_is_found_with_68_landmarks_in_its_box(hopper):
    image, face = hopper
    assert isinstance(dlib(), detect.FaceDetector) and face.box.source == "dlib"
    box = face.box
    assert 150 < box.left < 220 and 100 < box.top < 180 and box.score > 0.5
    assert face.landmarks.shape == (68, 2) and face.landmarks.dtype == np.float64
    lo, hi = face.landmarks.min(0), face.landmarks.max(0)
    assert (lo > [box.left - 20, box.top - 40]).all() and (
        hi < [box.right + 20, box.bottom + 20]
    ).all()
    # iBUG order: the left end of the jaw (0) is left of its right end (16), eyes above mouth
    pts = face.landmarks
    assert pts[0, 0] < pts[16, 0] and pts[36, 0] < pts[45, 0]
    assert pts[36:48, 1].mean() < pts[30, 1] < pts[48:68, 1].mean()
    assert 60 < eye_distance(pts) < 140


def _consistent(points, reference, tol=0.06):
    return np.linalg.norm(points - reference, axis=1).mean() / eye_distance(reference) < tol


def test_same_face_through_modes_exif_and_16_bit(hopper, tmp_path):
    image, face = hopper
    pil = Image.fromarray(image)
    pil.convert("L").save(tmp_path / "grey.png")
    rgba = pil.convert("RGBA")
    rgba.save(tmp_path / "rgba.png")
    pil.save(tmp_path / "face.ppm")
    deep = (np.asarray(pil.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned left; shown upright after the EXIF rotation
    pil.rotate(90, expand=True).save(tmp_path / "exif.jpg", quality=95, exif=exif)
    for name in ("grey.png", "rgba.png", "face.ppm", "deep.png", "exif.jpg"):
        img = read_image(tmp_path / name)
        assert img.shape == image.shape, name
        faces = detect.find_faces(img, dlib())
        assert len(faces) == 1, name
        assert _consistent(faces[0].landmarks, face.landmarks), name


def test_small_and_large_copies_agree(hopper):
    image, face = hopper
    pil = Image.fromarray(image)
    for factor in (0.3, 4.0):
        size = (round(pil.width * factor), round(pil.height * factor))
        scaled = np.asarray(pil.resize(size, Image.BILINEAR))
        faces = detect.find_faces(scaled, dlib())
        assert len(faces) == 1, factor
        back = (faces[0].landmarks + 0.5) / (size[0] / pil.width) - 0.5
        assert _consistent(back, face.landmarks, tol=0.08), factor


def test_two_faces_and_a_stand_in_head_on_a_wide_photograph(hopper):
    image, face = hopper
    small = np.asarray(Image.fromarray(image).resize((300, 352), Image.BILINEAR))
    canvas = photo_canvas(1280, 720)
    photo, _ = paste(canvas, small, np.zeros((68, 2)), 80, 200)
    photo, _ = paste(photo, image[::2, ::2].copy(), np.zeros((68, 2)), 800, 300)
    head, _ = standin_face(160)
    photo, _ = paste(photo, head, np.zeros((68, 2)), 500, 40)
    found = detect.find_faces(photo, dlib())
    assert [f.box.area for f in found] == sorted((f.box.area for f in found), reverse=True)
    # the rendered stand-in head is no photograph: HOG gives it a low score (0.13 here)
    # if it finds it at all; the two photographs score above 1
    faces = [f for f in found if f.box.score > 0.5]
    assert len(faces) == 2 and all(f.box.score < 0.5 for f in found[2:])
    assert faces[0].box.left < 400 and faces[1].box.left > 780


def test_no_face_in_noise_or_tiny_images():
    assert detect.detect_faces(photo_canvas(200, 150), dlib()) == []
    assert detect.detect_faces(np.zeros((1, 1, 3), np.uint8), dlib()) == []


def test_a_plugged_in_detector_is_used():
    _, points = standin_face(128)
    known = KnownFaces([points])
    assert isinstance(known, detect.FaceDetector)
    image = np.zeros((128, 128, 3), np.uint8)
    faces = detect.find_faces(image, known)
    np.testing.assert_array_equal(faces[0].landmarks, points)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\[H,W,3\] uint8"):
        detect.detect_faces(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="unknown detector"):
        detect.load_detector("nope")
    with pytest.raises(ValueError, match="upsample"):
        detect.DlibDetector(upsample=-1)


def test_consistent_under_mirror_scale_rotation_greyscale_and_jpeg(hopper):
    """The benchmark's transforms (bench.faces): each copy's landmarks, mapped back to the
    original pixels (and mirrored indices swapped), land within 8 % of the eye distance."""
    from bench.faces import normalised_error, transforms

    image, face = hopper
    for label, img, back, order in transforms(image):
        faces = detect.find_faces(img, dlib())
        assert len(faces) == 1, label
        assert normalised_error(back(faces[0].landmarks)[order], face.landmarks) < 0.08, label
