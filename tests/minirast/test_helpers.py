"""Back-face culling convention, shading, images, primitives."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

import minirast
from tests.minirast.scenes import (
    RECIPROCAL_SLIVER_NDC,
    RECIPROCAL_SLIVER_W,
    clip_from_ndc,
    perspective_clip,
)


def test_cull_backfaces_keeps_a_triangle_facing_the_camera():
    """In the OpenCV camera frame (x right, y down, z forward) a triangle whose
    right-hand normal (v1 - v0) x (v2 - v0) points at the camera (n_z < 0) is kept."""
    verts = torch.tensor([[-0.5, -0.5, 0.0], [-0.5, 0.5, 0.0], [0.5, -0.5, 0.0]])
    faces = torch.tensor([[0, 1, 2]])
    normal = torch.linalg.cross(verts[1] - verts[0], verts[2] - verts[0])
    assert float(normal[2]) < 0  # towards the camera
    pos = perspective_clip(verts, scale=1.0, rho=0.5)
    kept = minirast.rasterize(pos, faces, (16, 16), cull_backfaces=True)
    assert int(kept.mask.sum()) > 20
    flipped = minirast.rasterize(pos, faces[:, [0, 2, 1]], (16, 16), cull_backfaces=True)
    assert not bool(flipped.mask.any())
    both = minirast.rasterize(pos, faces[:, [0, 2, 1]], (16, 16))
    assert torch.equal(both.mask, kept.mask)


def test_culling_a_closed_mesh_changes_nothing_visible():
    """A sphere with outward (counter-clockwise) faces, flipped from a y-up/z-towards-viewer
    model frame to the camera frame by (x, y, z) -> (x, -y, -z): culling removes only
    hidden faces, and every visible face points at the camera."""
    verts, faces = minirast.uv_sphere(12, 16)
    cam = verts * torch.tensor([1.0, -1.0, -1.0]) * 0.5
    pos = perspective_clip(cam, scale=1.5, rho=1.0)
    plain = minirast.rasterize(pos, faces, (32, 32))
    culled = minirast.rasterize(pos, faces, (32, 32), cull_backfaces=True)
    assert torch.equal(plain.tri_id, culled.tri_id)
    visible = culled.tri_id[culled.mask].long().unique()
    v = cam[faces[visible]]
    n = torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    assert bool((n[:, 2] < 0).all())


def test_batched_and_broadcast_positions_agree():
    verts, faces = minirast.icosphere(2)
    pos = perspective_clip(verts * 0.6)
    single = minirast.rasterize(pos, faces, (20, 30))
    batch = minirast.rasterize(torch.stack([pos, pos * 1.0]), faces, (20, 30))
    assert batch.tri_id.shape == (2, 20, 30) and batch.bary.shape == (2, 20, 30, 3)
    assert torch.equal(batch.tri_id[0], single.tri_id[0])
    assert torch.equal(batch.tri_id[1], single.tri_id[0])
    attr = torch.rand(len(verts), 5)
    shared = minirast.interpolate(attr, batch, faces)
    per_image = minirast.interpolate(attr.expand(2, -1, -1), batch, faces)
    torch.testing.assert_close(shared, per_image)


def test_rasterize_is_deterministic():
    verts, faces = minirast.icosphere(2)
    pos = perspective_clip(verts * 0.6)
    a = minirast.rasterize(pos, faces, (33, 47))
    b = minirast.rasterize(pos, faces, (33, 47))
    assert torch.equal(a.tri_id, b.tri_id) and torch.equal(a.bary, b.bary)


def test_lambert_and_sh_shading():
    n = torch.nn.functional.normalize(torch.randn(2, 4, 5, 3), dim=-1)
    lam = minirast.shade_lambert(n, torch.tensor([1.0, 0.5, 0.25]), (0.0, 0.0, -1.0))
    assert lam.shape == (2, 4, 5, 3)
    cos = (-n[..., 2]).clamp_min(0)
    torch.testing.assert_close(lam[..., 0], 0.3 + 0.7 * cos)
    torch.testing.assert_close(lam[..., 1], 0.5 * (0.3 + 0.7 * cos))
    # Uniform SH light (band 0 only) is the same for every normal.
    coeffs = torch.zeros(9, 3)
    coeffs[0] = 1.0
    sh = minirast.shade_sh(n, coeffs)
    torch.testing.assert_close(sh, torch.full_like(sh, 1 / math.sqrt(4 * math.pi)))
    # A linear-band light is brighter on the side it comes from.
    coeffs = torch.zeros(2, 9, 1)
    coeffs[:, 0] = 1.0
    coeffs[:, 2] = 0.5  # + z
    up = minirast.shade_sh(torch.tensor([[[0.0, 0.0, 1.0]], [[0.0, 0.0, -1.0]]]), coeffs)
    assert float(up[0, 0, 0]) > float(up[1, 0, 0])
    basis = minirast.sh_basis(n)
    assert basis.shape == (2, 4, 5, 9)


def test_images(tmp_path):
    img = torch.linspace(0, 1, 12).reshape(2, 2, 3)
    arr = minirast.to_uint8_image(img)
    assert arr.dtype == np.uint8 and arr.shape == (2, 2, 3)
    assert arr.min() == 0 and arr.max() == 255
    assert minirast.to_uint8_image(torch.full((3, 4), 2.0)).tolist() == [[255] * 4] * 3
    assert minirast.to_uint8_image(torch.zeros(1, 3, 4, 1)).shape == (3, 4)
    path = tmp_path / "x.png"
    minirast.save_image(img, path)
    assert np.array_equal(np.asarray(Image.open(path)), arr)
    with pytest.raises(ValueError, match="batch size 2"):
        minirast.to_uint8_image(torch.zeros(2, 3, 4, 3))
    with pytest.raises(ValueError, match="NaN or inf"):
        minirast.to_uint8_image(torch.full((2, 2), float("nan")))
    with pytest.raises(TypeError, match="floating-point"):
        minirast.to_uint8_image(torch.zeros(2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="C in 1, 3, 4"):
        minirast.to_uint8_image(torch.zeros(2, 2, 2))


def test_primitives():
    v, f = minirast.uv_sphere()
    assert v.shape == (4970, 3) and f.shape == (9936, 3)
    for verts, faces in (minirast.uv_sphere(5, 7), minirast.icosphere(2)):
        torch.testing.assert_close(verts.norm(dim=1), torch.ones(len(verts)))
        tri = verts[faces]
        n = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        assert bool(((n * tri.mean(1)).sum(1) > 0).all())  # counter-clockwise from outside
        # Closed: every edge is shared by exactly two faces, in opposite directions.
        e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        assert len({tuple(x) for x in e.tolist()}) == len(e)
        assert {tuple(x) for x in e.flip(1).tolist()} == {tuple(x) for x in e.tolist()}
    assert minirast.icosphere(3)[1].shape == (1280, 3)


def test_an_edge_shared_only_with_a_dropped_degenerate_face_is_a_silhouette():
    """Antialiasing reads silhouettes from the faces' area signs; a face the rasterizer
    drops (here ``scenes.RECIPROCAL_SLIVER``, whose area residue has the drawn
    neighbour's sign) must count as absent, so the drawn face's shared edge is an
    outline that gets antialiased."""
    from minirast._constants import EPS_W
    from minirast._cpu.antialias import _edge_topology, _silhouette_edges

    ndc = torch.cat([RECIPROCAL_SLIVER_NDC, torch.tensor([[-0.5, -0.5]], dtype=torch.float64)])
    pos = clip_from_ndc(ndc, torch.cat([RECIPROCAL_SLIVER_W, torch.ones(1, dtype=torch.float64)]))
    faces = torch.tensor([[0, 1, 2], [1, 0, 3]])  # degenerate, then drawn (shares 0-1)
    assert not bool(minirast.rasterize(pos, faces[:1], (24, 28)).mask.any())
    X, Y = pos[..., 0] * (1.0 / pos[..., 3]), pos[..., 1] * (1.0 / pos[..., 3])
    sil = _silhouette_edges(X, Y, pos[..., 3] > EPS_W, faces, _edge_topology(faces))
    assert bool(sil[0, 3])  # the drawn face's edge 1 -> 0
