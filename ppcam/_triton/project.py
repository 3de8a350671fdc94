"""Triton project op: fused kernels of the pseudo-perspective projection, their
host functions and the autograd Function.

Forward (one kernel): ``p = R q + (tx, ty, 0)``, ``w = 1 + rho p_z``,
``(u, v) = S (p_x, p_y) / max(w, min_w)`` and the validity flag ``w > min_w``.

Backward (one kernel): the analytic gradients of docs/design.md section 3 for every
point (``dL/dq = R^T dL/dp``) plus, per block of points, partial sums of the
per-batch gradients (scale, rho, tx, ty and the 9 entries of R). The partials
are summed in a fixed order afterwards (deterministic); with
``deterministic=False`` the kernel adds them with atomics instead.

Grid: ``(ceil(N / BLOCK), B)``; one program handles ``BLOCK`` points of one
batch element, so the per-batch parameters are scalars in registers.
Points and outputs are contiguous ``[B,N,3]`` / ``[B,N,2]``; offsets are int64
so that ``B * N * 3`` may exceed 2**31.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

from _common.codegen import kernel_spec

#: Points per program. 512 keeps the 13 block reductions of the backward cheap
#: and gives FLAME-sized meshes (N = 5023) 10 programs per batch element.
BLOCK = 512
NUM_WARPS = 4
#: Per-batch gradient slots written by the backward kernel.
N_PARAM_GRADS = 13  # scale, rho, tx, ty, R[0,0..2], R[1,0..2], R[2,0..2]


def arg_types(float_type: str) -> dict[str, str]:
    """Triton type of every kernel argument, by name, for points of ``float_type``
    (``"fp32"`` or ``"fp64"``): the compile checks derive each kernel's signature
    from it."""
    ptr = "*" + float_type
    names = ("q_ptr", "r_ptr", "s_ptr", "t_ptr", "rho_ptr", "uv_ptr", "guv_ptr", "gq_ptr")
    return {
        **dict.fromkeys(names, ptr),
        "gpar_ptr": ptr,
        "valid_ptr": "*i8",
        "N": "i32",
        "n_blocks": "i32",
        "min_w": "fp32",
    }


@triton.jit
def _camera_point(q_ptr, r_ptr, s_ptr, t_ptr, rho_ptr, b, offs, mask, min_w, HAS_ROT: tl.constexpr):
    """Load points q of batch element b and pose them: ``p = R q + (tx, ty, 0)``,
    ``w = 1 + rho p_z``. Returns (qx, qy, qz, px, py, pz, w, 1/max(w, min_w), S, rho);
    ``q_ptr`` points at the batch element's first point."""
    base = offs * 3
    qx = tl.load(q_ptr + base, mask=mask, other=0.0)
    qy = tl.load(q_ptr + base + 1, mask=mask, other=0.0)
    qz = tl.load(q_ptr + base + 2, mask=mask, other=0.0)
    if HAS_ROT:
        r = r_ptr + b.to(tl.int64) * 9
        px = tl.load(r) * qx + tl.load(r + 1) * qy + tl.load(r + 2) * qz
        py = tl.load(r + 3) * qx + tl.load(r + 4) * qy + tl.load(r + 5) * qz
        pz = tl.load(r + 6) * qx + tl.load(r + 7) * qy + tl.load(r + 8) * qz
    else:
        px = qx
        py = qy
        pz = qz
    scale = tl.load(s_ptr + b)
    rho = tl.load(rho_ptr + b)
    px = px + tl.load(t_ptr + b * 2)
    py = py + tl.load(t_ptr + b * 2 + 1)
    w = 1.0 + rho * pz
    inv_w = 1.0 / tl.where(w < min_w, min_w, w)
    return qx, qy, qz, px, py, pz, w, inv_w, scale, rho


