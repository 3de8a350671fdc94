"""``flame.FLAME``: the FLAME head model as a torch module."""

from __future__ import annotations

import dataclasses
import os
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from . import lbs as _lbs
from ._validate import forward_inputs, layer_inputs
from .model import EYELID_SPACES, FlameModel


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
        eyelid_space: ``"rest"``, ``"posed"`` or None (the model's choice), see below.
        uv_path: optional UV layout file (FLAME's ``FLAME_texture.npz`` or the
            template ``.obj``, see :func:`flame.uv_files.read_uv_layout`) that
            replaces the model's own layout.

    UV layout (:mod:`flame.uv`'s convention: ``u`` along the texture's width, ``v``
    down its height, ``v = 0`` at the first row): the buffers ``uvs`` [T, 2] (the
    layer's dtype) and ``uv_faces`` [F, 3] (int64; face k's UV triangle, corner for
    corner), or both None when the model has no layout (``has_uvs``). The stand-in
    head has one; for a real FLAME give ``uv_path`` or ``load_model(..., uv=...)``.

    ``forward`` takes, all optional (missing ones are zero, batch size from
    the others, or 1):

        shape [B, <= n_shape], expression [B, <= n_expr], global_pose [B, 3],
        neck_pose [B, 3], jaw_pose [B, 3], eye_pose [B, 6] (left eye then
        right eye), eyelids [B, 2] (left, right; 1 = closed; only for models
        with eyelid blendshapes).

    Eyelid blendshapes are added where ``eyelid_space`` says (default: the
    model's ``metadata["eyelid_space"]``, else ``"rest"``): ``"rest"`` in the
    rest pose after joint regression, so they turn with the head and move no
    joint; ``"posed"`` after skinning, in the posed model frame, exactly as
    SMIRK's FLAME does (``flame.load_model(..., eyelids=...)`` marks SMIRK's
    files so). The two agree at zero pose.

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
        eyelid_space: str | None = None,
        uv_path: str | os.PathLike | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(model, FlameModel):
            from .io import load_model

            model = load_model(model)
        if uv_path is not None:
            from .uv_files import read_uv_layout

            uvs, uv_faces = read_uv_layout(uv_path, model.faces)
            model = dataclasses.replace(model, uvs=uvs, uv_faces=uv_faces)
        layer_inputs(model, n_shape, n_expr)
        if eyelid_space is None:
            eyelid_space = model.metadata.get("eyelid_space", "rest")
        if eyelid_space not in EYELID_SPACES:
            raise ValueError(f"eyelid_space must be one of {EYELID_SPACES}, got {eyelid_space!r}")
        self.eyelid_space = eyelid_space
        self.n_shape = min(int(n_shape), model.n_shape)
        self.n_expr = min(int(n_expr), model.n_expr)
        self.n_joints = model.n_joints
        self.parents = [int(p) for p in model.parents]
        self.has_eyelids = model.has_eyelids
        self.has_landmarks = model.has_landmarks
        self.has_mediapipe = model.has_mediapipe
        #: the MediaPipe point (0..477) of each embedded point, [] without an embedding
        self.mediapipe_indices = (
            [int(i) for i in model.mp_landmark_indices] if model.has_mediapipe else []
        )
        self.has_uvs = model.has_uvs
        self._register_model(model, dtype)
        # Kinematic chain from the neck (joint 1) to the root: its rotation picks the contour bin.
        self.neck_chain = _chain_to_root(self.parents, 1)
        self.metadata = dict(model.metadata)
        self.contour_yaw_sign = float(model.metadata.get("contour_yaw_sign", "1"))

    def _register_model(self, model: FlameModel, dtype: torch.dtype) -> None:
        """The model's arrays as buffers (floating ones in ``dtype``), blendshapes as [K, V*3]."""
        blocks = [
            _flat(model.shapedirs[:, :, : self.n_shape]),
            _flat(model.exprdirs[:, :, : self.n_expr]),
        ]
        if model.eyelids is not None:
            self._buffer("eyelid_dirs", _flat(model.eyelids), dtype)
        self._buffer("v_template", model.v_template, dtype)
        self._buffer("dirs", np.concatenate(blocks, axis=0), dtype)
        self._buffer("posedirs", _flat(model.posedirs), dtype)
        self._buffer("J_regressor", model.J_regressor, dtype)
        self._buffer("lbs_weights", model.lbs_weights, dtype)
        self._buffer("faces", model.faces, torch.long)
        if model.has_uvs:
            self._buffer("uvs", model.uvs, dtype)
            self._buffer("uv_faces", model.uv_faces, torch.long)
        else:
            self.register_buffer("uvs", None)
            self.register_buffer("uv_faces", None)
        if model.has_landmarks:
            self._buffer("static_lmk_faces_idx", model.static_lmk_faces_idx, torch.long)
            self._buffer("static_lmk_bary_coords", model.static_lmk_bary_coords, dtype)
            self._buffer("dynamic_lmk_faces_idx", model.dynamic_lmk_faces_idx, torch.long)
            self._buffer("dynamic_lmk_bary_coords", model.dynamic_lmk_bary_coords, dtype)
        if model.has_mediapipe:  # not in state dicts: older checkpoints load unchanged
            for name, a, kind in (
                ("mp_lmk_faces_idx", model.mp_lmk_faces_idx, torch.long),
                ("mp_lmk_bary_coords", model.mp_lmk_bary_coords, dtype),
            ):
                t = torch.from_numpy(np.ascontiguousarray(a)).to(kind)
                self.register_buffer(name, t, persistent=False)

    def _buffer(self, name: str, a: np.ndarray, dtype: torch.dtype) -> None:
        self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(a)).to(dtype))

    def extra_repr(self) -> str:
        return (
            f"vertices={self.v_template.shape[0]}, faces={self.faces.shape[0]}, "
            f"n_shape={self.n_shape}, n_expr={self.n_expr}, eyelids={self.has_eyelids}"
            + (f", uvs={self.uvs.shape[0]}" if self.has_uvs else "")
            + (f", eyelid_space={self.eyelid_space!r}" if self.has_eyelids else "")
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
        bsz = forward_inputs(
            {
                "shape": shape,
                "expression": expression,
                "global_pose": global_pose,
                "neck_pose": neck_pose,
                "jaw_pose": jaw_pose,
                "eye_pose": eye_pose,
                "eyelids": eyelids,
            },
            contour_rotation,
            n_shape=self.n_shape,
            n_expr=self.n_expr,
            has_eyelids=self.has_eyelids,
            device=self.v_template.device,
        )
        dtype = self.v_template.dtype
        coeffs = torch.cat(
            [self._padded(shape, self.n_shape, bsz), self._padded(expression, self.n_expr, bsz)],
            dim=1,
        )
        lids = None
        if eyelids is not None:
            lids = _lbs.blend_shapes(eyelids.to(dtype), self.eyelid_dirs)
        rest_lids = lids if self.eyelid_space == "rest" else None
        pose = torch.cat(
            [
                self._padded(global_pose, 3, bsz),
                self._padded(neck_pose, 3, bsz),
                self._padded(jaw_pose, 3, bsz),
                self._padded(eye_pose, 6, bsz),
            ],
            dim=1,
        ).reshape(bsz, 5, 3)
        vertices, joints, rot_mats = _lbs.lbs(
            coeffs,
            pose,
            self.v_template,
            self.dirs,
            self.posedirs,
            self.J_regressor,
            self.parents,
            self.lbs_weights,
            rest_offsets=rest_lids,
        )
        if lids is not None and self.eyelid_space == "posed":
            vertices = vertices + lids
        landmarks = None
        if self.has_landmarks:
            extra = None if contour_rotation is None else contour_rotation.to(dtype)
            landmarks = self.landmarks(vertices, rot_mats, extra)
        return FlameOutput(vertices, landmarks, joints)

    def _padded(self, v: torch.Tensor | None, n: int, bsz: int) -> torch.Tensor:
        """``v`` [B, <= n] in the layer's dtype, zero-padded to n columns; zeros for None."""
        ref = self.v_template
        if v is None:
            return torch.zeros(bsz, n, dtype=ref.dtype, device=ref.device)
        v = v.to(ref.dtype)
        if v.shape[1] < n:
            v = torch.cat([v, v.new_zeros(bsz, n - v.shape[1])], dim=1)
        return v

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
        faces_idx, bary = _lbs.landmark_faces(
            self.contour_bins(rot_mats, contour_rotation),
            self.static_lmk_faces_idx,
            self.static_lmk_bary_coords,
            self.dynamic_lmk_faces_idx,
            self.dynamic_lmk_bary_coords,
        )
        return _lbs.vertices_to_landmarks(vertices, self.faces, faces_idx, bary)

    def mediapipe_landmarks(self, vertices: torch.Tensor) -> torch.Tensor:
        """The embedded MediaPipe points ``[B, N, 3]`` (N = 105 for SMIRK's file, in
        ``mediapipe_indices`` order) of posed ``vertices [B, V, 3]`` (e.g.
        ``out.vertices``); raises ``ValueError`` without an embedding."""
        if not self.has_mediapipe:
            raise ValueError("this FLAME model has no MediaPipe embedding (load_model(mediapipe=))")
        b = vertices.shape[0]
        faces_idx = self.mp_lmk_faces_idx.expand(b, -1)
        bary = self.mp_lmk_bary_coords.to(vertices.dtype).expand(b, -1, -1)
        return _lbs.vertices_to_landmarks(vertices, self.faces, faces_idx, bary)


def _flat(d: np.ndarray) -> np.ndarray:
    """Blendshapes [V, 3, K] as rows [K, V * 3]."""
    return d.reshape(d.shape[0] * 3, d.shape[2]).T


def _chain_to_root(parents: list[int], joint: int) -> list[int]:
    """``joint``, its parent, ... up to the root."""
    chain = []
    while joint != -1:
        chain.append(joint)
        joint = parents[joint]
    return chain
