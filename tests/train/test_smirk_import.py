"""SMIRK's checkpoint in our pipeline: safe reading, strict loading, conversion, the
camera and FLAME conventions, and fine-tuning / inference / evaluation from it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

import flame
from train import finetune, import_smirk
from train.engine.checkpoint import read_info
from train.engine.system import load_system
from train.infer.__main__ import main as infer_main
from train.models.smirk.adapter import SMIRK_RES_BLOCKS, SmirkRegressor, camera_from_smirk
from train.models.smirk.networks import SmirkEncoder, SmirkGenerator
from train.models.smirk.release import load_smirk, read_smirk_state, save_smirk, smirk_flame
from train.render.head import project_landmarks

#: a small SMIRK-layout model: the real layout, smaller linear layers and generator
N_SHAPE, N_EXPR, FEATURES = 10, 10, 4


def batch_orth_proj(points: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """SMIRK's projection (src/renderer/util.py ``batch_orth_proj``, then the y flip its
    renderer applies), written from its definition: NDC ``[B,N,2]`` with y down."""
    xy = cam[:, None, 0:1] * (points[..., :2] + cam[:, None, 1:])
    return torch.stack([xy[..., 0], -xy[..., 1]], dim=-1)


@pytest.fixture(scope="module")
def smirk_file(tmp_path_factory, single_thread):
    """A random-weight checkpoint in SMIRK's layout, with a camera away from zero."""
    torch.manual_seed(0)
    encoder = SmirkEncoder(n_shape=N_SHAPE, n_expr=N_EXPR)
    generator = SmirkGenerator(6, 3, FEATURES, SMIRK_RES_BLOCKS)
    with torch.no_grad():
        layer = encoder.pose_encoder.pose_cam_layers[0]
        layer.weight.normal_(0.0, 0.02)
        layer.bias.copy_(torch.tensor([0.1, -0.3, 0.05, 7.5, 0.03, -0.04]))
        encoder.shape_encoder.shape_layers[0].weight.normal_(0.0, 0.05)
        for module in encoder.modules():  # non-trivial BatchNorm statistics
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("smirk") / "smirk.pt"
    save_smirk(path, encoder, generator)
    return path, encoder.eval(), generator.eval()


@pytest.fixture(scope="module")
def converted(smirk_file, tmp_path_factory):
    path, _, _ = smirk_file
    out = tmp_path_factory.mktemp("converted") / "smirk.safetensors"
    assert import_smirk.main([str(path), "-o", str(out), "--image-size", "32"]) == 0
    return out


def images(n=2, size=32, seed=1):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_round_trip_through_save_and_load(smirk_file):
    path, encoder, generator = smirk_file
    state = torch.load(path, weights_only=True)
    assert all(k.startswith(("smirk_encoder.", "smirk_generator.")) for k in state)
    assert any(k.endswith("num_batches_tracked") for k in state)
    enc, gen = load_smirk(path)
    assert not enc.training and not gen.training
    for mine, theirs in ((enc, encoder), (gen, generator)):
        for k, v in theirs.state_dict().items():
            assert torch.equal(mine.state_dict()[k], v), k
    x = images()
    got, want = enc(x), encoder(x)
    assert set(got) == {
        "pose_params",
        "cam",
        "shape_params",
        "expression_params",
        "eyelid_params",
        "jaw_params",
    }
    for k in want:
        assert torch.equal(got[k], want[k]), k
    pair = torch.cat([x, x.flip(0)], dim=1)
    assert torch.equal(gen(pair), generator(pair))


def test_import_keeps_weights_and_maps_the_camera(smirk_file, converted):
    _, encoder, generator = smirk_file
    system = load_system(str(converted), torch.device("cpu"))
    cfg = system.cfg
    assert (cfg.model.arch, cfg.model.camera, cfg.data.n_shape, cfg.data.n_expr) == (
        "smirk",
        "ortho",
        N_SHAPE,
        N_EXPR,
    )
    assert cfg.model.renderer_channels == FEATURES and cfg.data.image_size == 32
    assert set(cfg.data.regimes) == {"studio", "wild"}  # the report's orthographic pretrained (p)
    assert "imported_from" in read_info(str(converted))["extra"]
    for k, v in encoder.state_dict().items():
        assert torch.equal(system.model.encoder.state_dict()[k], v), k
    for k, v in generator.state_dict().items():
        assert torch.equal(system.renderer.generator.state_dict()[k], v), k
    x = images()
    smirk, pred = encoder(x), system.encode(x)
    assert torch.equal(pred.global_pose, smirk["pose_params"])
    assert torch.equal(pred.scale, smirk["cam"][:, 0])
    assert torch.equal(pred.trans, torch.stack([smirk["cam"][:, 1], -smirk["cam"][:, 2]], 1))
    assert torch.equal(pred.rho, torch.zeros(2))
    assert torch.equal(pred.shape, smirk["shape_params"])
    assert torch.equal(pred.expression, smirk["expression_params"])
    assert torch.equal(pred.jaw_pose, smirk["jaw_params"])
    assert torch.equal(pred.eyelids, smirk["eyelid_params"])
    # the generator sees cat([rendered, masked]), SMIRK's order
    masked, rendered = x, x.flip(0)
    out = system.renderer(masked, rendered)
    assert torch.equal(out, generator(torch.cat([rendered, masked], dim=1)))