@triton.jit
def project_fwd_kernel(
    q_ptr,  # [B,N,3]
    r_ptr,  # [B,3,3] (ignored when HAS_ROT is False)
    s_ptr,  # [B]
    t_ptr,  # [B,2]
    rho_ptr,  # [B]
    uv_ptr,  # [B,N,2] out
    valid_ptr,  # [B,N] int8 out
    N,
    min_w,
    HAS_ROT: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid_n = tl.program_id(0)
    b = tl.program_id(1)
    offs = pid_n * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    row = b.to(tl.int64) * N
    qx, qy, qz, px, py, pz, w, inv_w, scale, rho = _camera_point(
        q_ptr + row * 3, r_ptr, s_ptr, t_ptr, rho_ptr, b, offs, mask, min_w, HAS_ROT
    )
    out = uv_ptr + (row + offs) * 2
    tl.store(out, scale * px * inv_w, mask=mask)
    tl.store(out + 1, scale * py * inv_w, mask=mask)
    tl.store(valid_ptr + row + offs, (w > min_w).to(tl.int8), mask=mask)


@triton.jit
def project_bwd_kernel(
    q_ptr,  # [B,N,3]
    r_ptr,  # [B,3,3]
    s_ptr,  # [B]
    t_ptr,  # [B,2]
    rho_ptr,  # [B]
    guv_ptr,  # [B,N,2] upstream gradient
    gq_ptr,  # [B,N,3] out
    gpar_ptr,  # [B, n_blocks, 13] partial sums out, or [B,13] zeros when ATOMIC
    N,
    n_blocks,
    min_w,
    HAS_ROT: tl.constexpr,
    ATOMIC: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid_n = tl.program_id(0)
    b = tl.program_id(1)
    offs = pid_n * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    row = b.to(tl.int64) * N
    qx, qy, qz, px, py, pz, w, inv_w, scale, rho = _camera_point(
        q_ptr + row * 3, r_ptr, s_ptr, t_ptr, rho_ptr, b, offs, mask, min_w, HAS_ROT
    )
    g = guv_ptr + (row + offs) * 2
    gu = tl.load(g, mask=mask, other=0.0)
    gv = tl.load(g + 1, mask=mask, other=0.0)

    a = gu * px + gv * py  # (gu, gv) . (p_x, p_y)
    gpx = gu * scale * inv_w
    gpy = gv * scale * inv_w
    # dL/dw; zero where w was clamped (w_eff does not depend on w there).
    gw = tl.where(w < min_w, 0.0, -scale * a * inv_w * inv_w)
    gpz = gw * rho
    if HAS_ROT:
        r = r_ptr + b.to(tl.int64) * 9
        r00 = tl.load(r)
        r01 = tl.load(r + 1)
        r02 = tl.load(r + 2)
        r10 = tl.load(r + 3)
        r11 = tl.load(r + 4)
        r12 = tl.load(r + 5)
        r20 = tl.load(r + 6)
        r21 = tl.load(r + 7)
        r22 = tl.load(r + 8)
        gqx = r00 * gpx + r10 * gpy + r20 * gpz
        gqy = r01 * gpx + r11 * gpy + r21 * gpz
        gqz = r02 * gpx + r12 * gpy + r22 * gpz
    else:
        gqx = gpx
        gqy = gpy
        gqz = gpz
    out = gq_ptr + (row + offs) * 3
    tl.store(out, gqx, mask=mask)
    tl.store(out + 1, gqy, mask=mask)
    tl.store(out + 2, gqz, mask=mask)

    # Per-batch gradients: block partial sums (masked lanes contribute zero).
    if ATOMIC:
        dst = gpar_ptr + b.to(tl.int64) * 13
    else:
        dst = gpar_ptr + (b.to(tl.int64) * n_blocks + pid_n) * 13
    _put(dst, 0, tl.sum(a * inv_w, axis=0), ATOMIC)  # dL/dS
    _put(dst, 1, tl.sum(gw * pz, axis=0), ATOMIC)  # dL/drho
    _put(dst, 2, tl.sum(gpx, axis=0), ATOMIC)  # dL/dtx
    _put(dst, 3, tl.sum(gpy, axis=0), ATOMIC)  # dL/dty
    if HAS_ROT:
        _put(dst, 4, tl.sum(gpx * qx, axis=0), ATOMIC)
        _put(dst, 5, tl.sum(gpx * qy, axis=0), ATOMIC)
        _put(dst, 6, tl.sum(gpx * qz, axis=0), ATOMIC)
        _put(dst, 7, tl.sum(gpy * qx, axis=0), ATOMIC)
        _put(dst, 8, tl.sum(gpy * qy, axis=0), ATOMIC)
        _put(dst, 9, tl.sum(gpy * qz, axis=0), ATOMIC)
        _put(dst, 10, tl.sum(gpz * qx, axis=0), ATOMIC)
        _put(dst, 11, tl.sum(gpz * qy, axis=0), ATOMIC)
        _put(dst, 12, tl.sum(gpz * qz, axis=0), ATOMIC)


@triton.jit
def _put(dst, k: tl.constexpr, value, ATOMIC: tl.constexpr):
    if ATOMIC:
        tl.atomic_add(dst + k, value)
    else:
        tl.store(dst + k, value)


def _grid(batch: int, n: int) -> tuple[int, int]:
    return (triton.cdiv(n, BLOCK), batch)


def project_forward(
    points: torch.Tensor,
    scale: torch.Tensor,
    trans: torch.Tensor,
    rho: torch.Tensor,
    rotation: torch.Tensor | None,
    min_w: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Launch the forward kernel on contiguous inputs; returns ``(uv, valid)``."""
    batch, n, _ = points.shape
    uv = torch.empty(batch, n, 2, dtype=points.dtype, device=points.device)
    valid = torch.empty(batch, n, dtype=torch.int8, device=points.device)
    if batch and n:
        project_fwd_kernel[_grid(batch, n)](
            points,
            points if rotation is None else rotation,
            scale,
            trans,
            rho,
            uv,
            valid,
            n,
            min_w,
            HAS_ROT=rotation is not None,
            BLOCK=BLOCK,
            num_warps=NUM_WARPS,
        )
    return uv, valid.bool()


def project_backward(
    grad_uv: torch.Tensor,
    points: torch.Tensor,
    scale: torch.Tensor,
    trans: torch.Tensor,
    rho: torch.Tensor,
    rotation: torch.Tensor | None,
    min_w: float,
    deterministic: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Launch the backward kernel; returns grads for (points, scale, trans, rho, rotation)."""
    batch, n, _ = points.shape
    n_blocks = triton.cdiv(n, BLOCK)
    grad_points = torch.empty_like(points)
    if deterministic:
        partial = torch.zeros(batch, max(n_blocks, 1), N_PARAM_GRADS, **_like(points))
    else:
        partial = torch.zeros(batch, 1, N_PARAM_GRADS, **_like(points))
    if batch and n:
        project_bwd_kernel[_grid(batch, n)](
            points,
            points if rotation is None else rotation,
            scale,
            trans,
            rho,
            grad_uv,
            grad_points,
            partial,
            n,
            n_blocks,
            min_w,
            HAS_ROT=rotation is not None,
            ATOMIC=not deterministic,
            BLOCK=BLOCK,
            num_warps=NUM_WARPS,
        )
    sums = partial.sum(dim=1)  # fixed-order reduction over blocks
    grad_rotation = None if rotation is None else sums[:, 4:13].reshape(batch, 3, 3)
    return grad_points, sums[:, 0], sums[:, 2:4], sums[:, 1], grad_rotation


def _like(t: torch.Tensor) -> dict:
    return {"dtype": t.dtype, "device": t.device}


class ProjectFunction(torch.autograd.Function):
    """Forward and analytic backward by the Triton kernels (first order only)."""

    @staticmethod
    def forward(ctx, points, scale, trans, rho, rotation, min_w, deterministic):
        points, scale, trans, rho = (t.contiguous() for t in (points, scale, trans, rho))
        rotation = None if rotation is None else rotation.contiguous()
        uv, valid = project_forward(points, scale, trans, rho, rotation, min_w)
        ctx.save_for_backward(points, scale, trans, rho, rotation)
        ctx.min_w = min_w
        ctx.deterministic = deterministic
        ctx.mark_non_differentiable(valid)
        return uv, valid

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_uv, _grad_valid):
        points, scale, trans, rho, rotation = ctx.saved_tensors
        g_points, g_scale, g_trans, g_rho, g_rot = project_backward(
            grad_uv.contiguous(),
            points,
            scale,
            trans,
            rho,
            rotation,
            ctx.min_w,
            ctx.deterministic,
        )
        need = ctx.needs_input_grad
        return (
            g_points if need[0] else None,
            g_scale if need[1] else None,
            g_trans if need[2] else None,
            g_rho if need[3] else None,
            g_rot if need[4] else None,
            None,
            None,
        )


def codegen_specs() -> list[dict]:
    """Every kernel configuration this module launches, for GPU code-generation checks."""
    specs = []
    for dtype in ("fp32", "fp64"):
        types = arg_types(dtype)
        for has_rot in (False, True):
            rot = "R" if has_rot else "noR"
            specs.append(
                kernel_spec(
                    f"project_fwd[{dtype},{rot}]",
                    project_fwd_kernel,
                    types,
                    {"HAS_ROT": has_rot, "BLOCK": BLOCK},
                    num_warps=NUM_WARPS,
                )
            )
            for atomic in (False, True):
                specs.append(
                    kernel_spec(
                        f"project_bwd[{dtype},{rot},{'atomic' if atomic else 'det'}]",
                        project_bwd_kernel,
                        types,
                        {"HAS_ROT": has_rot, "ATOMIC": atomic, "BLOCK": BLOCK},
                        num_warps=NUM_WARPS,
                    )
                )
    return specs
