"""Every bad input gets the documented behaviour and a message that says what was expected."""

from __future__ import annotations

import pytest
import torch

import ppcam
from tests.ppcam.strategies import camera_case

BACKENDS = ["torch", "triton"]


def _ok(dtype=torch.float32):
    return list(camera_case(2, 6, seed=0, dtype=dtype))


@pytest.mark.parametrize(
    "index,bad,message",
    [
        (0, torch.zeros(2, 6), r"points must have shape \[B,N,3\]"),
        (0, torch.zeros(2, 6, 2), r"points must have shape \[B,N,3\]"),
        (1, torch.ones(3), r"batch size"),
        (1, torch.ones(2, 2), r"scale must have shape \[B\]"),
        (2, torch.zeros(2, 3), r"trans must have shape \[B,2\]"),
        (3, torch.ones(2, 1, 1), r"rho must have shape \[B\]"),
        (4, torch.eye(3), r"rotation must have shape \[B,3,3\]"),
        (4, torch.eye(3).expand(5, 3, 3), r"batch size"),
    ],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_wrong_shapes(index, bad, message, backend):
    args = _ok()
    args[index] = bad
    with pytest.raises(ValueError, match=message):
        ppcam.project(*args, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_integer_dtype(backend):
    args = _ok()
    args[0] = torch.zeros(2, 6, 3, dtype=torch.int64)
    with pytest.raises(TypeError, match="points must be a floating-point tensor"):
        ppcam.project(*args, backend=backend)


def test_mixed_dtypes():
    args = _ok()
    args[3] = args[3].double()
    with pytest.raises(TypeError, match="same dtype"):
        ppcam.project(*args)


def test_mixed_devices():
    args = _ok()
    args[1] = args[1].to("meta")
    with pytest.raises(ValueError, match="same device"):
        ppcam.project(*args)


def test_not_a_tensor():
    args = _ok()
    args[2] = [[0.0, 0.0], [0.0, 0.0]]
    with pytest.raises(TypeError, match="trans must be a torch.Tensor"):
        ppcam.project(*args)


def test_unknown_backend_and_bad_min_w():
    with pytest.raises(ValueError, match="backend must be one of"):
        ppcam.project(*_ok(), backend="cuda")
    with pytest.raises(ValueError, match="min_w must be a positive finite float"):
        ppcam.project(*_ok(), min_w=0.0)
    with pytest.raises(TypeError, match="min_w must be a positive float"):
        ppcam.project(*_ok(), min_w="small")


def test_numbers_and_column_vectors_are_accepted_for_per_batch_scalars():
    points, scale, trans, rho, rotation = _ok()
    a = ppcam.project(points, scale[:, None], trans, rho[:, None], rotation)
    b = ppcam.project(points, scale, trans, rho, rotation)
    assert torch.equal(a, b)
    c = ppcam.project(points, 7.0, trans, 2.0)
    d = ppcam.project(points, torch.full((2,), 7.0), trans, torch.full((2,), 2.0))
    assert torch.equal(c, d)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_input_raises_in_strict_mode_and_propagates_otherwise(backend):
    args = _ok()
    args[0] = args[0].clone()
    args[0][1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match="points contains NaN or inf"):
        ppcam.project(*args, backend=backend, strict=True)
    uv = ppcam.project(*args, backend=backend)
    assert torch.isnan(uv[1, 2, 0]) and bool(torch.isfinite(uv[0]).all())
    args = _ok()
    args[3] = args[3].clone()
    args[3][0] = float("inf")
    with pytest.raises(ValueError, match="rho contains NaN or inf"):
        ppcam.project(*args, backend=backend, strict=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_points_behind_the_camera_plane_are_clamped_and_flagged(backend):
    points = torch.tensor([[[0.1, 0.05, -0.3], [0.1, 0.05, -0.25], [0.1, 0.05, 0.1]]])
    scale, trans, rho = torch.tensor([7.0]), torch.zeros(1, 2), torch.tensor([4.0])
    # w = 1 + 4 p_z: -0.2 (behind), 0.0 (on the camera plane), 1.4 (fine)
    uv, valid = ppcam.project(points, scale, trans, rho, backend=backend, return_valid=True)
    assert valid.tolist() == [[False, False, True]]
    assert bool(torch.isfinite(uv).all())
    min_w = ppcam.DEFAULT_MIN_W
    torch.testing.assert_close(uv[0, 0], 7.0 * points[0, 0, :2] / min_w)
    with pytest.raises(ValueError, match=r"2 point\(s\) have w = 1 \+ rho \* p_z <= min_w"):
        ppcam.project(points, scale, trans, rho, backend=backend, strict=True)


def test_extreme_rho_stays_finite():
    points = torch.randn(1, 100, 3) * 0.1
    for rho in (1e6, -1e6, 0.0, 1e-30):
        uv = ppcam.project(points, 7.0, torch.zeros(1, 2), rho, backend="torch")
        assert bool(torch.isfinite(uv).all())


def test_triton_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        ppcam.project(*_ok(), backend="triton")


def test_auto_uses_torch_on_cpu():
    from _common.backend import resolve_backend

    assert resolve_backend("auto", torch.device("cpu")) == "torch"
