"""train.faces.crop_box: SMIRK's landmark crops, points into the crop and back (hypothesis,
1e-4 px), and the warp putting each source pixel where the transform says."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.train.faces_helpers import paste, photo_canvas, standin_face
from train.faces.crop_box import (
    SCALE_INFER,
    SCALE_TEST,
    SCALE_TRAIN,
    CropBox,
    box_crop,
    landmark_crop,
    random_scale,
    warp,
)

finite = dict(allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    cx=st.floats(-5000, 5000, **finite),
    cy=st.floats(-5000, 5000, **finite),
    side=st.floats(2.0, 8000.0, **finite),
    size=st.integers(16, 512),
    angle=st.floats(-math.pi, math.pi, **finite),
    seed=st.integers(0, 2**32 - 1),
)
def test_points_go_into_the_crop_and_back_to_1e4_px(cx, cy, side, size, angle, seed):
    crop = CropBox(cx, cy, side, size, angle)
    points = np.random.default_rng(seed).uniform(-6000, 6000, (68, 2))
    back = crop.to_image(crop.to_crop(points))
    assert np.abs(back - points).max() < 1e-4
    inside = np.random.default_rng(seed).uniform(-0.5, size - 0.5, (68, 2))
    assert np.abs(crop.to_crop(crop.to_image(inside)) - inside).max() < 1e-4


@settings(max_examples=100, deadline=None)
@given(
    scale=st.floats(1.0, 2.0, **finite),
    size=st.integers(16, 512),
    seed=st.integers(0, 2**32 - 1),
)
def test_landmark_crop_is_smirks_box(scale, size, seed):
    points = np.random.default_rng(seed).uniform(0, 1000, (68, 2))
    crop = landmark_crop(points, scale, size)
    lo, hi = points.min(0), points.max(0)
    assert crop.side == pytest.approx(max(hi - lo) * scale)
    inner = crop.to_crop(points)
    # the landmarks' box is centred, and inside the crop with the margin the scale leaves
    assert inner.min(0) + inner.max(0) == pytest.approx([size - 1] * 2, abs=1e-6)
    margin = size * (1 - 1 / scale) / 2 - 0.5
    assert inner.min() >= margin - 1e-6 and inner.max() <= size - 1 - margin + 1e-6


def test_crop_edges_land_on_pixel_edges():
    crop = CropBox(100.0, 50.0, 40.0, 20)
    np.testing.assert_allclose(
        crop.to_crop([[80.0, 30.0], [120.0, 70.0]]), [[-0.5, -0.5], [19.5, 19.5]]
    )
    assert crop.zoom == 0.5
    record = crop.to_json()
    assert record["center_px"] == [100.0, 50.0] and record["side_px"] == 40.0


@pytest.mark.parametrize("side, angle", [(64, 0.0), (256, 0.0), (1000, 0.0), (96, 0.4)])
def test_warp_puts_each_pixel_where_the_transform_says(side, angle):
    image = np.zeros((1200, 1300, 3), np.uint8)
    k = max(1, side // 32)  # a block, so that downscaling keeps it visible
    x0, y0 = 640, 590
    image[y0 : y0 + k, x0 : x0 + k] = 255
    crop = CropBox(650.0, 600.0, float(side), 64, angle)
    out = warp(image, crop).astype(np.float64)[..., 0]
    assert out.sum() > 0
    yy, xx = np.mgrid[0:64, 0:64]
    found = np.array([(out * xx).sum(), (out * yy).sum()]) / out.sum()
    expected = crop.to_crop(np.array([x0 + (k - 1) / 2, y0 + (k - 1) / 2]))
    assert np.abs(found - expected).max() < 0.3


def test_standin_face_crop_keeps_its_landmarks_on_the_face():
    face, points = standin_face(128)
    canvas = photo_canvas(640, 480)
    photo, moved = paste(canvas, face, points, left=300, top=200)
    crop = landmark_crop(moved, SCALE_INFER, 128)
    warped = warp(photo, crop).astype(np.float64)
    # the crop is the stand-in face (same pixels, a little zoomed out): compare after
    # warping the face itself with the same crop expressed in its own coordinates
    own = CropBox(crop.cx - 300, crop.cy - 200, crop.side, crop.size)
    ref = warp(face, own).astype(np.float64)
    inside = own.to_crop(np.array([[0.0, 0.0], [127.0, 127.0]]))
    lo, hi = np.ceil(inside[0]).astype(int) + 1, np.floor(inside[1]).astype(int) - 1
    assert np.abs(warped - ref)[lo[1] : hi[1], lo[0] : hi[0]].mean() < 1.0
    np.testing.assert_allclose(crop.to_image(crop.to_crop(moved)), moved, atol=1e-9)


def test_scales_and_box_crop():
    assert (SCALE_INFER, SCALE_TEST, SCALE_TRAIN) == (1.4, 1.6, (1.2, 1.8))
    rng = np.random.default_rng(0)
    draws = [random_scale(rng) for _ in range(200)]
    assert 1.2 <= min(draws) and max(draws) <= 1.8
    crop = box_crop((10, 20, 50, 80), 1.5, 32)
    assert (crop.cx, crop.cy, crop.side) == (30.0, 50.0, 90.0)


def test_bad_inputs_say_what_was_expected():
    with pytest.raises(ValueError, match="side must be > 0"):
        CropBox(0, 0, 0, 10)
    with pytest.raises(ValueError, match="finite"):
        CropBox(float("nan"), 0, 1, 10)
    with pytest.raises(ValueError, match="positive integer"):
        CropBox(0, 0, 1, 0)
    with pytest.raises(ValueError, match=r"\[N>=2, 2\]"):
        landmark_crop(np.zeros((68, 3)), 1.4, 64)
    with pytest.raises(ValueError, match="one point"):
        landmark_crop(np.ones((68, 2)), 1.4, 64)
    with pytest.raises(ValueError, match="scale must be > 0"):
        landmark_crop(np.random.default_rng(0).random((68, 2)), 0, 64)
    with pytest.raises(ValueError, match=r"\[\.\.\., 2\]"):
        CropBox(0, 0, 1, 10).to_crop(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="uint8"):
        warp(np.zeros((8, 8, 3), np.float32), CropBox(4, 4, 8, 8))
    with pytest.raises(ValueError, match="right > left"):
        box_crop((5, 5, 5, 9), 1.4, 32)
