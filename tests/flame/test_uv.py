"""UV layouts: the checks, the distortion measure, and reading a real FLAME's layout
(FLAME_texture.npz, template .obj) with v flipped, into the model and the layer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import flame
from flame import uv
from flame.uv_files import flip_v, read_obj, read_uv_layout


def fabricated_layout(model, seed: int = 0):
    """A layout for ``model`` in FLAME's files' convention (v up): vt [T,2], ft [F,3]."""
    rng = np.random.default_rng(seed)
    vt = rng.uniform(0, 1, (3 * model.n_faces, 2))
    return vt, rng.permutation(len(vt)).reshape(-1, 3).astype(np.int64)


def write_template_obj(path, vertices, faces, vt, ft, extra: str = "") -> None:
    lines = ["# template\n", "o head\n", extra]
    lines += [f"v {x!r} {y!r} {z!r}\n" for x, y, z in np.asarray(vertices).tolist()]
    lines += [f"vt {a!r} {b!r}\n" for a, b in np.asarray(vt).tolist()]
    lines += ["vn 0 0 1\n"]
    lines += [
        f"f {a + 1}/{ta + 1}/1 {b + 1}/{tb + 1}/1 {c + 1}/{tc + 1}/1\n"
        for (a, b, c), (ta, tb, tc) in zip(faces.tolist(), ft.tolist())
    ]
    path.write_text("".join(lines))


# ------------------------------------------------------------------ the measure
@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.floats(0.2, 5.0),
    st.floats(-2.0, 2.0),
    st.floats(0.2, 5.0),
)
def test_affine_layout_of_a_planar_mesh_has_no_area_distortion(seed, sx, shear, sy):
    """An affine map scales every area by the same factor: every ratio is 1; a mirror
    image flips the sign of every UV area and keeps the ratios."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-1, 1, (12, 2))
    faces = np.array([rng.choice(12, 3, replace=False) for _ in range(20)])
    faces = faces[uv.mesh_areas(np.c_[xy, np.zeros(12)], faces) > 1e-3]
    if len(faces) == 0:
        return
    # the mesh tilted out of its plane by a rotation: areas unchanged
    c, s = np.cos(0.7), np.sin(0.7)
    vertices = np.c_[xy[:, 0], c * xy[:, 1], s * xy[:, 1]]
    uvs = xy @ np.array([[sx, 0.0], [shear, sy]]) + 0.3
    ratios = uv.area_distortion(vertices, faces, uvs, faces)
    np.testing.assert_allclose(ratios, 1.0, rtol=1e-9)
    area = uv.signed_uv_areas(uvs, faces)
    mirrored = uv.signed_uv_areas(flip_v(uvs), faces)
    np.testing.assert_allclose(mirrored, -area, rtol=1e-9, atol=1e-15)
    summary = uv.distortion_summary(uv.area_distortion(vertices, faces, flip_v(uvs), faces))
    assert summary == pytest.approx({"median": 1.0, "p5": 1.0, "p95": 1.0})


def test_area_distortion_sees_a_stretched_triangle():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=float)
    faces = np.array([[0, 1, 2], [1, 3, 2]])
    uvs = np.array([[0, 0], [0.5, 0], [0, 0.5], [1.0, 1.0]])  # second triangle 3x the first
    ratios = uv.area_distortion(vertices, faces, uvs, faces)
    np.testing.assert_allclose(ratios, [0.5, 1.5])
    region = np.array([True, False])
    np.testing.assert_allclose(uv.area_distortion(vertices, faces, uvs, faces, region), [1.0])
    with pytest.raises(ValueError, match="no area"):
        uv.area_distortion(vertices, faces, uvs, faces, np.array([False, False]))


@pytest.mark.parametrize(
    "uvs, uv_faces, match",
    [
        (np.zeros((4, 2), np.int64), np.zeros((2, 3), np.int64), "floating"),
        (np.zeros((4, 3)), np.zeros((2, 3), np.int64), r"\[T,2\]"),
        (np.full((4, 2), np.nan), np.zeros((2, 3), np.int64), "NaN"),
        (np.zeros((4, 2)), np.zeros((2, 3)), "integer"),
        (np.zeros((4, 2)), np.zeros((2, 4), np.int64), r"\[F,3\]"),
        (np.zeros((4, 2)), np.zeros((3, 3), np.int64), "the mesh has 2"),
        (np.zeros((4, 2)), np.array([[0, 1, 4], [0, 1, 2]]), "out of range"),
        (np.zeros((4, 2)), np.array([[0, 1, -1], [0, 1, 2]]), "out of range"),
    ],
)
def test_check_uv_layout_errors(uvs, uv_faces, match):
    with pytest.raises((ValueError, TypeError), match=match):
        uv.check_uv_layout(uvs, uv_faces, 2)


