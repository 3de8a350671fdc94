"""The torch backend's compiled stages (``MINIRAST_COMPILE``) against its eager ones.

The compiled path must give bitwise the images and gradients of the eager path; where
no C++ compiler is found, or compiling fails, the eager path runs with a warning.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import minirast
from minirast._cpu import compiled as compiled_mod
from tests.minirast.scenes import perspective_clip, random_scene

needs_compiler = pytest.mark.skipif(
    compiled_mod.cxx_compiler() is None, reason="no C++ compiler: the inductor cannot run"
)


def _pipeline(pos, faces, attr, size, cull=False):
    """Images and the gradients of a weighted sum with respect to positions and attributes."""
    pos = pos.clone().requires_grad_(True)
    attr = attr.clone().requires_grad_(True)
    frag = minirast.rasterize(pos, faces, size, backend="torch", cull_backfaces=cull)
    img = minirast.interpolate(attr, frag, faces)
    out = minirast.antialias(img, frag, pos, faces)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)
    ((out * weights).sum() + (frag.depth * 0.3).sum()).backward()
    return frag.tri_id, frag.bary, frag.depth, out, pos.grad, attr.grad


def _scenes():
    pos, faces = random_scene(5, 2, 60, shared=True)
    yield "soup-float32", pos, faces, torch.rand(pos.shape[1], 3), False
    sphere, sfaces = minirast.icosphere(2)
    clip = perspective_clip(sphere[None].double() * 0.8 + torch.tensor([0.1, 0.0, 0.5]))
    yield "sphere-float64-culled", clip, sfaces, torch.rand(1, sphere.shape[0], 2).double(), True


@needs_compiler
@pytest.mark.parametrize("name", ["soup-float32", "sphere-float64-culled"])
def test_compiled_stages_give_the_eager_results_bit_for_bit(name, monkeypatch):
    _, pos, faces, attr, cull = next(s for s in _scenes() if s[0] == name)
    monkeypatch.setenv("MINIRAST_COMPILE", "0")
    eager = _pipeline(pos, faces, attr, (37, 52), cull)
    monkeypatch.setenv("MINIRAST_COMPILE", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a failed compile would warn
        fast = _pipeline(pos, faces, attr, (37, 52), cull)
    assert int((eager[0] >= 0).sum()) > 100
    for a, b in zip(eager, fast):
        assert torch.equal(a, b)


def test_auto_mode_compiles_only_large_cpu_calls(monkeypatch):
    monkeypatch.setattr(compiled_mod, "cxx_compiler", lambda: "/usr/bin/c++")
    cpu = torch.device("cpu")
    monkeypatch.setenv("MINIRAST_COMPILE", "auto")
    assert not compiled_mod.want_compiled(cpu, compiled_mod.MIN_COMPILED_PIXELS - 1)
    assert compiled_mod.want_compiled(cpu, compiled_mod.MIN_COMPILED_PIXELS)
    assert not compiled_mod.want_compiled(torch.device("meta"), 1 << 30)
    monkeypatch.setenv("MINIRAST_COMPILE", "on")
    assert compiled_mod.want_compiled(cpu, 1)
    monkeypatch.setenv("MINIRAST_COMPILE", "0")
    assert not compiled_mod.want_compiled(cpu, 1 << 30)


def test_without_a_compiler_the_eager_stages_run(monkeypatch):
    monkeypatch.setattr(compiled_mod, "cxx_compiler", lambda: None)
    monkeypatch.setenv("MINIRAST_COMPILE", "1")
    assert not compiled_mod.want_compiled(torch.device("cpu"), 1 << 30)

    def no_compile(*args, **kwargs):
        raise AssertionError("torch.compile must not be called without a compiler")

    monkeypatch.setattr(torch, "compile", no_compile)
    pos, faces = random_scene(1, 1, 20, shared=False)
    frag = minirast.rasterize(pos, faces, (24, 24), backend="torch")
    assert bool(frag.mask.any())


def test_a_failed_compile_warns_once_and_stays_eager(monkeypatch):
    def broken_compile(fn, **kwargs):
        def run(*args):
            raise RuntimeError("C++ compile failed: cc1plus not found")

        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    monkeypatch.setattr(compiled_mod, "_announced", False)
    stage = compiled_mod.Stage(lambda a, k: a * k)
    with pytest.warns(RuntimeWarning, match="cc1plus not found.*same results"):
        with pytest.warns(compiled_mod.CompileNotice, match="MINIRAST_COMPILE=0"):
            assert torch.equal(stage(torch.ones(3), 2, compiled=True), torch.full((3,), 2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(stage(torch.ones(3), 3, compiled=True), torch.full((3,), 3.0))


def test_an_unknown_mode_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("MINIRAST_COMPILE", "fast")
    with pytest.raises(ValueError, match="MINIRAST_COMPILE='fast'.*auto, 1/on or 0/off"):
        compiled_mod.compile_mode()


def test_a_compiled_stage_that_disagrees_with_eager_is_dropped(monkeypatch):
    """A stale compile cache (code built for another CPU) served garbage: the first call
    per kind of input checks the compiled result against eager, and a mismatch warns and
    stays eager."""
    eager_calls = []

    def fn(a, k):
        eager_calls.append(k)
        return a * k, a + k

    faithful = compiled_mod.Stage(fn)
    monkeypatch.setattr(faithful, "_compiled", lambda a, k: (a * k, a + k))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            faithful(torch.tensor([1.0, float("nan")]), 2, compiled=True)
        faithful(torch.ones(2, dtype=torch.float64), 2, compiled=True)  # another dtype
    assert eager_calls == [2, 2]  # checked once per (dtype, rank, integers), not per call

    eager_calls.clear()
    wrong = compiled_mod.Stage(fn)
    monkeypatch.setattr(wrong, "_compiled", lambda a, k: (a * k, a + k + 1))
    with pytest.warns(RuntimeWarning, match="disagrees with its eager form.*CACHE_DIR"):
        out = wrong(torch.ones(3), 2, compiled=True)
    assert torch.equal(out[1], torch.full((3,), 3.0))  # the eager result
    out = wrong(torch.ones(3), 5, compiled=True)
    assert torch.equal(out[1], torch.full((3,), 6.0)) and eager_calls == [2, 5]
