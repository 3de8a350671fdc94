"""``train.infer --refine fit``: the crop's camera mapped to the whole image
(:func:`train.infer.refine.crop_camera_to_image`); the end-to-end run is in
tests/train/test_infer.py (it shares that module's tiny checkpoint)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from train.faces.crop_box import CropBox
from train.fit.inputs import pixels_to_ndc
from train.infer.refine import crop_camera_to_image


def _project(points: torch.Tensor, scale, trans, rho) -> torch.Tensor:
    """docs/design.md section 3 with R = I: ``u = S (P_xy + t) / (1 + rho P_z)``."""
    w = 1.0 + rho * points[:, 2:]
    return scale * (points[:, :2] + trans) / w


@settings(max_examples=40, deadline=None)
@given(
    width=st.integers(40, 900),
    height=st.integers(40, 900),
    fx=st.floats(0.0, 1.0),
    fy=st.floats(0.0, 1.0),
    side=st.floats(8.0, 600.0),
    size=st.sampled_from([32, 224]),
    scale=st.floats(0.5, 12.0),
    tx=st.floats(-0.2, 0.2),
    ty=st.floats(-0.2, 0.2),
    rho=st.floats(0.0, 6.0),
    depth=st.floats(-0.1, 0.1),
)
def test_the_image_camera_sees_what_the_crop_camera_sees(
    width, height, fx, fy, side, size, scale, tx, ty, rho, depth
):
    """Points projected by the crop's camera, carried from crop pixels to image pixels
    (CropBox.to_image) and to the image's NDC, land where the mapped camera projects
    them, up to ``c rho P_z / w`` (c: the crop centre in the image's NDC): exact at
    the model origin's depth, the principal point's move elsewhere."""
    crop = CropBox(fx * width, fy * height, side, size)
    g = torch.Generator().manual_seed(0)
    points = torch.cat(
        [torch.rand(20, 2, generator=g, dtype=torch.float64) * 0.2 - 0.1,
         torch.full((20, 1), depth, dtype=torch.float64)], 1
    )  # fmt: skip
    t = torch.tensor([tx, ty], dtype=torch.float64)
    crop_ndc = _project(points, scale, t, rho).numpy()
    image_px = crop.to_image((crop_ndc + 1.0) * size / 2.0 - 0.5)
    seen = pixels_to_ndc(image_px, width, height)
    s_img, t_img = crop_camera_to_image(
        torch.tensor([scale]), t[None].float(), [crop], [(width, height)]
    )
    mapped = _project(points, s_img[0], t_img[0], rho).numpy()
    centre = pixels_to_ndc(np.array([[crop.cx, crop.cy]]), width, height)
    w = 1.0 + rho * depth
    tol = 1e-5 * max(1.0, float(np.abs(seen).max()))
    np.testing.assert_allclose(
        seen - mapped, np.broadcast_to(centre * rho * depth / w, seen.shape), atol=tol
    )
    assert float(s_img[0]) == pytest.approx(scale * side / max(width, height), rel=1e-6)


def test_mapping_checks_its_inputs():
    crop = CropBox(10.0, 10.0, 20.0, 32)
    with pytest.raises(ValueError, match="turned crop"):
        crop_camera_to_image(
            torch.ones(1), torch.zeros(1, 2), [CropBox(10.0, 10.0, 20.0, 32, 0.1)], [(40, 40)]
        )
    with pytest.raises(ValueError, match=r"trans \[B,2\]"):
        crop_camera_to_image(torch.ones(2), torch.zeros(1, 2), [crop], [(40, 40)])