# ------------------------------------------------------------- model and layer
def test_model_validates_and_stores_its_layout(tmp_path, tiny_model):
    vt, ft = fabricated_layout(tiny_model)
    with pytest.raises(ValueError, match="come together"):
        dataclasses.replace(tiny_model, uvs=vt).validate()
    with pytest.raises(ValueError, match="the mesh has 60"):
        dataclasses.replace(tiny_model, uvs=vt, uv_faces=ft[:-1]).validate()
    model = dataclasses.replace(tiny_model, uvs=vt.astype(np.float32), uv_faces=ft).validate()
    for name in ("head.safetensors", "head.npz"):
        flame.save_model(model, tmp_path / name)
        back = flame.load_model(tmp_path / name)
        np.testing.assert_array_equal(back.uvs, model.uvs)
        np.testing.assert_array_equal(back.uv_faces, ft)
        assert back.uv_faces.dtype == np.int64


def test_layer_without_a_layout_and_with_uv_path(tmp_path, tiny_model):
    layer = flame.FLAME(tiny_model)
    assert not layer.has_uvs and layer.uvs is None and layer.uv_faces is None
    assert "uvs" not in dict(layer.named_buffers())
    vt, ft = fabricated_layout(tiny_model)
    path = tmp_path / "FLAME_texture.npz"
    np.savez(path, vt=vt, ft=ft, mean=np.zeros((8, 8, 3)), tex_dir=np.zeros((8, 8, 3, 2)))
    layer = flame.FLAME(tiny_model, dtype=torch.float64, uv_path=path)
    assert tiny_model.uvs is None  # the caller's model is left alone
    assert layer.uvs.dtype == torch.float64 and layer.uv_faces.dtype == torch.int64
    np.testing.assert_allclose(layer.uvs.numpy()[:, 1], 1 - vt[:, 1], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(layer.uv_faces.numpy(), ft)
    # the stand-in's own layout is replaced by the file's (same face count required)
    with pytest.raises(ValueError, match="uv_faces has 60 faces, the mesh has"):
        flame.FLAME("bundled", uv_path=path)


# ------------------------------------------------------------------- the files
def test_flame_texture_npz_is_read_with_v_flipped(tmp_path, tiny_model):
    vt, ft = fabricated_layout(tiny_model)
    path = tmp_path / "FLAME_texture.npz"
    np.savez(path, vt=vt, ft=ft.astype(np.uint32), mean=np.ones((4, 4, 3)))
    uvs, uv_faces = read_uv_layout(path, tiny_model.faces)
    assert uvs.dtype == np.float32 and uv_faces.dtype == np.int64
    np.testing.assert_allclose(uvs[:, 0], vt[:, 0], rtol=1e-6)
    np.testing.assert_allclose(uvs[:, 1], 1 - vt[:, 1], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(uv_faces, ft)
    model = flame.load_model(_saved(tmp_path, tiny_model), uv=path)
    np.testing.assert_array_equal(model.uvs, uvs)
    np.savez(path, vt=vt, ft=ft.astype(np.float64))  # whole numbers stored as floats
    np.testing.assert_array_equal(read_uv_layout(path)[1], ft)


def _saved(tmp_path, model):
    path = tmp_path / "head.safetensors"
    flame.save_model(model, path)
    return path


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"vt": "ok"}, r"lacks \['ft'\]"),
        ({"ft": "ok"}, r"lacks \['vt'\]"),
        ({"vt": np.zeros((5, 3)), "ft": "ok"}, r"\[T,2\]"),
        ({"vt": "ok", "ft": "short"}, "the mesh has 60"),
        ({"vt": "ok", "ft": "big"}, "out of range"),
        ({"vt": "nan", "ft": "ok"}, "NaN"),
        ({"vt": "ok", "ft": np.full((60, 3), 0.5)}, "integer indices"),
        ({"vt": np.array(["a", "b"]), "ft": "ok"}, "numeric"),
    ],
)
def test_flame_texture_npz_errors(tmp_path, tiny_model, arrays, match):
    vt, ft = fabricated_layout(tiny_model)
    named = {
        "ok": None,
        "short": ft[:-1],
        "big": ft + len(vt),
        "nan": np.where(np.arange(len(vt))[:, None] == 3, np.nan, vt),
    }
    out = {}
    for key, value in arrays.items():
        if isinstance(value, str) and value in named:
            value = named[value] if named[value] is not None else {"vt": vt, "ft": ft}[key]
        out[key] = value
    path = tmp_path / "FLAME_texture.npz"
    np.savez(path, **out)
    with pytest.raises((ValueError, TypeError), match=match):
        read_uv_layout(path, tiny_model.faces)


