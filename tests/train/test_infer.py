"""``python -m train.infer``: per-image JSON, overlay and OBJ; unreadable files skipped."""

from __future__ import annotations

import importlib.util
import json
import math
import os

import numpy as np
import pytest
from PIL import Image

import train.faces.detector_options as detector_options
from tests.train.conftest import tiny_config
from train.data.cache import load_data
from train.engine.run import Run
from train.infer.__main__ import main as infer_main


@pytest.fixture(scope="module")
def checkpoint(data_root):
    cfg = tiny_config(data_root, name="for-infer", steps=1)
    Run(cfg, progress=False).train(load_data(cfg.data, cfg.run.out_dir, progress=False))
    return os.path.join(cfg.run.out_dir, cfg.run.name, "final.safetensors")


def test_folder_of_images(checkpoint, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / "b.jpg")
    (folder / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    argv = [str(folder), str(tmp_path / "missing.png"), "--checkpoint", checkpoint]
    infer_main([*argv, "--out", str(out), "--batch", "2", "--crop", "centre"])
    messages = capsys.readouterr().err
    assert "broken.png: not an image" in messages and "missing.png: no such file" in messages
    for stem in ("a", "b"):
        record = json.loads((out / f"{stem}.json").read_text())
        assert len(record["landmarks_px"]) == 68 and len(record["shape"]) == 10
        assert all(math.isfinite(v) for v in [record["scale"], record["rho"], *record["trans"]])
        if record["rho"] > 0:
            assert record["distance_m"] == pytest.approx(1 / record["rho"], rel=1e-5)
        assert (out / f"{stem}_overlay.png").stat().st_size > 0
        obj = (out / f"{stem}.obj").read_text().splitlines()
        assert sum(line.startswith("v ") for line in obj) > 1000
        assert sum(line.startswith("f ") for line in obj) > 1000
    # a's 64x48 image is cropped to its central 48x48: landmark pixels are shifted by 8
    a = json.loads((out / "a.json").read_text())
    ndc, px = np.array(a["landmarks_ndc"]), np.array(a["landmarks_px"])
    np.testing.assert_allclose(px, [8, 0] + (ndc + 1) * 48 / 2 - 0.5, atol=1e-4)
    skipped = (out / "skipped.txt").read_text()
    assert "broken.png" in skipped and "missing.png" in skipped


def test_bad_arguments(checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit):
        infer_main(
            [
                str(tmp_path),
                "--checkpoint",
                str(tmp_path / "nope.safetensors"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        infer_main(
            [
                str(tmp_path),
                "--checkpoint",
                checkpoint,
                "--out",
                str(tmp_path / "o"),
                "--batch",
                "0",
            ]
        )


def test_detect_crops_one_result_per_face_in_original_pixels(checkpoint, tmp_path):
    from tests.train.faces_helpers import KnownFaces, paste, photo_canvas, standin_face
    from tests.train.test_faces_images import bomb_png
    from train.faces.crop_box import CropBox
    from train.infer.inference import infer as run_infer

    face_a, pts_a = standin_face(128, 0)
    face_b, pts_b = standin_face(64, 1)
    photo, moved_a = paste(photo_canvas(400, 240), face_a, pts_a, 30, 50)
    photo, moved_b = paste(photo, face_b, pts_b, 300, 20)
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(photo).save(folder / "pair.ppm")
    bomb_png(folder / "bomb.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    Image.fromarray(np.full((50, 70, 3), 90, np.uint8)).save(folder / "nobody.png")
    known = KnownFaces([moved_a, moved_b], shape=photo.shape[:2])
    out = tmp_path / "out"
    written, skipped = run_infer(
        [str(folder)], checkpoint, str(out), batch=1, crop="detect", detector=known
    )
    assert written == ["pair_0", "pair_1"]
    reasons = {p.rsplit("/", 1)[1]: why for p, why in skipped}
    assert set(reasons) == {"bomb.png", "broken.jpg", "nobody.png"}
    assert "over the limit" in reasons["bomb.png"] and "no face found" in reasons["nobody.png"]
    for k, truth in enumerate((moved_a, moved_b)):
        record = json.loads((out / f"pair_{k}.json").read_text())
        assert record["face_index"] == k and record["crop_mode"] == "detect"
        c = record["crop"]
        crop = CropBox(*c["center_px"], c["side_px"], c["size"], c["angle_rad"])
        assert c["size"] == 32 and c["side_px"] == pytest.approx(1.4 * np.ptp(truth, 0).max())
        np.testing.assert_allclose(record["detector_landmarks_px"], truth)
        ndc, px = np.array(record["landmarks_ndc"]), np.array(record["landmarks_px"])
        np.testing.assert_allclose(px, crop.to_image((ndc + 1) * 32 / 2 - 0.5), atol=1e-3)
        assert (out / f"pair_{k}_overlay.png").exists() and (out / f"pair_{k}.obj").exists()
    assert Image.open(out / "pair_faces.png").size == (400, 240)
    assert "bomb.png" in (out / "skipped.txt").read_text()


def test_crop_none_needs_square_images(checkpoint, tmp_path, capsys):
    from train.infer.inference import infer as run_infer

    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "sq.png")
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(tmp_path / "wide.png")
    written, _ = run_infer(
        [str(tmp_path / "sq.png"), str(tmp_path / "wide.png")],
        checkpoint,
        str(tmp_path / "o"),
        crop="none",
    )
    assert written == ["sq"] and "needs a square image" in capsys.readouterr().err


def test_default_crop_detects_with_the_extra_else_centre(checkpoint, tmp_path, capsys, monkeypatch):
    from tests.train.faces_helpers import grace_hopper_path

    photo = tmp_path / "hopper.jpg"
    photo.write_bytes(open(grace_hopper_path(), "rb").read())
    if importlib.util.find_spec("dlib") is not None:  # the faces extra: detect by default
        infer_main([str(photo), "--checkpoint", checkpoint, "--out", str(tmp_path / "d")])
        record = json.loads((tmp_path / "d" / "hopper_0.json").read_text())
        assert record["crop_mode"] == "detect" and "licen" in capsys.readouterr().err.lower()
        assert record["detector_source"] in ("mediapipe", "dlib", "mediapipe+dlib")
        box = np.array(record["detector_box_px"])
        px = np.array(record["landmarks_px"])
        centre, half = np.array(record["crop"]["center_px"]), record["crop"]["side_px"] / 2
        # the crop is around the face's box; the (barely trained) predictions are in pixels
        assert (np.abs((box[:2] + box[2:]) / 2 - centre) < half / 2).all()
        assert px.shape == (68, 2) and np.isfinite(px).all()
    from train.faces import detect

    def unavailable(name="dlib"):
        raise detect.DetectorUnavailable("dlib is not installed")

    monkeypatch.setattr(detector_options, "load_detector", unavailable)
    infer_main([str(photo), "--checkpoint", checkpoint, "--out", str(tmp_path / "c")])
    assert "--crop centre" in capsys.readouterr().err
    assert json.loads((tmp_path / "c" / "hopper.json").read_text())["crop_mode"] == "centre"
    with pytest.raises(SystemExit):
        infer_main(
            [
                str(photo),
                "--checkpoint",
                checkpoint,
                "--out",
                str(tmp_path / "e"),
                "--crop",
                "detect",
            ]
        )


def test_a_folder_of_frames_is_one_tracked_sequence(checkpoint, tmp_path):
    from tests.train.faces_helpers import KnownFaces, paste, photo_canvas, standin_face
    from train.infer.inference import infer as run_infer

    face, points = standin_face(96)
    frames = tmp_path / "frames"
    frames.mkdir()
    tracks = []
    for t in range(5):
        photo, moved = paste(photo_canvas(240, 160), face, points, 20 + 10 * t, 30)
        Image.fromarray(photo).save(frames / f"frame{t:02d}.png")
        tracks.append(moved)

    class Moving(KnownFaces):
        def detect_faces(self, image):
            # the t-th call is frame t: its face is where it was pasted
            t = self.calls = getattr(self, "calls", -1) + 1
            self.faces = [tracks[t]] if t != 2 else []  # frame 2: no face found
            return super().detect_faces(image)

    out = tmp_path / "out"
    written, skipped = run_infer(
        [str(frames)], checkpoint, str(out), batch=2, detector=Moving([]), sequence=True
    )
    assert skipped == [] and written == [f"frames_frame{t:02d}" for t in range(5)]
    summary = json.loads((out / "frames_summary.json").read_text())
    assert summary["frames"] == 5 and summary["frames_held"] == 1 and summary["frames_lost"] == []
    rho = summary["rho_per_frame"]
    assert len(rho) == 5 and summary["rho"]["median"] == pytest.approx(np.median(rho))
    assert summary["rho"]["iqr"] >= 0 and summary["rho"]["mad"] >= 0
    held = json.loads((out / "frames_frame02.json").read_text())
    assert held["held"] is True and "detector_box_px" not in held
    first = json.loads((out / "frames_frame00.json").read_text())
    assert (
        first["frame"] == 0 and first["held"] is False and not (out / "frames_frame00.obj").exists()
    )


def test_a_video_file_is_tracked(checkpoint, tmp_path):
    pytest.importorskip("av", reason="the video extra (PyAV) is not installed")
    pytest.importorskip("dlib", reason="the faces extra is not installed")
    from tests.train.faces_helpers import grace_hopper_path, photo_canvas
    from tests.train.test_faces_video import write_video

    hopper = np.asarray(Image.open(grace_hopper_path()).convert("RGB").resize((256, 300)))
    frames = []
    for t in range(6):
        canvas = photo_canvas(352, 320)
        canvas[10:310, 8 + 12 * t : 264 + 12 * t] = hopper
        frames.append(canvas)
    write_video(tmp_path / "walk.mp4", frames)
    out = tmp_path / "out"
    infer_main([str(tmp_path / "walk.mp4"), "--checkpoint", checkpoint, "--out", str(out)])
    summary = json.loads((out / "walk_summary.json").read_text())
    assert summary["frames"] == 6 and summary["frames_with_result"] == 6
    assert summary["frames_held"] == 0 and summary["rho"]["n"] == 6
    xs = [
        json.loads((out / f"walk_{t:06d}.json").read_text())["crop"]["center_px"][0]
        for t in range(6)
    ]
    assert all(b > a for a, b in zip(xs, xs[1:]))  # the crop follows the face to the right


def test_a_synthetic_only_checkpoint_says_its_numbers_mean_nothing_on_photos(
    checkpoint, tmp_path, capsys
):
    """Its JSON and its output name the training data and warn; a checkpoint that has
    seen real faces (here: initialised from a converted SMIRK model) does not warn."""
    image = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 40, 3), 128, dtype=np.uint8)).save(image)
    infer_main([str(image), "--checkpoint", checkpoint, "--out", str(tmp_path / "a"),
                "--crop", "centre"])  # fmt: skip
    record = json.loads((tmp_path / "a" / "photo.json").read_text())
    assert record["trained_on"]["kind"] == "synthetic"
    assert record["trained_on"]["real_faces"] is False
    assert "never seen a real face" in record["warning"]
    assert "not meaningful" in record["warning"] and "train.fit" in record["warning"]
    assert "warning: this checkpoint was trained on synthetic renders" in capsys.readouterr().err


def test_what_a_checkpoint_has_seen_survives_fine_tuning(checkpoint, data_root, tmp_path):
    from train.engine import checkpoint as ckpt
    from train.engine.provenance import training_data

    tensors, info = ckpt.read_checkpoint(checkpoint)
    smirk_like = str(tmp_path / "converted.safetensors")
    cfg = tiny_config(data_root, name="from-converted", steps=1, out_dir=str(tmp_path))
    run = Run(cfg, progress=False)
    ckpt.load_model_state(run.system, tensors)
    ckpt.save_checkpoint(smirk_like, run.system, None, info["config"], 0,
                         extra={"imported_from": "/x/SMIRK_em1.pt"})  # fmt: skip
    tuned = Run(cfg, init_from=smirk_like, progress=False)
    tuned.train(load_data(cfg.data, str(data_root), progress=False))
    final = os.path.join(cfg.run.out_dir, cfg.run.name, "final.safetensors")
    seen = training_data(cfg, ckpt.read_info(final)["extra"])
    assert seen["kind"] == "smirk-release" and seen["real_faces"]
    assert "then fine-tuned here" in seen["description"]
    out = tmp_path / "out"
    image = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 40, 3), 90, dtype=np.uint8)).save(image)
    infer_main([str(image), "--checkpoint", final, "--out", str(out), "--crop", "centre"])
    record = json.loads((out / "photo.json").read_text())
    assert record["trained_on"]["kind"] == "smirk-release" and "warning" not in record


