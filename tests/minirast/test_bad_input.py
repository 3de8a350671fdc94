"""Malformed input gets a clear error (or a documented result), never a crash or a
silently wrong image."""

from __future__ import annotations

import pytest
import torch

import minirast
from minirast import _constants

TRI = torch.tensor([[-0.5, -0.5, 0.0, 1.0], [0.5, -0.5, 0.0, 1.0], [0.0, 0.5, 0.0, 1.0]])
FACES = torch.tensor([[0, 1, 2]])


@pytest.mark.parametrize(
    ("faces", "error", "match"),
    [
        (torch.tensor([[0, 1, 3]]), ValueError, "out of range for 3 vertices"),
        (torch.tensor([[0, -1, 2]]), ValueError, "negative vertex index"),
        (torch.tensor([0, 1, 2]), ValueError, r"faces must have shape \[F,3\]"),
        (torch.tensor([[0, 1, 2, 0]]), ValueError, r"faces must have shape \[F,3\]"),
        (torch.tensor([[0.0, 1.0, 2.0]]), TypeError, "integer tensor"),
        (torch.tensor([[0, 1, 2]], dtype=torch.int16), TypeError, "int32 or int64"),
        (torch.tensor([[True, False, True]]), TypeError, "integer tensor"),
        ([[0, 1, 2]], TypeError, "must be a torch.Tensor"),
    ],
)
def test_bad_faces(faces, error, match):
    with pytest.raises(error, match=match):
        minirast.rasterize(TRI, faces, (8, 8))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_positions(bad):
    pos = TRI.clone()
    pos[1, 0] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        minirast.rasterize(pos, FACES, (8, 8))


@pytest.mark.parametrize(
    ("pos", "error", "match"),
    [
        (TRI[:, :3], ValueError, r"pos_clip must have shape \[B,V,4\] or \[V,4\]"),
        (TRI[None, None], ValueError, r"pos_clip must have shape \[B,V,4\] or \[V,4\]"),
        (TRI.long(), TypeError, "floating-point"),
        (TRI.numpy(), TypeError, "must be a torch.Tensor"),
    ],
)
def test_bad_positions(pos, error, match):
    with pytest.raises(error, match=match):
        minirast.rasterize(pos, FACES, (8, 8))


@pytest.mark.parametrize(
    ("resolution", "error", "match"),
    [
        ((0, 8), ValueError, "at least 1x1"),
        ((8, -1), ValueError, "at least 1x1"),
        ((8,), TypeError, "pair of ints"),
        ((8.0, 8.0), TypeError, "pair of ints"),
        (8, TypeError, "pair of ints"),
        ((True, 8), TypeError, "pair of ints"),
        ((100000, 8), ValueError, "largest supported side"),
    ],
)
def test_bad_resolution(resolution, error, match):
    with pytest.raises(error, match=match):
        minirast.rasterize(TRI, FACES, resolution)


def test_over_budget_is_refused_before_allocating():
    pos = TRI.expand(64, -1, -1)
    side = _constants.MAX_RESOLUTION
    with pytest.raises(ValueError, match="exceeds the budget"):
        minirast.rasterize(pos, FACES, (side, side))


def test_mixed_devices_are_refused():
    meta_faces = FACES.to("meta")
    with pytest.raises(ValueError, match="same device"):
        minirast.rasterize(TRI, meta_faces, (8, 8))


def test_unknown_backend_and_bad_flag():
    with pytest.raises(ValueError, match="backend must be one of"):
        minirast.rasterize(TRI, FACES, (8, 8), backend="cuda")
    with pytest.raises(TypeError, match="cull_backfaces must be a bool"):
        minirast.rasterize(TRI, FACES, (8, 8), cull_backfaces=1)


@pytest.mark.parametrize("num_vertices", [0, 3])
def test_empty_mesh_renders_all_background(num_vertices):
    pos = TRI[:num_vertices].clone().requires_grad_(True)
    faces = torch.zeros(0, 3, dtype=torch.int32)
    frag = minirast.rasterize(pos, faces, (5, 7))
    assert frag.tri_id.shape == (1, 5, 7) and bool((frag.tri_id == -1).all())
    assert bool((frag.bary == 0).all()) and bool((frag.depth == minirast.BACKGROUND_DEPTH).all())
    img = minirast.interpolate(torch.ones(num_vertices, 3), frag, faces)
    assert img.shape == (1, 5, 7, 3) and bool((img == 0).all())
    out = minirast.antialias(img, frag, pos, faces)
    (out.sum() + frag.bary.sum()).backward()
    assert bool((pos.grad == 0).all())


def test_triangles_behind_the_camera_are_dropped():
    pos = TRI.clone()
    pos[2, 3] = minirast.EPS_W  # w <= EPS_W: dropped
    assert not bool(minirast.rasterize(pos, FACES, (8, 8)).mask.any())
    pos[2, 3] = -1.0
    assert not bool(minirast.rasterize(pos, FACES, (8, 8)).mask.any())
    pos[2, 3] = 2 * minirast.EPS_W  # allowed (projects far away, still drawn where it lands)
    frag = minirast.rasterize(pos, FACES, (8, 8))
    assert bool(torch.isfinite(frag.bary).all()) and bool(torch.isfinite(frag.depth).all())


def test_degenerate_triangles_are_dropped():
    pos = torch.tensor([[-0.5, -0.5, 0, 1], [0.5, 0.5, 0, 1], [0.0, 0.0, 0, 1]])
    assert not bool(minirast.rasterize(pos, FACES, (8, 8)).mask.any())
    assert not bool(minirast.rasterize(TRI, torch.tensor([[0, 0, 1]]), (8, 8)).mask.any())


def test_triton_backend_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="backend='torch'"):
        minirast.rasterize(TRI, FACES, (8, 8), backend="triton")


def test_auto_on_cpu_picks_torch():
    assert minirast.rasterize(TRI, FACES, (8, 8)).backend == "torch"


def test_interpolate_and_antialias_check_their_inputs():
    frag = minirast.rasterize(TRI, FACES, (8, 8))
    with pytest.raises(ValueError, match="vertex index 2, out of range for attr's 2 vertices"):
        minirast.interpolate(torch.ones(2, 3), frag, FACES)
    with pytest.raises(ValueError, match="batch size 3"):
        minirast.interpolate(torch.ones(3, 3, 2), frag, FACES)
    with pytest.raises(ValueError, match="rasterized with"):
        minirast.interpolate(torch.ones(3, 2), frag, torch.tensor([[0, 1, 2], [0, 2, 1]]))
    with pytest.raises(TypeError, match="Fragments"):
        minirast.interpolate(torch.ones(3, 2), frag.tri_id, FACES)
    img = torch.zeros(1, 8, 8, 3)
    with pytest.raises(ValueError, match=r"color must have shape \[1,8,8,C\]"):
        minirast.antialias(torch.zeros(1, 8, 9, 3), frag, TRI, FACES)
    with pytest.raises(ValueError, match="pos_clip has shape"):
        minirast.antialias(img, frag, TRI[:2], torch.tensor([[0, 1, 1]]))


def test_triton_backend_without_its_kernels_is_a_clear_error(monkeypatch):
    import sys

    from _common.backend import triton_available

    if not triton_available():
        pytest.skip("triton is not installed")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setitem(sys.modules, "minirast._triton.rasterize", None)  # import fails
    with pytest.raises(RuntimeError, match="could not be imported.*use backend='torch'"):
        minirast.rasterize(TRI, FACES, (8, 8), backend="triton")
