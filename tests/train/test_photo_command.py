"""``python -m train.fit --photometric``: a capture of textured synthetic frames with
landmark files in; JSON, overlays, a textured OBJ and a contact sheet out."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from train.data.textured_faces import TexturedFaceGenerator
from train.fit.__main__ import main as fit_main
from train.fit.inputs import ndc_to_pixels
from train.fit.photo_command import FACE_WINDOW, face_window

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


@settings(max_examples=60, deadline=None)
@given(
    centre=st.tuples(st.floats(-1, 1), st.floats(-1, 1)),
    extent=st.tuples(st.floats(0.01, 2.0), st.floats(0.01, 2.0)),
    size=st.sampled_from([48, 224]),
)
def test_face_window_is_a_square_inside_the_render_holding_the_face(centre, extent, size):
    lo = torch.tensor(centre) - torch.tensor(extent) / 2
    landmarks = lo + torch.rand(68, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor(
        extent
    )
    left, top, right, bottom = face_window(landmarks, size)
    assert math.isclose(right - left, bottom - top, rel_tol=1e-6)
    assert -1e-6 <= left and -1e-6 <= top and right <= size + 1e-4 and bottom <= size + 1e-4
    # the face's box (in pixels) is inside the window wherever the square holds it
    px_lo = ((landmarks.min(0).values.clamp(-1, 1) + 1) / 2 * size).tolist()
    px_hi = ((landmarks.max(0).values.clamp(-1, 1) + 1) / 2 * size).tolist()
    assert left <= px_lo[0] + 1e-3 and top <= px_lo[1] + 1e-3
    assert px_hi[0] <= right + 1e-3 and px_hi[1] <= bottom + 1e-3
    # a small face gets a small window: the overlay zooms in
    if max(extent) * FACE_WINDOW < 2:
        assert right - left <= max(extent) * FACE_WINDOW / 2 * size + 1e-3
