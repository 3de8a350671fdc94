"""CPU peers of minirast's rasterizer for ``python -m bench.raster``'s visibility job.

Each peer renders the bench's mesh and poses and returns, per pixel, the triangle id
(-1 background) at pixel centres, which the bench compares with
``minirast.rasterize(..., backend="torch")``. A peer has ``name`` and ``short`` (for
the report), ``version``, ``details`` (a JSON-able dict) and
``render(points, clip, res) -> dict`` with ``"tri_id"`` ``[B,H,W]`` and, where the
peer computes them like minirast, ``"bary"`` ``[B,H,W,3]`` and ``"depth"`` ``[B,H,W]``
(``points``: camera-frame vertices ``[B,V,3]``; ``clip``: ppcam's clip positions
``[B,V,4]``; each peer uses the one it needs).

- :mod:`bench.peers.llvmpipe`: OpenGL on Mesa's llvmpipe (moderngl, EGL, no window).
- :mod:`bench.peers.mitsuba`: Mitsuba 3 ``llvm_ad_rgb`` AOVs.

:mod:`bench.peers.visibility` runs the job: minirast and each peer on the same cases,
timed, their agreement, and the report's table.

Both are optional: :func:`load_peers` skips one that cannot run with a line saying why
and how to install it.
"""

from __future__ import annotations

import torch


def load_llvmpipe(faces: torch.Tensor, num_vertices: int, threads: int | None):
    from bench.peers.llvmpipe import LlvmpipePeer

    return LlvmpipePeer(faces, num_vertices, threads=threads)


def load_mitsuba(faces: torch.Tensor, num_vertices: int, scale: float, rho: float):
    from bench.peers.mitsuba import MitsubaPeer

    return MitsubaPeer(faces, num_vertices, scale, rho)


def load_peers(
    faces: torch.Tensor, num_vertices: int, *, scale: float, rho: float, threads: int | None
):
    """``(peers, notes)``: the peers that run here, and a line for each one that does not
    (or that is installed but not wired in)."""
    from bench.peers.llvmpipe import INSTALL as GL_INSTALL

    notes = []
    # Mitsuba first: Dr.Jit uses whatever libLLVM is already in the process, and the GL
    # context puts Mesa's (LLVM 15 on Debian 12, which Dr.Jit cannot use) there.
    mitsuba = gl = None
    try:
        mitsuba = load_mitsuba(faces, num_vertices, scale, rho)
    except Exception as exc:
        notes.append(
            f"Mitsuba 3 not usable here ({type(exc).__name__}: {exc}); to run it: "
            "`pip install mitsuba` (Debian 12: also `apt-get install libllvm19`)"
        )
    try:
        gl = load_llvmpipe(faces, num_vertices, threads)
    except Exception as exc:
        notes.insert(
            0,
            f"OpenGL/llvmpipe peer skipped ({type(exc).__name__}: {exc}); to run it: {GL_INSTALL}",
        )
    peers = [peer for peer in (gl, mitsuba) if peer is not None]
    for name, module in (("PyTorch3D", "pytorch3d"), ("nvdiffrast", "nvdiffrast.torch")):
        try:
            __import__(module)
            notes.append(f"{name} is importable but not wired into this bench")
        except Exception:
            notes.append(f"{name} is not installed (it does not install here)")
    return peers, notes
