"""Loading FLAME files safely: official-style pickles, npz, safetensors, DECA npy."""

from __future__ import annotations

import io
import os
import pickle
import struct
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import flame
from flame import convert
from flame.safe_pickle import UnsafePickleError, load_npy, load_pickle


class _Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 ``str`` (BINSTRING), as the official pickles hold."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _write_str(self, raw):
        n = len(raw)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + raw)

    def _save_bytes(self, obj):
        self._write_str(obj)
        self.memoize(obj)

    def _save_str(self, obj):
        self._write_str(obj.encode("latin1"))
        self.memoize(obj)

    dispatch[bytes] = _save_bytes
    dispatch[str] = _save_str


def _python2_pickle(obj) -> bytes:
    """A protocol-2 pickle with Python 2 strings and the old numpy / scipy module paths."""
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    data = buf.getvalue()
    for new, old in (
        (b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"),
        (b"scipy.sparse._csc\n", b"scipy.sparse.csc\n"),
    ):
        data = data.replace(new, old)
    return data


def _official_dict(model, ch_class):
    """The arrays of ``model`` under the official generic_model.pkl keys."""
    kintree = np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64)
    return {
        "v_template": model.v_template,
        "f": model.faces.astype(np.uint32),
        "shapedirs": ch_class(np.concatenate([model.shapedirs, model.exprdirs], axis=2)),
        "posedirs": model.posedirs,
        "J_regressor": sp.csc_matrix(model.J_regressor),
        "kintree_table": kintree,
        "weights": model.lbs_weights,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


@pytest.fixture
def fake_chumpy():
    """A module ``chumpy.ch`` with a class ``Ch`` pickled the way chumpy pickles."""
    pkg = types.ModuleType("chumpy")
    mod = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = np.asarray(x, dtype=np.float64)
            self._dirty_vars = set()
            self._depends_on_deps = {}
            self._itr = None
            self._make_dense = False

        def __getstate__(self):
            return dict(self.__dict__)

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    mod.Ch = Ch
    pkg.ch = mod
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = pkg, mod
    try:
        yield Ch
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]


def _assert_same_model(a, b, n_expr=None):
    np.testing.assert_allclose(a.v_template, b.v_template, rtol=1e-6)
    np.testing.assert_array_equal(a.faces, b.faces)
    np.testing.assert_allclose(a.shapedirs, b.shapedirs, rtol=1e-6)
    np.testing.assert_allclose(a.exprdirs, b.exprdirs, rtol=1e-6)
    np.testing.assert_allclose(a.J_regressor, b.J_regressor, rtol=1e-6)
    np.testing.assert_array_equal(a.parents, b.parents)
    np.testing.assert_allclose(a.lbs_weights, b.lbs_weights, rtol=1e-6)


def test_official_chumpy_pickle_loads_without_chumpy(tmp_path, fake_chumpy, tiny_model):
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(_python2_pickle(_official_dict(tiny_model, fake_chumpy)))
    assert b"numpy.core.multiarray" in path.read_bytes()
    del sys.modules["chumpy.ch"], sys.modules["chumpy"]  # the loader must not need it
    try:
        model = flame.load_model(path, n_shape_components=tiny_model.n_shape)
    finally:
        sys.modules["chumpy"] = types.ModuleType("chumpy")
        sys.modules["chumpy.ch"] = types.ModuleType("chumpy.ch")
    _assert_same_model(model, tiny_model)
    assert model.parents.tolist() == [-1, 0, 1, 1, 1]
    assert not model.has_landmarks


def test_official_npz_and_our_npz(tmp_path, tiny_model):
    official = tmp_path / "official.npz"
    d = _official_dict(tiny_model, np.asarray)
    d["J_regressor"] = tiny_model.J_regressor
    np.savez(official, **{k: v for k, v in d.items() if isinstance(v, np.ndarray)})
    _assert_same_model(flame.load_model(official, n_shape_components=4), tiny_model)
    ours = tmp_path / "ours.npz"
    flame.save_model(tiny_model, ours)
    loaded = flame.load_model(ours)
    _assert_same_model(loaded, tiny_model)
    np.testing.assert_allclose(loaded.eyelids, tiny_model.eyelids)


