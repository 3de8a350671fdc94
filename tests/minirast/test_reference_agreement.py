"""The torch backend (``minirast/_cpu/``) against the independent float64 reference
rasterizer (:mod:`minirast.reference`), on random scenes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minirast
from minirast import reference
from minirast._constants import DEGENERATE_AREA
from minirast.reference import reference_rasterize
from tests.minirast.scenes import random_scene

seeds = st.integers(min_value=0, max_value=2**31 - 1)


def test_the_reference_restates_the_package_constants():
    """The reference reads no code of the package, so its drop thresholds are restated."""
    assert reference.EPS_W == minirast.EPS_W
    assert reference.DEGENERATE_AREA == DEGENERATE_AREA


def assert_agrees(frag, ref, bary_tol=1e-5):
    tri_ref, bary_ref, depth_ref, ambiguous = (t.numpy() for t in ref)
    ok = ~ambiguous
    tri = frag.tri_id.numpy()
    mismatch = (tri != tri_ref) & ok
    assert not mismatch.any(), f"{int(mismatch.sum())} pixels disagree on the visible triangle"
    covered = (tri_ref >= 0) & ok
    np.testing.assert_allclose(
        frag.bary.detach().numpy()[covered], bary_ref[covered], atol=bary_tol
    )
    np.testing.assert_allclose(
        frag.depth.detach().numpy()[covered], depth_ref[covered], atol=1e-5, rtol=1e-5
    )
    assert (frag.bary.detach().numpy()[tri < 0] == 0).all()
    assert (frag.depth.detach().numpy()[tri < 0] == minirast.BACKGROUND_DEPTH).all()


@given(
    seed=seeds,
    batch=st.integers(1, 2),
    num_faces=st.integers(1, 24),
    shared=st.booleans(),
    size=st.sampled_from([(17, 23), (32, 32), (40, 9)]),
    cull=st.sampled_from([False, True]),
)
def test_torch_backend_matches_reference(seed, batch, num_faces, shared, size, cull):
    pos, faces = random_scene(seed, batch, num_faces, shared)
    frag = minirast.rasterize(pos, faces, size, backend="torch", cull_backfaces=cull)
    ref = reference_rasterize(pos, faces, *size, cull=-1 if cull else 0)
    assert frag.tri_id.dtype == torch.int32
    assert frag.bary.dtype == torch.float32 and frag.depth.dtype == torch.float32
    assert_agrees(frag, ref)


@pytest.mark.parametrize("size", [(48, 80), (33, 65)])
def test_large_triangles_across_many_tiles(size):
    """Triangles spanning several 16x16 tiles, image sizes that are not multiples of 16."""
    pos, faces = random_scene(7, 2, 12, shared=True)
    frag = minirast.rasterize(pos, faces, size, backend="torch")
    assert_agrees(frag, reference_rasterize(pos, faces, *size))


def test_small_chunk_budget_gives_the_same_image(monkeypatch):
    """Chunking the pixel windows never changes the result."""
    from minirast._cpu import rasterize as _raster_cpu

    pos, faces = random_scene(3, 2, 30, shared=False)
    full = minirast.rasterize(pos, faces, (40, 56), backend="torch")
    monkeypatch.setattr(_raster_cpu, "CANDIDATE_CHUNK", 50)
    monkeypatch.setattr(_raster_cpu, "ROW_CHUNK", 7)
    calls = []
    pixel_keys = _raster_cpu._pixel_keys
    monkeypatch.setattr(
        _raster_cpu,
        "_pixel_keys",
        lambda *a, compiled: calls.append(a[0].numel()) or pixel_keys(*a, compiled=compiled),
    )
    small = minirast.rasterize(pos, faces, (40, 56), backend="torch")
    assert len(calls) > 10 and max(calls) <= 56  # chunked: at most one row over the budget
    assert torch.equal(full.tri_id, small.tri_id)
    assert torch.equal(full.bary, small.bary)
    assert torch.equal(full.depth, small.depth)
