"""flame.FLAME against an independent float64 reference, and its properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

import flame
from flame import lbs


# ------------------------------------------------------------ the reference
def reference_flame(model, shape, expr, pose, eyelids=None):
    """FLAME written plainly in numpy float64, one sample at a time.

    pose: [5, 3] axis-angle (global, neck, jaw, eye L, eye R).
    Returns vertices [V, 3] and landmarks [68, 3].
    """
    ks, ke = len(shape), len(expr)
    v = model.v_template.astype(np.float64).copy()
    v += np.einsum("vck,k->vc", model.shapedirs[:, :, :ks], shape)
    v += np.einsum("vck,k->vc", model.exprdirs[:, :, :ke], expr)
    joints = model.J_regressor @ v
    rots = [Rotation.from_rotvec(p).as_matrix() for p in pose]
    feats = np.concatenate([(r - np.eye(3)).ravel() for r in rots[1:]])
    v_posed = v + np.einsum("vck,k->vc", model.posedirs, feats)
    if eyelids is not None:  # rest-pose offsets that move no joint
        v_posed += np.einsum("vck,k->vc", model.eyelids, eyelids)
    world = []
    for j, parent in enumerate(model.parents):
        local = np.eye(4)
        local[:3, :3] = rots[j]
        local[:3, 3] = joints[j] - (joints[parent] if parent >= 0 else 0.0)
        world.append(local if parent < 0 else world[parent] @ local)
    out = np.zeros_like(v)
    for i in range(len(v)):
        m = np.zeros((4, 4))
        for j in range(len(world)):
            unpose = np.eye(4)
            unpose[:3, 3] = -joints[j]
            m += model.lbs_weights[i, j] * (world[j] @ unpose)
        out[i] = (m @ np.append(v_posed[i], 1.0))[:3]
    # dynamic contour bin from the root @ neck rotation (DECA's rule)
    r = rots[0] @ rots[1]
    yaw = np.degrees(np.arctan2(-r[2, 0], np.hypot(r[0, 0], r[1, 0])))
    yaw *= float(model.metadata.get("contour_yaw_sign", "1"))
    a = int(np.round(min(yaw, 39.0)))
    b = a if a >= 0 else (78 if a < -39 else 39 - a)
    fi = np.concatenate([model.dynamic_lmk_faces_idx[b], model.static_lmk_faces_idx])
    bc = np.concatenate([model.dynamic_lmk_bary_coords[b], model.static_lmk_bary_coords])
    lmk = np.einsum("lkc,lk->lc", out[model.faces[fi]], bc)
    return out, lmk


def _inputs(rng, bsz, model, scale=0.4):
    return dict(
        shape=torch.tensor(rng.normal(size=(bsz, model.n_shape))),
        expression=torch.tensor(rng.normal(size=(bsz, model.n_expr - 1))),
        global_pose=torch.tensor(rng.normal(size=(bsz, 3)) * scale),
        neck_pose=torch.tensor(rng.normal(size=(bsz, 3)) * scale),
        jaw_pose=torch.tensor(rng.normal(size=(bsz, 3)) * scale),
        eye_pose=torch.tensor(rng.normal(size=(bsz, 6)) * scale),
        eyelids=torch.tensor(rng.uniform(size=(bsz, 2))),
    )


def _check_against_reference(model, layer, inputs, atol):
    out = layer(**{k: v.to(layer.v_template.dtype) for k, v in inputs.items()})
    for b in range(out.vertices.shape[0]):
        pose = torch.cat(
            [inputs[k][b] for k in ("global_pose", "neck_pose", "jaw_pose", "eye_pose")]
        ).reshape(5, 3)
        ref_v, ref_l = reference_flame(
            model,
            inputs["shape"][b].numpy(),
            inputs["expression"][b].numpy(),
            pose.numpy(),
            inputs["eyelids"][b].numpy(),
        )
        np.testing.assert_allclose(out.vertices[b].double().numpy(), ref_v, atol=atol, rtol=0)
        np.testing.assert_allclose(out.landmarks[b].double().numpy(), ref_l, atol=atol, rtol=0)


def test_matches_reference_float64(tiny_model):
    layer = flame.FLAME(tiny_model, dtype=torch.float64)
    _check_against_reference(
        tiny_model, layer, _inputs(np.random.default_rng(1), 4, tiny_model), 1e-12
    )


def test_matches_reference_with_negated_contour_yaw(tiny_model):
    tiny_model.metadata["contour_yaw_sign"] = "-1"  # smplx / FLAME_PyTorch convention
    layer = flame.FLAME(tiny_model, dtype=torch.float64)
    inputs = _inputs(np.random.default_rng(6), 4, tiny_model)
    _check_against_reference(tiny_model, layer, inputs, 1e-12)


def test_matches_reference_float32(tiny_model):
    layer = flame.FLAME(tiny_model)
    _check_against_reference(
        tiny_model, layer, _inputs(np.random.default_rng(2), 3, tiny_model), 2e-6
    )


def test_gradcheck_every_input(tiny_factory):
    model = tiny_factory(seed=3, n_v=12, n_f=16)
    layer = flame.FLAME(model, dtype=torch.float64)
    rng = np.random.default_rng(4)
    inputs = _inputs(rng, 2, model, scale=0.3)
    names = list(inputs)
    tensors = [inputs[k].clone().requires_grad_(True) for k in names]

    def f(*ts):
        out = layer(**dict(zip(names, ts)))
        return out.vertices, out.landmarks, out.joints

    assert torch.autograd.gradcheck(f, tensors, eps=1e-6, atol=1e-6)


def test_gradcheck_at_zero_pose(tiny_factory):
    model = tiny_factory(seed=5, n_v=10, n_f=12)
    layer = flame.FLAME(model, dtype=torch.float64)
    poses = [torch.zeros(1, n, dtype=torch.float64, requires_grad=True) for n in (3, 3, 3, 6)]

    def f(g, n, j, e):
        return layer(global_pose=g, neck_pose=n, jaw_pose=j, eye_pose=e).vertices

    assert torch.autograd.gradcheck(f, poses, eps=1e-6, atol=1e-6)


# ----------------------------------------------------------------- rodrigues
@given(
    st.lists(st.floats(-3.0, 3.0), min_size=3, max_size=3),
    st.sampled_from([1.0, 1e-3, 1e-6, 1e-9, 0.0]),
)
def test_rodrigues_matches_scipy(v, scale):
    rv = np.array(v) * scale
    got = lbs.rodrigues(torch.tensor(rv)).numpy()
    np.testing.assert_allclose(got, Rotation.from_rotvec(rv).as_matrix(), atol=1e-14)


def test_rodrigues_smooth_across_small_angle_threshold():
    axis = torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64)
    axis = axis / axis.norm()
    for t in (lbs.SMALL_ANGLE * (1 - 1e-9), lbs.SMALL_ANGLE * (1 + 1e-9)):
        rv = (axis * t).requires_grad_(True)
        r = lbs.rodrigues(rv)
        ref = Rotation.from_rotvec(rv.detach().numpy()).as_matrix()
        np.testing.assert_allclose(r.detach().numpy(), ref, atol=1e-15)
        assert torch.autograd.gradcheck(lbs.rodrigues, (rv,), eps=1e-7, atol=1e-7)
    zero = torch.zeros(3, dtype=torch.float32)
    np.testing.assert_array_equal(lbs.rodrigues(zero).numpy(), np.eye(3, dtype=np.float32))


# ---------------------------------------------------------------- properties
def test_neutral_returns_template(tiny_model):
    layer = flame.FLAME(tiny_model, dtype=torch.float64)
    out = layer()
    assert out.vertices.shape == (1, tiny_model.n_vertices, 3)
    np.testing.assert_allclose(out.vertices[0].numpy(), tiny_model.v_template, atol=1e-15)
    out4 = layer(shape=torch.zeros(4, 2, dtype=torch.float64))
    assert out4.vertices.shape[0] == 4 and out4.landmarks.shape == (4, 68, 3)


@given(seed=st.integers(0, 2**31 - 1))
def test_shape_and_expression_are_linear(tiny_factory, seed):
    model = tiny_factory(seed=seed % 7)
    layer = flame.FLAME(model, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(2, 4, generator=g, dtype=torch.float64)
    ea, eb = torch.randn(2, 3, generator=g, dtype=torch.float64)
    alpha, beta = 0.7, -1.3
    base = layer().vertices

    def v(s, e):
        return layer(shape=s[None], expression=e[None]).vertices - base

    lhs = v(alpha * a + beta * b, alpha * ea + beta * eb)
    rhs = alpha * v(a, ea) + beta * v(b, eb)
    torch.testing.assert_close(lhs, rhs, atol=1e-14, rtol=0)


def test_global_rotation_is_rigid(tiny_model):
    layer = flame.FLAME(tiny_model, dtype=torch.float64)
    rng = np.random.default_rng(8)
    shape = torch.tensor(rng.normal(size=(1, 4)))
    jaw = torch.tensor(rng.normal(size=(1, 3)) * 0.2)
    rest = layer(shape=shape, jaw_pose=jaw)
    # a pure yaw small enough to stay in the frontal contour bin 0
    rv = np.array([0.0, np.radians(0.3), 0.0])
    turned = layer(shape=shape, jaw_pose=jaw, global_pose=torch.tensor(rv)[None])
    r = torch.tensor(Rotation.from_rotvec(rv).as_matrix())
    j0 = rest.joints[0, 0]
    for a, b in ((rest.vertices, turned.vertices), (rest.landmarks, turned.landmarks)):
        torch.testing.assert_close(b[0], (a[0] - j0) @ r.T + j0, atol=1e-12, rtol=0)


def test_inputs_validated(tiny_model, tiny_factory):
    layer = flame.FLAME(tiny_model)
    with pytest.raises(ValueError, match="shape has 5 coefficients"):
        layer(shape=torch.zeros(1, 5))
    with pytest.raises(ValueError, match="batch size"):
        layer(shape=torch.zeros(2, 1), jaw_pose=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="jaw_pose must have shape"):
        layer(jaw_pose=torch.zeros(2, 4))
    with pytest.raises(TypeError, match="floating"):
        layer(jaw_pose=torch.zeros(2, 3, dtype=torch.long))
    no_lids = flame.FLAME(tiny_factory(eyelids=False))
    with pytest.raises(ValueError, match="no eyelid"):
        no_lids(eyelids=torch.zeros(1, 2))


def test_yaw_bins_follow_deca():
    yaw = torch.tensor([0.0, 0.4, 0.6, 12.0, 39.0, 70.0, -0.6, -1.0, -39.0, -39.4, -60.0])
    assert lbs.yaw_bins(yaw).tolist() == [0, 0, 1, 12, 39, 39, 40, 40, 78, 78, 78]


def test_validate_names_the_problem(tiny_factory):
    m = tiny_factory()
    m.faces[0, 0] = m.n_vertices
    with pytest.raises(ValueError, match="faces holds vertex indices out of range"):
        m.validate()
    m = tiny_factory()
    m.parents = np.array([-1, 0, 3, 1, 1])
    with pytest.raises(ValueError, match="parents must list"):
        m.validate()
    m = tiny_factory()
    m.posedirs = m.posedirs[:, :, :30]
    with pytest.raises(ValueError, match="posedirs must have 9"):
        m.validate()
    m = tiny_factory()
    m.dynamic_lmk_faces_idx = m.dynamic_lmk_faces_idx[:10]
    with pytest.raises(ValueError, match=r"dynamic_lmk_faces_idx must have shape \[79, 17\]"):
        m.validate()
    m = tiny_factory()
    m.v_template[3, 1] = np.nan
    with pytest.raises(ValueError, match="v_template contains NaN"):
        m.validate()


def test_contour_rotation_picks_the_bin(tiny_model):
    layer = flame.FLAME(tiny_model, dtype=torch.float64)
    yaw = np.radians(25.0)
    turned = layer(global_pose=torch.tensor([[0.0, yaw, 0.0]], dtype=torch.float64))
    rot = torch.tensor(Rotation.from_rotvec([0.0, yaw, 0.0]).as_matrix())[None]
    outside = layer(contour_rotation=rot)
    # same contour faces as the turned head, read on the unturned vertices
    j0 = turned.joints[0, 0]
    unturned = (turned.landmarks[0] - j0) @ rot[0] + j0
    torch.testing.assert_close(outside.landmarks[0], unturned, atol=1e-12, rtol=0)
    assert not torch.allclose(outside.landmarks[0, :17], layer().landmarks[0, :17])


def test_throughput_command_runs(tiny_model, tmp_path, capsys):
    from flame import throughput

    path = tmp_path / "tiny.safetensors"
    flame.save_model(tiny_model, path)
    assert throughput.main(["--flame", str(path), "--batch", "2", "--repeats", "1"]) == 0
    assert "forward+backward cpu ms" in capsys.readouterr().out
