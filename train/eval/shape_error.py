"""Neutral-shape error: the paper's table 2 (NoW-style) on data with known shape.

The predicted and the true neutral heads (expression, pose and eyelids zero) are
aligned rigidly (rotation and translation, no scale: head size is part of the
shape) on their 68 landmarks, then every predicted vertex of the face region
is measured to the true mesh *surface*; the error of an image is the mean of
those distances, in millimetres (FLAME units are metres).

The face region is NoW's crop: template vertices within 95 mm of the nose tip
(landmark 30). The distance to the surface is exact (bounding-sphere pruning, tested against a
search of all triangles); the true surface is searched within 4 cm of the face
region, far more than any rigid alignment leaves between the two. The pruning tests
groups of nearby triangles first, then their members (:func:`face_clusters`).
"""

from __future__ import annotations

import torch

import flame

NOSE_TIP = 30  # index of the nose tip among the 68 landmarks
FACE_RADIUS_M = 0.095  # NoW's crop radius around the nose tip
#: the true surface is searched within this distance of the template's face region
SEARCH_MARGIN_M = 0.04
MM_PER_M = 1000.0


def rigid_align(source: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares rotation R and translation t with ``source @ R.T + t ~= target``.

    Args:
        source, target: ``[B,N,3]`` corresponding points (N >= 3, not collinear).
    Returns:
        ``R [B,3,3]`` (a proper rotation, det +1) and ``t [B,3]`` (Kabsch).
    """
    if source.shape != target.shape or source.dim() != 3 or source.shape[-1] != 3:
        raise ValueError(
            f"rigid_align: source and target must both be [B,N,3], got "
            f"{tuple(source.shape)} and {tuple(target.shape)}"
        )
    mu_s, mu_t = source.mean(1, keepdim=True), target.mean(1, keepdim=True)
    cov = (target - mu_t).transpose(1, 2) @ (source - mu_s)  # [B,3,3]
    u, _, vh = torch.linalg.svd(cov)
    det = torch.det(u @ vh)
    fix = torch.ones_like(u[:, 0])
    fix[:, 2] = torch.sign(det) + (det == 0).to(det.dtype)  # reflection -> rotation
    rot = u @ torch.diag_embed(fix) @ vh
    trans = mu_t[:, 0] - (rot @ mu_s[:, 0, :, None])[..., 0]
    return rot, trans


def _dot(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # by components: a reduction over a last dimension of 3 is several times slower
    return x[..., 0] * y[..., 0] + x[..., 1] * y[..., 1] + x[..., 2] * y[..., 2]


def point_triangle_distance(
    points: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor
) -> torch.Tensor:
    """Euclidean distance from points to triangles (broadcast over leading dims).

    ``points``, ``a``, ``b``, ``c``: ``[..., 3]``. The closest point is the projection
    onto the plane when it falls inside the triangle, otherwise the closest point
    of one of the three edges; degenerate triangles fall back to their edges.
    """
    ab, ac = b - a, c - a
    normal = torch.linalg.cross(ab, ac)
    area2 = _dot(normal, normal)
    safe = area2.clamp_min(torch.finfo(points.dtype).tiny)
    ap = points - a
    # barycentrics of the projection of the point onto the plane
    v = _dot(torch.linalg.cross(ap, ac), normal) / safe
    w = _dot(torch.linalg.cross(ab, ap), normal) / safe
    inside = (v >= 0) & (w >= 0) & (v + w <= 1) & (area2 > 0)
    plane = _dot(ap, normal).abs() / safe.sqrt()

    def segment(p0: torch.Tensor, p1: torch.Tensor) -> torch.Tensor:
        d = p1 - p0
        t = _dot(points - p0, d) / _dot(d, d).clamp_min(torch.finfo(d.dtype).tiny)
        closest = p0 + t.clamp(0, 1)[..., None] * d
        return (points - closest).norm(dim=-1)

    edges = torch.minimum(torch.minimum(segment(a, b), segment(b, c)), segment(c, a))
    return torch.where(inside, torch.minimum(plane, edges), edges)


def face_clusters(centroids: torch.Tensor, leaf: int = 16) -> torch.Tensor:
    """Triangles grouped by place: ``[K,M]`` int64 indices into ``centroids [F,3]``, each
    row one group of at most ``leaf`` nearby triangles, padded with -1.

    The leaves of a k-d split (halving along the widest axis of each group's centroids).
    Only the speed of :func:`point_surface_distance` depends on the grouping, never its
    result: the bounds it prunes with come from each group's actual triangles.
    """
    groups, todo = [], [torch.arange(len(centroids), device=centroids.device)]
    while todo:
        idx = todo.pop()
        if len(idx) <= leaf:
            groups.append(idx)
            continue
        pts = centroids[idx]
        axis = int((pts.amax(0) - pts.amin(0)).argmax())
        order = idx[torch.argsort(pts[:, axis], stable=True)]
        half = len(order) // 2
        todo += [order[half:], order[:half]]
    out = torch.full((len(groups), leaf), -1, dtype=torch.int64, device=centroids.device)
    for k, idx in enumerate(groups):
        out[k, : len(idx)] = idx
    return out


def point_surface_distance(
    points: torch.Tensor,
    vertices: torch.Tensor,
    faces: torch.Tensor,
    upper: torch.Tensor | None = None,
    clusters: torch.Tensor | None = None,
) -> torch.Tensor:
    """Exact distance ``[B,P]`` from ``points [B,P,3]`` to the triangles ``faces [F,3]``
    of ``vertices [B,V,3]``.

    Pruned, not approximated: a triangle with centroid c and bounding radius r
    (largest centroid-corner distance) is between ``|p - c| - r`` and ``|p - c| + r``
    from p, so only triangles whose lower bound is below an upper bound of the
    answer can hold the closest point; those are measured exactly. The bound is first
    applied to groups of nearby triangles (``clusters``, :func:`face_clusters` of the
    first mesh's centroids by default): a group with centre C holding every one of its
    triangles within R of C is at least ``|p - C| - R`` from p. ``upper [B,P]``: a known
    upper bound (e.g. the distance to a point of the surface); default: the smallest
    ``|p - C| + R`` over the groups.
    """
    tri = vertices[:, faces]  # [B,F,3,3]
    centroid = tri.mean(2)
    radius = (tri - centroid[:, :, None]).norm(dim=-1).amax(-1)  # [B,F]
    if clusters is None:
        clusters = face_clusters(centroid[0].float())
    member = clusters >= 0  # [K,M]
    idx = clusters.clamp_min(0)
    c32, r32 = centroid.float(), radius.float()
    mc = c32[:, idx]  # [B,K,M,3] member centroids
    weight = member.to(mc.dtype)[None, :, :, None]
    centre = (mc * weight).sum(2) / weight.sum(2)  # [B,K,3]
    reach = (mc - centre[:, :, None]).norm(dim=-1) + r32[:, idx]  # [B,K,M]
    reach = reach.masked_fill(~member, 0.0).amax(-1)  # [B,K]: every member within it
    to_group = torch.cdist(points.float(), centre)  # [B,P,K]
    if upper is None:
        upper = (to_group + reach[:, None]).amin(-1)
    upper = upper.float()
    # float32 bounds, loosened by a margin far above their rounding error
    margin = upper + 1e-5
    b, p, k = torch.nonzero(to_group - reach[:, None] <= margin[..., None], as_tuple=True)
    # every (point, member triangle) of the groups kept, then the per-triangle bound
    f = idx[k]  # [N,M]
    keep = member[k] & (
        (points.float()[b, p][:, None] - c32[b[:, None], f]).norm(dim=-1) - r32[b[:, None], f]
        <= margin[b, p][:, None]
    )
    row, col = torch.nonzero(keep, as_tuple=True)
    b, p, f = b[row], p[row], f[row, col]
    t = tri[b, f]
    dist = point_triangle_distance(points[b, p], t[:, 0], t[:, 1], t[:, 2])
    flat = b * points.shape[1] + p
    best = torch.full((points.shape[0] * points.shape[1],), float("inf"), dtype=dist.dtype)
    best = best.to(dist.device).scatter_reduce(0, flat, dist, "amin")
    return best.reshape(points.shape[:2])


def _vertex_rings(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """``[P,R]`` int64: for each of ``vertices [P]``, the rows of ``faces [F,3]`` that use
    it, padded with -1 (every vertex must be used by one face at least)."""
    rows = [torch.nonzero((faces == v).any(1)).flatten() for v in vertices.tolist()]
    if any(len(r) == 0 for r in rows):
        raise ValueError("a face-region vertex is on no searched triangle")
    out = torch.full((len(rows), max(len(r) for r in rows)), -1, dtype=torch.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


class NeutralShapeError:
    """Per-image neutral-shape error (mm) of predicted FLAME shape coefficients.

    Args:
        layer: the FLAME layer both shapes live in (stand-in or real FLAME).
    """

    def __init__(self, layer: flame.FLAME) -> None:
        self.layer = layer
        template = layer(shape=torch.zeros(1, 1, device=layer.v_template.device))
        nose = template.landmarks[0, NOSE_TIP]
        from_nose = (template.vertices[0] - nose).norm(dim=-1)
        self.face = torch.nonzero(from_nose <= FACE_RADIUS_M).flatten()
        near_face = from_nose <= FACE_RADIUS_M + SEARCH_MARGIN_M
        faces = layer.faces.long()
        #: the true surface searched: triangles with a corner near the face region
        self.search_faces = faces[near_face[faces].any(1)]
        #: per face-region vertex, the search triangles around it (padded with -1): the
        #: distance to them bounds the answer tightly from above
        self.rings = _vertex_rings(self.face, self.search_faces)
        #: groups of nearby search triangles, for the pruning of point_surface_distance
        self.clusters = face_clusters(template.vertices[0][self.search_faces].mean(1).float())

    def _ring_distance(self, points: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``[B,P]``: distance from each point to the true triangles around its vertex."""
        tri = target[:, self.search_faces[self.rings.clamp_min(0)]]  # [B,P,R,3,3]
        d = point_triangle_distance(points[:, :, None], tri[..., 0, :], tri[..., 1, :],
                                    tri[..., 2, :])  # fmt: skip
        return d.masked_fill(self.rings < 0, float("inf")).amin(-1)

    def neutral(self, shape: torch.Tensor) -> flame.layer.FlameOutput:
        return self.layer(shape=shape)

    @torch.no_grad()
    def __call__(
        self, pred_shape: torch.Tensor, true_shape: torch.Tensor, batch: int = 4
    ) -> torch.Tensor:
        """``[N]`` mean face-region vertex-to-surface distance in mm, per image.

        ``pred_shape [N,S1]`` and ``true_shape [N,S2]``: shape coefficients (missing
        trailing coefficients are zero).
        """
        if len(pred_shape) != len(true_shape):
            raise ValueError(f"{len(pred_shape)} predicted shapes but {len(true_shape)} true ones")
        dev = self.layer.v_template.device
        out = []
        for start in range(0, len(pred_shape), batch):
            pred = self.neutral(pred_shape[start : start + batch].to(dev))
            true = self.neutral(true_shape[start : start + batch].to(dev))
            rot, trans = rigid_align(pred.landmarks.double(), true.landmarks.double())
            aligned = pred.vertices.double() @ rot.transpose(1, 2) + trans[:, None]
            points, target = aligned[:, self.face], true.vertices.double()
            # the triangles around the same vertex of the true mesh: an upper bound
            upper = self._ring_distance(points, target)
            dist = point_surface_distance(points, target, self.search_faces, upper, self.clusters)
            out.append(dist.mean(-1).float().cpu() * MM_PER_M)
        return torch.cat(out)