def test_pickled_npz_is_refused_without_running_it(tmp_path, tiny_model):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "FLAME_texture.npz"
    vt, ft = fabricated_layout(tiny_model)
    np.savez(path, vt=np.array([Evil()], dtype=object), ft=ft)
    with pytest.raises(ValueError, match="plain numeric"):
        read_uv_layout(path, tiny_model.faces)
    assert not marker.exists()


def test_template_obj_is_read_with_v_flipped(tmp_path, tiny_model):
    vt, ft = fabricated_layout(tiny_model)
    path = tmp_path / "head_template.obj"
    write_template_obj(path, tiny_model.v_template, tiny_model.faces, vt, ft, "s off\n")
    mesh = read_obj(path)
    np.testing.assert_array_equal(mesh.vertices, tiny_model.v_template)
    np.testing.assert_array_equal(mesh.faces, tiny_model.faces)
    np.testing.assert_array_equal(mesh.uvs, flip_v(vt))
    np.testing.assert_array_equal(mesh.uv_faces, ft)
    uvs, uv_faces = read_uv_layout(path, tiny_model.faces)
    np.testing.assert_array_equal(uvs, flip_v(vt).astype(np.float32))
    model = flame.load_model(_saved(tmp_path, tiny_model), uv=path)
    np.testing.assert_array_equal(model.uv_faces, ft)
    # another model's template: same face count, other faces
    other = tiny_model.faces[::-1].copy()
    with pytest.raises(ValueError, match="not the model's"):
        read_uv_layout(path, other)
    with pytest.raises(ValueError, match="the OBJ has 60 faces, the model 59"):
        read_uv_layout(path, tiny_model.faces[:-1])


def test_obj_negative_indices_and_errors(tmp_path):
    path = tmp_path / "m.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nf -3/-3 -2/-2 -1/-1\n")
    mesh = read_obj(path)
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2]])
    np.testing.assert_array_equal(mesh.uvs, [[0, 1], [1, 1], [0, 0]])
    cases = {
        "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nf 1 2 3 4\n": "only triangles",
        "v 0 0 0\nv 1 0 0\nf 1 2 3\n": r"vertex index 3 out of range",
        "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/2\n": "texture index 2 out of range",
        "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1\nf 1 2 3\n": "1 of 2 faces lack",
        "v 0 0\n": r"m.obj:1: expected 3 finite numbers",
        "v 0 0 0\nvt nan 0\n": r"m.obj:2: expected 2 finite",
        "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 x 3\n": "not an integer",
        "v 0 0 0\n": "no faces",
    }
    for text, match in cases.items():
        path.write_text(text)
        with pytest.raises(ValueError, match=match):
            read_obj(path)
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    assert read_obj(path).uvs is None
    with pytest.raises(ValueError, match="no texture coordinates"):
        read_uv_layout(path)
    with pytest.raises(FileNotFoundError):
        read_uv_layout(tmp_path / "missing.npz")
    (tmp_path / "layout.json").write_text("{}")
    with pytest.raises(ValueError, match="unknown UV layout format"):
        read_uv_layout(tmp_path / "layout.json")


def test_cli_and_convert_take_the_layout(tmp_path, tiny_model, capsys):
    import argparse

    from flame.convert import main as convert

    vt, ft = fabricated_layout(tiny_model)
    tex = tmp_path / "FLAME_texture.npz"
    np.savez(tex, vt=vt, ft=ft)
    head = _saved(tmp_path, tiny_model)
    parser = argparse.ArgumentParser()
    flame.cli.add_flame_arguments(parser)
    args = parser.parse_args(["--flame", str(head), "--flame-uv", str(tex)])
    assert flame.cli.model_from_args(args).has_uvs
    assert not flame.cli.model_from_args(parser.parse_args(["--flame", str(head)])).has_uvs
    out = tmp_path / "with_uv.safetensors"
    assert convert([str(head), "--uv", str(tex), "-o", str(out)]) == 0
    assert "UV layout: yes" in capsys.readouterr().out
    np.testing.assert_array_equal(flame.load_model(out).uv_faces, ft)
