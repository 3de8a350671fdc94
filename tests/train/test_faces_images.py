"""train.faces.images: every mode and format PIL reads, EXIF rotation, 16-bit, bombs
refused from the header, and input listing that skips nothing silently."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.train.faces_helpers import standin_face
from train.faces.images import (
    IMAGE_SUFFIXES,
    MAX_PIXELS,
    ImageError,
    list_inputs,
    read_image,
)


def bomb_png(path, width=20000, height=20000):
    """A PNG whose header claims ``width x height`` (the pixel data is a few bytes)."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 data bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))


def test_suffixes_cover_what_pil_reads():
    for suffix in (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".tif", ".webp", ".gif"):
        assert suffix in IMAGE_SUFFIXES
    assert ".mp4" not in IMAGE_SUFFIXES and ".mpg" not in IMAGE_SUFFIXES


def test_modes_and_formats_give_uint8_rgb(tmp_path):
    face, _ = standin_face(64)
    rgb = Image.fromarray(face)
    cases = {
        "rgb.png": rgb,
        "grey.png": rgb.convert("L"),
        "palette.gif": rgb.convert("P"),
        "cmyk.jpg": rgb.convert("CMYK"),
        "face.ppm": rgb,
        "grey.pgm": rgb.convert("L"),
        "face.tif": rgb,
        "face.bmp": rgb,
        "face.webp": rgb,
    }
    for name, img in cases.items():
        img.save(tmp_path / name, **({"quality": 95} if name.endswith((".jpg", ".webp")) else {}))
        out = read_image(tmp_path / name)
        assert out.shape == (64, 64, 3) and out.dtype == np.uint8, name
        ref = np.asarray(img.convert("RGB"), dtype=np.float64)
        assert np.abs(out - ref).mean() < 4.0, name


def test_rgba_is_composited_over_grey(tmp_path):
    arr = np.zeros((8, 8, 4), np.uint8)
    arr[..., 0] = 255
    arr[:4, :, 3] = 255  # top half opaque red, bottom half transparent
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert (out[:4] == [255, 0, 0]).all() and (out[4:] == [128, 128, 128]).all()


def test_16_bit_png_scales_to_8_bit(tmp_path):
    ramp = (np.arange(256, dtype=np.uint32) * 257).astype(np.uint16).reshape(16, 16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I;16")
    out = read_image(tmp_path / "deep.png")
    np.testing.assert_array_equal(out[..., 0], np.arange(256).reshape(16, 16))
    assert (out[..., 0] == out[..., 2]).all()


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 65535), st.integers(0, 65535))
def test_16_bit_order_is_kept(a, b):
    img = Image.fromarray(np.array([[a, b]], dtype=np.uint16))
    from train.faces.images import _to_uint8_rgb

    out = _to_uint8_rgb(img)[0, :, 0].astype(int)
    assert (out[0] - out[1]) * (a - b) >= 0 and abs(out[0] - a / 257) <= 0.5 + 1e-9


@pytest.mark.parametrize("orientation, turn", [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path, orientation, turn):
    stored = np.zeros((60, 40, 3), np.uint8)
    stored[:20, :20] = [255, 0, 0]  # a red block at the stored top left
    stored[40:, 20:] = [0, 0, 255]
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(tmp_path / "turned.jpg", quality=95, exif=exif)
    out = read_image(tmp_path / "turned.jpg")
    expected = np.rot90(stored, k=turn)  # k=-1: clockwise, what orientation 6 means
    assert out.shape == expected.shape
    assert np.abs(out.astype(int) - expected).mean() < 6


def test_tiny_and_large_images(tmp_path):
    Image.new("RGB", (1, 1), (9, 8, 7)).save(tmp_path / "dot.png")
    assert read_image(tmp_path / "dot.png").tolist() == [[[9, 8, 7]]]
    Image.new("L", (3000, 2000), 50).save(tmp_path / "big.png")
    assert read_image(tmp_path / "big.png").shape == (2000, 3000, 3)
    with pytest.raises(ImageError, match=r"big.png: 3000x2000 = 6000000 pixels .* 1000000"):
        read_image(tmp_path / "big.png", max_pixels=1_000_000)


def test_decompression_bomb_is_refused_unread(tmp_path):
    bomb_png(tmp_path / "bomb.png")
    assert struct.unpack(">II", (tmp_path / "bomb.png").read_bytes()[16:24]) == (20000, 20000)
    with pytest.raises(ImageError) as err:
        read_image(tmp_path / "bomb.png")
    message = str(err.value)
    assert "bomb.png" in message and f"limit of {MAX_PIXELS} pixels" in message
    assert "20000x20000" in message


def test_bad_files_name_the_file(tmp_path):
    (tmp_path / "text.png").write_text("hello")
    (tmp_path / "empty.jpg").write_bytes(b"")
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "cut.png")
    data = (tmp_path / "cut.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])  # a file cut short
    for name, why in [
        ("text.png", "not an image"),
        ("empty.jpg", "not an image"),
        ("cut.png", "unreadable image"),
        ("missing.png", "no such file"),
    ]:
        with pytest.raises(ImageError, match=f"{name}: {why}"):
            read_image(tmp_path / name)
    with pytest.raises(ValueError, match="max_pixels"):
        read_image(tmp_path / "cut.png", max_pixels=0)


def test_list_inputs_skips_nothing_silently(tmp_path):
    face, _ = standin_face(64)
    for name in ("a.png", "b.ppm", "c.JPG"):
        Image.fromarray(face).save(tmp_path / name, format="PNG" if name != "b.ppm" else "PPM")
    (tmp_path / "a.pts").write_text("landmarks of a")
    (tmp_path / "b_0.pts").write_text("landmarks of b's first face")
    (tmp_path / "orphan.pts").write_text("no image")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "clip.mp4").write_bytes(b"")
    (tmp_path / "rho_prior.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    paths, skipped = list_inputs([str(tmp_path), str(tmp_path / "gone.png")])
    names = [p.rsplit("/", 1)[1] for p in paths]
    assert names == ["a.png", "b.ppm", "c.JPG", "clip.mp4"]
    reasons = {p.rsplit("/", 1)[1]: why for p, why in skipped}
    assert set(reasons) == {"orphan.pts", "notes.txt", "gone.png"}
    assert "not an image" in reasons["notes.txt"] and "no such file" in reasons["gone.png"]
