"""Stage 2 of the stand-in head: the neutral mesh.

Rays from a point behind the mouth (a latitude-longitude grid, denser towards
the face, with five close rings at the lip line) find the outermost crossing of
:func:`.implicit.head_sdf`; the grid becomes a closed surface with a pole fan at
the crown and one under the neck, and the five mouth rings fold in between the
lips so the mouth can open. :class:`_Geometry` holds the vertices and faces with
the labels (normals, mouth rings, sides of the lip line) the later stages read.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .anatomy import MOUTH_Y, RAY_CENTRE
from .fields import _smoothstep
from .implicit import head_sdf


def _ring_angles(
    n: int, lo: float, hi: float, density: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """n angles in (lo, hi) spaced inversely to ``density``."""
    t = np.linspace(lo, hi, 2001)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density(t[1:]) + density(t[:-1])) * np.diff(t))])
    target = np.linspace(0.0, cdf[-1], n + 2)[1:-1]
    return np.interp(target, cdf, t)


N_LON = 78
N_UP = 37  # rings above the mouth
N_DOWN = 25  # rings below
MOUTH_DELTA = 0.006  # angular spacing of the five mouth rings (radians)


def _grid_directions() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray directions [R, L, 3] (rings top to bottom), polar angles, azimuths."""
    eq = np.pi / 2
    gap = 2.5 * MOUTH_DELTA

    def dens_up(t):  # eyes, nose and lips get more rings than the crown
        return (
            0.45
            + 2.4 * np.exp(-(((t - 1.0) / 0.38) ** 2))
            + 1.2 * np.exp(-(((t - eq) / 0.12) ** 2))
        )

    def dens_down(t):
        return (
            0.5 + 1.8 * np.exp(-(((t - 1.9) / 0.3) ** 2)) + 1.2 * np.exp(-(((t - eq) / 0.12) ** 2))
        )

    up = _ring_angles(N_UP, 0.0, eq - gap, dens_up)
    mouth = eq + MOUTH_DELTA * np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    down = _ring_angles(N_DOWN, eq + gap, np.pi - 0.35, dens_down)
    theta = np.concatenate([up, mouth, down])
    u = np.arange(N_LON) / N_LON
    phi = 2 * np.pi * u - 0.66 * np.sin(2 * np.pi * u)  # denser towards the face
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    dirs = np.stack(
        [st * np.sin(phi), np.broadcast_to(ct, (len(theta), N_LON)), st * np.cos(phi)], -1
    )
    return dirs, theta, phi


def _trace(
    origin: np.ndarray,
    dirs: np.ndarray,
    sdf: Callable[[np.ndarray], np.ndarray],
    r_max: float = 0.32,
) -> np.ndarray:
    """Distance along each ray [N,3] to the outermost surface crossing of ``sdf``."""
    n = len(dirs)
    step = 0.0015
    r_out = np.full(n, r_max)
    r_in = np.full(n, np.nan)
    r = r_max
    alive = np.ones(n, dtype=bool)
    while r > 0 and alive.any():
        idx = np.nonzero(alive)[0]
        inside = sdf(origin + dirs[idx] * r) < 0
        hit = idx[inside]
        r_in[hit] = r
        alive[hit] = False
        r_out[idx[~inside]] = r
        r -= step
    if np.isnan(r_in).any():
        raise RuntimeError("stand-in head: a ray found no surface")
    lo, hi = r_in.copy(), r_out.copy()  # lo inside, hi outside
    for _ in range(24):
        mid = 0.5 * (lo + hi)
        inside = sdf(origin + dirs * mid[:, None]) < 0
        lo = np.where(inside, mid, lo)
        hi = np.where(inside, hi, mid)
    return 0.5 * (lo + hi)