def test_safetensors_round_trip(tmp_path, tiny_model):
    tiny_model.masks["nose"] = np.array([1, 2, 3])
    tiny_model.metadata["name"] = "tiny"
    path = tmp_path / "head.safetensors"
    flame.save_model(tiny_model, path)
    loaded = flame.load_model(path)
    _assert_same_model(loaded, tiny_model)
    assert loaded.masks["nose"].tolist() == [1, 2, 3]
    assert loaded.metadata["name"] == "tiny"
    a = flame.FLAME(tiny_model, dtype=torch.float64)(jaw_pose=torch.full((1, 3), 0.2))
    b = flame.FLAME(loaded, dtype=torch.float64)(jaw_pose=torch.full((1, 3), 0.2))
    torch.testing.assert_close(a.landmarks, b.landmarks, atol=1e-6, rtol=0)


def _deca_embedding(model):
    return {
        "static_lmk_faces_idx": model.static_lmk_faces_idx,
        "static_lmk_bary_coords": model.static_lmk_bary_coords,
        # DECA stores the dynamic part as torch tensors inside the pickle
        "dynamic_lmk_faces_idx": torch.from_numpy(model.dynamic_lmk_faces_idx),
        "dynamic_lmk_bary_coords": torch.from_numpy(model.dynamic_lmk_bary_coords),
        "full_lmk_faces_idx": model.static_lmk_faces_idx[None, np.r_[0:17, 0:51]],
        "full_lmk_bary_coords": model.static_lmk_bary_coords[None, np.r_[0:17, 0:51]],
    }


def test_deca_landmark_embedding_npy(tmp_path, tiny_model):
    path = tmp_path / "landmark_embedding.npy"
    np.save(path, _deca_embedding(tiny_model), allow_pickle=True)
    emb = flame.load_landmark_embedding(path)
    np.testing.assert_array_equal(emb["dynamic_lmk_faces_idx"], tiny_model.dynamic_lmk_faces_idx)
    np.testing.assert_allclose(emb["dynamic_lmk_bary_coords"], tiny_model.dynamic_lmk_bary_coords)
    assert emb["full_lmk_faces_idx"].shape == (68,)
    assert emb["full_lmk_bary_coords"].shape == (68, 3)


def test_convert_command(tmp_path, fake_chumpy, tiny_model, capsys):
    pkl = tmp_path / "generic_model.pkl"
    with open(pkl, "wb") as f:
        pickle.dump(_official_dict(tiny_model, fake_chumpy), f, protocol=2)
    lmk = tmp_path / "landmark_embedding.npy"
    np.save(lmk, _deca_embedding(tiny_model), allow_pickle=True)
    lids = []
    for i, side in enumerate("lr"):
        lids.append(tmp_path / f"{side}_eyelid.npy")
        np.save(lids[-1], tiny_model.eyelids[:, :, i])
    out = tmp_path / "head.safetensors"
    args = [str(pkl), str(lmk), "-o", str(out), "--n-shape", "4", "--eyelids", *map(str, lids)]
    assert convert.main(args) == 0
    assert "landmarks: yes" in capsys.readouterr().out
    model = flame.load_model(out)
    _assert_same_model(model, tiny_model)
    assert model.metadata["eyelid_space"] == "posed"  # SMIRK's eyelids: after skinning
    inputs = {"jaw_pose": torch.full((2, 3), 0.1), "eyelids": torch.ones(2, 2)}
    ref = flame.FLAME(tiny_model, eyelid_space="posed")(**inputs)
    got = flame.FLAME(model)(**inputs)
    torch.testing.assert_close(got.vertices, ref.vertices)
    torch.testing.assert_close(got.landmarks, ref.landmarks)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvilEval:
    def __reduce__(self):
        return (eval, ("open('x', 'w')",))


@pytest.mark.parametrize("suffix", [".pkl", ".npy"])
def test_malicious_pickle_runs_nothing(tmp_path, suffix):
    marker = tmp_path / "pwned"
    payload = {"v_template": np.zeros((3, 3)), "evil": _Evil(marker)}
    path = tmp_path / f"generic_model{suffix}"
    if suffix == ".pkl":
        path.write_bytes(pickle.dumps(payload, protocol=2))
        with pytest.raises(UnsafePickleError, match=r"system.*nothing in the file was executed"):
            flame.load_model(path)
        with pytest.raises(UnsafePickleError):
            load_pickle(path)
    else:
        np.save(path, payload, allow_pickle=True)
        with pytest.raises(UnsafePickleError, match="system"):
            flame.load_landmark_embedding(path)
        with pytest.raises(UnsafePickleError):
            load_npy(path)
    assert not marker.exists()


