"""Random scenes and clip positions for the minirast tests.

The float64 reference rasterizer they are checked against is
:mod:`minirast.reference`.
"""

from __future__ import annotations

import torch


def random_scene(seed: int, batch: int, num_faces: int, shared: bool = True):
    """A random triangle soup / mesh in clip space, float32.

    NDC vertex positions in [-1.3, 1.3]^2 (some triangles leave the image), depths in
    [-1, 1], w in [0.4, 2.5], and about 1 vertex in 25 behind the camera (w < 0) so the
    drop rule is exercised. With ``shared`` the faces index a pool of ``num_faces``
    vertices (shared edges); otherwise every face has its own 3 vertices. Triangles
    are kept well shaped (no slivers) so float32 barycentrics are well conditioned;
    with ``shared`` that can leave fewer than ``num_faces`` faces.
    """
    g = torch.Generator().manual_seed(seed)
    V = num_faces if shared else 3 * num_faces
    V = max(V, 3)
    ndc = (torch.rand(batch, V, 2, generator=g, dtype=torch.float64) * 2 - 1) * 1.3
    z = torch.rand(batch, V, 1, generator=g, dtype=torch.float64) * 2 - 1
    w = 0.4 + 2.1 * torch.rand(batch, V, 1, generator=g, dtype=torch.float64)
    behind = torch.rand(batch, V, 1, generator=g) < 0.04
    w = torch.where(behind, -w, w)
    pos = torch.cat([ndc * w, z * w, w], -1)
    if shared:
        faces = torch.stack([torch.randperm(V, generator=g)[:3] for _ in range(num_faces)]).to(
            torch.int64
        )
        faces = faces[_well_shaped(pos, faces)]
    else:
        faces = torch.arange(3 * num_faces, dtype=torch.int64).reshape(-1, 3)
    # Shrink random triangles towards their centroid so they are not all huge.
    if not shared:
        scale = 0.15 + 0.6 * torch.rand(batch, num_faces, 1, 1, generator=g, dtype=torch.float64)
        p = pos[:, faces]  # [B,F,3,4]
        ndc3 = p[..., :2] / p[..., 3:]
        centre = ndc3.mean(2, keepdim=True)
        ndc3 = centre + (ndc3 - centre) * scale
        p = torch.cat([ndc3 * p[..., 3:], p[..., 2:]], -1)
        pos = p.reshape(batch, -1, 4)
        faces = faces[_well_shaped(pos, faces)]
    return pos.float(), faces


def _well_shaped(pos: torch.Tensor, faces: torch.Tensor, quality: float = 0.08) -> torch.Tensor:
    """Faces that are not slivers in any batch element: screen area >= ``quality`` times
    the squared longest edge (float32 barycentrics of slivers are ill-conditioned)."""
    p = pos[:, faces]
    ndc = p[..., :2] / p[..., 3:]
    e = ndc[:, :, [1, 2, 0]] - ndc
    area = (e[..., 0, 0] * e[..., 1, 1] - e[..., 0, 1] * e[..., 1, 0]).abs()
    longest = (e**2).sum(-1).amax(-1)
    return (area >= quality * longest).all(0)


def perspective_clip(verts: torch.Tensor, scale: float = 0.8, rho: float = 0.3) -> torch.Tensor:
    """ppcam-style clip positions ``(S x, S y, z, 1 + rho z)`` of camera-frame points."""
    x, y, z = verts.unbind(-1)
    return torch.stack([scale * x, scale * y, z, 1 + rho * z], -1)


#: Three vertices on a line, two at one NDC point with different w (NDC ``[3, 2]`` and
#: ``w [3]``, float64): the float32 reciprocal ``1/w`` leaves the area a residue, and the
#: triangle once covered two pixels with rounding-noise barycentrics (a hypothesis find).
RECIPROCAL_SLIVER_NDC = torch.tensor([(0, 9), (12, 2), (12, 2)], dtype=torch.float64) / 16
RECIPROCAL_SLIVER_W = torch.tensor([0.5, 0.5, 1.75], dtype=torch.float64)


def clip_from_ndc(ndc: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Float32 clip positions ``[1, V, 4]`` of NDC points ``[V, 2]`` at ``w [V]``, depth 0."""
    pos = torch.cat([ndc * w[:, None], torch.zeros_like(w)[:, None], w[:, None]], 1)
    return pos.float()[None]
