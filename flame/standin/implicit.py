"""Stage 1 of the stand-in head: the implicit head.

An approximate signed distance (negative inside) of the neutral head, made of
smooth unions and differences of ellipsoids and round cones: cranium, face,
tapered jaw and chin, cheekbones, brow ridge, neck, eye sockets and eyeballs,
nose, lips and ears. :mod:`.mesh` traces rays onto it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from .anatomy import EYE_CENTRES, EYE_RADIUS, MOUTH_Y


def _ellipsoid(p: np.ndarray, c: ArrayLike, r: ArrayLike) -> np.ndarray:
    """Approximate signed distance to the ellipsoid of centre ``c`` and semi-axes ``r``."""
    q = (p - np.asarray(c)) / np.asarray(r)
    k0 = np.linalg.norm(q, axis=-1)
    k1 = np.linalg.norm(q / np.asarray(r), axis=-1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-12)


def _round_cone(p: np.ndarray, a: ArrayLike, b: ArrayLike, ra: float, rb: float) -> np.ndarray:
    """Signed distance to the round cone from ``a`` (radius ``ra``) to ``b`` (radius ``rb``)."""
    a, b = np.asarray(a), np.asarray(b)
    ab = b - a
    t = np.clip(((p - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1) - (ra + (rb - ra) * t)


def _smin(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Smooth minimum (union) of two distances, blended over ``k``."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _ssub(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """a minus b, smoothly."""
    return -_smin(-a, b, k)


def _mirror(fn: Callable[[np.ndarray], np.ndarray], p: np.ndarray) -> np.ndarray:
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