def test_projection_at_rho_zero_equals_smirks(smirk_file, converted):
    """Our projection of the converted prediction is SMIRK's batch_orth_proj + y flip."""
    _, encoder, _ = smirk_file
    system = load_system(str(converted), torch.device("cpu"))
    x = images(3, seed=5)
    smirk = encoder(x)
    pred = system.encode(x)
    landmarks = system.geometry(pred).landmarks  # model frame, [B,68,3]
    ours = project_landmarks(landmarks, pred.scale, pred.trans, pred.rho)
    theirs = batch_orth_proj(landmarks, smirk["cam"])
    assert theirs.abs().max() > 0.05  # a real image-plane spread, not all zeros
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)


def test_camera_from_smirk_is_the_ty_flip():
    cam = torch.tensor([[7.0, 0.1, 0.2], [6.5, -0.3, -0.05]])
    raw_scale, trans = camera_from_smirk(cam)
    assert torch.equal(raw_scale, cam[:, 0])
    assert torch.equal(trans, torch.tensor([[0.1, -0.2], [-0.3, 0.05]]))


def test_rho_head_on_the_pose_features(single_thread):
    model = SmirkRegressor(n_shape=N_SHAPE, n_expr=N_EXPR, camera="pseudo", rho_init="zero")
    assert model.rho_head.in_features == 576
    pred = model.eval()(images())
    torch.testing.assert_close(pred.rho, torch.full((2,), 0.02 * 6.0))
    paper = SmirkRegressor(n_shape=N_SHAPE, n_expr=N_EXPR, camera="pseudo", rho_init="paper")
    assert torch.all(paper.rho_head.weight == 0.01)
    groups = {g["name"]: g["params"] for g in model.param_groups()}
    assert set(groups) == {"pose_backbone", "pose_head", "camera_head", "shape", "expression"}
    assert sum(len(p) for p in groups.values()) == len(list(model.parameters()))
    model.set_camera("ortho")
    assert not hasattr(model, "rho_head")


def _corrupt(tmp_path, smirk_file, name, edit):
    path, _, _ = smirk_file
    state = torch.load(path, weights_only=True)
    edit(state)
    out = tmp_path / name
    torch.save(state, out)
    return out


