"""Mitsuba 3 (``llvm_ad_rgb``, CPU) as a peer for the visibility job: AOV render of the
triangle index and depth with one un-jittered sample at each pixel centre.

Optional: ``pip install mitsuba``; on Debian 12 Mitsuba's LLVM backend needs
``apt-get install libllvm19`` and, when it still finds LLVM 15,
``DRJIT_LIBLLVM_PATH=/usr/lib/x86_64-linux-gnu/libLLVM-19.so`` (set here when the file
exists).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

LLVM19 = "/usr/lib/x86_64-linux-gnu/libLLVM-19.so"


class MitsubaPeer:
    """Mitsuba 3 ``llvm_ad_rgb``: AOV render of triangle index and depth at pixel centres."""

    name = "mitsuba3 llvm_ad_rgb (CPU)"
    short = "Mitsuba"

    def __init__(self, faces: torch.Tensor, num_vertices: int, scale: float, rho: float):
        if os.path.exists(LLVM19):
            os.environ.setdefault("DRJIT_LIBLLVM_PATH", LLVM19)
        import mitsuba as mi

        mi.set_variant("llvm_ad_rgb")
        # Start Dr.Jit's LLVM backend now, so that it binds its own libLLVM before a GL
        # context brings Mesa's into the process (bench.peers.load_peers).
        import drjit as dr

        dr.eval(mi.Float([1.0, 2.0]) * 2)
        self.mi = mi
        self.faces = faces.to(torch.int64).numpy().astype(np.uint32).ravel()
        self.num_vertices = num_vertices
        self.scale, self.rho = scale, rho
        self.version = mi.__version__
        self.details = {"variant": "llvm_ad_rgb", "mitsuba": mi.__version__}
        self.scenes = {}

    def scene(self, res: int):
        """(scene, its parameters) for a square image of ``res`` pixels."""
        if res not in self.scenes:
            mi = self.mi
            mesh = mi.Mesh("head", self.num_vertices, len(self.faces) // 3)
            mesh_params = mi.traverse(mesh)
            mesh_params["faces"] = mi.UInt32(self.faces)
            mesh_params.update()
            # u = (S/rho) X / (p_z + 1/rho)
            fov = math.degrees(2 * math.atan(self.rho / self.scale))
            scene = mi.load_dict(
                {
                    "type": "scene",
                    "integrator": {"type": "aov", "aovs": "dd.y:depth,pi:prim_index"},
                    "sensor": {
                        "type": "perspective",
                        "fov": fov,
                        "fov_axis": "x",
                        "to_world": mi.ScalarTransform4f().look_at(
                            origin=[0, 0, -1 / self.rho], target=[0, 0, 0], up=[0, -1, 0]
                        ),
                        "film": {
                            "type": "hdrfilm",
                            "width": res,
                            "height": res,
                            "rfilter": {"type": "box"},
                        },
                        "sampler": {"type": "stratified", "sample_count": 1, "jitter": False},
                    },
                    "head": mesh,
                }
            )
            self.scenes[res] = (scene, mi.traverse(scene))
        return self.scenes[res]

    def render(self, points: torch.Tensor, clip: torch.Tensor, res: int) -> dict:
        """``{"tri_id": [B,H,W]}`` (-1 background) for camera-frame ``points`` (``clip``
        unused: Mitsuba's perspective sensor reproduces ppcam's projection)."""
        scene, params = self.scene(res)
        ids = []
        for p in points:
            params["head.vertex_positions"] = self.mi.Float(p.numpy().ravel())
            params.update()  # rebuilds the BVH, as a new pose needs
            img = np.array(self.mi.render(scene, spp=1))
            ids.append(np.where(img[..., 0] > 0, np.rint(img[..., 1]).astype(np.int64), -1))
        return {"tri_id": np.stack(ids)}
