"""The stand-in head's UV layout: a valid, unflipped, non-overlapping unwrap in which
the face is upright, large and evenly sampled."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import flame
from flame import uv


@pytest.fixture(scope="module")
def model():
    return flame.load_model("bundled")


@pytest.fixture(scope="module")
def layer(model):
    return flame.FLAME(model)


def face_region(model):
    return uv.faces_in_region(model.faces, model.masks["face"], model.n_vertices)


def islands(model) -> np.ndarray:
    """Island label [T] of each UV vertex (connected through UV triangles), the
    largest island 0."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    f = model.uv_faces
    i, j = f.ravel(), np.roll(f, 1, axis=1).ravel()
    n = len(model.uvs)
    _, label = connected_components(sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)))
    order = np.argsort(-np.bincount(label), kind="stable")
    return np.argsort(order)[label]


def cross2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def test_layer_exposes_the_layout(model, layer):
    assert layer.has_uvs and model.has_uvs
    assert layer.uvs.dtype == torch.float32 and layer.uv_faces.dtype == torch.int64
    assert layer.uvs.ndim == 2 and layer.uvs.shape[1] == 2
    assert layer.uv_faces.shape == layer.faces.shape
    assert {"uvs", "uv_faces"} <= set(dict(layer.named_buffers()))
    assert layer.double().uvs.dtype == torch.float64
    uvs = layer.uvs.double().numpy()
    assert uvs.min() >= 0.0 and uvs.max() <= 1.0
    assert int(layer.uv_faces.min()) == 0 and int(layer.uv_faces.max()) == len(uvs) - 1


def test_every_uv_vertex_belongs_to_one_mesh_vertex_and_seams_split(model):
    """Corner for corner, a UV vertex always stands for the same mesh vertex; the seam
    down the back gives its vertices two UVs, one at each side of the texture."""
    owner = np.full(len(model.uvs), -1)
    owner[model.uv_faces.ravel()] = model.faces.ravel()
    assert (owner >= 0).all()
    np.testing.assert_array_equal(owner[model.uv_faces], model.faces)
    copies = np.bincount(owner, minlength=model.n_vertices)
    assert copies.min() == 1 and len(model.uvs) > model.n_vertices
    back = np.nonzero((copies == 2) & (model.v_template[:, 2] < -0.05))[0]
    assert len(back) > 30  # the seam's column of vertices, crown to neck
    for vid in back[:10]:
        us = np.sort(model.uvs[owner == vid, 0])
        assert us[0] < 0.05 and us[1] > 0.95


def test_no_flipped_or_degenerate_triangle_and_no_overlap(model):
    """Every UV triangle winds the same way (counter-clockwise on the displayed image,
    as the mesh seen from outside), none is degenerate, and no texel is claimed by two
    triangles (texel centres of a 256 x 256 texture, strictly inside)."""
    area = uv.signed_uv_areas(model.uvs, model.uv_faces)
    assert (area < 0).all()
    assert -area.max() > 1e-7  # about 0.5 texel of a 1024 x 1024 texture
    size = 256
    hits = np.zeros((size, size), dtype=np.int32)
    tri = model.uvs.astype(np.float64)[model.uv_faces] * size - 0.5  # texel-centre units
    for t in tri:
        lo = np.floor(t.min(0)).astype(int).clip(0, size - 1)
        hi = np.ceil(t.max(0)).astype(int).clip(0, size - 1)
        jj, ii = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1))
        p = np.stack([jj.ravel(), ii.ravel()], 1).astype(np.float64)
        e = [cross2(t[(k + 1) % 3] - t[k], p - t[k]) for k in range(3)]
        inside = (e[0] < -1e-9) & (e[1] < -1e-9) & (e[2] < -1e-9)
        hits[ii.ravel()[inside], jj.ravel()[inside]] += 1
    assert hits.max() == 1
    assert (hits > 0).mean() > 0.7  # the islands fill most of the texture


def test_face_is_upright_unmirrored_and_central(model):
    """Two islands: the head and the folded-in mouth. On the head's, the face shows as
    in a photograph: the subject's right on the image's left, forehead above chin,
    in the middle of the texture."""
    label = islands(model)
    assert label.max() == 1
    mouth = np.unique(model.faces[(label[model.uv_faces] == 1).all(1)])
    assert np.isin(model.masks["mouth_interior"], mouth).all()
    owner = np.full(len(model.uvs), -1)
    owner[model.uv_faces.ravel()] = model.faces.ravel()
    front = np.isin(owner, model.masks["face"]) & (model.v_template[owner, 2] > 0.06)
    front &= label == 0
    x, y = model.v_template[owner[front], 0], model.v_template[owner[front], 1]
    u, v = model.uvs[front, 0], model.uvs[front, 1]
    assert np.corrcoef(x, u)[0, 1] > 0.95 and np.corrcoef(y, v)[0, 1] < -0.9
    assert 0.4 < u.mean() < 0.6


def test_face_area_distortion_is_bounded(model):
    """Over the face, each triangle's share of the texture stays close to its share of
    the surface, and the face takes a good part of the texture."""
    region = face_region(model)
    ratios = uv.area_distortion(model.v_template, model.faces, model.uvs, model.uv_faces, region)
    s = uv.distortion_summary(ratios)
    assert 0.9 < s["median"] < 1.15
    assert s["p5"] > 0.6 and s["p95"] < 1.6
    face_share = np.abs(uv.signed_uv_areas(model.uvs, model.uv_faces))[region].sum()
    surface_share = (
        uv.mesh_areas(model.v_template, model.faces)[region].sum()
        / uv.mesh_areas(model.v_template, model.faces).sum()
    )
    assert face_share > 0.38 and face_share > 1.3 * surface_share


def test_figure_draws_the_layout(tmp_path, model, tiny_model):
    from flame.uv_figure import CAPTION, draw_layout, main

    img = np.asarray(draw_layout(model, 400))
    assert img.shape == (400 + CAPTION, 400, 3)
    square = img[:400].reshape(-1, 3).astype(int)
    assert ((square[:, 0] > 200) & (square[:, 2] < 150)).any()  # red: denser than the mean
    assert ((square[:, 2] > 200) & (square[:, 0] < 150)).any()  # blue: sparser
    with pytest.raises(ValueError, match="no UV layout"):
        draw_layout(tiny_model)
    out = tmp_path / "layout.png"
    assert main(["-o", str(out), "--size", "96"]) == 0
    assert out.stat().st_size > 0
