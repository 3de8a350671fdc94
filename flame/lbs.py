"""Linear blend skinning for FLAME, written from the published formulation.

    v = LBS(T + B_S(beta) + B_E(psi) + B_P(theta), J(beta, psi), theta, W)

All functions are batch-first torch code, differentiable in every floating
input, and work in any floating dtype (the tests use float64).
"""

from __future__ import annotations

import torch

#: Below this rotation angle (radians) Rodrigues' coefficients use their
#: Taylor series; the series is exact to double precision there.
SMALL_ANGLE = 1e-2


def rodrigues(rotvec: torch.Tensor) -> torch.Tensor:
    """Rotation matrices from axis-angle vectors.

    Args:
        rotvec: [..., 3] axis times angle (radians).

    Returns:
        [..., 3, 3] rotation matrices, ``R = I + a K + b K^2`` with ``K`` the
        cross-product matrix of ``rotvec``, ``a = sin(t)/t`` and
        ``b = (1 - cos t)/t^2 = 2 sin^2(t/2)/t^2``. For ``t < SMALL_ANGLE`` both
        use their Taylor series in ``t^2``, so values and gradients are exact
        and finite at and near zero (no ``0/0``, no cancellation).
    """
    t2 = (rotvec * rotvec).sum(-1)
    small = t2 < SMALL_ANGLE**2
    t2_safe = torch.where(small, torch.ones_like(t2), t2)
    t = torch.sqrt(t2_safe)
    half = 0.5 * t
    a_exact = torch.sin(t) / t
    b_exact = 0.5 * (torch.sin(half) / half) ** 2
    a_series = 1.0 - t2 / 6.0 + t2 * t2 / 120.0
    b_series = 0.5 - t2 / 24.0 + t2 * t2 / 720.0
    a = torch.where(small, a_series, a_exact)[..., None, None]
    b = torch.where(small, b_series, b_exact)[..., None, None]
    x, y, z = rotvec.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1)
    k = k.reshape(*rotvec.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device)
    return eye + a * k + b * (k @ k)


def blend_shapes(coeffs: torch.Tensor, dirs_flat: torch.Tensor) -> torch.Tensor:
    """Linear blendshape offsets.

    Args:
        coeffs: [B, K] coefficients.
        dirs_flat: [K, V * 3] blendshapes, row k the flattened [V, 3] offset of
            coefficient k (``dirs[V,3,K]`` permuted and reshaped).

    Returns:
        [B, V, 3] offsets.
    """
    return (coeffs @ dirs_flat).reshape(coeffs.shape[0], -1, 3)


def regress_joints(j_regressor: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    """Joint locations [B, J, 3] from vertices [B, V, 3] and a [J, V] regressor."""
    return torch.einsum("jv,bvc->bjc", j_regressor, vertices)


def pose_features(rot_mats: torch.Tensor) -> torch.Tensor:
    """FLAME's pose-corrective features: (R_j - I) of joints 1.. flattened, [B, 9 (J - 1)]."""
    eye = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device)
    return (rot_mats[:, 1:] - eye).reshape(rot_mats.shape[0], -1)