def test_other_dangerous_globals_refused(tmp_path):
    for obj in (_EvilEval(), {"a": _EvilEval()}, [np.arange(3), _EvilEval()]):
        with pytest.raises(UnsafePickleError, match="eval"):
            load_pickle(io.BytesIO(pickle.dumps(obj, protocol=4)))
    # a class instance of an arbitrary module is refused too
    with pytest.raises(UnsafePickleError, match="Path"):
        load_pickle(io.BytesIO(pickle.dumps(tmp_path)))
    assert not (tmp_path / "x").exists()


def test_plain_npy_and_errors(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(load_npy(p), np.arange(6.0).reshape(2, 3))
    with pytest.raises(FileNotFoundError, match="not found"):
        flame.load_model(tmp_path / "missing.pkl")
    bad = tmp_path / "model.obj"
    bad.write_text("v 0 0 0")
    with pytest.raises(ValueError, match="unknown FLAME model format"):
        flame.load_model(bad)
    notflame = tmp_path / "other.pkl"
    notflame.write_bytes(pickle.dumps({"a": np.zeros(3)}))
    with pytest.raises(ValueError, match="not a FLAME model file"):
        flame.load_model(notflame)


def test_flame_pytorch_landmark_pair(tmp_path, tiny_model):
    static = tmp_path / "flame_static_embedding.pkl"
    static.write_bytes(
        pickle.dumps(
            {
                "lmk_face_idx": tiny_model.static_lmk_faces_idx.astype(np.uint32),
                "lmk_b_coords": tiny_model.static_lmk_bary_coords,
            },
            protocol=2,
        )
    )
    dynamic = tmp_path / "flame_dynamic_embedding.npy"
    np.save(
        dynamic,
        {
            "lmk_face_idx": list(tiny_model.dynamic_lmk_faces_idx),
            "lmk_b_coords": list(tiny_model.dynamic_lmk_bary_coords),
        },
        allow_pickle=True,
    )
    model_path = tmp_path / "head.npz"
    flame.save_model(tiny_model, model_path)
    loaded = flame.load_model(model_path, landmarks=(static, dynamic))
    np.testing.assert_array_equal(loaded.static_lmk_faces_idx, tiny_model.static_lmk_faces_idx)
    np.testing.assert_array_equal(loaded.dynamic_lmk_faces_idx, tiny_model.dynamic_lmk_faces_idx)
    np.testing.assert_allclose(
        loaded.dynamic_lmk_bary_coords, tiny_model.dynamic_lmk_bary_coords, rtol=1e-6
    )
    with pytest.raises(ValueError, match="needs lmk_face_idx"):
        flame.load_landmark_embedding((dynamic, model_path))


def test_cli_flame_argument(tmp_path, tiny_model):
    import argparse

    parser = argparse.ArgumentParser()
    flame.cli.add_flame_arguments(parser)
    path = tmp_path / "head.safetensors"
    flame.save_model(tiny_model, path)
    model = flame.cli.model_from_args(parser.parse_args(["--flame", str(path)]))
    _assert_same_model(model, tiny_model)
    assert parser.parse_args([]).flame == "bundled"


def test_contour_yaw_sign_follows_the_embedding_format(tmp_path, tiny_model):
    deca = tmp_path / "landmark_embedding.npy"
    np.save(deca, _deca_embedding(tiny_model), allow_pickle=True)
    path = tmp_path / "head.safetensors"
    flame.save_model(tiny_model, path)
    assert flame.load_model(path, landmarks=deca).metadata["contour_yaw_sign"] == "1"
    static = tmp_path / "s.pkl"
    static.write_bytes(
        pickle.dumps(
            {
                "lmk_face_idx": tiny_model.static_lmk_faces_idx,
                "lmk_b_coords": tiny_model.static_lmk_bary_coords,
            }
        )
    )
    dynamic = tmp_path / "d.npy"
    np.save(
        dynamic,
        {
            "lmk_face_idx": tiny_model.dynamic_lmk_faces_idx,
            "lmk_b_coords": tiny_model.dynamic_lmk_bary_coords,
        },
        allow_pickle=True,
    )
    pair = flame.load_model(path, landmarks=(static, dynamic))
    assert pair.metadata["contour_yaw_sign"] == "-1"
    converted = tmp_path / "converted.safetensors"
    flame.save_model(pair, converted)
    assert flame.load_model(converted).metadata["contour_yaw_sign"] == "-1"
    assert flame.load_model(path, landmarks=converted).metadata["contour_yaw_sign"] == "-1"
    pair.metadata["contour_yaw_sign"] = "2"
    with pytest.raises(ValueError, match="contour_yaw_sign"):
        pair.validate()
