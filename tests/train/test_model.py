"""train.models.backbone and train.models.regressor: shapes, ranges, heads' inits, camera
switching, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import ppcam
from train.models.backbone import MobileNetBackbone
from train.models.regressor import (
    CAMERA_MODES,
    JAW_SIDE_LIMIT,
    PERSPECTIVE_TZ_INIT,
    RHO_INITS,
    SCALE_INIT,
    ZERO_INIT_RHO_FRACTION,
    FaceRegressor,
    Prediction,
    positive_scale,
)

B = 4


pytestmark = pytest.mark.usefixtures("single_thread")


def images(batch: int = B, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def make(**kwargs) -> FaceRegressor:
    torch.manual_seed(kwargs.pop("seed", 0))
    kwargs.setdefault("n_shape", 10)
    kwargs.setdefault("n_expr", 8)
    kwargs.setdefault("width", 0.5)
    return FaceRegressor(**kwargs)


# ---------------------------------------------------------------- backbone


@pytest.mark.parametrize("hw", [(32, 32), (64, 64), (40, 72)])
def test_backbone_any_size_at_least_32(hw):
    net = MobileNetBackbone()
    out = net(torch.rand(2, 3, *hw))
    assert out.shape == (2, net.out_features)
    assert torch.isfinite(out).all()


def test_backbone_width_scales_channels():
    small, base, large = (MobileNetBackbone(w) for w in (0.5, 1.0, 2.0))
    assert small.out_features < base.out_features < large.out_features
    count = [sum(p.numel() for p in n.parameters()) for n in (small, base, large)]
    assert count[0] < count[1] < count[2]
    assert MobileNetBackbone(in_channels=1)(torch.rand(2, 1, 32, 32)).shape[0] == 2


def test_backbone_bad_input():
    net = MobileNetBackbone()
    with pytest.raises(ValueError, match="at least 32x32"):
        net(torch.rand(2, 3, 31, 64))
    with pytest.raises(ValueError, match=r"shape \[B,3,H,W\]"):
        net(torch.rand(2, 4, 32, 32))
    with pytest.raises(TypeError, match="floating-point"):
        net(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    for width in (0, -1.0, "1", True):
        with pytest.raises(ValueError, match="width"):
            MobileNetBackbone(width)
    with pytest.raises(ValueError, match="in_channels"):
        MobileNetBackbone(in_channels=0)


# ---------------------------------------------------------------- regressor outputs


@pytest.mark.parametrize("camera", CAMERA_MODES)
def test_prediction_shapes_and_ranges(camera):
    model = make(camera=camera)
    pred = model(images())
    assert isinstance(pred, Prediction)
    expected = {
        "global_pose": (B, 3),
        "scale": (B,),
        "trans": (B, 2),
        "rho": (B,),
        "shape": (B, 10),
        "expression": (B, 8),
        "jaw_pose": (B, 3),
        "eyelids": (B, 2),
    }
    for name, shape in expected.items():
        value = getattr(pred, name)
        assert value.shape == shape, name
        assert value.dtype == torch.float32 and torch.isfinite(value).all(), name
    assert (pred.scale > 0).all()
    assert ((pred.eyelids >= 0) & (pred.eyelids <= 1)).all()
    assert (pred.jaw_pose[:, 0] >= 0).all()
    assert (pred.jaw_pose[:, 1:].abs() <= JAW_SIDE_LIMIT).all()
    if camera == "perspective":
        assert pred.focal.shape == (B,) and pred.tz.shape == (B,)
    else:
        assert pred.focal is None and pred.tz is None
    if camera == "ortho":
        assert torch.equal(pred.rho, torch.zeros(B))
    elif camera == "pseudo":
        assert ((pred.rho > 0) & (pred.rho < model.rho_max)).all()


def test_output_ranges_hold_for_large_head_outputs():
    """Clamps and ReLU hold whatever the linear layers output."""
    model = make(camera="pseudo")
    with torch.no_grad():
        for p in model.expression.head.parameters():
            p.normal_(0.0, 10.0)
        model.pose.pose_head.bias[3] = -50.0
        model.pose.rho_head.bias.fill_(80.0)
    pred = model(images())
    assert ((pred.eyelids >= 0) & (pred.eyelids <= 1)).all()
    assert (pred.jaw_pose[:, 0] >= 0).all() and (pred.jaw_pose[:, 1:].abs() <= 0.2).all()
    assert (pred.scale > 0).all()
    assert (pred.rho <= model.rho_max).all()


def test_initial_camera_smirk_init():
    model = make(camera="ortho")
    pred = model(images())
    assert torch.allclose(pred.scale, torch.full((B,), SCALE_INIT), atol=0.05)
    assert pred.global_pose.abs().max() < 0.05 and pred.trans.abs().max() < 0.05
    assert torch.equal(pred.shape, torch.zeros_like(pred.shape))  # zero-initialized
    assert pred.expression.abs().max() < 0.05


def test_initial_rho_paper_is_about_half_rho_max():
    # weights and bias 0.01: rho = rho_max * sigmoid(0.01 (1 + sum features)). The pooled
    # features of a freshly initialized backbone in training mode are BatchNorm-normalized
    # hardswish outputs of mean ~0.2, so the sum over the 64 or 128 features is O(10) and
    # the sigmoid stays within 0.5 +- 0.15.
    for width in (0.5, 1.0):
        model = make(camera="pseudo", rho_init="paper", rho_max=6.0, width=width)
        rho = model(images(size=64)).rho
        assert ((rho / 6.0 - 0.5).abs() < 0.15).all(), rho
    model.eval()  # eval, with a fresh model's running stats: features are tiny, rho ~ 3.015
    rho = model(images(size=64)).rho
    assert ((rho / 6.0 - 0.5).abs() < 0.15).all(), rho


def test_initial_rho_zero_init_is_near_zero():
    model = make(camera="pseudo", rho_init="zero", rho_max=6.0)
    rho = model(images()).rho
    assert torch.allclose(rho, torch.full((B,), ZERO_INIT_RHO_FRACTION * 6.0), rtol=1e-4)


def test_perspective_head_starts_at_scale_7_and_rho_02():
    model = make(camera="perspective")
    pred = model(images())
    tz0 = PERSPECTIVE_TZ_INIT
    assert torch.allclose(pred.tz, torch.full((B,), tz0), rtol=1e-6)
    assert torch.allclose(pred.focal, torch.full((B,), SCALE_INIT * tz0), rtol=1e-6)
    assert torch.allclose(pred.scale, torch.full((B,), 7.0), rtol=1e-6)
    assert torch.allclose(pred.rho, torch.full((B,), 0.2), rtol=1e-6)


@given(
    log_f=st.floats(-3.0, 6.0),
    log_tz=st.floats(-3.0, 4.0),
    seed=st.integers(0, 2**16),
)
def test_perspective_equals_ppcam_pinhole_to_pseudo(log_f, log_tz, seed):
    model = make(camera="perspective")
    with torch.no_grad():
        head = model.pose.perspective_head
        head.weight.normal_(0.0, 0.01, generator=torch.Generator().manual_seed(seed))
        head.bias.copy_(torch.tensor([log_f, log_tz]))
    pred = model(images())
    scale, rho = ppcam.pinhole_to_pseudo(pred.focal, pred.tz)
    torch.testing.assert_close(pred.scale, scale, rtol=1e-5, atol=0)
    torch.testing.assert_close(pred.rho, rho, rtol=1e-5, atol=0)


@pytest.mark.parametrize("rho_init", RHO_INITS)
def test_gradients_reach_the_rho_head(rho_init):
    model = make(camera="pseudo", rho_init=rho_init)
    model(images()).rho.sum().backward()
    for p in model.pose.rho_head.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    # the rho prior pulls rho towards 4: one SGD step on the head moves rho up
    model.zero_grad()
    opt = torch.optim.SGD(model.pose.rho_head.parameters(), lr=1.0)
    before = model(images()).rho.detach()
    ppcam.rho_prior_loss(model(images()).rho, 4.0).backward()
    opt.step()
    assert (model(images()).rho > before).all()


def test_gradients_reach_perspective_head_and_backbones():
    model = make(camera="perspective")
    pred = model(images())
    (pred.rho.sum() + pred.scale.sum()).backward()
    for p in model.pose.perspective_head.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    model.zero_grad()
    model = make(camera="pseudo", rho_init="paper")
    model(images()).rho.sum().backward()  # non-zero head weights: backbone gets gradient
    assert model.pose.backbone.features[0][0].weight.grad.abs().sum() > 0


@given(raw=st.lists(st.floats(-50.0, 50.0), min_size=1, max_size=16))
def test_positive_scale_is_positive_smooth_identity_above_floor(raw):
    x = torch.tensor(raw, dtype=torch.float64, requires_grad=True)
    y = positive_scale(x, 0.1)
    y.sum().backward()
    assert (y > 0).all() and torch.isfinite(x.grad).all() and (x.grad > 0).all()
    above = x >= 0.1
    assert torch.equal(y[above], x[above])
    assert (y[~above] <= 0.1).all()
    near = torch.tensor([0.1 - 1e-9, 0.1 + 1e-9], dtype=torch.float64, requires_grad=True)
    z = positive_scale(near, 0.1)
    z.sum().backward()
    assert abs(float((z[1] - z[0]).detach())) < 1e-8 and torch.allclose(
        near.grad, torch.ones(2).double()
    )


# ---------------------------------------------------------------- API


def test_encode_expression_matches_forward():
    model = make().eval()
    x = images()
    pred = model(x)
    expression, jaw, eyelids = model.encode_expression(x)
    assert torch.equal(expression, pred.expression)
    assert torch.equal(jaw, pred.jaw_pose) and torch.equal(eyelids, pred.eyelids)


@pytest.mark.parametrize("camera", CAMERA_MODES)
def test_param_groups_cover_every_parameter_once(camera):
    model = make(camera=camera)
    groups = model.param_groups()
    names = [g["name"] for g in groups]
    assert names[:2] == ["pose_backbone", "pose_head"] and names[-2:] == ["shape", "expression"]
    assert ("camera_head" in names) == (camera != "ortho")
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    torch.optim.Adam(groups, lr=1e-3)  # usable as optimizer groups


def test_bad_constructor_arguments_list_the_choices():
    with pytest.raises(ValueError, match="camera must be one of 'ortho', 'pseudo', 'perspective'"):
        FaceRegressor(camera="weak")
    with pytest.raises(ValueError, match="rho_init must be one of 'paper', 'zero'"):
        FaceRegressor(rho_init="small")
    with pytest.raises(ValueError, match="rho_max"):
        FaceRegressor(rho_max=0.0)
    with pytest.raises(ValueError, match="rho_max"):
        FaceRegressor(rho_max=math.inf)
    with pytest.raises(ValueError, match="n_shape"):
        FaceRegressor(n_shape=0)
    with pytest.raises(ValueError, match="n_expr"):
        FaceRegressor(n_expr=2.5)
    model = make()
    with pytest.raises(ValueError, match="camera must be one of"):
        model.set_camera("fisheye")
    with pytest.raises(ValueError, match="rho_init must be one of"):
        model.set_camera("pseudo", rho_init="half")


def test_bad_images():
    model = make()
    with pytest.raises(ValueError, match=r"images must have shape \[B,3,H,W\]"):
        model(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match=r"images must have shape \[B,3,H,W\]"):
        model(torch.rand(2, 1, 32, 32))
    with pytest.raises(TypeError, match="floating-point"):
        model((torch.rand(2, 3, 32, 32) * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="at least 32x32"):
        model(torch.rand(2, 3, 32, 16))
    with pytest.raises(ValueError, match="batch size 0"):
        model(torch.rand(0, 3, 32, 32))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model.encode_expression([[0.0]])


# ---------------------------------------------------------------- camera switch, checkpoints


@pytest.mark.parametrize("target", ["pseudo", "perspective"])
@pytest.mark.parametrize("rho_init", RHO_INITS)
def test_set_camera_keeps_other_weights_and_round_trips(target, rho_init, tmp_path):
    from safetensors.torch import load_file, save_file

    model = make(camera="ortho")
    model(images())  # update BatchNorm running stats: buffers must be kept too
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.set_camera(target, rho_init=rho_init)
    after = model.state_dict()
    new_keys = set(after) - set(before)
    head = "pose.rho_head." if target == "pseudo" else "pose.perspective_head."
    assert new_keys == {head + "weight", head + "bias"}
    assert set(before) <= set(after)
    for k, v in before.items():
        assert torch.equal(after[k], v), k
    assert model.config()["camera"] == target and model.config()["rho_init"] == rho_init

    fresh = make(seed=123, **model.config())
    save_file(model.state_dict(), str(tmp_path / "model.safetensors"))
    fresh.load_state_dict(load_file(str(tmp_path / "model.safetensors")), strict=True)
    model.eval(), fresh.eval()
    x = images(seed=3)
    for a, b in zip(model(x), fresh(x)):
        assert (a is None and b is None) or torch.equal(a, b)


def test_set_camera_same_mode_keeps_head_and_new_head_follows_dtype():
    model = make(camera="pseudo", rho_init="zero")
    with torch.no_grad():
        model.pose.rho_head.bias.fill_(0.5)
    model.set_camera("pseudo")
    assert float(model.pose.rho_head.bias.detach()) == 0.5
    model.set_camera("pseudo", rho_init="paper")  # a different init re-initializes
    assert float(model.pose.rho_head.bias.detach()) == pytest.approx(0.01)
    model.set_camera("ortho")
    assert not hasattr(model.pose, "rho_head") and model.camera == "ortho"
    assert set(model.state_dict()) == set(make(**model.config()).state_dict())
    model.double()
    model.set_camera("perspective")
    assert model.pose.perspective_head.weight.dtype == torch.float64
    pred = model(images().double())
    assert pred.rho.dtype == torch.float64


def test_eval_mode_single_image():
    model = make(camera="pseudo").eval()
    with torch.no_grad():
        pred = model(images(batch=1, size=32))
    assert pred.rho.shape == (1,)


# ---------------------------------------------------------------- interfaces


@pytest.mark.parametrize("arch", ["small", "smirk"])
def test_both_architectures_implement_the_written_interfaces(arch):
    """The protocols of train.models.interface hold for each architecture, and a forward
    pass returns what they promise (a Prediction of the declared sizes; an image)."""
    from train.models.interface import Regressor, Renderer
    from train.models.smirk.adapter import SmirkRegressor, SmirkRenderer
    from train.models.unet import NeuralRenderer

    torch.manual_seed(0)
    if arch == "small":
        model, renderer, size = make(camera="pseudo"), NeuralRenderer(base_channels=4), 32
    else:
        model = SmirkRegressor(n_shape=10, n_expr=8, camera="pseudo")
        renderer, size = SmirkRenderer(init_features=4), 32
    assert isinstance(model, Regressor) and isinstance(renderer, Renderer)
    assert not isinstance(renderer, Regressor)
    model.eval()
    x = images(2, size)
    with torch.no_grad():
        pred = model(x)
        expression, jaw, eyelids = model.encode_expression(x)
        out = renderer(x, x)
    assert isinstance(pred, Prediction) and model.camera == "pseudo"
    assert pred.shape.shape == (2, model.n_shape) and pred.expression.shape == (2, model.n_expr)
    assert expression.shape == (2, model.n_expr) and jaw.shape == (2, 3)
    assert eyelids.shape == (2, 2)
    names = {g["name"] for g in model.param_groups()}
    assert names == {"pose_backbone", "pose_head", "camera_head", "shape", "expression"}
    assert out.shape == x.shape and bool(((out > 0) & (out < 1)).all())