def test_bad_checkpoints_give_clear_errors(tmp_path, smirk_file):
    path, _, _ = smirk_file
    with pytest.raises(FileNotFoundError, match="not found"):
        load_smirk(tmp_path / "absent.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"truncated\.pt: not a readable torch checkpoint"):
        load_smirk(truncated)
    pickled = tmp_path / "pickled.pt"
    torch.save({"smirk_encoder.x": torch.zeros(1), "opt": np.random.default_rng(0)}, pickled)
    with pytest.raises(ValueError, match=r"pickled\.pt: refused.*never run"):
        load_smirk(pickled)
    missing = _corrupt(
        tmp_path,
        smirk_file,
        "missing.pt",
        lambda s: s.pop("smirk_encoder.shape_encoder.encoder.conv_stem.weight"),
    )
    with pytest.raises(ValueError, match=r"missing 1 key\(s\).*conv_stem\.weight"):
        load_smirk(missing)
    key = "smirk_encoder.pose_encoder.encoder.blocks.1.0.conv_pw.weight"
    wrong = _corrupt(
        tmp_path, smirk_file, "wrong.pt", lambda s: s.__setitem__(key, torch.zeros(8, 16, 1, 1))
    )
    with pytest.raises(ValueError, match=r"first shape difference: .*conv_pw\.weight is \[8"):
        load_smirk(wrong)
    other = tmp_path / "other.pt"
    torch.save({"backbone.weight": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="not a SMIRK checkpoint"):
        read_smirk_state(other)


def test_import_command_checks_its_arguments(smirk_file, tmp_path, capsys):
    path, _, _ = smirk_file
    with pytest.raises(SystemExit):
        import_smirk.main([str(path), "-o", str(tmp_path / "x.pt")])
    assert "must end in .safetensors" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        import_smirk.main([str(path), "-o", str(tmp_path / "x.safetensors"), "--image-size", "40"])
    assert "multiple of 16" in capsys.readouterr().err


def test_smirk_flame_converts_with_eyelids_after_skinning(tmp_path):
    model = flame.load_model("bundled")
    head = tmp_path / "head.safetensors"
    flame.save_model(model, head)
    lids = []
    for i, side in enumerate("lr"):
        lids.append(str(tmp_path / f"{side}_eyelid.npy"))
        np.save(lids[-1], model.eyelids[:, :, i])
    out = tmp_path / "smirk.flame.safetensors"
    used = smirk_flame(str(head), None, lids, 300, 50, write_to=str(out))
    assert used == str(out.resolve())
    assert flame.load_model(used).metadata["eyelid_space"] == "posed"
    assert flame.FLAME(used).eyelid_space == "posed"
    with pytest.raises(ValueError, match="SMIRK predicts 400 shape"):
        smirk_flame(str(head), None, None, 400, 50, write_to=str(out))
    bare = dict(model.to_arrays())
    kept = {k: v for k, v in bare.items() if "lmk" not in k and not k.startswith("mp_")}
    no_lmk = flame.FlameModel.from_arrays(kept, model.metadata)
    flame.save_model(no_lmk, tmp_path / "nolmk.safetensors")
    with pytest.raises(ValueError, match="no landmark embedding"):
        smirk_flame(str(tmp_path / "nolmk.safetensors"), None, None, 300, 50, str(out))


def test_infer_from_the_converted_checkpoint(converted, tmp_path, single_thread):
    photo = tmp_path / "face.png"
    Image.fromarray(
        (np.random.default_rng(0).uniform(size=(48, 40, 3)) * 255).astype("uint8")
    ).save(photo)
    out = str(tmp_path / "out")
    # noise has no face to detect: the centre crop (the default without the faces extra)
    infer_main([str(photo), "--checkpoint", str(converted), "--out", out, "--crop", "centre"])
    record = json.loads((tmp_path / "out" / "face.json").read_text())
    assert len(record["shape"]) == N_SHAPE and record["rho"] == 0.0


def test_finetune_from_smirk(converted, tmp_path, single_thread, capsys):
    """A smoke fine-tune of the converted model with the rho camera, then its report,
    with the imported model as the orthographic pretrained row."""
    out = tmp_path / "runs"
    args = [
        "--init", str(converted), "--preset", "smoke", "--out-dir", str(out),
        "--n-train", "8", "--n-val", "4", "--n-test", "4", "--steps", "2",
        "--batch-size", "4", "--baselines", "none", "--bootstrap", "0", "--no-fit",
    ]  # fmt: skip
    results = finetune.main(args)
    system = load_system(str(out / "finetune" / "final.safetensors"), torch.device("cpu"))
    assert system.cfg.model.arch == "smirk" and system.cfg.model.camera == "pseudo"
    assert system.model.rho_head.in_features == 576
    assert set(results["runs"]) == {"ortho-pretrained", "rho"}
    with pytest.raises(SystemExit):
        finetune.main([*args, "--n-shape", "20"])
    assert "does not match the checkpoint" in capsys.readouterr().err
    assert os.path.exists(out / "finetune" / "report" / "report.md")


def test_full_size_checkpoint_round_trips(tmp_path, single_thread):
    """SMIRK's released sizes exactly (300 shape, 50 expression, generator 32 channels, 5
    residual blocks): 762 + 178 entries, through save, load_smirk and import_smirk."""
    torch.manual_seed(1)
    encoder, generator = SmirkEncoder(), SmirkGenerator(6, 3, 32, 5)
    path = tmp_path / "SMIRK_em1.pt"
    save_smirk(path, encoder.eval(), generator.eval())
    state = torch.load(path, weights_only=True)
    assert sum(k.startswith("smirk_encoder.") for k in state) == 762
    assert sum(k.startswith("smirk_generator.") for k in state) == 178
    assert sum(v.numel() for k, v in state.items() if k.endswith(("weight", "bias"))) == (
        3_599_921 + 31_367_171
    )
    out = tmp_path / "smirk.safetensors"
    assert import_smirk.main([str(path), "-o", str(out), "--image-size", "64"]) == 0
    system = load_system(str(out), torch.device("cpu"))
    assert (
        system.cfg.data.n_shape,
        system.cfg.data.n_expr,
        system.cfg.model.renderer_channels,
    ) == (300, 50, 32)
    x = images(2, 64)
    smirk, pred = encoder(x), system.encode(x)
    assert torch.equal(pred.shape, smirk["shape_params"])
    assert torch.equal(pred.global_pose, smirk["pose_params"])
