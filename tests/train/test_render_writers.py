"""train.render.writers.write_obj: the mesh, optionally with its UV layout and a
textured material, read back by flame's OBJ reader."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import flame
from flame.uv_files import read_obj
from train.render.writers import write_obj


@pytest.fixture(scope="module")
def head():
    return flame.load_model("bundled")


def test_round_trip_with_uvs_and_texture(tmp_path, head):
    """Vertices to the micrometre, faces and UV faces exactly, UVs bit for bit (v
    flipped to OBJ's convention in the file and back by the reader), and a material
    whose map_Kd is the texture written beside the OBJ, row 0 at the top."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    path = tmp_path / "out" / "head.obj"
    write_obj(
        path,
        head.v_template,
        head.faces,
        uvs=head.uvs,
        uv_faces=head.uv_faces,
        texture=texture,
        producer="train.fit",
    )
    text = path.read_text().splitlines()
    assert text[0].startswith("# minirast train.fit:")
    assert text[1:3] == ["mtllib head.mtl", "usemtl head"]
    mesh = read_obj(path)
    np.testing.assert_allclose(mesh.vertices, head.v_template, atol=5.1e-7, rtol=0)
    np.testing.assert_array_equal(mesh.faces, head.faces)
    np.testing.assert_array_equal(mesh.uv_faces, head.uv_faces)
    np.testing.assert_array_equal(mesh.uvs, head.uvs.astype(np.float64))
    vt = np.array([line.split()[1:] for line in text if line.startswith("vt ")], dtype=float)
    np.testing.assert_allclose(vt[:, 1], 1 - head.uvs[:, 1].astype(np.float64), rtol=0, atol=1e-15)
    mtl = (tmp_path / "out" / "head.mtl").read_text()
    assert "newmtl head" in mtl and "map_Kd head.png" in mtl.splitlines()
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "head.png")), texture)
    leftovers = [p.name for p in (tmp_path / "out").iterdir()]
    assert sorted(leftovers) == ["head.mtl", "head.obj", "head.png"]


def test_float_texture_and_plain_mesh(tmp_path):
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float32)
    faces = np.array([[0, 1, 2]])
    uvs = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    texture = np.array([[[0.0, 0.5, 1.0], [2.0, -1.0, 0.25]]])  # clamped to [0, 1]
    write_obj(tmp_path / "t.obj", vertices, faces, uvs=uvs, uv_faces=faces, texture=texture)
    png = np.asarray(Image.open(tmp_path / "t.png"))
    np.testing.assert_array_equal(png, [[[0, 128, 255], [255, 0, 64]]])
    assert read_obj(tmp_path / "t.obj").uvs.tolist() == uvs.tolist()
    write_obj(tmp_path / "plain.obj", vertices, faces, producer="train.infer")
    lines = (tmp_path / "plain.obj").read_text().splitlines()
    assert lines[0].startswith("# minirast train.infer:") and lines[-1] == "f 1 2 3"
    assert not any(line.startswith(("vt", "mtllib")) for line in lines)
    assert read_obj(tmp_path / "plain.obj").uv_faces is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"uvs": np.zeros((3, 2))}, "come together"),
        ({"texture": np.zeros((2, 2, 3))}, "needs uvs"),
        ({"uvs": np.zeros((3, 2)), "uv_faces": np.array([[0, 1, 3]])}, "out of range"),
        (
            {"uvs": np.zeros((3, 2)), "uv_faces": np.array([[0, 1, 2]]), "texture": np.zeros(3)},
            r"\[Ht,Wt,3 or 4\]",
        ),
        (
            {
                "uvs": np.zeros((3, 2)),
                "uv_faces": np.array([[0, 1, 2]]),
                "texture": np.zeros((2, 2, 3), np.int32),
            },
            "uint8 or floating",
        ),
    ],
)
def test_write_obj_errors(tmp_path, kwargs, match):
    vertices = np.zeros((3, 3))
    with pytest.raises((ValueError, TypeError), match=match):
        write_obj(tmp_path / "bad.obj", vertices, np.array([[0, 1, 2]]), **kwargs)
    assert not (tmp_path / "bad.obj").exists()
