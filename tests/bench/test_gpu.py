"""``python -m bench.gpu``: the dry run end to end, and the parts a GPU run depends on
that can be checked without one (time-outs, target verdicts, ncu's CSV, nvdiffrast's
source layouts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.gpu import ncu, nvdiffrast_peer, plots, targets
from bench.gpu import run as gpu_run


def test_dry_run_runs_every_stage(tmp_path, capsys):
    assert gpu_run.main(["--dry-run", "--out", str(tmp_path), "--budget", "400"]) == 0
    out = capsys.readouterr().out
    (device,) = os.listdir(tmp_path)
    folder = tmp_path / device
    payload = json.loads((folder / "gpu.json").read_text())
    assert list(payload["stages"]) == [name for name, _ in gpu_run.STAGES]
    for name, stage in payload["stages"].items():
        assert f"] {name}: started" in out  # a progress line per stage
        assert stage["status"] == ("skipped" if name in ("nvdiffrast", "ncu") else "ok"), stage
    records = {n: s["record"] for n, s in payload["stages"].items()}
    assert records["determinism"]["all_bitwise_equal"]
    assert records["suite"]["failed"] == 0 and records["suite"]["passed"] > 0
    assert {r["amp"] for r in records["train"]["rows"]} == {True, False}
    assert "--nvdiffrast" in records["nvdiffrast"]["skip_reason"]
    assert {r["backend"] for r in records["texture"]["rows"]} == {
        "minirast triton",
        "minirast torch",
    }
    assert all(d["out"] < 1e-4 for d in records["texture"]["max_abs_difference"])
    assert {r["model"] for r in records["regressor"]["rows"]} >= {"smirk", "small-w0.5"}
    assert records["fit"]["rows"][0]["images"] == 48
    photo = records["photo-fit"]["rows"]
    assert [(r["frames"], r["size"], r["device"]) for r in photo] == [(2, 48, "cpu")] * len(photo)
    assert all(r["seconds"] > 0 and r["resolution"] == 48 for r in photo)
    assert records["photo-fit"]["headline"].startswith("2 frames at 48 px, render 48 px")
    for name in ("projection", "raster", "regressor", "fit"):
        for ext in ("json", "md", "png"):
            assert (folder / f"{name}.{ext}").stat().st_size > 0
    assert (folder / "summary.png").stat().st_size > 1000
    summary = (folder / "summary.md").read_text()
    assert "## Targets" in summary and "not judged (no GPU)" in summary
    assert all(r["verdict"] not in (targets.MET, targets.MISSED) for r in payload["targets"])


def test_a_hanging_stage_is_stopped_at_its_time_out(tmp_path):
    for sub in ("logs", "stages"):
        (tmp_path / sub).mkdir()
    result = gpu_run.run_stage("env", str(tmp_path), True, 0.05, None)
    assert result["status"] == "timed out"


def test_the_background_build_is_waited_for_and_stopped(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "nvdiffrast-build.log").write_text("nvcc: error\n")

    def child(code):
        return subprocess.Popen([sys.executable, "-c", code], start_new_session=True)

    assert gpu_run.wait_build(child("pass"), str(tmp_path), 30) is None
    why = gpu_run.wait_build(child("raise SystemExit(3)"), str(tmp_path), 30)
    assert "failed (exit 3)" in why and "nvcc: error" in why
    sleeper = child("import time; time.sleep(60)")
    assert "stopped" in gpu_run.wait_build(sleeper, str(tmp_path), 0.5)
    assert sleeper.poll() is not None


def _stage(record, status="ok"):
    return {"status": status, "seconds": 1.0, "timeout": 10.0, "record": record}


def test_targets_are_judged_from_gpu_records(tmp_path):
    proj = [
        {
            "batch": b,
            "backend": be,
            "mode": "forward+backward",
            "ms": ms,
            "fraction_of_copy": 0.85,
            "achieved_GBps": 3600.0,
            "copy_GBps": 4230.0,
        }
        for b in (64, 512, 4096)
        for be, ms in (("triton", 1.0), ("torch", 4.0), ("torch.compile", 1.5))
    ]
    raster = [
        {
            "backend": "triton",
            "mode": "forward+backward",
            "resolution": 224,
            "batch": 64,
            "ms": 0.8,
        },
        {
            "backend": "triton",
            "mode": "forward+backward",
            "resolution": 512,
            "batch": 64,
            "ms": 4.5,
        },
    ]
    peer = [
        {
            "resolution": 224,
            "batch": 64,
            "nvdiffrast_ms": 1.2,
            "minirast_triton_ms": 0.8,
            "speedup_minirast_vs_nvdiffrast": 1.5,
            "covered_pixel_agreement": 0.999,
        }
    ]
    train = [
        {
            "amp": amp,
            "render_share": share,
            "render_fwd_share": share / 2,
            "images_per_s": 900.0,
            "image_size": 224,
            "batch_size": 32,
        }
        for amp, share in ((True, 0.2), (False, 0.1))
    ]
    texture = [
        {"backend": be, "filter": f, "batch": 8, "mode": "forward+backward", "ms": ms}
        for be, f, ms in (
            ("minirast triton", "linear", 0.5),
            ("nvdiffrast", "linear", 0.6),
            ("minirast triton", "linear-mipmap-linear", 0.9),
            ("nvdiffrast", "linear-mipmap-linear", 0.8),
        )
    ]
    tests = {"passed": 10, "failed": 0, "errors": 0, "skipped": 0, "failures": []}
    photo = {"frames": 64, "size": 512, "resolution": 224, "iterations": 80, "seconds": 8.0}
    stages = {
        "projection": _stage({"rows": proj}),
        "raster": _stage({"rows": raster}),
        "nvdiffrast": _stage({"rows": peer}),
        "texture": _stage({"rows": texture, "nvdiffrast": "compared"}),
        "train": _stage({"rows": train, "preset": "full"}),
        "cuda-tests": _stage(tests),
        "suite": _stage({**tests, "failed": 1}),
        "determinism": _stage({"all_bitwise_equal": True, "headline": "all repeatable"}),
        "fit": _stage({"rows": [{"case": "per image", "images": 4096, "seconds": 1.5}]}),
        "photo-fit": _stage({"rows": [photo, {**photo, "resolution": 512, "seconds": 30.0}]}),
    }
    verdicts = [r["verdict"] for r in targets.judge(stages, on_gpu=True)]
    M, X = targets.MET, targets.MISSED
    assert verdicts == [M, M, M, M, X, M, M, X, X, M, M, M, X, M]
    (row,) = targets.photo_fit_rows(stages)
    assert "8.00 s (64 frames at 512 px, render 224 px" in row["measured"]
    assert "render 512 px: 30.00 s (not judged)" in row["note"]
    slow = {"photo-fit": _stage({"rows": [{**photo, "seconds": 12.0}]})}
    assert targets.photo_fit_rows(slow)[0]["verdict"] == X
    small = {"photo-fit": _stage({"rows": [{**photo, "frames": 2, "size": 48}]})}
    assert targets.photo_fit_rows(small)[0]["verdict"] == targets.NOT_MEASURED
    png = tmp_path / "summary.png"
    assert plots.plot({"stages": stages, "device": "gpu", "dry_run": False}, str(png))
    assert png.stat().st_size > 1000
    env = {"gpu_name": "NVIDIA H200", "sm_count": 132, "memory_GiB": 139.8, "capability": "9.0",
           "driver": "580.1", "torch": "2.11", "torch_cuda": "13.0", "triton": "3.6.0",
           "numpy": "2", "python": "3.12", "nvcc": "13.0", "ncu": None,
           "copy": {"GBps": 4300.0, "bytes_per_side": 2**30}}  # fmt: skip
    payload = {"stages": {"env": _stage(env), **stages}, "dry_run": False, "cuda": True,
               "device": "nvidia-h200", "command": "python -m bench.gpu", "budget_s": 480,
               "total_s": 470, "summary_png": True,
               "targets": targets.judge(stages, on_gpu=True)}  # fmt: skip
    text = gpu_run.summary_markdown(payload)
    assert "NVIDIA H200 (132 SMs, 140 GiB" in text and "4300 GB/s" in text
    assert text.count("**met**") == 10 and text.count("**missed**") == 4
    stages["nvdiffrast"] = _stage(
        {"skip_reason": "no --nvdiffrast PATH given", "rows": []}, "skipped"
    )
    stages["raster"] = _stage({}, "timed out")
    rows = targets.judge(stages, on_gpu=True)
    assert [r["verdict"] for r in rows[3:6]] == [targets.NOT_MEASURED] * 3
    assert "timed out" in rows[3]["note"] and "--nvdiffrast" in rows[5]["note"]


def test_ncu_csv_is_parsed():
    text = "\n".join(
        [
            "==PROF== Connected to process 123",
            '"ID","Process ID","Kernel Name","Block Size","Grid Size",'
            '"gpu__time_duration.sum","dram__bytes.sum","launch__registers_per_thread"',
            '"","","","","","nsecond","byte","register/thread"',
            '"0","123","project_fwd_kernel","(128, 1, 1)","(1000, 1, 1)","2,000","8,000,000","40"',
            "==PROF== Disconnected from process 123",
        ]
    )
    (row,) = ncu.parse_csv(text)
    assert row["kernel"] == "project_fwd_kernel" and row["registers"] == 40.0
    assert row["duration_ns"] == 2000.0 and row["dram_GBps"] == pytest.approx(4000.0)
    assert row["achieved_occupancy_pct"] is None  # not in this output
    assert ncu.parse_csv("==PROF== ERR_NVGPUCTRPERM") == []
    names = ncu.kernel_names()
    assert {"project_fwd_kernel", "_raster_kernel"} <= set(names)
    cmd = ncu.ncu_command("ncu", names)
    assert cmd[cmd.index("--kernel-name") + 1].startswith("regex:^(")


def test_nvdiffrast_source_layouts(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an nvdiffrast checkout"):
        nvdiffrast_peer.source_layout(str(tmp_path))
    ops = tmp_path / "nvdiffrast" / "torch" / "ops.py"
    ops.parent.mkdir(parents=True)
    ops.write_text("import torch\nimport _nvdiffrast_c\n")
    (tmp_path / "setup.py").write_text('sources=["csrc/common/a.cu", "csrc/torch/b.cpp"]\n')
    assert nvdiffrast_peer.source_layout(str(tmp_path)) == "aot"
    assert nvdiffrast_peer.setup_sources(str(tmp_path)) == [
        str(tmp_path / "csrc/common/a.cu"),
        str(tmp_path / "csrc/torch/b.cpp"),
    ]
    ops.write_text("import torch\ndef _get_plugin(): pass\n")
    assert nvdiffrast_peer.source_layout(str(tmp_path)) == "jit"


@pytest.mark.parametrize(
    "argv", [["--budget", "0"], ["--stages", "env,nope"], ["--nvdiffrast", "/no/such/dir"]]
)
def test_bad_flags_are_rejected(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        gpu_run.main(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err
