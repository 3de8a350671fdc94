"""FLAME's 68 landmarks alone, fast: the part of the model they depend on.

A landmark is a barycentric combination of three posed vertices, so fitting
landmarks needs only the vertices of the landmark faces (static and every
dynamic contour bin: 584 of the stand-in head's 5,228) and the joints. The joints
are regressed from *all* vertices, but linearly: ``J = J_reg T + (J_reg dirs) c``
is precomputed once. The result equals ``flame.FLAME(...)(...).landmarks`` to
rounding (a test checks it) at about a tenth of the cost, which is what makes
fitting hundreds of images in parallel cheap.
"""

from __future__ import annotations

import torch

import flame
from flame import lbs


class LandmarkModel(torch.nn.Module):
    """``(shape, expression, global_pose, jaw_pose, eyelids) -> landmarks [N,68,3]``.

    Built from a :class:`flame.FLAME` layer (its coefficient counts, eyelid
    space and contour rule); buffers follow the layer's device and dtype. Neck
    and eye poses are zero (the fit's model, as SMIRK's). Inputs as the layer's:
    ``shape [N, n_shape]``, ``expression [N, n_expr]``, ``global_pose`` and
    ``jaw_pose [N, 3]`` axis-angle (model frame), ``eyelids [N, 2]`` or None;
    ``bins [N]`` the dynamic-contour bins (default: from the head's yaw). Fixing the
    bins makes the landmarks smooth in the pose (finite differences across a bin
    boundary would see a jump).
    """

    def __init__(self, layer: flame.FLAME) -> None:
        super().__init__()
        if not layer.has_landmarks:
            raise ValueError("the FLAME layer has no landmark embedding: nothing to fit")
        faces = layer.faces
        corners = [faces[layer.static_lmk_faces_idx], faces[layer.dynamic_lmk_faces_idx]]
        used = torch.cat([c.reshape(-1) for c in corners]).unique()
        remap = torch.full((layer.v_template.shape[0],), -1, dtype=torch.long)
        remap[used] = torch.arange(len(used))
        self.n_shape, self.n_expr = layer.n_shape, layer.n_expr
        self.parents = list(layer.parents)
        self.eyelid_space = layer.eyelid_space
        self.has_eyelids = layer.has_eyelids
        self.contour_yaw_sign = layer.contour_yaw_sign
        n_v = layer.v_template.shape[0]
        cols = (used[:, None] * 3 + torch.arange(3)).reshape(-1)  # flat [V*3] columns
        self.register_buffer("v_template", layer.v_template[used].clone())
        self.register_buffer("dirs", layer.dirs[:, cols].clone())
        self.register_buffer("posedirs", layer.posedirs[:, cols].clone())
        self.register_buffer("weights", layer.lbs_weights[used].clone())
        full_dirs = layer.dirs.reshape(-1, n_v, 3)
        self.register_buffer("joint_template", layer.J_regressor @ layer.v_template)
        self.register_buffer(
            "joint_dirs", torch.einsum("jv,kvc->kjc", layer.J_regressor, full_dirs).flatten(1)
        )
        if layer.has_eyelids:
            self.register_buffer("eyelid_dirs", layer.eyelid_dirs[:, cols].clone())
        # every face, its corners renumbered into the kept vertices (-1: a vertex not
        # kept; such faces hold no landmark and are never indexed)
        self.register_buffer("faces", remap[faces])
        self.register_buffer("static_faces_idx", layer.static_lmk_faces_idx.clone())
        self.register_buffer("static_bary", layer.static_lmk_bary_coords.clone())
        self.register_buffer("dynamic_faces_idx", layer.dynamic_lmk_faces_idx.clone())
        self.register_buffer("dynamic_bary", layer.dynamic_lmk_bary_coords.clone())

    def forward(
        self,
        shape: torch.Tensor,
        expression: torch.Tensor,
        global_pose: torch.Tensor,
        jaw_pose: torch.Tensor,
        eyelids: torch.Tensor | None = None,
        bins: torch.Tensor | None = None,
    ) -> torch.Tensor:
        n = shape.shape[0]
        dtype = self.v_template.dtype
        coeffs = torch.cat([_pad(shape, self.n_shape), _pad(expression, self.n_expr)], dim=1)
        coeffs = coeffs.to(dtype)
        v = self.v_template + lbs.blend_shapes(coeffs, self.dirs)
        joints = self.joint_template + lbs.blend_shapes(coeffs, self.joint_dirs)
        zero = torch.zeros_like(global_pose)
        pose = torch.stack([global_pose, zero, jaw_pose, zero, zero], dim=1).to(dtype)
        rot_mats = lbs.rodrigues(pose)
        v = v + (lbs.pose_features(rot_mats) @ self.posedirs).reshape(n, -1, 3)
        lids = None
        if eyelids is not None and self.has_eyelids:
            lids = lbs.blend_shapes(eyelids.to(dtype), self.eyelid_dirs)
            if self.eyelid_space == "rest":
                v = v + lids
        _, transforms = lbs.rigid_transforms(rot_mats, joints, self.parents)
        # only the corners of this image's landmark faces are skinned (204 vertices)
        if bins is None:
            bins = self.bins(rot_mats[:, 0])
        faces_idx, bary = lbs.landmark_faces(
            bins, self.static_faces_idx, self.static_bary, self.dynamic_faces_idx, self.dynamic_bary
        )
        corners = self.faces[faces_idx].reshape(n, -1)  # [N, 68*3]
        v = torch.gather(v, 1, corners[..., None].expand(-1, -1, 3))
        blend = torch.einsum("nvj,njk->nvk", self.weights[corners], transforms.flatten(2))
        blend = blend.reshape(n, -1, 3, 4)
        x, y, z = v.unbind(-1)  # elementwise: a batched 3x3 product per vertex is slower
        v = blend[..., 0] * x[..., None] + blend[..., 1] * y[..., None]
        v = v + blend[..., 2] * z[..., None] + blend[..., 3]
        if lids is not None and self.eyelid_space == "posed":
            v = v + torch.gather(lids, 1, corners[..., None].expand(-1, -1, 3))
        return (v.reshape(n, -1, 3, 3) * bary[..., None]).sum(-2)

    def bins(self, rotation: torch.Tensor) -> torch.Tensor:
        """The dynamic-contour bins ``[N]`` of head rotations ``[N, 3, 3]``."""
        return lbs.yaw_bins(self.contour_yaw_sign * lbs.yaw_degrees(rotation.detach()))


def _pad(v: torch.Tensor, n: int) -> torch.Tensor:
    """``v [N, <= n]`` zero-padded to ``n`` columns."""
    if v.shape[1] > n:
        raise ValueError(f"got {v.shape[1]} coefficients, the model holds {n}")
    if v.shape[1] < n:
        v = torch.cat([v, v.new_zeros(v.shape[0], n - v.shape[1])], dim=1)
    return v