def rigid_transforms(
    rot_mats: torch.Tensor, joints: torch.Tensor, parents: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward kinematics over the kinematic tree.

    Args:
        rot_mats: [B, J, 3, 3] local joint rotations.
        joints: [B, J, 3] rest-pose joint locations.
        parents: J parent indices, parents[0] = -1, parents[j] < j.

    Returns:
        posed_joints [B, J, 3] and the skinning transforms [B, J, 3, 4] that map
        a rest-pose point to its posed location for each joint
        (``G_j [R | t]`` with the rest joint location removed).
    """
    n_j = joints.shape[1]
    rel = joints.clone()
    if n_j > 1:
        rel[:, 1:] = joints[:, 1:] - joints[:, parents[1:]]
    rots: list[torch.Tensor] = []
    trans: list[torch.Tensor] = []
    for j in range(n_j):
        if j == 0:
            rots.append(rot_mats[:, 0])
            trans.append(rel[:, 0])
        else:
            p = parents[j]
            rots.append(rots[p] @ rot_mats[:, j])
            trans.append(trans[p] + (rots[p] @ rel[:, j, :, None])[..., 0])
    rot = torch.stack(rots, dim=1)
    posed = torch.stack(trans, dim=1)
    # A point x at rest goes to G_j (x - j_rest) for joint j.
    t_skin = posed - (rot @ joints[..., None])[..., 0]
    return posed, torch.cat([rot, t_skin[..., None]], dim=-1)


def skin(vertices: torch.Tensor, transforms: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Skin [B, V, 3] vertices with [B, J, 3, 4] transforms and [V, J] weights."""
    bsz, n_j = transforms.shape[:2]
    # one [V, J] @ [J, B * 12] product, then the 3x4 affine maps elementwise
    # (a batched 3x3 matmul per vertex is several times slower on CPU)
    flat = transforms.reshape(bsz, n_j, 12).permute(1, 0, 2).reshape(n_j, bsz * 12)
    t = (weights @ flat).reshape(-1, bsz, 3, 4).permute(1, 0, 2, 3)
    x, y, z = vertices.unbind(-1)
    tx, ty, tz, tt = t.unbind(-1)
    return tx * x[..., None] + ty * y[..., None] + tz * z[..., None] + tt


def lbs(
    offsets_coeffs: torch.Tensor,
    pose: torch.Tensor,
    v_template: torch.Tensor,
    dirs_flat: torch.Tensor,
    posedirs_flat: torch.Tensor,
    j_regressor: torch.Tensor,
    parents: list[int],
    weights: torch.Tensor,
    rest_offsets: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The full FLAME deformation.

    Args:
        offsets_coeffs: [B, K] blendshape coefficients (shape, expression, ...)
            matching the rows of ``dirs_flat``.
        pose: [B, J, 3] axis-angle per joint.
        v_template: [V, 3] template.
        dirs_flat: [K, V * 3] blendshapes.
        posedirs_flat: [9 (J - 1), V * 3] pose correctives.
        j_regressor: [J, V].
        parents: J parent indices.
        weights: [V, J] skinning weights.
        rest_offsets: optional [B, V, 3] offsets added in the rest pose after
            joint regression (so they are skinned but move no joint), e.g.
            eyelid blendshapes.

    Returns:
        vertices [B, V, 3], posed joints [B, J, 3], rotation matrices [B, J, 3, 3].
    """
    bsz = pose.shape[0]
    v_shaped = v_template + blend_shapes(offsets_coeffs, dirs_flat)
    joints = regress_joints(j_regressor, v_shaped)
    rot_mats = rodrigues(pose)
    v_posed = v_shaped + (pose_features(rot_mats) @ posedirs_flat).reshape(bsz, -1, 3)
    if rest_offsets is not None:
        v_posed = v_posed + rest_offsets
    posed_joints, transforms = rigid_transforms(rot_mats, joints, parents)
    return skin(v_posed, transforms, weights), posed_joints, rot_mats


def landmark_faces(
    bins: torch.Tensor,
    static_faces_idx: torch.Tensor,
    static_bary: torch.Tensor,
    dynamic_faces_idx: torch.Tensor,
    dynamic_bary: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The 68 landmark faces and barycentric coordinates of each image.

    Args:
        bins: [B] int64 dynamic-contour bin of each image (:func:`yaw_bins`).
        static_faces_idx: [51] faces of the static landmarks; static_bary: [51, 3].
        dynamic_faces_idx: [79, 17] contour faces per bin; dynamic_bary: [79, 17, 3].

    Returns:
        faces_idx [B, 68] and bary [B, 68, 3]: the 17 contour points first.
    """
    bsz = bins.shape[0]
    faces_idx = torch.cat([dynamic_faces_idx[bins], static_faces_idx.expand(bsz, -1)], dim=1)
    bary = torch.cat([dynamic_bary[bins], static_bary.expand(bsz, -1, -1)], dim=1)
    return faces_idx, bary


def vertices_to_landmarks(
    vertices: torch.Tensor, faces: torch.Tensor, faces_idx: torch.Tensor, bary: torch.Tensor
) -> torch.Tensor:
    """Landmarks as barycentric combinations of face corners.

    Args:
        vertices: [B, V, 3].
        faces: [F, 3] int64.
        faces_idx: [B, L] int64 face of each landmark.
        bary: [B, L, 3] barycentric coordinates.

    Returns:
        [B, L, 3].
    """
    bsz = vertices.shape[0]
    corner_idx = faces[faces_idx]  # [B, L, 3]
    batch = torch.arange(bsz, device=vertices.device)[:, None, None]
    corners = vertices[batch, corner_idx]  # [B, L, 3, 3]
    return (corners * bary[..., None]).sum(-2)


def yaw_degrees(rot: torch.Tensor) -> torch.Tensor:
    """Yaw (rotation about y) of [B, 3, 3] matrices in degrees, DECA's formula.

    ``atan2(-R[2,0], sqrt(R[0,0]^2 + R[1,0]^2))``: positive when the nose
    turns towards +x (the subject's left).
    """
    sy = torch.sqrt(rot[:, 0, 0] ** 2 + rot[:, 1, 0] ** 2)
    return torch.rad2deg(torch.atan2(-rot[:, 2, 0], sy))


def yaw_bins(yaw_deg: torch.Tensor) -> torch.Tensor:
    """DECA's yaw-to-bin map for the 79-bin dynamic contour, [B] int64.

    The yaw is clamped to at most 39 and rounded to whole degrees; bins 0..39
    hold yaw 0..39, bins 40..78 hold yaw -1..-39 (anything below -39 goes to 78).
    """
    y = torch.round(torch.clamp(yaw_deg, max=39.0)).to(torch.long)
    neg = torch.where(y < -39, torch.full_like(y, 78), 39 - y)
    return torch.where(y < 0, neg, y)
