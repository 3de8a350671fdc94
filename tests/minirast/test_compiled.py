"""The torch backend's compiled stages (``MINIRAST_COMPILE``) against its eager ones.

The compiled path must give bitwise the images and gradients of the eager path; where
no C++ compiler is found, compiling fails or would crash (Mesa's LLVM loaded), the eager
path runs with a warning; ``auto`` compiles a stage only once its eager runs cost
``EAGER_BUDGET_S``.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

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
    monkeypatch.setenv("MINIRAST_COMPILE", "1")
    monkeypatch.setattr(compiled_mod, "compile_is_safe", lambda: True)

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
    monkeypatch.setenv("MINIRAST_COMPILE", "1")
    monkeypatch.setattr(compiled_mod, "compile_is_safe", lambda: True)
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


def test_auto_compiles_a_stage_once_its_eager_runs_have_cost_the_budget(monkeypatch):
    """Each kind of input runs eager until it has spent EAGER_BUDGET_S (a one-off render
    never compiles), then compiled; ``on`` compiles at once."""
    now = [0.0]
    monkeypatch.setattr(compiled_mod, "_clock", lambda: now[0])
    monkeypatch.setattr(compiled_mod, "EAGER_BUDGET_S", 1.0)
    monkeypatch.setattr(compiled_mod, "compile_is_safe", lambda: True)
    monkeypatch.setenv("MINIRAST_COMPILE", "auto")
    runs = []

    def slow(a, k):  # an eager run that takes 0.4 s by the fake clock
        now[0] += 0.4
        runs.append("eager")
        return a * k

    stage = compiled_mod.Stage(slow)
    monkeypatch.setattr(stage, "_compiled", lambda a, k: runs.append("compiled") or a * k)
    for _ in range(5):
        assert torch.equal(stage(torch.ones(2), 3, compiled=True), torch.full((2,), 3.0))
    # 0.4, 0.8, 1.2 s eager; then the compiled form, checked once against eager.
    assert runs == ["eager"] * 3 + ["compiled", "eager", "compiled"]
    runs.clear()
    stage(torch.ones(2), 4, compiled=True)  # another kind of input: its own budget
    stage(torch.ones(2), 3, compiled=False)  # a small call: eager, not counted
    assert runs == ["eager", "eager"]
    f32 = (torch.float32, 1)
    assert stage._eager_s == pytest.approx({(f32, 3): 1.2, (f32, 4): 0.4})
    monkeypatch.setenv("MINIRAST_COMPILE", "1")
    runs.clear()
    stage(torch.ones(2), 5, compiled=True)
    assert runs == ["compiled", "eager"]


MAPS = """\
55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1234   /usr/bin/python3.11
7f10a0000000-7f10a2000000 r-xp 00000000 08:01 2001   {lib}
7f10b0000000-7f10b0100000 r-xp 00000000 08:01 2002   /venv/site-packages/triton/_C/libtriton.so
7f10b1000000-7f10b1001000 rw-p 00000000 00:00 0
7ffc10000000-7ffc10021000 rw-p 00000000 00:00 0      [stack]
"""


@pytest.mark.parametrize(
    "lib,found",
    [
        ("/lib/x86_64-linux-gnu/libLLVM-15.so.1", True),
        ("/usr/lib64/libLLVM.so.20.1", True),
        ("/usr/lib/x86_64-linux-gnu/libgallium-24.2.8-1.so", True),
        ("/opt/conda/lib/python3.11/site-packages/llvmlite/binding/libllvmlite.so", False),
        ("/usr/lib/x86_64-linux-gnu/libEGL_mesa.so.0.0.0", False),
        ("/home/me/libLLVM-15.so.1.bak/notes.txt", False),
    ],
)
def test_mapped_llvm_reads_the_shared_llvm_from_a_maps_file(lib, found, tmp_path):
    maps = tmp_path / "maps"
    maps.write_text(MAPS.format(lib=lib))
    assert compiled_mod.mapped_llvm(str(maps)) == (lib if found else None)
    assert compiled_mod.mapped_llvm(str(tmp_path / "missing")) is None


def test_with_mesa_llvm_loaded_before_triton_stages_stay_eager_with_one_warning(monkeypatch):
    monkeypatch.setattr(compiled_mod, "mapped_llvm", lambda: "/usr/lib/libLLVM-15.so.1")
    monkeypatch.setattr(compiled_mod, "_clash", None)
    monkeypatch.delitem(sys.modules, "triton._C.libtriton", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())  # Triton present
    monkeypatch.setenv("MINIRAST_COMPILE", "1")

    def no_compile(*args, **kwargs):
        raise AssertionError("torch.compile would load Triton beside Mesa's LLVM")

    monkeypatch.setattr(torch, "compile", no_compile)
    stage = compiled_mod.Stage(lambda a, k: a * k)
    with pytest.warns(RuntimeWarning, match=r"libLLVM-15.so.1 .*import torch._dynamo"):
        assert torch.equal(stage(torch.ones(3), 2, compiled=True), torch.full((3,), 2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(stage(torch.ones(3), 3, compiled=True), torch.full((3,), 3.0))


#: Creates Mesa's llvmpipe EGL context, then runs the README's quick start (one 224²
#: render) and prints a checksum of its triangle ids.
CHILD = """
import moderngl, sys
from minirast._cpu.compiled import mapped_llvm
ctx = moderngl.create_context(standalone=True, backend="egl")
if mapped_llvm() is None:
    sys.exit(77)  # not Mesa's llvmpipe
exec(compile(QUICK_START, "README quick start", "exec"))
frag = minirast.rasterize(clip, head.faces, (224, 224))  # the same again: one warning
print("tri_id checksum", int((frag.tri_id.long() + 1).sum()))
"""

ROOT = Path(__file__).resolve().parents[2]
MESA_EGL = ctypes.util.find_library("EGL_mesa")


@pytest.mark.skipif(MESA_EGL is None, reason="Mesa's EGL (libEGL_mesa) is not installed")
def test_a_process_holding_a_mesa_gl_context_renders_the_quick_start(tmp_path):
    """Loading Triton (torch.compile) after Mesa's LLVM was a segmentation fault: in a
    fresh process with an llvmpipe context the quick start runs eager, ``auto`` without
    a word (a one-off render never compiles), ``1`` with one warning."""
    pytest.importorskip("moderngl")
    quick = re.search(
        r"## Quick start\n+```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    vendor = Path("/usr/share/glvnd/egl_vendor.d/50_mesa.json")
    if vendor.exists():  # Mesa even where a GPU driver's EGL is installed
        env["__EGL_VENDOR_LIBRARY_FILENAMES"] = str(vendor)
    code = f"QUICK_START = {quick.group(1)!r}\n{CHILD}"
    runs = {}
    for mode in ("auto", "1"):
        env["MINIRAST_COMPILE"] = mode
        runs[mode] = subprocess.run(
            [sys.executable, "-W", "always", "-c", code],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if runs[mode].returncode == 77:
            pytest.skip("the EGL context is not Mesa's llvmpipe")
        assert runs[mode].returncode == 0, runs[mode].stderr[-3000:]
    warning = "not compiling the CPU stages"
    assert warning not in runs["auto"].stderr
    assert runs["1"].stderr.count(warning) == 1, runs["1"].stderr[-3000:]
    checksums = [r.stdout.split("checksum")[-1] for r in runs.values()]
    assert checksums[0] == checksums[1] and int(checksums[0]) > 224 * 224
