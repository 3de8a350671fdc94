"""flame.FLAME against an independent float64 reference, and its properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, example, given
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

import flame
from flame import lbs
from flame.standin import yaw_of_bin


# ---------------------------------------------------------------- strategies
def tensors(rows: int, cols: int, bound: float) -> st.SearchStrategy[torch.Tensor]:
    """float64 tensors [rows, cols] with entries in [-bound, bound]."""
    entry = st.floats(-bound, bound, allow_nan=False, allow_infinity=False)
    row = st.lists(entry, min_size=cols, max_size=cols)
    return st.lists(row, min_size=rows, max_size=rows).map(
        lambda v: torch.tensor(v, dtype=torch.float64).reshape(rows, cols)
    )


def vectors(n: int, bound: float) -> st.SearchStrategy[torch.Tensor]:
    """float64 tensors [n] with entries in [-bound, bound]."""
    return tensors(1, n, bound).map(lambda t: t[0])


@st.composite
def tiny_inputs(draw, batch: int, pose: float = 0.5) -> dict[str, torch.Tensor]:
    """Every input of a tiny model's layer (4 shape, 3 expression coefficients,
    eyelids in [0, 1]), poses within ``pose`` radians per axis."""
    widths = {"shape": (4, 2.0), "expression": (3, 2.0), "global_pose": (3, pose)}
    widths.update(neck_pose=(3, pose), jaw_pose=(3, pose), eye_pose=(6, pose))
    out = {k: draw(tensors(batch, n, bound)) for k, (n, bound) in widths.items()}
    out["eyelids"] = draw(tensors(batch, 2, 1.0)).abs()
    return out


batched_inputs = st.integers(1, 3).flatmap(tiny_inputs)


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


@given(
    model_seed=st.integers(0, 6),
    a=vectors(4, 3.0),
    b=vectors(4, 3.0),
    ea=vectors(3, 3.0),
    eb=vectors(3, 3.0),
    alpha=st.floats(-2.0, 2.0),
    beta=st.floats(-2.0, 2.0),
)
def test_shape_and_expression_are_linear(tiny_factory, model_seed, a, b, ea, eb, alpha, beta):
    layer = flame.FLAME(tiny_factory(seed=model_seed), dtype=torch.float64)
    base = layer().vertices

    def v(s, e):
        return layer(shape=s[None], expression=e[None]).vertices - base

    lhs = v(alpha * a + beta * b, alpha * ea + beta * eb)
    rhs = alpha * v(a, ea) + beta * v(b, eb)
    torch.testing.assert_close(lhs, rhs, atol=1e-14, rtol=0)


@given(shape=tensors(1, 4, 2.0), jaw=tensors(1, 3, 0.3), rotvec=tensors(1, 3, 1.0))
def test_global_rotation_is_rigid(tiny_factory, shape, jaw, rotvec):
    layer = flame.FLAME(tiny_factory(), dtype=torch.float64)
    rest = layer(shape=shape, jaw_pose=jaw)
    r = torch.tensor(Rotation.from_rotvec(rotvec[0].numpy()).as_matrix())
    # contour_rotation = R^-1 keeps the contour in the rest pose's (frontal) bin
    turned = layer(shape=shape, jaw_pose=jaw, global_pose=rotvec, contour_rotation=r.T[None])
    j0 = rest.joints[0, 0]
    for a, b in (
        (rest.vertices, turned.vertices),
        (rest.landmarks, turned.landmarks),
        (rest.joints, turned.joints),
    ):
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


@given(st.floats(-89.0, 89.0))
def test_yaw_bin_holds_the_rounded_clamped_yaw(yaw):
    turned = lbs.rodrigues(torch.tensor([[0.0, np.radians(yaw), 0.0]], dtype=torch.float64))
    measured = lbs.yaw_degrees(turned)
    assert abs(float(measured[0]) - yaw) < 1e-9
    b = int(lbs.yaw_bins(torch.tensor([yaw], dtype=torch.float64))[0])
    assert 0 <= b < 79
    assert yaw_of_bin(b) == max(-39, min(39, round(yaw)))


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


@given(rotvec=tensors(1, 3, 1.0))
@example(rotvec=torch.tensor([[0.0, np.radians(25.0), 0.0]], dtype=torch.float64))
def test_contour_rotation_picks_the_bin(tiny_factory, rotvec):
    layer = flame.FLAME(tiny_factory(), dtype=torch.float64)
    turned = layer(global_pose=rotvec)
    rot = lbs.rodrigues(rotvec)  # as the layer turns the head: the same bin
    outside = layer(contour_rotation=rot)
    # same contour faces as the turned head, read on the unturned vertices
    j0 = turned.joints[0, 0]
    unturned = (turned.landmarks[0] - j0) @ rot[0] + j0
    torch.testing.assert_close(outside.landmarks[0], unturned, atol=1e-12, rtol=0)
    frontal = int(lbs.yaw_bins(lbs.yaw_degrees(rot))[0]) == 0
    assert torch.allclose(outside.landmarks[0, :17], layer().landmarks[0, :17]) == frontal


@given(
    batch=st.integers(1, 3),
    n_shape=st.integers(0, 4),
    n_expr=st.integers(0, 3),
    lids=st.booleans(),
)
def test_zero_inputs_give_the_template(tiny_factory, batch, n_shape, n_expr, lids):
    model = tiny_factory()
    layer = flame.FLAME(model, dtype=torch.float64)
    zeros = {"shape": n_shape, "expression": n_expr, "global_pose": 3, "neck_pose": 3}
    zeros.update(jaw_pose=3, eye_pose=6, **({"eyelids": 2} if lids else {}))
    out = layer(**{k: torch.zeros(batch, n, dtype=torch.float64) for k, n in zeros.items()})
    template = torch.from_numpy(model.v_template)
    torch.testing.assert_close(out.vertices, template.expand(batch, -1, -1), atol=1e-15, rtol=0)
    joints = torch.from_numpy(model.J_regressor @ model.v_template)
    torch.testing.assert_close(out.joints, joints.expand(batch, -1, -1), atol=1e-15, rtol=0)
    torch.testing.assert_close(out.landmarks, layer().landmarks.expand(batch, -1, -1))


@given(inputs=st.integers(2, 3).flatmap(tiny_inputs))
def test_batch_rows_are_independent(tiny_factory, inputs):
    layer = flame.FLAME(tiny_factory(), dtype=torch.float64)
    together = layer(**inputs)
    for i in range(inputs["shape"].shape[0]):
        alone = layer(**{k: v[i : i + 1] for k, v in inputs.items()})
        for a, b in zip(alone, together):
            torch.testing.assert_close(a[0], b[i], atol=1e-14, rtol=0)


def _near_a_bin_edge(inputs: dict[str, torch.Tensor], margin: float = 1e-3) -> bool:
    """Whether a head yaw (degrees) is within ``margin`` of a rounding edge (k + 1/2)."""
    rot = lbs.rodrigues(inputs["global_pose"]) @ lbs.rodrigues(inputs["neck_pose"])
    yaw = lbs.yaw_degrees(rot)
    return bool(((yaw - yaw.floor() - 0.5).abs() < margin).any())


@given(inputs=batched_inputs)
def test_double_agrees_with_float(tiny_factory, inputs):
    # a yaw on a bin edge may round to either bin in float32: another contour
    assume(not _near_a_bin_edge(inputs))
    single = flame.FLAME(tiny_factory())
    double = flame.FLAME(tiny_factory()).double()
    for a, b in zip(single(**inputs), double(**inputs)):
        assert a.dtype == torch.float32 and b.dtype == torch.float64
        torch.testing.assert_close(a.double(), b, atol=2e-6, rtol=0)


def test_throughput_command_runs(tiny_model, tmp_path, capsys):
    from flame import throughput

    path = tmp_path / "tiny.safetensors"
    flame.save_model(tiny_model, path)
    assert throughput.main(["--flame", str(path), "--batch", "2", "--repeats", "1"]) == 0
    assert "forward+backward cpu ms" in capsys.readouterr().out


def test_eyelids_posed_space_adds_after_skinning(tiny_factory):
    """``eyelid_space="posed"`` is SMIRK's FLAME: the eyelid offsets are added to the
    skinned vertices (and the landmarks follow them); at zero pose both spaces agree."""
    model = tiny_factory()
    posed = flame.FLAME(model, eyelid_space="posed").double()
    rest = flame.FLAME(model, eyelid_space="rest").double()
    rng = np.random.default_rng(3)
    pose = {
        "global_pose": torch.tensor(rng.normal(size=(3, 3)) * 0.4),
        "jaw_pose": torch.tensor(rng.normal(size=(3, 3)) * 0.1),
    }
    lids = torch.tensor(rng.uniform(size=(3, 2)))
    bare = posed(**pose).vertices
    offsets = torch.einsum("vck,bk->bvc", torch.tensor(model.eyelids, dtype=torch.float64), lids)
    got = posed(**pose, eyelids=lids)
    torch.testing.assert_close(got.vertices, bare + offsets)
    assert not torch.allclose(got.vertices, rest(**pose, eyelids=lids).vertices)
    zero = {"eyelids": lids}
    torch.testing.assert_close(posed(**zero).vertices, rest(**zero).vertices)
    if got.landmarks is not None:
        assert not torch.allclose(got.landmarks, posed(**pose).landmarks)


def test_eyelid_space_from_metadata_and_checked(tiny_factory):
    model = tiny_factory()
    assert flame.FLAME(model).eyelid_space == "rest"  # no metadata: the rest pose
    model.metadata["eyelid_space"] = "posed"
    assert flame.FLAME(model).eyelid_space == "posed"
    assert flame.FLAME(model, eyelid_space="rest").eyelid_space == "rest"
    with pytest.raises(ValueError, match="eyelid_space must be one of"):
        flame.FLAME(model, eyelid_space="after")
    model.metadata["eyelid_space"] = "sideways"
    with pytest.raises(ValueError, match="eyelid_space"):
        model.validate()
