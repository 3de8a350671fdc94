"""Bad input to :func:`minirast.texture` and :func:`minirast.texture_mipmaps` raises an
error that names the problem (``minirast/_validate.py``, ``texture_inputs``)."""

from __future__ import annotations

import pytest
import torch

import minirast

TEX = torch.rand(2, 4, 8, 3)
UV = torch.rand(2, 3, 5, 2)
DA = torch.rand(2, 3, 5, 4) * 0.1


def _nan(t, idx):
    t = t.clone()
    t[idx] = float("nan")
    return t


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"tex": TEX[0]}, ValueError, r"tex must have shape \[B,Ht,Wt,C\]"),
        ({"tex": TEX.long()}, TypeError, "tex must be a floating-point"),
        ({"tex": torch.rand(1, 0, 8, 3)}, ValueError, "at least one texel"),
        ({"tex": torch.rand(1, 4, 8, 0)}, ValueError, "at least one texel"),
        ({"tex": TEX.numpy()}, TypeError, "tex must be a torch.Tensor"),
        ({"uv": UV[..., :1]}, ValueError, r"uv must have shape \[B,H,W,2\]"),
        ({"uv": _nan(UV, (1, 2, 3, 0))}, ValueError, "uv contains NaN"),
        ({"uv": UV.half(), "tex": TEX.half(), "uv_da": None}, TypeError, "float32 or float64"),
        ({"tex": TEX.repeat(2, 1, 1, 1)}, ValueError, "tex has batch size 4, uv has 2"),
        ({"uv_da": DA[:1]}, ValueError, r"uv_da must have shape \[2,3,5,4\]"),
        ({"uv_da": _nan(DA, (0, 0, 0, 2))}, ValueError, "uv_da contains NaN"),
        ({"filter_mode": "bilinear"}, ValueError, "filter_mode must be one of"),
        ({"boundary_mode": "cube"}, ValueError, "boundary_mode must be one of"),
        ({"boundary_mode": None}, ValueError, "boundary_mode must be one of"),
        ({"max_mip_level": -1}, ValueError, "max_mip_level must be None or an int"),
        ({"max_mip_level": True}, ValueError, "max_mip_level must be None or an int"),
        ({"uv_da": None, "filter_mode": "linear-mipmap-linear"}, ValueError, "needs uv_da"),
        ({"mip": torch.rand(2, 2, 4, 3)}, TypeError, "mip must be a list"),
        ({"mip": [torch.rand(2, 2, 3, 3)]}, ValueError, r"mip\[0\] must have shape \[2,2,4,3\]"),
        ({"mip": [torch.rand(1, 2, 4, 3)]}, ValueError, r"mip\[0\] must have shape \[2,2,4,3\]"),
        ({"mip": [torch.rand(2, 2, 4, 3)] * 5}, ValueError, "mip has 5 levels"),
        ({"backend": "cuda"}, ValueError, "backend must be one of"),
    ],
)
def test_bad_input(kwargs, error, match):
    args = {"tex": TEX, "uv": UV, "uv_da": DA, **kwargs}
    with pytest.raises(error, match=match):
        minirast.texture(args.pop("tex"), args.pop("uv"), args.pop("uv_da"), **args)


def test_bad_mipmaps_input():
    with pytest.raises(ValueError, match="at least one texel"):
        minirast.texture_mipmaps(torch.rand(1, 4, 0, 3))
    with pytest.raises(ValueError, match="max_mip_level"):
        minirast.texture_mipmaps(TEX, max_mip_level=-2)


def test_mixed_devices():
    if not torch.cuda.is_available():
        pytest.skip("needs a second device")
    with pytest.raises(ValueError, match="same device"):
        minirast.texture(TEX.cuda(), UV)


def test_triton_on_cpu_without_interpreter(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="backend='triton'"):
        minirast.texture(TEX, UV, backend="triton")
