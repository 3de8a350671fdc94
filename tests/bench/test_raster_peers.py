"""``bench.peers``: the OpenGL/llvmpipe peer renders minirast's visibility job (same
pixels, orientation, depth order), the bench skips a peer that cannot run with an
install line, and the report puts both peers beside minirast.

The GL tests need ``moderngl`` and Mesa's EGL/llvmpipe libraries (``pip install
moderngl``; ``apt-get install libegl-mesa0 libgl1-mesa-dri``) and skip without them,
and only then: with both installed, a peer that fails to build fails the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import torch

import minirast
from bench import peers as bench_peers
from bench import raster
from bench.peers import llvmpipe

INSTALL_LINE = "apt-get install libegl-mesa0 libgl1-mesa-dri"


def gl_peer(faces: torch.Tensor, num_vertices: int) -> llvmpipe.LlvmpipePeer:
    """A llvmpipe peer, or a skip that says what is missing. It skips only where
    moderngl or Mesa's EGL library is absent: with both, any error building the peer
    is a failure (a skip would hide a bug in it)."""
    pytest.importorskip("moderngl", reason="moderngl is not installed (pip install moderngl)")
    if not llvmpipe.mesa_egl_available():
        pytest.skip(f"Mesa's EGL (libEGL_mesa) is not installed; the peer needs {llvmpipe.INSTALL}")
    return llvmpipe.LlvmpipePeer(faces, num_vertices)


def agreement(ours: np.ndarray, theirs: np.ndarray) -> float:
    covered = (ours >= 0) | (theirs >= 0)
    return float((ours == theirs)[covered].mean())


# ------------------------------------------------------------------- with OpenGL


def test_llvmpipe_agrees_with_minirast_on_the_bench_mesh():
    """64², B=2, the bench's mesh and poses: triangle ids agree on >= 99.9 % of covered
    pixels once our vertices are snapped to llvmpipe's 1/256-pixel grid (what is left
    are pixel centres on a shared edge, where GL's top-left fill rule and minirast's
    lower-index rule pick different faces), and on >= 99.5 % without (at 64² the head
    has several faces per pixel, so many centres lie within 1/512 pixel of an edge;
    about 99.9 % at 224²); barycentrics and depth agree closely where the ids do."""
    verts, faces, _ = raster.load_mesh()
    peer = gl_peer(faces, len(verts))
    try:
        points, clip = raster.make_batch(verts, 2, seed=0)
        theirs = peer.render(points, clip, 64)
    finally:
        peer.close()
    assert theirs["tri_id"].shape == (2, 64, 64)
    ours = minirast.rasterize(clip, faces, (64, 64), backend="torch")
    ids = ours.tri_id.numpy()
    assert (ids >= 0).sum() > 1000  # the head fills a good part of the image
    assert agreement(ids, theirs["tri_id"]) >= 0.995
    snapped = minirast.rasterize(
        llvmpipe.subpixel_snap(clip, 64, 64), faces, (64, 64), backend="torch"
    )
    assert agreement(snapped.tri_id.numpy(), theirs["tri_id"]) >= 0.999
    both = (ids == theirs["tri_id"]) & (ids >= 0)
    bary = np.abs(ours.bary.numpy() - theirs["bary"])[both]
    assert bary.max() < 2e-3 and bary.mean() < 1e-5
    assert np.abs(ours.depth.numpy() - theirs["depth"])[both].max() < 1e-5
    background = theirs["tri_id"] < 0
    assert not theirs["bary"][background].any() and not theirs["depth"][background].any()


def window_to_clip(xy, z_over_w, w, height, width):
    """Clip positions of vertices at window pixels ``xy`` (x right, y down, in pixels),
    depth ``z/w`` and ``w``."""
    xy = torch.as_tensor(xy, dtype=torch.float64)
    ndc = torch.stack([2 * xy[:, 0] / width - 1, 2 * xy[:, 1] / height - 1], 1)
    zw = torch.as_tensor(z_over_w, dtype=torch.float64)
    w = torch.as_tensor(w, dtype=torch.float64)
    return torch.cat([ndc * w[:, None], (zw * w)[:, None], w[:, None]], 1).float()


def test_llvmpipe_orientation_depth_and_dropped_faces_match_minirast():
    """A non-square image (24 x 40) and an asymmetric scene: face 0 in the top-left
    corner; faces 1 and 2 overlapping at the bottom right with z/w of about 4 and -3
    (outside GL's clip volume: the peer's depth remap must keep both) and face 2 in
    front; face 3 has a vertex behind the camera (w < 0) and is dropped by both. No
    pixel centre lies within 1/512 pixel of an edge, so every pixel must agree."""
    height, width = 24, 40
    clip = torch.cat(
        [
            window_to_clip([(1, 1), (13, 1), (1, 10)], [0.1, 0.2, 0.3], [1.0, 2.0, 0.5],
                           height, width),
            window_to_clip([(22.3, 11.2), (38.6, 13.1), (25.1, 22.7)], [3.5, 4.5, 4.0],
                           [1.0, 1.5, 0.8], height, width),
            window_to_clip([(20.2, 16.3), (36.7, 20.4), (30.1, 9.6)], [-3.0, -3.0, -3.0],
                           [1.2, 0.9, 1.0], height, width),
            window_to_clip([(3.3, 14.2), (15.4, 15.1), (6.2, 22.6)], [0.0, 0.0, 0.0],
                           [1.0, -0.5, 1.0], height, width),
        ]
    )[None]  # fmt: skip
    faces = torch.arange(12).view(4, 3)
    peer = gl_peer(faces, 12)
    try:
        theirs = peer.rasterize(clip, (height, width))
    finally:
        peer.close()
    ours = minirast.rasterize(clip, faces, (height, width), backend="torch")
    ids = ours.tri_id[0].numpy()
    rows, cols = np.nonzero(ids == 0)
    assert ids[2, 2] == 0 and rows.max() < height // 2 and cols.max() < width // 2
    assert not (ids == 3).any() and (ids == 1).any() and (ids == 2).any()
    np.testing.assert_array_equal(theirs["tri_id"][0], ids)
    np.testing.assert_allclose(theirs["bary"], ours.bary.numpy(), atol=1e-5)
    np.testing.assert_allclose(theirs["depth"], ours.depth.numpy(), atol=1e-5)
    depth = ours.depth[0].numpy()
    assert np.all(depth[ids == 2] == pytest.approx(-3.0, abs=1e-5))
    assert depth[ids == 1].min() > 3.4


def test_bench_run_with_the_llvmpipe_peer(tmp_path):
    pytest.importorskip("matplotlib")
    verts, faces = minirast.uv_sphere(10, 12, radius=0.1)
    gl_peer(faces, len(verts)).close()  # skips without OpenGL
    payload, _ = raster.run(
        [32], [1, 2], 0.02, str(tmp_path), True, False, 32 * 32 * 2, mesh=(verts, faces, "ball")
    )
    rows = [v for v in payload["visibility_vs_peers"] if v["peer_short"] == "llvmpipe"]
    assert [(v["resolution"], v["batch"]) for v in rows] == [(32, 1), (32, 2)]
    assert all(v["covered_pixel_agreement"] > 0.98 and v["peer_ms"] > 0 for v in rows)
    (info,) = [p for p in payload["peers"] if p["short"] == "llvmpipe"]
    assert "llvmpipe" in info["gl_renderer"]
    out = tmp_path / payload["device"]
    saved = json.loads((out / "raster.json").read_text())
    assert saved["peers"] == payload["peers"]
    text = (out / "raster.md").read_text()
    assert "| llvmpipe ms | speed ratio vs llvmpipe | agreement with llvmpipe |" in text
    assert info["gl_renderer"] in text


def test_triton_still_runs_after_the_gl_context():
    """Mesa's libLLVM in the process crashed a later ``import triton``: the peer loads
    Triton first (in a fresh process, where nothing has imported Triton yet)."""
    pytest.importorskip("triton")
    gl_peer(torch.tensor([[0, 1, 2]]), 3).close()  # skips without OpenGL
    code = (
        "import torch\n"
        "from bench.peers.llvmpipe import LlvmpipePeer\n"
        "peer = LlvmpipePeer(torch.tensor([[0, 1, 2]]), 3)\n"
        "clip = torch.tensor([[-0.9, -0.9, 0.1, 1], [0.8, -0.7, 0.2, 1], [-0.5, 0.9, 0.3, 1]])\n"
        "gl = peer.rasterize(clip, (8, 8))['tri_id']\n"
        "import minirast\n"
        "ours = minirast.rasterize(clip, torch.tensor([[0, 1, 2]]), (8, 8), backend='triton')\n"
        "assert (ours.tri_id.numpy() == gl).all()\n"
        "print('ok')\n"
    )
    env = dict(os.environ, TRITON_INTERPRET="1", TRITON_DEFAULT_FP_FUSION="1")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


# ---------------------------------------------------------------- without OpenGL


def test_depth_map_spans_the_kept_vertices():
    clip = np.array(
        [[0, 0, 0.2, 1.0], [0, 0, -0.1, 0.5], [0, 0, 5.0, -1.0], [0, 0, 0.0, 1e-7]], np.float32
    )
    a, b = llvmpipe.LlvmpipePeer.depth_map(clip)
    zw = np.array([0.2, -0.2])  # the vertices with w > EPS_W
    np.testing.assert_allclose(a * zw + b, [llvmpipe.DEPTH_SPAN, -llvmpipe.DEPTH_SPAN])
    assert llvmpipe.LlvmpipePeer.depth_map(clip[:1]) == (0.0, 0.0)  # flat: no spread
    assert llvmpipe.LlvmpipePeer.depth_map(clip[2:]) == (0.0, 0.0)  # nothing drawn


def test_subpixel_snap_rounds_screen_positions_only():
    clip = torch.tensor([[[0.1234567, -0.7654321, 0.3, 2.0]]])
    snapped = llvmpipe.subpixel_snap(clip, 64, 32)
    window = (snapped[..., :2] / snapped[..., 3:] + 1) * torch.tensor([32.0, 64.0]) / 2
    assert torch.allclose(window * 256, torch.round(window * 256), rtol=0, atol=1e-9)
    assert torch.allclose(snapped.float(), clip, rtol=0, atol=2 * (2 / 512) / 32)
    assert torch.equal(snapped[..., 2:].float(), clip[..., 2:])


def load_peers_notes(monkeypatch) -> tuple[list, list[str]]:
    def no_mitsuba(*args, **kwargs):
        raise ImportError("No module named 'mitsuba'")

    monkeypatch.setattr(bench_peers, "load_mitsuba", no_mitsuba)
    faces = torch.tensor([[0, 1, 2]])
    return bench_peers.load_peers(faces, 3, scale=6.0, rho=3.0, threads=1)


def test_missing_moderngl_gives_the_install_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "moderngl", None)  # import moderngl -> ImportError
    peers, notes = load_peers_notes(monkeypatch)
    assert peers == []
    (note,) = [n for n in notes if "llvmpipe" in n]
    assert "ImportError" in note or "ModuleNotFoundError" in note
    assert "pip install moderngl" in note and INSTALL_LINE in note
    assert "Debian/Ubuntu" in note


def fake_moderngl(create_context):
    return types.SimpleNamespace(create_context=create_context, __version__="0.0")


def test_context_failure_gives_the_install_line(monkeypatch):
    def create_context(**kwargs):
        raise Exception("libEGL.so: cannot open shared object file")

    monkeypatch.setitem(sys.modules, "moderngl", fake_moderngl(create_context))
    peers, notes = load_peers_notes(monkeypatch)
    assert peers == []
    (note,) = [n for n in notes if "llvmpipe" in n]
    assert "libEGL.so" in note and "pip install moderngl" in note and INSTALL_LINE in note


def test_a_hardware_renderer_is_refused(monkeypatch):
    released = []

    class Context:
        info = {"GL_RENDERER": "NVIDIA H200/PCIe/SSE2", "GL_VERSION": "4.6.0 NVIDIA"}

        def release(self):
            released.append(True)

    def create_context(standalone, backend, device_index):
        if device_index > 0:
            raise Exception(f"requested device index {device_index}, but found 1 devices")
        return Context()

    monkeypatch.setitem(sys.modules, "moderngl", fake_moderngl(create_context))
    peers, notes = load_peers_notes(monkeypatch)
    assert peers == [] and released == [True]
    (note,) = [n for n in notes if "llvmpipe" in n]
    assert "NVIDIA H200" in note and "not Mesa's llvmpipe" in note and INSTALL_LINE in note
    assert llvmpipe.is_software_renderer("llvmpipe (LLVM 15.0.6, 256 bits)")
    assert not llvmpipe.is_software_renderer("NVIDIA H200/PCIe/SSE2")


def test_mitsuba_loads_before_the_gl_context(monkeypatch):
    """Dr.Jit takes whatever libLLVM is already loaded, and the GL context loads Mesa's:
    Mitsuba must start first; the report still lists llvmpipe first."""
    order = []

    def fake(name):
        def load(*args, **kwargs):
            order.append(name)
            return name

        return load

    monkeypatch.setattr(bench_peers, "load_mitsuba", fake("mitsuba"))
    monkeypatch.setattr(bench_peers, "load_llvmpipe", fake("llvmpipe"))
    peers, _ = bench_peers.load_peers(torch.tensor([[0, 1, 2]]), 3, scale=6.0, rho=3.0, threads=1)
    assert order == ["mitsuba", "llvmpipe"] and peers == ["llvmpipe", "mitsuba"]


# ------------------------------------------------------------------------ report


def report_payload() -> dict:
    def row(short, name, res, batch, peer_ms, ours_ms, agree):
        return {
            "peer": name,
            "peer_short": short,
            "peer_version": "v",
            "resolution": res,
            "batch": batch,
            "peer_ms": peer_ms,
            "torch_rasterize_ms": ours_ms,
            "speedup_torch_vs_peer": peer_ms / ours_ms,
            "pixel_agreement": agree,
            "covered_pixel_agreement": agree,
        }

    gl, mi = "OpenGL llvmpipe (CPU)", "mitsuba3 llvm_ad_rgb (CPU)"
    vis = [
        row("llvmpipe", gl, 224, 1, 4.0, 8.0, 0.99875) | {"max_bary_difference": 3e-4,
                                                         "max_depth_difference": 5e-6},
        row("Mitsuba", mi, 224, 1, 20.0, 8.0, 1.0),
        row("llvmpipe", gl, 224, 8, 30.0, 60.0, 0.999) | {"max_bary_difference": 5e-4,
                                                         "max_depth_difference": 4e-6},
    ]  # fmt: skip
    return {
        "device": "cpu-test",
        "cpu_model": "a CPU",
        "torch": "2.x",
        "torch_threads": 2,
        "omp_wait_policy": "PASSIVE",
        "load_average_before": (0.5, 0.5, 0.5),
        "load_average_after": (0.6, 0.5, 0.5),
        "mesh": "head",
        "vertices": 5,
        "faces": 6,
        "camera": {"scale": 6.0, "rho": 3.0},
        "results": [
            {
                "backend": "torch",
                "mode": m,
                "resolution": 224,
                "batch": b,
                "ms": 10.0 * b,
                "fps": 100.0,
            }
            for m in raster.MODES
            for b in (1, 8)
        ],  # fmt: skip
        "skipped": [],
        "peers": [
            {
                "name": gl,
                "short": "llvmpipe",
                "version": "4.5 Mesa",
                "moderngl": "5.13.0",
                "gl_renderer": "llvmpipe (LLVM 15.0.6, 256 bits)",
                "gl_version": "4.5 (Core Profile) Mesa 22.3.6",
                "lp_num_threads": "2",
            },
            {"name": mi, "short": "Mitsuba", "version": "3.9.1"},
        ],  # fmt: skip
        "visibility_vs_peers": vis,
        "peer_notes": ["nvdiffrast is not installed (it does not install here)"],
        "triton_interpreter_smoke": None,
    }


def test_report_puts_both_peers_beside_minirast():
    text = raster.markdown_report(report_payload())
    assert (
        "| resolution | B | minirast torch rasterize ms | llvmpipe ms | speed ratio vs llvmpipe "
        "| agreement with llvmpipe | Mitsuba ms | speed ratio vs Mitsuba | agreement with "
        "Mitsuba |" in text
    )
    assert "|---|---|---|---|---|---|---|---|---|" in text
    assert "| 224² | 1 | 8.0 | 4.0 | 0.50x | 99.875 % | 20.0 | 2.50x | 100.000 % |" in text
    assert "| 224² | 8 | 60.0 | 30.0 | 0.50x | 99.900 % | - | - | - |" in text  # no Mitsuba row
    assert "`llvmpipe (LLVM 15.0.6, 256 bits)`" in text and "LP_NUM_THREADS=2" in text
    assert "Mitsuba 3.9.1" in text
    assert "differ from minirast's by at most 5.0e-04" in text
    assert "by at most 5.0e-06" in text


def test_plot_shows_both_peers(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "raster.png"
    raster.plot(report_payload(), str(path))
    assert path.stat().st_size > 1000
