"""Stage 9 of the stand-in head: the UV layout (convention of :mod:`flame.uv`).

The mesh is a latitude-longitude grid of rays (:mod:`.mesh`), so it unwraps as a
warped spherical projection around the vertical axis: ``u`` follows the azimuth,
from the back of the head round the subject's right, the face, the subject's left
and back (the seam down the back of the head splits one column of vertices), and
``v`` the rings from the crown (top of the image) to under the neck. The widths of
the columns and the heights of the rows are fitted to the surface's own edge lengths
(least squares in logarithms), with the face at full resolution and the rest of the
head at :data:`BACK_DENSITY` of it, so the face takes a large part of the texture at
a nearly uniform texel density. The two pole fans get one pole UV per triangle.

The folded-in mouth (the faces between the five mouth rings where they fold in) is
a second island, unrolled by its own arc lengths at the face's density and placed
in a strip under the first. Each island is a lattice monotone in both directions,
so no UV triangle flips and none is degenerate.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .mesh import N_LON, N_UP, _Geometry

#: Linear texel density of the rest of the head relative to the face's.
BACK_DENSITY = 0.4
#: Empty margin around and between the islands, in texture units.
MARGIN = 0.01
#: The column of vertices down the back of the head (azimuth pi) where the seam runs.
SEAM_COLUMN = N_LON // 2
#: Weight of a cell's aspect ratio against its area in the fit of the spacing.
ASPECT_WEIGHT = 0.5
#: Weight of the smoothness of the spacing (first differences of its logarithm).
SMOOTHNESS = 0.3


def _uv_layout(g: _Geometry, face_vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The layout (``uvs`` float64 [T,2], ``uv_faces`` int64 [F,3]) of the mesh ``g``;
    ``face_vertices`` are the indices of the face region (full texel density)."""
    n_grid = g.n_rings * N_LON
    col = np.where(g.faces < n_grid, g.faces % N_LON, -1)  # -1 at the poles
    row = np.where(g.faces < n_grid, g.faces // N_LON, -1)
    cell = _cell_columns(col)
    # unwrapped column index k in [0, N_LON]: 0 and N_LON are the seam's two copies
    kc = (cell - SEAM_COLUMN) % N_LON
    k = (col - SEAM_COLUMN) % N_LON
    k = np.where(k < kc[:, None], k + N_LON, k)

    in_face = np.zeros(len(g.v), dtype=bool)
    in_face[face_vertices] = True
    mouth_cells = _mouth_cells(g)
    mouth = ((row >= N_UP) & (row <= N_UP + 4)).all(1) & mouth_cells[cell]

    du, dv, top, bottom, face_cols = _fit_spacing(g, in_face, mouth_cells)
    mouth_uv, mouth_size = _mouth_island(g, mouth_cells)
    # one scale for both islands, as large as the texture allows; width left over
    # goes to the columns off the face
    height = top + dv.sum() + bottom
    scale = min((1 - 2 * MARGIN) / du.sum(), (1 - 3 * MARGIN) / (height + mouth_size[1]))
    spare = (1 - 2 * MARGIN) / scale - du.sum()
    du = np.where(face_cols, du, du * (1 + spare / du[~face_cols].sum()))
    u_cols = MARGIN + scale * np.concatenate([[0.0], np.cumsum(du)])  # [N_LON + 1]
    v_rows = MARGIN + scale * (top + np.concatenate([[0.0], np.cumsum(dv)]))  # [n_rings]
    v_bottom = MARGIN + scale * height

    # UV vertex ids: main grid (row, k), then top-pole and bottom-pole copies per
    # cell column, then the mouth island's (ring - N_UP, k)
    n_main = g.n_rings * (N_LON + 1)
    n_k = N_LON + 1
    uv_id = row * n_k + k
    uv_id = np.where(row == -1, n_main + kc[:, None], uv_id)
    uv_id = np.where(g.faces == n_grid + 1, n_main + N_LON + kc[:, None], uv_id)
    uv_id = np.where(mouth[:, None], 2 * n_k + n_main + (row - N_UP) * n_k + k, uv_id)

    uvs = np.zeros((n_main + 2 * n_k + 5 * n_k, 2))
    uvs[:n_main, 0] = np.tile(u_cols, g.n_rings)
    uvs[:n_main, 1] = np.repeat(v_rows, n_k)
    centres = 0.5 * (u_cols[:-1] + u_cols[1:])
    uvs[n_main : n_main + N_LON] = np.stack([centres, np.full(N_LON, MARGIN)], 1)
    uvs[n_main + N_LON : n_main + 2 * N_LON] = np.stack([centres, np.full(N_LON, v_bottom)], 1)
    island = mouth_uv * scale  # [5, n_k, 2], origin at the island's top-left corner
    island[..., 0] += 0.5 - 0.5 * scale * mouth_size[0]
    island[..., 1] += v_bottom + MARGIN
    uvs[n_main + 2 * n_k :] = island.reshape(-1, 2)

    used, uv_faces = np.unique(uv_id, return_inverse=True)
    return uvs[used], uv_faces.reshape(uv_id.shape).astype(np.int64)


def _cell_columns(col: np.ndarray) -> np.ndarray:
    """The grid cell column c [F] of each face (it spans columns c and c + 1 mod N_LON),
    from the columns of its corners ([F,3], -1 at a pole)."""
    hi = col.max(1)
    lo = np.where(col >= 0, col, N_LON).min(1)
    return np.where(hi - lo == 1, lo, hi)  # else the pair (N_LON - 1, 0): c = N_LON - 1


def _mouth_cells(g: _Geometry) -> np.ndarray:
    """Boolean [N_LON]: cell columns where the mouth rings fold in (either side's column)."""
    folded = g.mouth_mask > 0
    return folded | np.roll(folded, -1)


def _fit_spacing(
    g: _Geometry, in_face: np.ndarray, mouth_cells: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, float, np.ndarray]:
    """Column widths [N_LON] (from the seam round the front) and row heights
    [n_rings - 1] in metres at the face's density, the heights of the top and
    bottom pole rows, and which columns hold a cell of the face (boolean [N_LON]).

    Each cell's area and aspect (mean horizontal over mean vertical edge length)
    should match the surface's, its area times :data:`BACK_DENSITY` squared off the
    face: least squares on the logarithms (:func:`_fit_logs`), the face's cells
    weighted 1 and the others 0.05, the mouth's folded cells left out.
    """
    n_r = g.n_rings
    grid = g.v[: n_r * N_LON].reshape(n_r, N_LON, 3)
    order = (SEAM_COLUMN + np.arange(N_LON)) % N_LON
    grid = grid[:, np.append(order, order[0])]  # [n_r, N_LON + 1, 3], seam to seam
    horiz = np.linalg.norm(np.diff(grid, axis=1), axis=2)  # [n_r, N_LON]
    vert = np.linalg.norm(np.diff(grid, axis=0), axis=2)  # [n_r - 1, N_LON + 1]
    aspect = (horiz[:-1] + horiz[1:]) / (vert[:, :-1] + vert[:, 1:])
    a, b, c, d = grid[:-1, :-1], grid[:-1, 1:], grid[1:, :-1], grid[1:, 1:]
    area = 0.5 * np.linalg.norm(np.cross(c - a, b - a), axis=2)
    area += 0.5 * np.linalg.norm(np.cross(c - d, b - d), axis=2)
    face = in_face[: n_r * N_LON].reshape(n_r, N_LON)[:, np.append(order, order[0])]
    face_cell = face[:-1, :-1] & face[:-1, 1:] & face[1:, :-1] & face[1:, 1:]
    density = np.where(face_cell, 1.0, BACK_DENSITY)
    weight = np.where(face_cell, 1.0, 0.05)
    rows = np.arange(n_r - 1)[:, None]
    folded = (rows >= N_UP) & (rows < N_UP + 4) & mouth_cells[order][None, :]
    weight = np.where(folded, 0.0, weight)
    log_w, log_h = _fit_logs(np.log(area * density**2), np.log(aspect), weight)
    poles = g.v[n_r * N_LON :]
    top = BACK_DENSITY * np.linalg.norm(grid[0] - poles[0], axis=1).mean()
    bottom = BACK_DENSITY * np.linalg.norm(grid[-1] - poles[1], axis=1).mean()
    return np.exp(log_w), np.exp(log_h), float(top), float(bottom), face_cell.any(0)


def _fit_logs(
    log_area: np.ndarray, log_aspect: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Log column widths [C] and row heights [R] whose products and ratios fit every
    cell's (area, width / height) [R, C] in weighted least squares on the logarithms
    (the aspect at :data:`ASPECT_WEIGHT`), with a weak first-difference smoothness term."""
    n_r, n_c = log_area.shape
    cells = np.arange(n_r * n_c)
    col = np.tile(np.arange(n_c), n_r)
    row = n_c + np.repeat(np.arange(n_r), n_c)
    w = np.sqrt(weight.ravel())
    area = sp.coo_matrix(
        (np.concatenate([w, w]), (np.concatenate([cells, cells]), np.concatenate([col, row]))),
        shape=(n_r * n_c, n_c + n_r),
    )
    wa = ASPECT_WEIGHT * w
    aspect = sp.coo_matrix(
        (np.concatenate([wa, -wa]), (np.concatenate([cells, cells]), np.concatenate([col, row]))),
        shape=(n_r * n_c, n_c + n_r),
    )
    smooth = sp.block_diag([_differences(n_c), _differences(n_r)]) * SMOOTHNESS
    a = sp.vstack([area, aspect, smooth]).tocsr()
    b = np.concatenate([w * log_area.ravel(), wa * log_aspect.ravel(), np.zeros(n_c + n_r - 2)])
    x = np.linalg.lstsq(a.toarray(), b, rcond=None)[0]
    return x[:n_c], x[n_c:]


def _differences(n: int) -> sp.spmatrix:
    """First differences [n - 1, n]."""
    return sp.diags([-np.ones(n - 1), np.ones(n - 1)], [0, 1], shape=(n - 1, n))


def _mouth_island(g: _Geometry, mouth_cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mouth's island before scaling: UVs [5, N_LON + 1, 2] in metres of (ring,
    unwrapped column), zero outside the island, and the island's (width, height)."""
    order = (SEAM_COLUMN + np.arange(N_LON + 1)) % N_LON
    cells = np.nonzero(mouth_cells[order[:-1]])[0]  # unwrapped cell columns
    first, last = cells[0], cells[-1] + 1  # vertex columns
    rings = g.v[N_UP * N_LON : (N_UP + 5) * N_LON].reshape(5, N_LON, 3)[:, order]
    seg = rings[:, first : last + 1]  # [5, m, 3]
    across = np.linalg.norm(np.diff(seg, axis=1), axis=2).mean(0)  # [m - 1]
    u = np.concatenate([[0.0], np.cumsum(across)])
    down = np.linalg.norm(np.diff(seg, axis=0), axis=2)  # [4, m]
    s = np.concatenate([np.zeros((1, seg.shape[1])), np.cumsum(down, axis=0)])
    height = s[-1].max()
    v = s + 0.5 * (height - s[-1])  # each column centred on the island's middle line
    out = np.zeros((5, N_LON + 1, 2))
    out[:, first : last + 1, 0] = u
    out[:, first : last + 1, 1] = v
    return out, np.array([u[-1], height])
