"""Neutral-shape error: the paper's table 2 (NoW-style) on data with known shape.

The predicted and the true neutral heads (expression, pose and eyelids zero) are
aligned rigidly (rotation and translation, no scale: head size is part of the
shape) on their 68 landmarks, then every predicted vertex of the face region
is measured to the true mesh *surface*; the error of an image is the mean of
those distances, in millimetres (FLAME units are metres).

The face region is NoW's crop: template vertices within 95 mm of the nose tip
(landmark 30). The closest point of the true surface is searched among the
triangles around the ``k`` nearest true vertices; on a mesh aligned this
closely that is the exact distance (tested against all triangles).
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
    area2 = (normal * normal).sum(-1)
    safe = area2.clamp_min(torch.finfo(points.dtype).tiny)
    ap = points - a
    # barycentrics of the projection of the point onto the plane
    v = (torch.linalg.cross(ap, ac) * normal).sum(-1) / safe
    w = (torch.linalg.cross(ab, ap) * normal).sum(-1) / safe
    inside = (v >= 0) & (w >= 0) & (v + w <= 1) & (area2 > 0)
    plane = (ap * normal).sum(-1).abs() / safe.sqrt()

    def segment(p0: torch.Tensor, p1: torch.Tensor) -> torch.Tensor:
        d = p1 - p0
        t = ((points - p0) * d).sum(-1) / (d * d).sum(-1).clamp_min(torch.finfo(d.dtype).tiny)
        closest = p0 + t.clamp(0, 1)[..., None] * d
        return (points - closest).norm(dim=-1)

    edges = torch.minimum(torch.minimum(segment(a, b), segment(b, c)), segment(c, a))
    return torch.where(inside, torch.minimum(plane, edges), edges)


def vertex_faces(faces: torch.Tensor, n_vertices: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The faces around each vertex as a ragged list: ``(start [V], face_ids [3F])``;
    vertex ``v``'s faces are ``face_ids[start[v] : start[v + 1]]``."""
    owners = faces.reshape(-1)
    if int(owners.min()) < 0 or int(owners.max()) >= n_vertices:
        raise ValueError(f"faces index vertices outside [0, {n_vertices})")
    face_ids = torch.arange(len(faces), device=faces.device).repeat_interleave(3)
    order = torch.argsort(owners, stable=True)
    counts = torch.bincount(owners, minlength=n_vertices)
    return torch.cumsum(counts, 0) - counts, face_ids[order]


def point_surface_distance(
    points: torch.Tensor,
    vertices: torch.Tensor,
    faces: torch.Tensor,
    ring: tuple[torch.Tensor, torch.Tensor],
    k_nearest: int = 8,
    search: torch.Tensor | None = None,
) -> torch.Tensor:
    """Distance ``[B,P]`` from ``points [B,P,3]`` to the surfaces ``(vertices [B,V,3], faces)``.

    ``ring``: :func:`vertex_faces` of ``faces``. Candidates are the faces around the
    ``k_nearest`` vertices nearest to each point (ragged: poles have many faces),
    looked for among the vertex ids ``search`` (default: all).
    """
    start, face_ids = ring
    counts = torch.diff(start, append=start.new_tensor([len(face_ids)]))
    bsz, n_points = points.shape[:2]
    pool = vertices if search is None else vertices[:, search]
    k = min(k_nearest, pool.shape[1])
    # float32 is plenty to rank neighbours; the distances themselves keep the input dtype
    nearest = torch.cdist(points.float(), pool.float()).topk(k, dim=-1, largest=False).indices
    if search is not None:
        nearest = search[nearest]
    nearest = nearest.flatten()
    n_cand = counts[nearest]
    pair_owner = torch.repeat_interleave(torch.arange(len(nearest), device=points.device), n_cand)
    offset = torch.arange(len(pair_owner), device=points.device) - torch.repeat_interleave(
        torch.cumsum(n_cand, 0) - n_cand, n_cand
    )
    cand = face_ids[start[nearest][pair_owner] + offset]  # face id of every (point, face) pair
    point = pair_owner // k  # flat point index in [0, B*P)
    batch = point // n_points
    tri = vertices[batch[:, None], faces[cand]]  # [pairs,3,3]
    dist = point_triangle_distance(points.reshape(-1, 3)[point], tri[:, 0], tri[:, 1], tri[:, 2])
    best = torch.full((bsz * n_points,), float("inf"), dtype=dist.dtype, device=dist.device)
    return best.scatter_reduce(0, point, dist, "amin").reshape(bsz, n_points)


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
        self.search = torch.nonzero(from_nose <= FACE_RADIUS_M + SEARCH_MARGIN_M).flatten()
        self.faces = layer.faces.long()
        self.ring = vertex_faces(self.faces, template.vertices.shape[1])

    def neutral(self, shape: torch.Tensor) -> flame.layer.FlameOutput:
        return self.layer(shape=shape)

    @torch.no_grad()
    def __call__(
        self, pred_shape: torch.Tensor, true_shape: torch.Tensor, batch: int = 16
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
            dist = point_surface_distance(
                aligned[:, self.face],
                true.vertices.double(),
                self.faces,
                self.ring,
                search=self.search,
            )
            out.append(dist.mean(-1).float().cpu() * MM_PER_M)
        return torch.cat(out)