def _faces(n_rings: int, n_lon: int, top: int, bottom: int) -> np.ndarray:
    """Triangles of a lat-long grid (ring-major vertices from 0) plus two pole fans."""
    faces = []
    j = np.arange(n_lon)
    jn = (j + 1) % n_lon
    for r in range(n_rings - 1):
        a, b = r * n_lon + j, r * n_lon + jn
        c, d = (r + 1) * n_lon + j, (r + 1) * n_lon + jn
        faces += [np.stack([a, c, b], 1), np.stack([b, c, d], 1)]
    faces.append(np.stack([np.full(n_lon, top), j, jn], 1))
    last = (n_rings - 1) * n_lon
    faces.append(np.stack([np.full(n_lon, bottom), last + jn, last + j], 1))
    return np.concatenate(faces).astype(np.int64)


def vertex_normals(v: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals [V,3]."""
    fn = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)


def _smoothed(values: np.ndarray, faces: np.ndarray, iterations: int) -> np.ndarray:
    """Unit vectors averaged over mesh neighbourhoods (``iterations`` rings)."""
    import scipy.sparse as sp

    n = len(values)
    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], np.arange(n)])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], np.arange(n)])
    adj = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
    adj = adj + adj.T
    adj = sp.diags(1.0 / np.asarray(adj.sum(1)).ravel()) @ adj
    out = values
    for _ in range(iterations):
        out = adj @ out
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-20)
    return out


class _Geometry:
    """The neutral mesh and the labels the bases and weights are built from."""

    def __init__(self) -> None:
        dirs, theta, phi = _grid_directions()
        n_rings = len(theta)
        flat = dirs.reshape(-1, 3)
        poles = np.array([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]])
        all_dirs = np.concatenate([flat, poles])
        r = _trace(RAY_CENTRE, all_dirs, head_sdf)
        v = RAY_CENTRE + all_dirs * r[:, None]
        ring = np.concatenate([np.repeat(np.arange(n_rings), N_LON), [-1, n_rings]])
        self.mouth_ring0 = N_UP  # first of the five mouth rings
        # fold the mouth in between the lips (the five mouth rings)
        grid = v[: n_rings * N_LON].reshape(n_rings, N_LON, 3)
        mid = grid[N_UP + 2]
        m = _smoothstep(0.0255, 0.0185, np.abs(mid[:, 0])) * (mid[:, 2] > 0.05)
        self.mouth_mask = m
        z_lip = mid[:, 2]
        targets = {
            0: (MOUTH_Y + 0.0003, None),
            1: (MOUTH_Y + 0.0016, z_lip - 0.009),
            2: (MOUTH_Y, z_lip - 0.021),
            3: (MOUTH_Y - 0.0016, z_lip - 0.009),
            4: (MOUTH_Y - 0.0003, None),
        }
        for k, (y, z) in targets.items():
            row = grid[N_UP + k]
            new = row.copy()
            new[:, 1] = y
            if z is not None:
                new[:, 2] = z
            grid[N_UP + k] = row + m[:, None] * (new - row)
        v[: n_rings * N_LON] = grid.reshape(-1, 3)
        self.v = v
        self.faces = _faces(n_rings, N_LON, n_rings * N_LON, n_rings * N_LON + 1)
        self.ring = ring
        self.n_rings = n_rings
        self.normals = vertex_normals(v, self.faces)
        self.smooth_normals = _smoothed(self.normals, self.faces, 40)
        lon = np.concatenate([np.tile(np.arange(N_LON), n_rings), [-1, -1]])
        in_mouth = (ring >= N_UP) & (ring <= N_UP + 4)
        self.mouth_weight = np.where(in_mouth, m[np.maximum(lon, 0)], 0.0)
        self.mouth_inner = in_mouth & (ring > N_UP) & (ring < N_UP + 4)
        # elevation sign relative to the lip line: above (+1), on it (0), below (-1)
        self.side = np.sign(N_UP + 2 - ring).astype(float)
        self.side[-2], self.side[-1] = 1.0, -1.0
