"""``python -m train.fit --photometric``: a capture of textured synthetic frames with
landmark files in; JSON, overlays, a textured OBJ and a contact sheet out."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

from train.data.textured_faces import TexturedFaceGenerator
from train.fit.__main__ import main as fit_main
from train.fit.inputs import ndc_to_pixels
from train.fit.photo_command import PANEL, _panels

SIZE = 48


def test_photometric_command_per_capture(tmp_path, single_thread):
    gen = TexturedFaceGenerator("bundled", size=SIZE, n_shape=10, n_expr=10, texture_size=32)
    data = gen.generate_textured_capture("hmc", "test", 0, [0, 1])
    folder = tmp_path / "capture" / "seq0"
    os.makedirs(folder)
    for k in range(2):
        image = (data["image"][k].numpy() * 255).round().astype(np.uint8)
        Image.fromarray(image).save(folder / f"f{k}.png")
        px = ndc_to_pixels(data["landmarks_noisy"][k].numpy(), SIZE, SIZE) + 1.0  # 1-based
        lines = ["version: 1", "n_points: 68", "{", *(f"{x:.3f} {y:.3f}" for x, y in px), "}"]
        (folder / f"f{k}.pts").write_text("\n".join(lines) + "\n")
    Image.new("RGB", (20, 20)).save(folder / "blank.png")  # no landmarks, no face
    out = tmp_path / "out"
    argv = [str(tmp_path / "capture"), "--out", str(out), "--photometric", "--per-capture"]
    summary = fit_main(argv + ["--iterations", "4", "--texture-size", "32", "--n-shape", "10"])
    assert len(summary["images"]) == 2
    records = [json.loads((out / f"f{k}.json").read_text()) for k in range(2)]
    assert records[0]["rho"] == records[1]["rho"] > 0  # one rho per capture
    assert len(records[0]["sh"]) == 9 and records[0]["psnr_db"] > 10
    obj = (out / "f0.obj").read_text()
    assert "mtllib f0.mtl" in obj and "map_Kd f0.png" in (out / "f0.mtl").read_text()
    assert Image.open(out / "f0.png").size == (32, 32)  # the albedo texture
    overlay = Image.open(out / "f0_photometric.png")
    assert overlay.size == (3 * 256, 256)  # photo | render | blend
    assert (out / "contact_sheet_0.png").stat().st_size > 0
    assert "blank.png" in (out / "skipped.txt").read_text()


def test_overlay_panels_are_the_whole_window():
    """The fit rendered the face's window: the overlay shows photo | render | blend of
    all of it (the blend only inside the photo)."""
    gen = torch.Generator().manual_seed(0)
    coarse = torch.rand(2, 3, 4, 4, generator=gen)  # smooth: panel pixels between centres agree
    smooth = torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bilinear")
    photo, render = smooth.permute(0, 2, 3, 1)[:, None]
    valid = torch.ones(1, 32, 32, dtype=torch.bool)
    valid[:, :, 24:] = False  # the window reaches beyond the photo
    fit = SimpleNamespace(photo=photo, render=render, valid=valid)
    panels = _panels(fit, 0).astype(np.float64) / 255
    assert panels.shape == (PANEL, 3 * PANEL, 3)
    scale = PANEL // 32  # each window pixel a block of panel pixels
    centre = slice(scale // 2, PANEL, scale)
    tiles = [panels[centre, k * PANEL :][:, :PANEL][:, centre] for k in range(3)]
    blend = torch.where(valid[0][..., None], 0.5 * photo[0] + 0.5 * render[0], render[0])
    for tile, image in zip(tiles, (photo[0], render[0], blend)):
        assert np.abs(tile - image.numpy()).max() < 0.04  # 0.03: the blend's edge
