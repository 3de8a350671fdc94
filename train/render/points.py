"""Dense points and the iris of a FLAME head, posed cheaply: the model side of
``train.fit``'s dense and iris terms (:mod:`train.fit.dense`, which documents the iris
disc) and of the synthetic generator's ``dense=True`` points."""

from __future__ import annotations

import torch

import flame
from flame import lbs

#: depth of the iris plane in front of the eye joint (metres): sqrt(12^2 - 5.85^2) mm
IRIS_DEPTH = 0.0105
#: the human iris diameter (mm)
IRIS_MM = 11.7
#: the eye joints of MediaPipe's two irises (subject's right eye first)
EYE_JOINTS = (4, 3)
#: unit offsets of the iris points in the disc, per eye (model x, y): centre, nasal, up,
#: temporal, down; the right eye's nasal side is +x, the left eye's -x
_DISC = torch.tensor(
    [
        [[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]],
        [[0, 0], [-1, 0], [0, 1], [1, 0], [0, -1]],
    ],
    dtype=torch.float32,
)


class PointModel(torch.nn.Module):
    """``(shape, expression, global_pose, jaw_pose, eyelids, iris_diameter) -> (dense
    [N,105,3], iris [N,2,5,3])`` in the model frame, as
    :class:`train.fit.landmark_model.LandmarkModel` poses the 68: only the vertices of the
    embedded faces are skinned. ``iris_diameter [N]`` in model units (None: no iris);
    ``dense`` is None when the layer has no MediaPipe embedding. The iris disc: module
    docstring of :mod:`train.fit.dense`."""

    def __init__(self, layer: flame.FLAME) -> None:
        super().__init__()
        self.has_dense = layer.has_mediapipe
        self.n_shape, self.n_expr = layer.n_shape, layer.n_expr
        self.parents = list(layer.parents)
        self.eyelid_space = layer.eyelid_space
        self.has_eyelids = layer.has_eyelids
        n_v = layer.v_template.shape[0]
        if self.has_dense:
            corners = layer.faces[layer.mp_lmk_faces_idx]  # [105, 3]
        else:
            corners = torch.zeros(1, 3, dtype=torch.long)
        self.register_buffer("corners", corners.reshape(-1).clone())
        cols = (self.corners[:, None] * 3 + torch.arange(3)).reshape(-1)
        self.register_buffer("v_template", layer.v_template[self.corners].clone())
        self.register_buffer("dirs", layer.dirs[:, cols].clone())
        self.register_buffer("posedirs", layer.posedirs[:, cols].clone())
        self.register_buffer("weights", layer.lbs_weights[self.corners].clone())
        self.register_buffer("joint_template", layer.J_regressor @ layer.v_template)
        full_dirs = layer.dirs.reshape(-1, n_v, 3)
        self.register_buffer(
            "joint_dirs", torch.einsum("jv,kvc->kjc", layer.J_regressor, full_dirs).flatten(1)
        )
        if layer.has_eyelids:
            self.register_buffer("eyelid_dirs", layer.eyelid_dirs[:, cols].clone())
        bary = layer.mp_lmk_bary_coords if self.has_dense else torch.ones(1, 3) / 3
        self.register_buffer("bary", bary.clone())
        self.register_buffer("disc", _DISC.clone())

    def forward(self, shape, expression, global_pose, jaw_pose, eyelids=None, iris_diameter=None):
        n = shape.shape[0]
        dtype = self.v_template.dtype
        coeffs = torch.cat([_pad(shape, self.n_shape), _pad(expression, self.n_expr)], 1)
        coeffs = coeffs.to(dtype)
        joints = self.joint_template + lbs.blend_shapes(coeffs, self.joint_dirs)
        zero = torch.zeros_like(global_pose)
        pose = torch.stack([global_pose, zero, jaw_pose, zero, zero], dim=1).to(dtype)
        rot_mats = lbs.rodrigues(pose)
        posed_joints, transforms = lbs.rigid_transforms(rot_mats, joints, self.parents)
        dense = self._dense(coeffs, rot_mats, transforms, eyelids, n) if self.has_dense else None
        iris = None
        if iris_diameter is not None:
            eyes = transforms[:, list(EYE_JOINTS)]  # [N, 2, 4, 4]
            local = torch.cat(
                [
                    self.disc * (iris_diameter.to(dtype)[:, None, None, None] / 2),
                    torch.full((n, 2, 5, 1), IRIS_DEPTH, dtype=dtype, device=shape.device),
                ],
                -1,
            )  # [N, 2, 5, 3] in the eye's frame
            iris = torch.einsum("nerc,nepc->nepr", eyes[..., :3, :3], local)
            iris = iris + posed_joints[:, list(EYE_JOINTS), None]
        return dense, iris

    def _dense(self, coeffs, rot_mats, transforms, eyelids, n):
        v = self.v_template + lbs.blend_shapes(coeffs, self.dirs)
        v = v + (lbs.pose_features(rot_mats) @ self.posedirs).reshape(n, -1, 3)
        lids = None
        if eyelids is not None and self.has_eyelids:
            lids = lbs.blend_shapes(eyelids.to(v.dtype), self.eyelid_dirs)
            if self.eyelid_space == "rest":
                v = v + lids
        blend = torch.einsum("vj,njk->nvk", self.weights, transforms.flatten(2)).reshape(
            n, -1, 3, 4
        )
        v = (blend[..., :3] @ v[..., None])[..., 0] + blend[..., 3]
        if lids is not None and self.eyelid_space == "posed":
            v = v + lids
        return (v.reshape(n, -1, 3, 3) * self.bary[..., None]).sum(-2)


def _pad(v: torch.Tensor, n: int) -> torch.Tensor:
    """``v [N, <= n]`` zero-padded to ``n`` columns."""
    if v.shape[1] > n:
        raise ValueError(f"got {v.shape[1]} coefficients, the model holds {n}")
    return torch.cat([v, v.new_zeros(v.shape[0], n - v.shape[1])], dim=1)
