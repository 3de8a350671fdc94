"""Stage 7 of the stand-in head: the 68-point landmark embedding.

51 static points (iBUG 17..67): brows, nose, eyes and outer lips placed by rays
along -z, inner lips on the lip-edge rings so they part when the jaw opens; and
the 17-point jaw contour traced on the silhouette for each of DECA's 79 yaw
bins (:func:`yaw_of_bin`). Each point is a face index with barycentrics.
"""

from __future__ import annotations

import numpy as np

from ..model import N_YAW_BINS
from .anatomy import EYE_CENTRES, MOUTH_Y
from .mesh import N_LON, _Geometry


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
    """A face holding vertex ``vid`` and the barycentrics that pick that vertex."""
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
    """Vertices the jaw contour may use: in front of the ears, between the mandible's
    lower edge and eye height, away from the ears, off the mouth interior."""
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
    """Jaw-contour faces [79,17] and barycentrics [79,17,3], one contour per yaw bin."""
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
