"""Neutral-shape error: rigid alignment, point-to-triangle and point-to-surface distances."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import flame
from train.eval.shape_error import (
    NeutralShapeError,
    face_clusters,
    point_surface_distance,
    point_triangle_distance,
    rigid_align,
)

coord = st.floats(-1.0, 1.0, allow_nan=False, width=64)
vec = st.tuples(coord, coord, coord).map(lambda t: torch.tensor(t, dtype=torch.float64))


def dense_triangle_distance(p, a, b, c, n: int = 150) -> float:
    """Minimum distance to a dense barycentric grid of the triangle (an upper bound)."""
    s = torch.linspace(0, 1, n + 1, dtype=torch.float64)
    u, v = torch.meshgrid(s, s, indexing="ij")
    keep = (u + v) <= 1
    u, v = u[keep], v[keep]
    pts = a + u[:, None] * (b - a) + v[:, None] * (c - a)
    return float((pts - p).norm(dim=-1).min())


@given(vec, vec, vec, vec)
def test_point_triangle_distance_matches_a_dense_sampling(p, a, b, c):
    exact = float(point_triangle_distance(p, a, b, c))
    sampled = dense_triangle_distance(p, a, b, c)
    longest = max(float((b - a).norm()), float((c - b).norm()), float((a - c).norm()))
    # the grid's points are at most one cell diagonal from any point of the triangle
    assert exact <= sampled + 1e-9
    assert exact >= sampled - 2 * longest / 150 - 1e-9


@given(vec, vec, vec, st.floats(0, 1), st.floats(0, 1))
def test_points_on_the_triangle_are_at_distance_zero(a, b, c, u, v):
    if u + v > 1:
        u, v = 1 - u, 1 - v
    p = a + u * (b - a) + v * (c - a)
    assert float(point_triangle_distance(p, a, b, c)) < 1e-9


def test_distance_above_the_interior_is_the_height_and_degenerate_triangles_work():
    a, b, c = (torch.tensor(x, dtype=torch.float64) for x in ([0, 0, 0], [1, 0, 0], [0, 1, 0]))
    assert float(point_triangle_distance(torch.tensor([0.2, 0.2, 0.7]).double(), a, b, c)) == (
        pytest.approx(0.7)
    )
    # beyond the vertex b: the distance to b itself
    p = torch.tensor([2.0, -1.0, 0.0]).double()
    assert float(point_triangle_distance(p, a, b, c)) == pytest.approx(math.sqrt(2))
    # a degenerate (zero-area) triangle is its longest edge
    p = torch.tensor([0.5, 1.0, 0.0]).double()
    assert float(point_triangle_distance(p, a, b, b * 0.5)) == pytest.approx(1.0)


def random_rotation(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.det(q) > 0 else -q


@given(st.integers(0, 10_000))
def test_rigid_align_recovers_a_rigid_motion(seed):
    g = torch.Generator().manual_seed(seed)
    src = torch.randn(2, 12, 3, generator=g, dtype=torch.float64)
    rot = torch.stack([random_rotation(seed), random_rotation(seed + 1)])
    t = torch.randn(2, 3, generator=g, dtype=torch.float64)
    dst = src @ rot.transpose(1, 2) + t[:, None]
    got_r, got_t = rigid_align(src, dst)
    torch.testing.assert_close(got_r, rot, atol=1e-9, rtol=0)
    torch.testing.assert_close(got_t, t, atol=1e-9, rtol=0)


def test_rigid_align_never_returns_a_reflection():
    g = torch.Generator().manual_seed(0)
    src = torch.randn(1, 20, 3, generator=g, dtype=torch.float64)
    mirrored = src * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    rot, _ = rigid_align(src, mirrored)
    assert float(torch.det(rot[0])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"\[B,N,3\]"):
        rigid_align(src, src[:, :5])


@pytest.fixture(scope="module")
def head():
    return flame.FLAME("bundled", n_shape=10, n_expr=0)


@pytest.mark.parametrize("given_upper,grouping", [(False, "kd"), (True, "kd"), (True, "random")])
def test_point_surface_distance_equals_the_distance_to_all_triangles(head, given_upper, grouping):
    """The pruning finds the same closest triangle as a search of every triangle, with
    the default groups of nearby triangles and with groups of scattered ones (the
    grouping may change the speed only)."""
    g = torch.Generator().manual_seed(3)
    a = head(shape=torch.randn(1, 10, generator=g) * 1.5).vertices.double()
    b = head(shape=torch.randn(1, 10, generator=g) * 1.5).vertices.double()
    faces = head.faces.long()
    pts = a[:, ::5]  # 1046 points all over the head, off the surface of b
    upper = (pts - b[:, ::5]).norm(dim=-1) if given_upper else None
    clusters = None
    if grouping == "random":
        order = torch.randperm(len(faces), generator=g)
        pad = (-len(order)) % 37
        clusters = torch.cat([order, torch.full((pad,), -1)]).reshape(-1, 37)
    fast = point_surface_distance(pts, b, faces, upper, clusters)
    tri = b[0, faces]  # [F,3,3]
    full = torch.cat(
        [
            point_triangle_distance(
                chunk[:, None], tri[None, :, 0], tri[None, :, 1], tri[None, :, 2]
            )
            .min(-1)
            .values
            for chunk in pts[0].split(128)
        ]
    )
    torch.testing.assert_close(fast[0], full, atol=1e-12, rtol=0)
    assert float(full.max()) > 1e-3  # the shapes differ: not a trivial zero


def test_neutral_shape_error_is_zero_for_the_truth_and_grows_with_the_difference(head):
    measure = NeutralShapeError(head)
    g = torch.Generator().manual_seed(1)
    truth = torch.randn(3, 10, generator=g)
    assert float(measure(truth, truth).max()) < 1e-9
    near = measure(truth + 0.1, truth)
    far = measure(truth + 1.0, truth)
    assert bool((near > 0).all()) and bool((far > near).all())
    # trailing coefficients may be left out: they are zero
    torch.testing.assert_close(
        measure(truth[:, :4], truth),
        measure(torch.cat([truth[:, :4], torch.zeros(3, 6)], 1), truth),
    )
    # millimetres: a one-std shape change is millimetres off, not metres or microns
    assert 0.01 < float(far.mean()) < 100
    with pytest.raises(ValueError, match="predicted shapes"):
        measure(truth[:2], truth)


def test_neutral_shape_error_matches_a_full_search_after_alignment(head):
    """The per-image number: align on landmarks, then every face-region vertex to the
    whole true mesh (no search region), averaged, in mm."""
    measure = NeutralShapeError(head)
    g = torch.Generator().manual_seed(5)
    pred, true = torch.randn(2, 10, generator=g), torch.randn(2, 10, generator=g) * 0.8
    p, t = head(shape=pred), head(shape=true)
    rot, trans = rigid_align(p.landmarks.double(), t.landmarks.double())
    aligned = (p.vertices.double() @ rot.transpose(1, 2) + trans[:, None])[:, measure.face]
    want = []
    for i in range(2):
        tri = t.vertices.double()[i, head.faces.long()]
        d = torch.cat(
            [
                point_triangle_distance(
                    c[:, None], tri[None, :, 0], tri[None, :, 1], tri[None, :, 2]
                )
                .min(-1)
                .values
                for c in aligned[i].split(128)
            ]
        )
        want.append(float(d.mean()) * 1000)
    torch.testing.assert_close(
        measure(pred, true).double(), torch.tensor(want).double(), atol=1e-5, rtol=0
    )


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 300), st.integers(1, 40), st.integers(0, 2**31 - 1))
def test_face_clusters_hold_every_triangle_once(n, leaf, seed):
    centroids = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
    groups = face_clusters(centroids, leaf)
    assert groups.shape[1] == leaf
    members = groups[groups >= 0]
    assert sorted(members.tolist()) == list(range(n))
    assert bool(((groups >= 0).sum(1) >= 1).all())  # no empty group
