"""train.models.masking: the blanked region, the copied-back pixels, the paper's exclusions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from train.models.masking import (
    NOSE_LANDMARKS,
    box_any,
    convex_hull_mask,
    erode,
    mask_face,
    ndc_to_pixels,
)

pytestmark = pytest.mark.usefixtures("single_thread")


def synthetic_face(batch: int, size: int, seed: int = 0):
    """Elliptic face masks and 68 iBUG-like landmarks on them.

    Returns (image [B,3,S,S] in [0.2, 0.8], face_mask [B,1,S,S] bool,
    landmarks [B,68,2] NDC, landmarks in pixels). The jaw line lies at 0.95 of
    the ellipse, the nose runs from 0.35 b above the centre to 0.18 b below it.
    """
    g = torch.Generator().manual_seed(seed)
    cx = size / 2 + (torch.rand(batch, generator=g) - 0.5) * 0.1 * size
    cy = size / 2 + (torch.rand(batch, generator=g) - 0.5) * 0.1 * size
    a = (0.28 + 0.04 * torch.rand(batch, generator=g)) * size
    b = (0.36 + 0.04 * torch.rand(batch, generator=g)) * size
    cx, cy, a, b = (v[:, None] for v in (cx, cy, a, b))

    def pts(x, y):
        return torch.stack([cx + x * a, cy + y * b], dim=-1)

    t = math.pi - math.pi * torch.arange(17) / 16
    jaw = pts(0.95 * torch.cos(t).expand(batch, -1), 0.95 * torch.sin(t).expand(batch, -1))
    bx = torch.linspace(-0.7, -0.15, 5)
    brows = pts(torch.cat([bx, -bx.flip(0)]).expand(batch, -1), torch.full((batch, 10), -0.5))
    bridge = pts(torch.zeros(batch, 4), torch.linspace(-0.35, 0.1, 4).expand(batch, -1))
    nostrils = pts(torch.linspace(-0.25, 0.25, 5).expand(batch, -1), torch.full((batch, 5), 0.18))
    e = torch.arange(6) * math.pi / 3
    eye = (0.15 * torch.cos(e), 0.06 * torch.sin(e))
    left = pts((-0.4 + eye[0]).expand(batch, -1), (-0.3 + eye[1]).expand(batch, -1))
    right = pts((0.4 + eye[0]).expand(batch, -1), (-0.3 + eye[1]).expand(batch, -1))
    m_out, m_in = torch.arange(12) * math.pi / 6, torch.arange(8) * math.pi / 4
    mouth = torch.cat(
        [
            pts((0.35 * torch.cos(m_out)).expand(batch, -1), (0.5 + 0.1 * torch.sin(m_out))),
            pts((0.25 * torch.cos(m_in)).expand(batch, -1), (0.5 + 0.04 * torch.sin(m_in))),
        ],
        dim=1,
    )
    px = torch.cat([jaw, brows, bridge, nostrils, left, right, mouth], dim=1)
    assert px.shape == (batch, 68, 2)
    ndc = torch.stack([(2 * px[..., 0] + 1) / size - 1, (2 * px[..., 1] + 1) / size - 1], -1)
    r = torch.arange(size, dtype=torch.float32)
    ex = ((r[None, None, :] - cx[:, :, None]) / a[:, :, None]) ** 2
    ey = ((r[None, :, None] - cy[:, :, None]) / b[:, :, None]) ** 2
    face = (ex + ey <= 1.0)[:, None]
    image = 0.2 + 0.6 * torch.rand(batch, 3, size, size, generator=g)
    return image, face, ndc, px


def scaled(px_at_224: float, size: int) -> int:
    return max(1, round(px_at_224 * size / 224))


def monotone_chain(points: np.ndarray) -> np.ndarray:
    """Reference convex hull (Andrew's monotone chain): vertices in order, collinear dropped."""
    pts = sorted(map(tuple, points.tolist()))

    def half(seq):
        out: list = []
        for p in seq:
            while len(out) >= 2:
                (ax, ay), (bx, by) = out[-2], out[-1]
                if (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) > 0:
                    break
                out.pop()
            out.append(p)
        return out[:-1]

    return np.array(half(pts) + half(pts[::-1]))


def reference_hull(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixel centres inside the hull polygon (sequential hull, per-edge cross products)."""
    v = monotone_chain(points)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    inside = np.ones((height, width), dtype=bool)
    for a, b in zip(v, np.roll(v, -1, axis=0)):
        cross = (b[0] - a[0]) * (yy - a[1]) - (b[1] - a[1]) * (xx - a[0])
        inside &= cross >= -1e-9
    return inside


def nose_geometry(px: torch.Tensor, nose_radius: float):
    nose = px[:, list(NOSE_LANDMARKS)]
    centre = nose.mean(dim=1)
    extent = px.amax(dim=1) - px.amin(dim=1)
    radius = nose_radius * (extent[:, 0] * extent[:, 1]).sqrt()
    return centre, radius


def pixel_distance(centre: torch.Tensor, size: int) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float32)
    return torch.hypot(
        r[None, None, :] - centre[:, 0, None, None], r[None, :, None] - centre[:, 1, None, None]
    )


# ---------------------------------------------------------------- the paper's masking


@pytest.mark.parametrize("keep_fraction", [0.01, 0.05])
def test_paper_keeps_exact_fraction_off_contour_and_nose(keep_fraction):
    size, batch = 96, 4
    image, face, ndc, px = synthetic_face(batch, size)
    out = mask_face(
        image,
        face,
        ndc,
        mode="paper",
        keep_fraction=keep_fraction,
        dropout_rate=0.0,
        noise=0.0,
        generator=torch.Generator().manual_seed(1),
    )
    n_face = face.flatten(1).sum(1)
    # exact: k = round(keep_fraction * |face mask|) (the allowed region is larger than k)
    expected = torch.round(keep_fraction * n_face.double()).long()
    assert torch.equal(out.keep.flatten(1).sum(1), expected)
    assert not (out.keep & ~face).any()
    # the contour band: no kept pixel has a non-face pixel within Chebyshev distance erode_px
    r = scaled(10.0, size)
    near_contour = F.max_pool2d((~face).float(), 2 * r + 1, stride=1, padding=r) > 0
    assert not (out.keep & near_contour).any()
    # the nose disc (at least 0.25 x face size around the nose landmarks' mean)
    centre, radius = nose_geometry(px, 0.25)
    in_disc = (pixel_distance(centre, size) <= radius[:, None, None])[:, None]
    assert in_disc.any() and not (out.keep & in_disc).any()
    # every nose landmark pixel is inside the excluded disc
    nose_px = px[:, list(NOSE_LANDMARKS)].round().long()
    b = torch.arange(batch)[:, None].expand_as(nose_px[..., 0])
    assert not out.keep[b, 0, nose_px[..., 1], nose_px[..., 0]].any()


def test_smirk_keeps_contour_and_nose_pixels():
    size, batch = 96, 4
    image, face, ndc, px = synthetic_face(batch, size)
    out = mask_face(
        image,
        face,
        ndc,
        mode="smirk",
        keep_fraction=0.3,
        dropout_rate=0.0,
        generator=torch.Generator().manual_seed(2),
    )
    r = scaled(10.0, size)
    near_contour = F.max_pool2d((~face).float(), 2 * r + 1, stride=1, padding=r) > 0
    centre, radius = nose_geometry(px, 0.25)
    in_disc = (pixel_distance(centre, size) <= radius[:, None, None])[:, None]
    for i in range(batch):
        assert (out.keep[i] & near_contour[i]).sum() > 10
        assert (out.keep[i] & in_disc[i]).sum() > 10
    assert not (out.keep & ~face).any()


def test_too_few_allowed_pixels_keeps_all_of_them():
    size = 64
    image, face, ndc, _ = synthetic_face(2, size)
    out = mask_face(image, face, ndc, mode="paper", keep_fraction=1.0, dropout_rate=0.0)
    allowed = erode(face, scaled(10.0, size))
    assert out.keep.sum() < face.sum() and out.keep.sum() <= allowed.sum()
    out = mask_face(image, face, ndc, mode="smirk", keep_fraction=1.0, dropout_rate=0.0)
    assert torch.equal(out.keep, face)


# ---------------------------------------------------------------- region and values


def test_region_is_the_hull_union_the_face_mask():
    size = 64
    image, face, ndc, px = synthetic_face(3, size, seed=4)
    face[:, :, 55:, :] = True  # a neck below the hull: in the region through the face mask
    out = mask_face(image, face, ndc, dilate_px=0.0)
    for i in range(3):
        hull = torch.from_numpy(reference_hull(px[i].double().numpy(), size, size))
        assert torch.equal(out.region[i, 0], hull | face[i, 0])
    grown = mask_face(image, face, ndc, dilate_px=12.0).region
    assert (grown & ~out.region).any() and not (out.region & ~grown).any()


def test_masked_image_values():
    size, noise = 64, 0.05
    image, face, ndc, _ = synthetic_face(4, size, seed=5)
    out = mask_face(image, face, ndc, mode="smirk", keep_fraction=0.2, noise=noise)
    assert out.masked.shape == image.shape and out.masked.dtype == image.dtype
    assert out.keep.dtype == torch.bool and out.region.dtype == torch.bool
    assert out.keep.any() and not (out.keep & ~out.region).any()
    outside = ~out.region.expand_as(image)
    assert torch.equal(out.masked[outside], image[outside])
    blank = (out.region & ~out.keep).expand_as(image)
    assert (out.masked[blank] == 0).all()
    kept = out.keep.expand_as(image)
    ratio = out.masked[kept] / image[kept]
    assert (ratio >= 1 - noise - 1e-6).all() and (ratio <= 1 + noise + 1e-6).all()
    assert ratio.std() > 0.01  # the noise is there
    assert out.masked.min() >= 0 and out.masked.max() <= 1


def test_dropout_removes_smirks_fraction_at_any_resolution():
    # SMIRK: patch centres with probability 0.01, 11x11 patches: 1 - 0.99**121 ~ 0.70 removed.
    expected = 1 - 0.99**121
    for size in (64, 96):
        image, face, ndc, _ = synthetic_face(8, size, seed=6)
        kwargs = dict(mode="smirk", keep_fraction=0.5)
        full = mask_face(image, face, ndc, dropout_rate=0.0, **kwargs, generator=gen(7))
        dropped = mask_face(image, face, ndc, **kwargs, generator=gen(7))
        assert not (dropped.keep & ~full.keep).any()  # dropout only removes
        removed = 1 - dropped.keep.sum().item() / full.keep.sum().item()
        assert abs(removed - expected) < 0.06, (size, removed)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_deterministic_given_the_generator_and_float_masks():
    image, face, ndc, _ = synthetic_face(2, 64, seed=8)
    a = mask_face(image, face, ndc, generator=gen(3))
    b = mask_face(image, face.float(), ndc, generator=gen(3))
    c = mask_face(image, face, ndc, generator=gen(4))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.keep, c.keep)


def test_reference_size_none_uses_pixels_as_given():
    size = 64
    image, face, ndc, _ = synthetic_face(2, size, seed=9)
    kw = dict(mode="paper", keep_fraction=0.05, dropout_rate=0.0, nose_radius=0.0)
    out = mask_face(image, face, ndc, erode_px=6.0, reference_size=None, **kw, generator=gen(0))
    near = F.max_pool2d((~face).float(), 13, stride=1, padding=6) > 0
    assert out.keep.any() and not (out.keep & near).any()


# ---------------------------------------------------------------- building blocks


def test_ndc_to_pixels_matches_the_pixel_centre_convention():
    h, w = 6, 10
    rows, cols = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    ndc = torch.stack([(2 * cols + 1) / w - 1, (2 * rows + 1) / h - 1], dim=-1)
    px = ndc_to_pixels(ndc, h, w)
    torch.testing.assert_close(px, torch.stack([cols, rows], -1))


@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(3, 68),
    spread=st.sampled_from([3.0, 20.0, 40.0]),
    dilate=st.sampled_from([0.0, 2.0, 5.5]),
)
def test_hull_raster_matches_reference_and_dilation_contains_disc_dilation(seed, n, spread, dilate):
    size = 48
    rng = np.random.default_rng(seed)
    points = rng.uniform(-0.2, 1.2, size=(n, 2)) * spread + rng.uniform(0, size - spread, 2)
    got = convex_hull_mask(torch.from_numpy(points)[None].float(), size, size, dilate)[0].numpy()
    if dilate == 0.0:
        assert (
            got == reference_hull(points.astype(np.float32).astype(np.float64), size, size)
        ).all()
        return
    # distance of every pixel centre to the hull polygon (0 inside)
    base = reference_hull(points, size, size)
    yy, xx = np.mgrid[0:size, 0:size]
    q = np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float64)
    a = monotone_chain(points)  # the hull's edges: consecutive vertices
    ab = np.roll(a, -1, axis=0) - a
    t = np.clip(((q[:, None] - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0, 1)
    dist = np.linalg.norm(q[:, None] - (a + t[..., None] * ab), axis=-1).min(1).reshape(size, size)
    dist[base] = 0.0
    assert got[dist <= dilate - 1e-4].all()  # contains the Euclidean dilation
    lo, hi = points.min(0) - dilate - 1e-4, points.max(0) + dilate + 1e-4
    in_box = (xx >= lo[0]) & (xx <= hi[0]) & (yy >= lo[1]) & (yy <= hi[1])
    assert not (got & ~in_box).any()  # and stays within the grown bounding box


def test_hull_of_degenerate_sets_is_bounded():
    size = 20
    same = torch.full((1, 68, 2), 7.0)
    assert convex_hull_mask(same, size, size).sum() == 1
    assert convex_hull_mask(same, size, size, 1.0).sum() == 9
    t = torch.linspace(0, 1, 68)
    line = torch.stack([2 + 10 * t, 3 + 10 * t], -1)[None]  # pixel centres (2,3) .. (12,13)
    got = convex_hull_mask(line, size, size)[0]
    assert got.sum() == 11 and all(got[3 + i, 2 + i] for i in range(11))
    grown = convex_hull_mask(line, size, size, 2.0)[0]
    assert grown[:1].sum() == 0 and grown[:, 15:].sum() == 0  # bounded along the line


@given(
    shape=st.tuples(st.integers(1, 2), st.integers(1, 23), st.integers(1, 17)),
    radius=st.integers(0, 6),
    data=st.data(),
)
def test_box_any_and_erode_match_max_pool(shape, radius, data):
    # hypothesis draws the pixels themselves, so a failure shrinks to a minimal mask
    n = shape[0] * shape[1] * shape[2]
    bits = data.draw(st.lists(st.booleans(), min_size=n, max_size=n), label="pixels")
    mask = torch.tensor(bits, dtype=torch.bool).view(shape[0], 1, shape[1], shape[2])
    ref = F.max_pool2d(mask.float(), 2 * radius + 1, stride=1, padding=radius) > 0
    assert torch.equal(box_any(mask, radius), ref)
    ref_erode = ~(F.max_pool2d((~mask).float(), 2 * radius + 1, stride=1, padding=radius) > 0)
    assert torch.equal(erode(mask, radius), ref_erode | (mask & (radius == 0)))


# ---------------------------------------------------------------- bad input


def test_bad_inputs_raise_clear_errors():
    image, face, ndc, _ = synthetic_face(2, 64)
    with pytest.raises(ValueError, match=r"image must have shape \[B,3,H,W\]"):
        mask_face(image[:, :2], face, ndc)
    with pytest.raises(ValueError, match=r"face_mask must have shape \[B,1,64,64\]"):
        mask_face(image, face[..., :32], ndc)
    with pytest.raises(TypeError, match="face_mask must be bool or floating point"):
        mask_face(image, face.to(torch.uint8), ndc)
    with pytest.raises(ValueError, match=r"landmarks must have shape \[B,68,2\]"):
        mask_face(image, face, ndc[:, :5])
    with pytest.raises(ValueError, match="batch size"):
        mask_face(image, face[:1], ndc)
    bad = ndc.clone()
    bad[0, 3, 0] = float("nan")
    with pytest.raises(ValueError, match="landmarks contain NaN"):
        mask_face(image, face, bad)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        mask_face(image, face, ndc, generator=0)
    with pytest.raises(ValueError, match="mode must be one of 'paper', 'smirk'"):
        mask_face(image, face, ndc, mode="nose")
    for kwargs, match in [
        (dict(keep_fraction=1.5), "keep_fraction"),
        (dict(keep_fraction=-0.1), "keep_fraction"),
        (dict(noise=1.0), "noise"),
        (dict(dropout_rate=1.0), "dropout_rate"),
        (dict(dilate_px=-1), "dilate_px"),
        (dict(erode_px=float("nan")), "erode_px"),
        (dict(dilate_px=float("inf")), "dilate_px"),
        (dict(nose_radius=-0.1), "nose_radius"),
        (dict(dropout_patch=0), "dropout_patch"),
        (dict(dropout_patch=3.5), "dropout_patch"),
        (dict(reference_size=0), "reference_size"),
    ]:
        with pytest.raises(ValueError, match=match):
            mask_face(image, face, ndc, **kwargs)
