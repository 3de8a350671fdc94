"""The scene of ``python -m bench.raster``: the mesh, the random head poses and the
camera, shared with ``bench.gpu`` (through :mod:`bench.raster`) and the visibility job
of :mod:`bench.peers.visibility`."""

from __future__ import annotations

import math

import numpy as np
import torch

import minirast

#: Camera of every image: ppcam scale and rho (a head about 0.33 m away).
SCALE, RHO = 6.0, 3.0


def load_mesh():
    """(verts [V,3] in the FLAME model frame, metres; faces [F,3] int64; name)."""
    try:
        import flame

        model = flame.load_model("bundled")
        verts = torch.as_tensor(np.asarray(model.v_template), dtype=torch.float32)
        faces = torch.as_tensor(np.asarray(model.faces), dtype=torch.int64)
        return verts, faces, "flame bundled stand-in head"
    except Exception:
        verts, faces = minirast.uv_sphere(70, 72, radius=0.1)
        return verts, faces, "UV sphere 70x72 (flame not available)"


def random_rotations(batch: int, generator: torch.Generator, max_deg: float = 30.0):
    """Yaw/pitch/roll rotations within +-max_deg, ``[B,3,3]``."""
    ang = (torch.rand(batch, 3, generator=generator) * 2 - 1) * math.radians(max_deg)
    ang[:, 2] *= 0.3
    c, s = torch.cos(ang), torch.sin(ang)
    one, zero = torch.ones(batch), torch.zeros(batch)
    rx = torch.stack([one, zero, zero, zero, c[:, 0], -s[:, 0], zero, s[:, 0], c[:, 0]], 1)
    ry = torch.stack([c[:, 1], zero, s[:, 1], zero, one, zero, -s[:, 1], zero, c[:, 1]], 1)
    rz = torch.stack([c[:, 2], -s[:, 2], zero, s[:, 2], c[:, 2], zero, zero, zero, one], 1)
    return rx.view(-1, 3, 3) @ ry.view(-1, 3, 3) @ rz.view(-1, 3, 3)


def make_batch(verts: torch.Tensor, batch: int, seed: int = 0):
    """Camera-frame points ``p = R q + (tx, ty, 0)`` ``[B,V,3]`` and clip positions
    ``(S p_x, S p_y, p_z, 1 + rho p_z)`` ``[B,V,4]`` (ppcam's ``to_clip``)."""
    import ppcam

    g = torch.Generator().manual_seed(seed)
    rot = random_rotations(batch, g)
    trans = (torch.rand(batch, 2, generator=g) * 2 - 1) * 0.01
    q = ppcam.flame_to_camera(verts).expand(batch, -1, -1)
    p = q @ rot.transpose(1, 2) + torch.cat([trans, torch.zeros(batch, 1)], 1)[:, None]
    clip = ppcam.to_clip(q, SCALE, trans, RHO, rot)
    return p.contiguous(), clip.contiguous()