def test_refine_fit_brings_rho_to_the_truth_with_its_interval(checkpoint, tmp_path, single_thread):
    """Synthetic faces with known rho, each centred in a larger non-square canvas (the
    principal point stays the image's centre, so the true rho holds there), found by a
    detector that returns their true landmarks: the refined rho is closer to the truth
    than the barely trained regressor's, with its interval in the JSON; plain inference
    writes no ``refined`` block; with ``--crop centre`` the image's .pts file is used."""
    from tests.train.faces_helpers import KnownFaces, photo_canvas
    from train.data.synthetic import FaceGenerator
    from train.faces.landmark_files import write_pts

    gen = FaceGenerator("bundled", size=64, n_shape=10, n_expr=10)
    faces = [gen.generate(regime, "test", [0]) for regime in ("hmc", "studio")]
    folder = tmp_path / "synthetic"
    folder.mkdir()
    known, truth = {}, {}
    for k, (sample, (width, height)) in enumerate(zip(faces, [(96, 80), (80, 112)])):
        left, top = (width - 64) // 2, (height - 64) // 2
        photo = photo_canvas(width, height, seed=k)
        photo[top : top + 64, left : left + 64] = sample["image"][0].permute(1, 2, 0).numpy()
        points = (sample["landmarks"][0].double().numpy() + 1) * 32 - 0.5 + [left, top]
        Image.fromarray(photo).save(folder / f"face{k}.png")
        write_pts(str(folder / f"face{k}.pts"), points)
        known[(height, width)], truth[f"face{k}"] = points, float(sample["rho"][0])

    class ByImage(KnownFaces):
        def detect_faces(self, image):
            self.faces = [known[image.shape[:2]]]
            return super().detect_faces(image)

    from train.infer.inference import infer as run_infer

    out = tmp_path / "refined"
    run_infer(
        [str(folder)], checkpoint, str(out), crop="detect", detector=ByImage([]), refine="fit"
    )
    for stem, rho in truth.items():
        record = json.loads((out / f"{stem}_0.json").read_text())
        refined = record["refined"]
        assert abs(refined["rho"] / rho - 1) < abs(record["rho"] / rho - 1)
        assert abs(refined["rho"] / rho - 1) < 0.1, (refined["rho"], rho)
        lo, hi = refined["rho_interval"]
        assert 0 < lo < refined["rho"] < hi
        d_lo, d_hi = refined["distance_interval_m"]
        assert d_lo == pytest.approx(1 / hi, rel=1e-5) and d_hi == pytest.approx(1 / lo, rel=1e-5)
        assert refined["distance_text"].startswith(f"{refined['distance_m']:.2f} m [")
        assert 0 <= refined["residual_px"] < 3 and len(refined["landmarks_px"]) == 68
    plain = tmp_path / "plain"
    run_infer([str(folder)], checkpoint, str(plain), crop="detect", detector=ByImage([]))
    assert "refined" not in json.loads((plain / "face0_0.json").read_text())
    centre = tmp_path / "centre"
    argv = [str(folder / "face1.png"), "--checkpoint", checkpoint, "--out", str(centre)]
    infer_main([*argv, "--crop", "centre", "--refine", "fit"])
    refined = json.loads((centre / "face1.json").read_text())["refined"]
    assert abs(refined["rho"] / truth["face1"] - 1) < 0.1 and refined["start"] in (
        "regressor",
        "mean face",
    )
