"""The photometric fit's face window: the affine map of the square's NDC into it, the
windowed render (a crop of the whole square's), the photo and the masks in it."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import flame
from train.fit.photo_model import WINDOW_MARGIN, face_window, photo_in_square
from train.fit.photo_objective import make_level
from train.render.textured import clip_in_window, from_window, render_textured, to_window

QUADRANT = torch.tensor([[-0.5, -0.5, 0.5]])  # the top-left quarter of the square


@settings(max_examples=60, deadline=None)
@given(
    centre=st.tuples(st.floats(-1.5, 1.5), st.floats(-1.5, 1.5)),
    extent=st.tuples(st.floats(1e-2, 2.5), st.floats(1e-2, 2.5)),
    seed=st.integers(0, 2**16),
)
def test_landmarks_map_into_their_window_and_back(centre, extent, seed):
    gen = torch.Generator().manual_seed(seed)
    unit = torch.rand(2, 68, 2, generator=gen, dtype=torch.float64)
    landmarks = torch.tensor(centre) + (unit - 0.5) * torch.tensor(extent)
    window = face_window(landmarks)
    assert window.shape == (2, 3) and bool((window[:, 2] > 0).all())
    # inside the square, and holding the landmarks' box as far as the square does
    assert float((window[:, :2].abs() + window[:, 2:]).max()) <= 1 + 1e-9
    local = to_window(landmarks.clamp(-1, 1), window)
    assert float(local.abs().max()) <= 1 + 1e-9
    # a face smaller than the square is zoomed to its box times the margin
    box = (landmarks.amax(1) - landmarks.amin(1)).amax(-1)
    small = box * WINDOW_MARGIN <= 2
    assert torch.allclose(window[small, 2], box[small] * WINDOW_MARGIN / 2)
    whole = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    assert bool((window[~small] == whole).all())  # a face that fills the photo
    local = to_window(landmarks, window)
    assert torch.allclose(from_window(local, window), landmarks, atol=1e-12)
    # the clip-space form divides to the same screen positions
    w = 0.5 + torch.rand(2, 68, 1, generator=gen, dtype=torch.float64)
    clip = torch.cat([landmarks * w, torch.randn(2, 68, 1, generator=gen).double(), w], -1)
    moved = clip_in_window(clip, window)
    assert torch.allclose(moved[..., :2] / moved[..., 3:], local, atol=1e-9)
    assert torch.equal(moved[..., 2:], clip[..., 2:])


def test_window_is_refused_with_a_wrong_shape():
    with pytest.raises(ValueError, match=r"\[1, 3\]"):
        photo_in_square(torch.rand(1, 8, 8, 3), 8, torch.zeros(1, 2))
    with pytest.raises(ValueError, match="positive"):
        photo_in_square(torch.rand(1, 8, 8, 3), 8, torch.zeros(1, 3))


def test_photo_in_a_quadrant_window_is_the_whole_square_cropped():
    """At sizes whose pixel grids align (a quadrant at R/2 vs the square at R) the
    window's pixels are the square's, and so is ``valid`` (a 20 x 30 photo: padding
    above and below)."""
    photo = torch.rand(1, 20, 30, 3, generator=torch.Generator().manual_seed(1))
    whole, valid = photo_in_square(photo, 30)
    part, part_valid = photo_in_square(photo, 15, QUADRANT)
    assert torch.equal(part_valid, valid[:, :15, :15])
    assert torch.allclose(part, whole[:, :15, :15], atol=1e-6)
    # a window reaching beyond the square: invalid there
    _, out = photo_in_square(photo, 16, torch.tensor([[0.8, 0.0, 0.5]]))
    assert bool(out[0, 8, :11].all()) and not bool(out[0, 8, 13:].any())


def _head(dtype=torch.float32):
    layer = flame.FLAME("bundled", n_shape=2, n_expr=2).to(dtype=dtype)
    with torch.no_grad():
        vertices = layer().vertices
    return layer, vertices


@pytest.mark.parametrize("rho", [0.0, 4.0])
def test_windowed_render_is_the_whole_render_cropped(rho):
    """The head straddling the quadrant's edges, rendered whole at 32 px and in the
    quadrant at 16 px: the same pixels (the window acts after the perspective
    division, so it is exact for the rho camera too)."""
    layer, vertices = _head()
    gen = torch.Generator().manual_seed(2)
    albedo = torch.rand(1, 16, 16, 3, generator=gen)
    sh = torch.zeros(1, 9, 3)
    sh[:, 0], sh[:, 1:4] = 3.0, 0.8
    background = torch.rand(1, 32, 32, 3, generator=gen)
    camera = (torch.tensor([6.0]), torch.tensor([[-0.04, -0.05]]), torch.tensor([rho]))
    args = (layer, vertices, *camera, albedo, sh)
    whole = render_textured(*args, background, 32)
    part = render_textured(*args, background[:, :16, :16], 16, window=QUADRANT)
    covered = whole.covered[:, :16, :16]
    assert bool(covered.any()) and not bool(covered.all())  # the silhouette is in view
    assert torch.equal(part.covered, covered)
    # the window's last row and column miss their outside neighbours for antialiasing
    assert torch.allclose(part.image[:, :15, :15], whole.image[:, :15, :15], atol=1e-4)
    assert torch.allclose(part.uv, whole.uv[:, :16, :16], atol=1e-4)


def test_level_masks_follow_the_face_not_its_size():
    """A face shrunk to a sixth and moved into a corner of the square (a face in a
    group photo) gets the same skin masks in its window as the full-size face."""
    layer, _ = _head()
    with torch.no_grad():
        lmk = layer().landmarks[..., :2] * torch.tensor([1.0, -1.0]) * 5.0
    shift = torch.tensor([0.6, -0.5])
    small = lmk / 6 + shift
    photos = torch.rand(2, 40, 40, 3, generator=torch.Generator().manual_seed(3))
    big_level = make_level(photos[:1], lmk, 48)
    small_level = make_level(photos[1:], small, 48)
    expected = torch.cat([big_level.window[:, :2] / 6 + shift, big_level.window[:, 2:] / 6], -1)
    assert torch.allclose(small_level.window, expected, atol=1e-6)
    assert bool(big_level.valid.all()) and bool(small_level.valid.all())
    assert float(big_level.weight.sum()) > 300
    # the same masks, but for pixel centres on a polygon's edge (rounding)
    assert int((small_level.weight != big_level.weight).sum()) <= 4
    assert int((small_level.inside != big_level.inside).sum()) <= 4
