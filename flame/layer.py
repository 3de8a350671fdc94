"""``flame.FLAME``: the FLAME head model as a torch module."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from _common.checks import check_tensor

from . import lbs as _lbs
from .model import FlameModel


class FlameOutput(NamedTuple):
    """Result of :class:`FLAME`.

    vertices: [B, V, 3] posed mesh in the model frame (metres).
    landmarks: [B, 68, 3] iBUG-68 landmarks (17 yaw-dependent jaw-contour
        points first, then the 51 static ones), or None when the model has no
        landmark embedding.
    joints: [B, J, 3] posed joint locations.
    """

    vertices: torch.Tensor
    landmarks: torch.Tensor | None
    joints: torch.Tensor


class FLAME(nn.Module):
    """FLAME (Li et al. 2017) as a differentiable layer.

    Args:
        model: a :class:`FlameModel` (see :func:`flame.load_model`) or a path /
            ``"bundled"``, passed to ``load_model``.
        n_shape: shape coefficients to use, at most this many (models with
            fewer use all they hold; FLAME has 300).
        n_expr: expression coefficients to use, at most this many (FLAME has 100).
        dtype: floating dtype of the buffers (``.double()`` etc. also work).

    ``forward`` takes, all optional (missing ones are zero, batch size from
    the others, or 1):

        shape [B, <= n_shape], expression [B, <= n_expr], global_pose [B, 3],
        neck_pose [B, 3], jaw_pose [B, 3], eye_pose [B, 6] (left eye then
        right eye), eyelids [B, 2] (left, right; 1 = closed; only for models
        with eyelid blendshapes).

    Eyelid blendshapes are added in the rest pose after joint regression, so
    they turn with the head and move no joint (SMIRK adds the same offsets
    after skinning, in the posed frame: identical at zero pose).

    The jaw-contour bin follows DECA's rule on the yaw of
    ``R_global @ R_neck`` (degrees, clamped to 39, 79 bins). The yaw sign is
    the model's ``metadata["contour_yaw_sign"]``: 1 (DECA / SMIRK code with
    DECA's ``landmark_embedding.npy``, and the stand-in head) or -1 (the
    smplx / FLAME_PyTorch code with ``flame_dynamic_embedding.npy``).

    Poses are axis-angle in radians in the model frame (x to the subject's
    left, y up, z out of the face). Fewer coefficients than the layer holds
    are allowed: the rest count as zero.
    """

    def __init__(
        self,
        model: FlameModel | str = "bundled",
        n_shape: int = 300,
        n_expr: int = 100,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if not isinstance(model, FlameModel):
            from .io import load_model

            model = load_model(model)
        model.validate()
        if n_shape < 0 or n_expr < 0:
            raise ValueError(f"n_shape and n_expr must be >= 0, got {n_shape}, {n_expr}")
        self.n_shape = min(int(n_shape), model.n_shape)
        self.n_expr = min(int(n_expr), model.n_expr)
        self.n_joints = model.n_joints
        if self.n_joints != 5:
            raise ValueError(
                f"FLAME needs 5 joints (global, neck, jaw, eyes), the model has {self.n_joints}"
            )
        self.parents = [int(p) for p in model.parents]
        self.has_eyelids = model.has_eyelids
        self.has_landmarks = model.has_landmarks
        n_v = model.n_vertices

        def buf(name: str, a: np.ndarray, floating: bool = True) -> None:
            t = torch.from_numpy(np.ascontiguousarray(a))
            self.register_buffer(name, t.to(dtype) if floating else t.to(torch.long))

        def flat(d: np.ndarray) -> np.ndarray:  # [V,3,K] -> [K, V*3]
            return d.reshape(n_v * 3, d.shape[2]).T

        blocks = [
            flat(model.shapedirs[:, :, : self.n_shape]),
            flat(model.exprdirs[:, :, : self.n_expr]),
        ]
        if model.eyelids is not None:
            buf("eyelid_dirs", flat(model.eyelids))
        buf("v_template", model.v_template)
        buf("dirs", np.concatenate(blocks, axis=0))
        buf("posedirs", flat(model.posedirs))
        buf("J_regressor", model.J_regressor)
        buf("lbs_weights", model.lbs_weights)
        buf("faces", model.faces, floating=False)
        if model.has_landmarks:
            buf("static_lmk_faces_idx", model.static_lmk_faces_idx, floating=False)
            buf("static_lmk_bary_coords", model.static_lmk_bary_coords)
            buf("dynamic_lmk_faces_idx", model.dynamic_lmk_faces_idx, floating=False)
            buf("dynamic_lmk_bary_coords", model.dynamic_lmk_bary_coords)
        # Kinematic chain from the neck to the root: its rotation picks the contour bin.
        chain = []
        j = 1 if self.n_joints > 1 else 0
        while j != -1:
            chain.append(j)
            j = self.parents[j]
        self.neck_chain = chain
        self.metadata = dict(model.metadata)
        self.contour_yaw_sign = float(model.metadata.get("contour_yaw_sign", "1"))

    def extra_repr(self) -> str:
        return (
            f"vertices={self.v_template.shape[0]}, faces={self.faces.shape[0]}, "
            f"n_shape={self.n_shape}, n_expr={self.n_expr}, eyelids={self.has_eyelids}"
        )

    def forward(
        self,
        shape: torch.Tensor | None = None,
        expression: torch.Tensor | None = None,
        global_pose: torch.Tensor | None = None,
        neck_pose: torch.Tensor | None = None,
        jaw_pose: torch.Tensor | None = None,
        eye_pose: torch.Tensor | None = None,
        eyelids: torch.Tensor | None = None,
        contour_rotation: torch.Tensor | None = None,
    ) -> FlameOutput:
        """Pose and shape the head; see the class docstring for the inputs.

        ``contour_rotation`` ([B, 3, 3], optional) picks the jaw-contour yaw bin
        for callers that rotate the head outside FLAME (e.g. a camera rotation
        expressed in the model frame): the bin then follows
        ``contour_rotation @ R_global @ R_neck`` instead of ``R_global @ R_neck``.
        """
        given = {
            "shape": shape,
            "expression": expression,
            "global_pose": global_pose,
            "neck_pose": neck_pose,
            "jaw_pose": jaw_pose,
            "eye_pose": eye_pose,
            "eyelids": eyelids,
        }
        sizes = {"global_pose": 3, "neck_pose": 3, "jaw_pose": 3, "eye_pose": 6, "eyelids": 2}
        present = {k: v for k, v in given.items() if v is not None}
        if contour_rotation is not None:
            present["contour_rotation"] = check_tensor(
                "contour_rotation", contour_rotation, ("B", 3, 3)
            )
        for k, v in present.items():
            if k != "contour_rotation":
                check_tensor(k, v, ("B", sizes.get(k)))
        if eyelids is not None and not self.has_eyelids:
            raise ValueError("eyelids given, but this FLAME model has no eyelid blendshapes")
        for k, limit in (("shape", self.n_shape), ("expression", self.n_expr)):
            v = present.get(k)
            if v is not None and v.shape[1] > limit:
                raise ValueError(
                    f"{k} has {v.shape[1]} coefficients, this FLAME layer holds {limit}"
                )
        batch = {v.shape[0] for v in present.values()}
        if len(batch) > 1:
            listed = ", ".join(f"{k}: {v.shape[0]}" for k, v in present.items())
            raise ValueError(f"inputs disagree on the batch size: {listed}")
        bsz = batch.pop() if batch else 1
        ref = self.v_template
        for k, v in present.items():
            if v.device != ref.device:
                raise ValueError(f"{k} is on {v.device}, the FLAME layer on {ref.device}")
        dtype, device = ref.dtype, ref.device

        def full(v: torch.Tensor | None, n: int) -> torch.Tensor:
            if v is None:
                return torch.zeros(bsz, n, dtype=dtype, device=device)
            v = v.to(dtype)
            if v.shape[1] < n:
                v = torch.cat([v, v.new_zeros(bsz, n - v.shape[1])], dim=1)
            return v

        coeffs = torch.cat([full(shape, self.n_shape), full(expression, self.n_expr)], dim=1)
        lids = None
        if eyelids is not None:
            lids = _lbs.blend_shapes(eyelids.to(dtype), self.eyelid_dirs)
        pose = torch.cat(
            [full(global_pose, 3), full(neck_pose, 3), full(jaw_pose, 3), full(eye_pose, 6)],
            dim=1,
        )
        pose = pose.reshape(bsz, 5, 3)
        vertices, joints, rot_mats = _lbs.lbs(
            coeffs,
            pose,
            self.v_template,
            self.dirs,
            self.posedirs,
            self.J_regressor,
            self.parents,
            self.lbs_weights,
            rest_offsets=lids,
        )
        landmarks = None
        if self.has_landmarks:
            extra = None if contour_rotation is None else contour_rotation.to(dtype)
            landmarks = self.landmarks(vertices, rot_mats, extra)
        return FlameOutput(vertices, landmarks, joints)

    def contour_bins(
        self, rot_mats: torch.Tensor, contour_rotation: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Dynamic-contour yaw bin [B] from joint rotations [B, J, 3, 3] (root @ neck),
        optionally left-multiplied by ``contour_rotation`` [B, 3, 3]."""
        rel = torch.eye(3, dtype=rot_mats.dtype, device=rot_mats.device).expand(
            rot_mats.shape[0], 3, 3
        )
        for j in self.neck_chain:
            rel = rot_mats[:, j] @ rel
        if contour_rotation is not None:
            rel = contour_rotation @ rel
        return _lbs.yaw_bins(self.contour_yaw_sign * _lbs.yaw_degrees(rel.detach()))

    def landmarks(
        self,
        vertices: torch.Tensor,
        rot_mats: torch.Tensor,
        contour_rotation: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """68 landmarks [B, 68, 3] of posed vertices; the contour by head yaw."""
        bsz = vertices.shape[0]
        bins = self.contour_bins(rot_mats, contour_rotation)
        faces_idx = torch.cat(
            [self.dynamic_lmk_faces_idx[bins], self.static_lmk_faces_idx.expand(bsz, -1)], dim=1
        )
        bary = torch.cat(
            [
                self.dynamic_lmk_bary_coords[bins],
                self.static_lmk_bary_coords.expand(bsz, -1, -1),
            ],
            dim=1,
        )
        return _lbs.vertices_to_landmarks(vertices, self.faces, faces_idx, bary)
