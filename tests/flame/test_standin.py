"""The bundled stand-in head: a closed, head-shaped FLAME-format model."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import flame
from flame import standin
from flame.storage import read_safetensors


@pytest.fixture(scope="module")
def model():
    return flame.load_model("bundled")


@pytest.fixture(scope="module")
def layer(model):
    return flame.FLAME(model, dtype=torch.float64)


def _names(model, kind):
    return json.loads(model.metadata[f"{kind}_mode_names"])


def test_size_and_closed_surface(model):
    assert 4500 <= model.n_vertices <= 6000 and 9000 <= model.n_faces <= 12000
    f = model.faces
    directed = Counter(map(tuple, np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])))
    assert max(directed.values()) == 1  # consistently oriented, no duplicate edges
    assert all((b, a) in directed for a, b in directed)  # every edge has two faces: closed
    euler = model.n_vertices - len(directed) // 2 + model.n_faces
    assert euler == 2
    v = model.v_template.astype(np.float64)
    volume = np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6
    assert 3e-3 < volume < 7e-3  # outward-facing, litres of a head and neck


def test_adult_proportions_in_metres(model):
    v = model.v_template
    ears = np.zeros(len(v), dtype=bool)
    ears[np.concatenate([model.masks["left_ear"], model.masks["right_ear"]])] = True
    cheek_band = (np.abs(v[:, 1]) < 0.012) & ~ears
    assert 0.13 < 2 * np.abs(v[cheek_band, 0]).max() < 0.16  # across the cheekbones
    nose = np.argmax(v[:, 2])
    assert nose in set(model.masks["nose"].tolist())  # the nose tip has the largest z
    alar = (np.abs(v[:, 1] + 0.026) < 0.004) & (np.abs(np.abs(v[:, 0]) - 0.035) < 0.005)
    protrusion = v[nose, 2] - v[alar & (v[:, 2] > 0), 2].max()
    assert 0.02 < protrusion < 0.036
    lm = flame.FLAME(model)().landmarks[0].numpy()
    assert 0.017 < v[nose, 2] - lm[33, 2] < 0.03  # tip in front of the subnasale
    assert 0.21 < v[:, 1].max() - lm[8, 1] < 0.25  # crown to chin
    assert np.abs(v[ears, 0]).min() > 0.05 and np.abs(v[ears, 0]).max() > 0.08  # at the sides
    face = model.masks["face"]
    assert np.linalg.norm(v[face], axis=1).max() < 0.13  # origin at the head centre


def test_landmarks_on_sensible_places(layer):
    lm = layer().landmarks[0].numpy()
    brows, eyes_r, eyes_l = lm[17:27], lm[36:42], lm[42:48]
    assert brows[:, 1].min() > max(eyes_r[:, 1].max(), eyes_l[:, 1].max())
    assert eyes_r[:, 0].max() < 0 < eyes_l[:, 0].min()  # right eye at -x
    assert lm[36, 0] < lm[39, 0] < lm[42, 0] < lm[45, 0]
    assert lm[30, 2] == pytest.approx(layer.v_template[:, 2].max().item(), abs=0.004)
    assert lm[27, 1] > lm[30, 1] > lm[33, 1] > lm[51, 1] > lm[57, 1] > lm[8, 1]
    assert lm[48, 0] < -0.02 and lm[54, 0] > 0.02
    assert np.allclose(lm[:17, 0], -lm[16::-1, 0], atol=1e-5)  # symmetric contour
    assert lm[0, 0] < lm[4, 0] < lm[8, 0] == pytest.approx(0.0, abs=1e-6)


def test_jaw_opens_mouth_and_lowers_chin(layer):
    rest = layer().landmarks[0]
    opened = layer(jaw_pose=torch.tensor([[0.3, 0.0, 0.0]], dtype=torch.float64)).landmarks[0]
    gap = lambda lm: (lm[62] - lm[66]).norm().item()  # noqa: E731
    assert gap(rest) < 0.003 and gap(opened) > 0.02
    assert opened[8, 1] < rest[8, 1] - 0.008  # chin down
    assert opened[57, 1] < rest[57, 1] - 0.008  # lower lip down
    torch.testing.assert_close(opened[17:27], rest[17:27])  # brows stay


def test_named_modes(model, layer):
    shape, expr = _names(model, "shape"), _names(model, "expression")
    assert len(shape) == model.n_shape >= 50 and len(expr) == model.n_expr >= 50
    for name in ("nose_size", "face_width", "jaw_width", "head_size"):
        assert name in shape
    for name in ("mouth_open", "smile", "brow_raise"):
        assert name in expr

    def run(kind, name, value=2.0):
        n = layer.n_shape if kind == "shape" else layer.n_expr
        c = torch.zeros(1, n, dtype=torch.float64)
        c[0, (shape if kind == "shape" else expr).index(name)] = value
        return layer(**{"shape" if kind == "shape" else "expression": c})

    rest = layer()
    v0, l0 = rest.vertices[0], rest.landmarks[0]
    tip = int(torch.argmax(v0[:, 2]))
    assert run("shape", "nose_size").vertices[0, tip, 2] > v0[tip, 2] + 0.002
    wide = run("shape", "face_width").vertices[0]
    assert wide[:, 0].abs().max() > v0[:, 0].abs().max() + 0.001 or (
        wide[v0[:, 2] > 0.03, 0].abs().max() > v0[v0[:, 2] > 0.03, 0].abs().max() + 0.001
    )
    lm = run("expression", "mouth_open").landmarks[0]
    assert (lm[62] - lm[66]).norm() > (l0[62] - l0[66]).norm() + 0.005
    lm = run("expression", "smile").landmarks[0]
    assert lm[48, 1] > l0[48, 1] + 0.004 and lm[54, 1] > l0[54, 1] + 0.004
    lm = run("expression", "brow_raise").landmarks[0]
    assert (lm[17:27, 1] - l0[17:27, 1]).min() > 0.004


def test_bases_ordered_by_variance_and_smooth(model):
    for dirs in (model.shapedirs, model.exprdirs):
        rms = np.sqrt((dirs.astype(np.float64) ** 2).sum(1).mean(0))
        assert np.all(np.diff(rms) <= 1e-12) and rms[-1] > 0
    # smooth: away from the lips (where the mouth opens) no mode changes by more
    # than twice its peak displacement per centimetre along the surface
    f, v = model.faces, model.v_template
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    lips = np.zeros(model.n_vertices, dtype=bool)
    lips[np.concatenate([model.masks["lips"], model.masks["mouth_interior"]])] = True
    edges = edges[~(lips[edges[:, 0]] | lips[edges[:, 1]])]
    length = np.linalg.norm(v[edges[:, 0]] - v[edges[:, 1]], axis=1)[:, None]
    for dirs in (model.shapedirs, model.exprdirs):
        slope = (np.linalg.norm(dirs[edges[:, 0]] - dirs[edges[:, 1]], axis=1) / length).max(0)
        peak = np.linalg.norm(dirs, axis=1).max(0)
        assert np.all(slope * 0.01 < 2.0 * peak)


def test_skinning_joints_and_correctives(model):
    w = model.lbs_weights
    assert w.min() >= 0 and np.allclose(w.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(model.J_regressor @ model.v_template, standin.JOINTS, atol=1e-6)
    assert model.parents.tolist() == [-1, 0, 1, 1, 1]
    assert 0 < np.abs(model.posedirs).max() < 0.01  # small pose correctives
    for side, joint in (("left_eyeball", 3), ("right_eyeball", 4)):
        assert w[model.masks[side], joint].min() > 0.5


def test_dynamic_contour_switches_sides_with_yaw(model, layer):
    def contour(yaw_deg):
        # contour faces for this head yaw, read on the unposed template
        pose = torch.zeros(1, 5, 3, dtype=torch.float64)
        pose[0, 0, 1] = np.radians(yaw_deg)
        rot_mats = flame.lbs.rodrigues(pose)
        bins = layer.contour_bins(rot_mats)
        lm = layer.landmarks(layer.v_template[None], rot_mats)
        return lm[0, :17].numpy(), int(bins[0])

    front, b0 = contour(0.0)
    left, bl = contour(25.0)
    right, br = contour(-25.0)
    assert (b0, bl, br) == (0, 25, 64)
    # nose towards +x: the far (+x) side's contour moves forward, the near side's back
    assert left[9:, 2].mean() > front[9:, 2].mean() + 0.005
    assert left[:8, 2].mean() < front[:8, 2].mean() - 0.005
    # and the mirror image for the opposite yaw
    np.testing.assert_allclose(right[::-1] * [-1, 1, 1], left, atol=1e-5)


def test_eyelids_close(layer):
    rest = layer().landmarks[0]
    closed = layer(eyelids=torch.ones(1, 2, dtype=torch.float64)).landmarks[0]
    for up, low in ((37, 41), (38, 40), (43, 47), (44, 46)):
        assert (closed[up] - closed[low]).norm() < 0.5 * (rest[up] - rest[low]).norm()


def test_deterministic_build_matches_cache(model):
    built = standin.build_standin()
    cached = model.to_arrays()
    assert sorted(built.to_arrays()) == sorted(cached)
    for key, a in built.to_arrays().items():
        if a.dtype.kind == "f":  # BLAS threading may change the last bits
            np.testing.assert_allclose(a, cached[key], rtol=1e-5, atol=1e-9, err_msg=key)
        else:
            np.testing.assert_array_equal(a, cached[key], err_msg=key)


def test_cache_key_changes_with_every_module_of_the_package(tmp_path, monkeypatch):
    """The cache file is named after the package's content: editing, renaming or adding
    any module of flame/standin/ names a new file; moving the package does not."""
    package = Path(standin.__file__).parent
    copy = tmp_path / "standin"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    base = standin.package_digest(copy)
    assert base == standin.package_digest(package) == standin.package_digest()
    monkeypatch.setenv("MINIRAST_CACHE", str(tmp_path / "cache"))
    name = f"flame_standin_v{standin.VERSION}_{base}.safetensors"
    assert standin.cache_path() == tmp_path / "cache" / name

    modules = sorted(p.name for p in copy.glob("*.py"))
    assert {"__init__.py", "implicit.py", "mesh.py", "build.py", "cache.py"} <= set(modules)
    seen = {base}
    for module in modules:  # one byte more in any module
        path = copy / module
        text = path.read_bytes()
        path.write_bytes(text + b"\n")
        seen.add(standin.package_digest(copy))
        path.write_bytes(text)
    assert len(seen) == len(modules) + 1
    assert standin.package_digest(copy) == base  # same bytes, same key
    (copy / "masks.py").rename(copy / "regions.py")  # a renamed stage
    assert standin.package_digest(copy) not in seen
    (copy / "regions.py").rename(copy / "masks.py")
    (copy / "extra.py").write_text("")  # a new, empty stage
    assert standin.package_digest(copy) not in seen
    (copy / "extra.py").unlink()
    (copy / "notes.txt").write_text("not a module")  # only .py files count
    (copy / "__pycache__").mkdir(exist_ok=True)
    (copy / "__pycache__" / "mesh.cpython-310.pyc").write_bytes(b"\0")
    assert standin.package_digest(copy) == base


def test_damaged_cache_is_rebuilt_and_rewritten(tmp_path, monkeypatch, model):
    monkeypatch.setenv("MINIRAST_CACHE", str(tmp_path))
    path = standin.cache_path()
    path.write_bytes(b"not a safetensors file")
    standin.cache._cached.cache_clear()
    try:
        rebuilt = standin.bundled_model()
    finally:
        standin.cache._cached.cache_clear()  # later callers read their own cache again
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left
    arrays, meta = read_safetensors(path)
    assert meta["version"] == standin.VERSION
    assert sorted(arrays) == sorted(rebuilt.to_arrays()) == sorted(model.to_arrays())
    for key, a in rebuilt.to_arrays().items():
        np.testing.assert_array_equal(arrays[key], a, err_msg=key)
