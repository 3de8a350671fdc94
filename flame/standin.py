"""The bundled stand-in head: a FLAME-format model of our own making.

Real FLAME weights may not be redistributed, so this module builds, from
nothing but code, a head in the same format and of FLAME-like size that every
command can use offline:

- a closed surface (about 5k vertices, 10k faces) traced by rays
  from a point behind the mouth onto an implicit head (smooth unions of
  ellipsoids and round cones): cranium, face, tapered jaw and chin, neck,
  cheekbones, brow ridge, a nose standing 3.3 cm out of the cheeks (2 cm in
  front of the subnasale), eye sockets with eyeballs, lips with a folded-in
  mouth that opens with the jaw, and ears at the sides; metres, adult
  proportions (about 15 cm across the cheekbones, 15 cm head breadth, 24 cm
  crown to chin);
- model frame as FLAME: x to the subject's left, y up, z out of the face,
  origin between the ear canals (so the face lies within about 0.13 m of it);
- 300 shape and 100 expression modes, each a smooth displacement field of one
  standard deviation, sorted by variance; named modes first (head size, face
  width, nose size, jaw width, ... and mouth open, smile, brow raise, ...), then
  smooth random fields (names in ``metadata["shape_mode_names"]`` and
  ``metadata["expression_mode_names"]``, see ``flame.mode_names``);
- 5 joints (global at the neck base, neck at the skull base, jaw at the
  temporomandibular axis, two eyes at the eyeball centres) regressed from
  vertices, smooth skinning weights, small pose correctives;
- eyelid blendshapes (left, right; 1 = closed);
- a 68-point landmark embedding: 51 static points placed on the brows, nose,
  eyes and lips, and a 17-point jaw contour traced on the silhouette for each
  of DECA's 79 yaw bins;
- vertex masks of regions (face, nose, lips, eyeballs, ears, neck, scalp,
  mouth interior, eye regions).

The construction is deterministic (fixed seeds). :func:`bundled_model`
builds it once (about 3 s on 2 CPU cores) and caches it as safetensors in the user cache
directory (``$MINIRAST_CACHE`` or ``$XDG_CACHE_HOME/minirast`` or
``~/.cache/minirast``), written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from .model import N_YAW_BINS, FlameModel
from .storage import read_safetensors, save_model

#: Version of the construction; with a hash of this file it names the cache file.
VERSION = "1"

N_SHAPE = 300
N_EXPR = 100

# ---------------------------------------------------------------- landmarks
MOUTH_Y = -0.0545  # height of the lip line, and of the ray centre
RAY_CENTRE = np.array([0.0, MOUTH_Y, 0.0])
EYE_CENTRES = np.array([[0.032, 0.021, 0.071], [-0.032, 0.021, 0.071]])  # left, right
EYE_RADIUS = 0.0122
JOINTS = np.array(
    [
        [0.0, -0.125, -0.018],  # global: neck base
        [0.0, -0.045, -0.020],  # neck: skull base
        [0.0, -0.014, 0.012],  # jaw: temporomandibular axis
        EYE_CENTRES[0],
        EYE_CENTRES[1],
    ]
)
PARENTS = np.array([-1, 0, 1, 1, 1], dtype=np.int64)


# ------------------------------------------------------------ implicit head
def _ellipsoid(p: np.ndarray, c, r) -> np.ndarray:
    q = (p - np.asarray(c)) / np.asarray(r)
    k0 = np.linalg.norm(q, axis=-1)
    k1 = np.linalg.norm(q / np.asarray(r), axis=-1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-12)


def _round_cone(p: np.ndarray, a, b, ra: float, rb: float) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1) - (ra + (rb - ra) * t)


def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _ssub(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """a minus b, smoothly."""
    return -_smin(-a, b, k)


def _mirror(fn, p: np.ndarray) -> np.ndarray:
    """Evaluate a left-side primitive on both sides (x -> |x|)."""
    q = p.copy()
    q[..., 0] = np.abs(q[..., 0])
    return fn(q)


def head_sdf(p: np.ndarray) -> np.ndarray:
    """Approximate signed distance (negative inside) of the neutral head, [N,3] -> [N]."""
    cranium = _ellipsoid(p, (0.0, 0.030, -0.012), (0.076, 0.104, 0.098))
    face = _ellipsoid(p, (0.0, -0.006, 0.027), (0.066, 0.080, 0.064))
    # tapered jaw: narrower towards the chin
    q = p - np.array([0.0, -0.058, 0.030])
    taper = 1.0 - 0.38 * np.clip(q[..., 2] / 0.058, 0.0, 1.0)
    jaw = _ellipsoid(
        np.stack([q[..., 0] / taper, q[..., 1], q[..., 2]], -1), (0, 0, 0), (0.056, 0.046, 0.058)
    )
    chin = _ellipsoid(p, (0.0, -0.092, 0.07), (0.02, 0.012, 0.013))
    d = _smin(cranium, face, 0.02)
    d = _smin(d, jaw, 0.018)
    d = _smin(d, chin, 0.016)
    cheeks = _mirror(lambda s: _ellipsoid(s, (0.044, -0.035, 0.05), (0.02, 0.026, 0.03)), p)
    d = _smin(d, cheeks, 0.015)
    d = _smin(
        d, _mirror(lambda s: _ellipsoid(s, (0.051, 0.001, 0.054), (0.022, 0.013, 0.022)), p), 0.02
    )
    d = _smin(d, _round_cone(p, (-0.045, 0.037, 0.073), (0.045, 0.037, 0.073), 0.012, 0.012), 0.012)
    # neck: elliptic column, flat bottom at y = -0.17
    nq = p - np.array([0.0, 0.0, -0.02])
    radial = (np.hypot(nq[..., 0] / 0.054, nq[..., 2] / 0.058) - 1.0) * 0.054
    neck = np.maximum(radial, np.maximum(-0.17 - p[..., 1], p[..., 1] + 0.02))
    d = _smin(d, neck, 0.02)
    # orbits and eye openings, then the eyeballs
    d = _ssub(
        d, _mirror(lambda s: _ellipsoid(s, (0.033, 0.022, 0.101), (0.022, 0.015, 0.016)), p), 0.008
    )
    d = _ssub(
        d,
        _mirror(lambda s: _ellipsoid(s, (0.032, 0.021, 0.087), (0.0160, 0.0074, 0.012)), p),
        0.002,
    )
    d = np.minimum(
        d, _mirror(lambda s: np.linalg.norm(s - EYE_CENTRES[0], axis=-1) - EYE_RADIUS, p)
    )
    # nose: bridge, tip, alae
    nose = _round_cone(p, (0.0, 0.026, 0.085), (0.0, -0.015, 0.1065), 0.0068, 0.0085)
    nose = _smin(nose, _ellipsoid(p, (0.0, -0.019, 0.1035), (0.0105, 0.0100, 0.0110)), 0.004)
    alae = _mirror(lambda s: _ellipsoid(s, (0.0145, -0.026, 0.093), (0.0085, 0.0070, 0.0085)), p)
    nose = _smin(nose, alae, 0.004)
    d = _smin(d, nose, 0.006)
    # lips
    upper = _ellipsoid(p, (0.0, MOUTH_Y + 0.0045, 0.0870), (0.0225, 0.0046, 0.0085))
    lower = _ellipsoid(p, (0.0, MOUTH_Y - 0.0050, 0.0850), (0.0205, 0.0052, 0.0085))
    d = _smin(d, _smin(upper, lower, 0.002), 0.009)
    # ears with a concha
    ear = _mirror(lambda s: _ellipsoid(s, (0.078, 0.004, -0.010), (0.011, 0.031, 0.019)), p)
    ear = _ssub(
        ear,
        _mirror(lambda s: _ellipsoid(s, (0.088, 0.000, -0.006), (0.006, 0.012, 0.009)), p),
        0.003,
    )
    return _smin(d, ear, 0.006)


# ----------------------------------------------------------------- the mesh
def _ring_angles(n: int, lo: float, hi: float, density) -> np.ndarray:
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


def _trace(origin: np.ndarray, dirs: np.ndarray, sdf, r_max: float = 0.32) -> np.ndarray:
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


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _gauss(p: np.ndarray, c, s) -> np.ndarray:
    q = (p - np.asarray(c)) / np.asarray(s)
    return np.exp(-0.5 * (q * q).sum(-1))


def _both(p: np.ndarray, c, s) -> np.ndarray:
    """A Gaussian placed at c and at its mirror image."""
    c = np.asarray(c, dtype=float)
    m = c * np.array([-1.0, 1.0, 1.0])
    return _gauss(p, c, s) + _gauss(p, m, s)


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


# ---------------------------------------------------------------- weights
def _jaw_weight(g: _Geometry) -> np.ndarray:
    p = g.v
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    m = g.mouth_weight
    smooth = _smoothstep(MOUTH_Y + 0.012, MOUTH_Y - 0.022, y)
    # on the lips the split follows the mouth rings exactly
    split = np.where(g.side > 0, 0.0, np.where(g.side < 0, 1.0, 0.5))
    w = (1 - m) * smooth + m * split
    w *= _smoothstep(-0.025, 0.005, z)  # behind the ramus: head
    y_line = -0.106 + 0.35 * (0.04 - z)  # the lower edge of the mandible
    w *= _smoothstep(-0.012, 0.004, y - y_line)  # the neck stays
    w *= 1.0 - _smoothstep(0.06, 0.075, np.abs(x)) * _smoothstep(-0.04, -0.01, y)  # ears
    return w


def _skinning(g: _Geometry) -> np.ndarray:
    p = g.v
    w = np.zeros((len(p), 5))
    root = _smoothstep(-0.095, -0.15, p[:, 1])
    jaw = _jaw_weight(g) * (1 - root)
    eyes = []
    for c in EYE_CENTRES:
        d = np.linalg.norm(p - c, axis=1)
        eyes.append(
            (1 - _smoothstep(EYE_RADIUS + 0.0006, EYE_RADIUS + 0.0016, d)) * (p[:, 2] > c[2])
        )
    w[:, 0] = root
    w[:, 2] = jaw
    w[:, 3], w[:, 4] = eyes
    w[:, 3:] *= (1 - root - jaw)[:, None]
    w[:, 1] = 1.0 - w.sum(1)
    return w


def _regressor(v: np.ndarray) -> np.ndarray:
    """Rows: min-norm affine weights over nearby vertices that reproduce JOINTS exactly."""
    rows = np.zeros((len(JOINTS), len(v)))
    radius = [0.06, 0.07, 0.085, 0.02, 0.02]
    for j, (c, rad) in enumerate(zip(JOINTS, radius)):
        idx = np.nonzero(np.linalg.norm(v - c, axis=1) < rad)[0]
        a = np.vstack([v[idx].T, np.ones(len(idx))])  # 4 x k
        w0 = np.full(len(idx), 1.0 / len(idx))
        b = np.append(c, 1.0)
        w = w0 + a.T @ np.linalg.solve(a @ a.T, b - a @ w0)
        rows[j, idx] = w
    return rows


# ------------------------------------------------------------------ bases
def _random_fields(g: _Geometry, n: int, seed: int, region: np.ndarray, width: float) -> np.ndarray:
    """n smooth random normal-displacement fields [V,3,n], unit RMS over ``region``."""
    rng = np.random.default_rng(seed)
    pool = np.nonzero(region > 0.5)[0]
    centres = g.v[rng.choice(pool, size=min(160, len(pool)), replace=False)]
    d2 = ((g.v[:, None, :] - centres[None]) ** 2).sum(-1)
    phi = np.exp(-d2 / (2 * width**2))
    coeff = rng.normal(size=(len(centres), n))
    s = (phi @ coeff) * region[:, None]  # [V, n]
    s -= (s * region[:, None]).sum(0) / region.sum() * region[:, None]
    fields = g.smooth_normals[:, :, None] * s[:, None, :]
    rms = np.sqrt((fields**2).sum(1).mean(0))
    return fields / rms


def _rms(d: np.ndarray) -> float:
    return float(np.sqrt((d**2).sum(-1).mean()))


def _front(p: np.ndarray) -> np.ndarray:
    return _smoothstep(-0.01, 0.05, p[:, 2])


def _shape_modes(g: _Geometry) -> dict[str, np.ndarray]:
    p, n = g.v, g.smooth_normals
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    zero = np.zeros_like(x)
    front = _front(p)
    face_band = _smoothstep(0.07, 0.03, y) * _smoothstep(-0.13, -0.09, y)
    nose = _gauss(p, (0.0, -0.006, 0.104), (0.014, 0.022, 0.014)) * _smoothstep(0.08, 0.095, z)
    nose_anchor = np.array([0.0, -0.008, 0.085])
    lips = _gauss(p, (0.0, MOUTH_Y, 0.092), (0.02, 0.01, 0.01))
    mouth = _gauss(p, (0.0, MOUTH_Y, 0.088), (0.028, 0.012, 0.015))
    ears = _both(p, (0.08, 0.004, -0.01), (0.016, 0.03, 0.02))
    neck = _smoothstep(-0.085, -0.11, y)
    modes = {
        "head_size": 0.03 * p,
        "face_width": np.stack([0.06 * x * front * face_band, zero, zero], 1),
        "head_length": np.stack([zero, zero, 0.05 * z * _smoothstep(0.02, -0.03, z)], 1),
        "face_height": np.stack(
            [zero, 0.06 * (y - 0.02) * _smoothstep(0.03, -0.02, y) * front * (1 - neck), zero], 1
        ),
        "nose_size": 0.22 * (p - nose_anchor) * nose[:, None],
        "jaw_width": np.stack(
            [
                0.09
                * x
                * _smoothstep(-0.035, -0.075, y)
                * _smoothstep(-0.03, 0.01, z)
                * (1 - neck),
                zero,
                zero,
            ],
            1,
        ),
        "cranium_height": np.stack([zero, 0.05 * y * _smoothstep(0.03, 0.11, y), zero], 1),
        "face_depth": np.stack([zero, zero, 0.05 * z * front * face_band], 1),
        "chin_protrusion": 0.005
        * _gauss(p, (0.0, -0.09, 0.08), (0.015, 0.013, 0.015))[:, None]
        * np.array([0, -0.3, 1.0]),
        "cheekbones": 0.003 * (n * _both(p, (0.055, 0.003, 0.055), (0.012, 0.01, 0.012))[:, None]),
        "brow_ridge": 0.0028 * (n * _gauss(p, (0.0, 0.038, 0.085), (0.035, 0.008, 0.012))[:, None]),
        "nose_width": np.stack([0.18 * x * nose, zero, zero], 1),
        "nose_bridge": 0.003
        * _gauss(p, (0.0, 0.012, 0.095), (0.008, 0.014, 0.01))[:, None]
        * np.array([0, 0, 1.0]),
        "eye_spacing": np.stack(
            [
                0.003 * np.tanh(x / 0.008) * _both(p, (0.032, 0.021, 0.08), (0.016, 0.012, 0.015)),
                zero,
                zero,
            ],
            1,
        ),
        "lip_fullness": 0.0022 * n * lips[:, None],
        "mouth_width": np.stack([0.1 * x * mouth, zero, zero], 1),
        "ear_size": 0.15
        * (p - np.array([0.0, 0.004, -0.01]))
        * np.array([0.3, 1.0, 1.0])
        * ears[:, None],
        "neck_width": np.stack([0.06 * x * neck, zero, 0.06 * (z + 0.02) * neck], 1),
        "forehead_slope": np.stack([zero, zero, 0.006 * _smoothstep(0.045, 0.11, y) * front], 1),
    }
    return modes


def _expression_modes(g: _Geometry, jaw_w: np.ndarray) -> dict[str, np.ndarray]:
    p, n = g.v, g.smooth_normals
    x, y = p[:, 0], p[:, 1]
    zero = np.zeros_like(x)
    jaw = JOINTS[2]
    a = 0.14  # one unit opens the jaw by about 8 degrees
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    opened = (p - jaw) @ (rot - np.eye(3)).T * jaw_w[:, None]
    corner_l = (0.025, MOUTH_Y, 0.086)
    corner_r = (-0.025, MOUTH_Y, 0.086)
    s_c = (0.012, 0.012, 0.014)
    left = _gauss(p, corner_l, s_c)
    right = _gauss(p, corner_r, s_c)
    cheeks = _both(p, (0.04, -0.025, 0.07), (0.015, 0.015, 0.02))
    smile_l = left[:, None] * np.array([0.004, 0.005, -0.003]) + _gauss(
        p, (0.04, -0.025, 0.07), (0.015, 0.015, 0.02)
    )[:, None] * np.array([0.0, 0.002, 0.001])
    smile_r = right[:, None] * np.array([-0.004, 0.005, -0.003]) + _gauss(
        p, (-0.04, -0.025, 0.07), (0.015, 0.015, 0.02)
    )[:, None] * np.array([0.0, 0.002, 0.001])
    front = _front(p)
    brows = (
        _smoothstep(0.027, 0.036, y)
        * _smoothstep(0.09, 0.055, y)
        * front
        * _smoothstep(0.082, 0.062, np.abs(x))
    )
    inner_brows = _both(p, (0.016, 0.038, 0.088), (0.01, 0.01, 0.012))
    lips = _gauss(p, (0.0, MOUTH_Y, 0.092), (0.02, 0.011, 0.012))
    upper_lip = _gauss(p, (0.0, MOUTH_Y + 0.008, 0.093), (0.018, 0.006, 0.012)) * (g.side > 0)
    lower_lip = _gauss(p, (0.0, MOUTH_Y - 0.009, 0.09), (0.018, 0.007, 0.012)) * (g.side < 0)
    lower_lids = _both(p, (0.032, 0.013, 0.082), (0.012, 0.004, 0.01))
    nose = _gauss(p, (0.0, 0.01, 0.095), (0.012, 0.01, 0.012))
    modes = {
        "mouth_open": opened,
        "smile": smile_l + smile_r,
        "brow_raise": np.stack([zero, 0.006 * brows, 0.0005 * brows], 1),
        "frown": inner_brows[:, None]
        * np.array([1.0, 1.0, 1.0])
        * np.stack(
            [-0.0025 * np.tanh(x / 0.005), np.full_like(x, -0.003), np.full_like(x, 0.001)], 1
        ),
        "lip_pucker": lips[:, None] * np.stack([-0.25 * x, zero, np.full_like(x, 0.005)], 1),
        "mouth_stretch": np.stack(
            [0.15 * x * _gauss(p, (0.0, MOUTH_Y, 0.088), (0.03, 0.012, 0.015)), zero, zero], 1
        ),
        "cheek_puff": 0.004 * n * cheeks[:, None],
        "eye_squint": np.stack([zero, 0.0018 * lower_lids, zero], 1),
        "upper_lip_raise": np.stack([zero, 0.003 * upper_lip, 0.0006 * upper_lip], 1),
        "lower_lip_depress": np.stack([zero, -0.003 * lower_lip, 0.0008 * lower_lip], 1),
        "jaw_forward": np.stack([zero, zero, 0.004 * jaw_w], 1),
        "mouth_left": np.stack(
            [0.005 * _gauss(p, (0.0, MOUTH_Y, 0.088), (0.03, 0.015, 0.02)), zero, zero], 1
        ),
        "smile_left": smile_l,
        "smile_right": smile_r,
        "nose_wrinkle": np.stack([zero, 0.002 * nose, -0.001 * nose], 1),
    }
    return modes


def _eyelids(g: _Geometry) -> np.ndarray:
    p = g.v
    out = np.zeros((len(p), 3, 2))
    for k, c in enumerate(EYE_CENTRES):
        low = c[1] - 0.0052
        wx = _smoothstep(0.019, 0.013, np.abs(p[:, 0] - c[0]))
        wy = _smoothstep(c[1] + 0.016, c[1] + 0.009, p[:, 1]) * (p[:, 1] > low - 0.001)
        wz = p[:, 2] > c[2]
        w = wx * wy * wz
        out[:, 1, k] = -(p[:, 1] - low) * w
        out[:, 2, k] = 0.0012 * w
    return out


def _posedirs(g: _Geometry, w: np.ndarray) -> np.ndarray:
    """Small smooth correctives: 36 features (neck, jaw, eyes; 9 each)."""
    rng = np.random.default_rng(11)
    out = np.zeros((len(g.v), 3, 36))
    for jj, joint in enumerate((1, 2)):
        band = 4.0 * w[:, joint] * (1.0 - w[:, joint])  # where skinning blends
        for k in range(9):
            out[:, :, 9 * jj + k] = g.smooth_normals * (band * rng.normal() * 0.0015)[:, None]
    # opening the jaw (R[2,1] = sin a) thins the cheeks a little
    cheeks = _both(g.v, (0.05, -0.045, 0.05), (0.015, 0.015, 0.02))
    out[:, :, 9 + 7] += -0.004 * g.smooth_normals * cheeks[:, None]
    return out


# --------------------------------------------------------------- landmarks
def _ray_hits(v: np.ndarray, faces: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Front-most face hit by rays along -z through (x, y), with barycentrics."""
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    out_f = np.zeros(len(xy), dtype=np.int64)
    out_b = np.zeros((len(xy), 3))
    for i, (px, py) in enumerate(xy):
        # 2D barycentrics in the xy plane
        d = (b[:, 1] - c[:, 1]) * (a[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (a[:, 1] - c[:, 1])
        ok = np.abs(d) > 1e-14
        d = np.where(ok, d, 1.0)
        l0 = ((b[:, 1] - c[:, 1]) * (px - c[:, 0]) + (c[:, 0] - b[:, 0]) * (py - c[:, 1])) / d
        l1 = ((c[:, 1] - a[:, 1]) * (px - c[:, 0]) + (a[:, 0] - c[:, 0]) * (py - c[:, 1])) / d
        l2 = 1.0 - l0 - l1
        inside = ok & (l0 >= 0) & (l1 >= 0) & (l2 >= 0)
        zhit = np.where(inside, l0 * a[:, 2] + l1 * b[:, 2] + l2 * c[:, 2], -np.inf)
        f = int(np.argmax(zhit))
        if not np.isfinite(zhit[f]):
            raise RuntimeError(f"landmark ray at ({px}, {py}) hits nothing")
        out_f[i] = f
        out_b[i] = (l0[f], l1[f], l2[f])
    return out_f, out_b


def _vertex_embedding(faces: np.ndarray, vid: int) -> tuple[int, np.ndarray]:
    f = int(np.nonzero((faces == vid).any(1))[0][0])
    bary = (faces[f] == vid).astype(float)
    return f, bary


def _static_landmarks(g: _Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Faces and barycentrics of iBUG points 17..67."""
    ey = EYE_CENTRES[0, 1]
    pts: list[tuple[float, float]] = []
    brow_x = [0.058, 0.048, 0.037, 0.026, 0.015]
    brow_y = [0.034, 0.040, 0.043, 0.0425, 0.040]
    pts += [(-bx, by) for bx, by in zip(brow_x, brow_y)]  # 17-21, right brow, outer to inner
    pts += [(bx, by) for bx, by in zip(brow_x[::-1], brow_y[::-1])]  # 22-26
    pts += [(0.0, 0.024), (0.0, 0.011), (0.0, -0.002), (0.0, -0.018)]  # 27-30 bridge to tip
    pts += [
        (-0.0125, -0.0285),
        (-0.0065, -0.031),
        (0.0, -0.0325),
        (0.0065, -0.031),
        (0.0125, -0.0285),
    ]
    for ex, sign in ((-0.032, -1.0), (0.032, 1.0)):  # right eye 36-41, left eye 42-47
        outer, inner = ex + sign * 0.0148, ex - sign * 0.0148
        a, b = ex + sign * 0.0052, ex - sign * 0.0052  # outer / inner lid thirds
        if sign < 0:  # right eye: outer corner, upper lid outwards-in, inner corner, lower lid back
            pts += [(outer, ey), (a, ey + 0.0054), (b, ey + 0.0054), (inner, ey)]
            pts += [(b, ey - 0.0044), (a, ey - 0.0044)]
        else:  # left eye: inner corner, upper lid inwards-out, outer corner, lower lid back
            pts += [(inner, ey), (b, ey + 0.0054), (a, ey + 0.0054), (outer, ey)]
            pts += [(a, ey - 0.0044), (b, ey - 0.0044)]
    ym = MOUTH_Y
    outer_lips = [
        (-0.0255, ym + 0.0004), (-0.0165, ym + 0.0062), (-0.0062, ym + 0.0090), (0.0, ym + 0.0080),
        (0.0062, ym + 0.0090), (0.0165, ym + 0.0062), (0.0255, ym + 0.0004),
        (0.0165, ym - 0.0075), (0.0062, ym - 0.0102), (0.0, ym - 0.0106),
        (-0.0062, ym - 0.0102), (-0.0165, ym - 0.0075),
    ]  # fmt: skip
    pts += outer_lips  # 48-59
    f_static, b_static = _ray_hits(g.v, g.faces, np.array(pts))
    # inner lips 60-67 sit on the lip-edge rings so they part when the jaw opens
    upper = g.mouth_ring0 * N_LON + np.arange(N_LON)
    lower = (g.mouth_ring0 + 4) * N_LON + np.arange(N_LON)
    front_u = upper[g.v[upper, 2] > 0.05]
    front_l = lower[g.v[lower, 2] > 0.05]

    def nearest(ids: np.ndarray, xx: float) -> int:
        return int(ids[np.argmin(np.abs(g.v[ids, 0] - xx))])

    inner = [
        nearest(front_u, -0.02), nearest(front_u, -0.008), nearest(front_u, 0.0),
        nearest(front_u, 0.008), nearest(front_u, 0.02), nearest(front_l, 0.008),
        nearest(front_l, 0.0), nearest(front_l, -0.008),
    ]  # fmt: skip
    emb = [_vertex_embedding(g.faces, vid) for vid in inner]
    faces_idx = np.concatenate([f_static, [e[0] for e in emb]])
    bary = np.concatenate([b_static, np.stack([e[1] for e in emb])])
    return faces_idx, bary


def _contour_candidates(g: _Geometry) -> np.ndarray:
    p = g.v
    y, z = p[:, 1], p[:, 2]
    y_line = -0.106 + 0.35 * (0.04 - z)
    ok = (z > -0.012) & (y > y_line - 0.004) & (y < 0.03)
    ok &= (
        np.linalg.norm(
            p[:, None, :] - np.array([[0.078, 0.004, -0.01], [-0.078, 0.004, -0.01]]), axis=2
        ).min(1)
        > 0.028
    )
    ok &= ~g.mouth_inner
    return np.nonzero(ok)[0]


def yaw_of_bin(b: int) -> float:
    """Yaw in degrees that DECA's 79-bin map sends to bin ``b``."""
    return float(b) if b < 40 else float(39 - b)


def _dynamic_contour(g: _Geometry) -> tuple[np.ndarray, np.ndarray]:
    cand = _contour_candidates(g)
    pc = g.v[cand]
    centre = np.array([0.0, -0.008, 0.04])
    psi = np.radians((np.arange(17) - 8) * 10.5)
    faces_idx = np.zeros((N_YAW_BINS, 17), dtype=np.int64)
    bary = np.zeros((N_YAW_BINS, 17, 3))
    for b in range(N_YAW_BINS):
        t = np.radians(yaw_of_bin(b))
        e1 = np.array([np.cos(t), 0.0, np.sin(t)])  # R^T e_x for R = rot_y(t)
        e3 = np.array([-np.sin(t), 0.0, np.cos(t)])  # R^T e_z: towards the camera
        u = (pc - centre) @ e1
        near = (pc - centre) @ e3
        v = pc[:, 1] - centre[1]
        ang = np.arctan2(u, -v)  # 0 straight down, positive towards image right
        rad = np.hypot(u, v)
        for k in range(17):
            diff = np.abs(np.angle(np.exp(1j * (ang - psi[k]))))
            sel = np.nonzero(diff < np.radians(3.0))[0]
            # the outermost point; among near-equals (flat chin underside) the nearest
            score = rad[sel] * np.cos(diff[sel]) + 0.15 * near[sel]
            vid = int(cand[sel[np.argmax(score)]])
            faces_idx[b, k], bary[b, k] = _vertex_embedding(g.faces, vid)
    return faces_idx, bary


# ----------------------------------------------------------------- masks
def _masks(g: _Geometry, w: np.ndarray) -> dict[str, np.ndarray]:
    p = g.v
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    ear_d = np.linalg.norm(
        p[:, None, :] - np.array([[0.078, 0.004, -0.01], [-0.078, 0.004, -0.01]]), axis=2
    )
    ears = ear_d.min(1) < 0.033
    eye_l = w[:, 3] > 0.5
    eye_r = w[:, 4] > 0.5
    face = (z > 0.02) & (y < 0.075) & (y > -0.115) & ~ears
    masks = {
        "face": face,
        "nose": (_gauss(p, (0.0, -0.004, 0.1), (0.016, 0.024, 0.02)) > 0.35) & (z > 0.085),
        "lips": (_gauss(p, (0.0, MOUTH_Y, 0.09), (0.027, 0.011, 0.02)) > 0.3) & (z > 0.075),
        "mouth_interior": g.mouth_inner & (g.mouth_weight > 0.5),
        "left_eyeball": eye_l,
        "right_eyeball": eye_r,
        "left_eye_region": np.linalg.norm(p - EYE_CENTRES[0] - [0, 0, 0.012], axis=1) < 0.024,
        "right_eye_region": np.linalg.norm(p - EYE_CENTRES[1] - [0, 0, 0.012], axis=1) < 0.024,
        "left_ear": ears & (x > 0),
        "right_ear": ears & (x < 0),
        "neck": (y < -0.09) & ~face,
        "scalp": (y > 0.06) | ((z < -0.02) & (y > -0.04) & ~ears),
    }
    return {k: np.nonzero(v)[0].astype(np.int64) for k, v in masks.items()}


# ------------------------------------------------------------------ build
def _sorted_basis(named: dict[str, np.ndarray], random: np.ndarray, prefix: str):
    names = list(named) + [f"{prefix}{i}" for i in range(random.shape[2])]
    fields = [named[k] for k in named] + [random[:, :, i] for i in range(random.shape[2])]
    order = np.argsort([-_rms(f) for f in fields], kind="stable")
    return np.stack([fields[i] for i in order], axis=2), [names[i] for i in order]


def build_standin() -> FlameModel:
    """Build the stand-in head from scratch (deterministic; about a second)."""
    g = _Geometry()
    w = _skinning(g)
    named_s = _shape_modes(g)
    floor_s = min(_rms(f) for f in named_s.values())
    amp_s = floor_s * 0.9 * (np.arange(N_SHAPE - len(named_s)) + 1.0) ** -0.5
    rnd_s = _random_fields(g, N_SHAPE - len(named_s), 1, np.ones(len(g.v)), 0.03) * amp_s
    shapedirs, shape_names = _sorted_basis(named_s, rnd_s, "smooth_shape_")

    named_e = _expression_modes(g, w[:, 2])
    floor_e = min(_rms(f) for f in named_e.values())
    amp_e = floor_e * 0.9 * (np.arange(N_EXPR - len(named_e)) + 1.0) ** -0.5
    region = (
        _front(g.v) * _smoothstep(0.085, 0.06, g.v[:, 1]) * _smoothstep(-0.125, -0.1, g.v[:, 1])
    )
    rnd_e = _random_fields(g, N_EXPR - len(named_e), 2, region, 0.018) * amp_e
    exprdirs, expr_names = _sorted_basis(named_e, rnd_e, "smooth_expression_")

    static_f, static_b = _static_landmarks(g)
    dyn_f, dyn_b = _dynamic_contour(g)
    meta = {
        "name": "minirast stand-in head",
        "version": VERSION,
        "licence": "MIT (generated by flame.standin; not FLAME)",
        "shape_mode_names": json.dumps(shape_names),
        "expression_mode_names": json.dumps(expr_names),
    }
    model = FlameModel(
        v_template=g.v.astype(np.float32),
        faces=g.faces,
        shapedirs=shapedirs.astype(np.float32),
        exprdirs=exprdirs.astype(np.float32),
        posedirs=_posedirs(g, w).astype(np.float32),
        J_regressor=_regressor(g.v).astype(np.float32),
        parents=PARENTS.copy(),
        lbs_weights=w.astype(np.float32),
        static_lmk_faces_idx=static_f,
        static_lmk_bary_coords=static_b.astype(np.float32),
        dynamic_lmk_faces_idx=dyn_f,
        dynamic_lmk_bary_coords=dyn_b.astype(np.float32),
        full_lmk_faces_idx=np.concatenate([dyn_f[0], static_f]),
        full_lmk_bary_coords=np.concatenate([dyn_b[0], static_b]).astype(np.float32),
        eyelids=_eyelids(g).astype(np.float32),
        masks=_masks(g, w),
        metadata=meta,
    )
    return model.validate()


def cache_path() -> Path:
    """Where the generated stand-in head is cached."""
    root = os.environ.get("MINIRAST_CACHE")
    if root:
        base = Path(root)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "minirast"
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    return base / f"flame_standin_v{VERSION}_{digest}.safetensors"


@lru_cache(maxsize=1)
def _cached() -> FlameModel:
    path = cache_path()
    if path.is_file():
        try:
            arrays, meta = read_safetensors(path)
            model = FlameModel.from_arrays(arrays, meta).validate()
            if model.metadata.get("version") == VERSION:
                return model
        except Exception:  # a damaged cache is rebuilt below
            pass
    model = build_standin()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_model(model, path)
    except OSError:  # read-only home: keep the in-memory copy
        pass
    return model


def bundled_model() -> FlameModel:
    """The stand-in head (a fresh copy each call; built once, then cached)."""
    m = _cached()
    arrays = {k: np.array(v, copy=True) for k, v in m.to_arrays().items()}
    return FlameModel.from_arrays(arrays, dict(m.metadata))
