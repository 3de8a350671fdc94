"""``python -m bench.gpu.stage NAME --dir DIR [...]``: run one stage of ``bench.gpu``.

The scheduler (:mod:`bench.gpu.run`) starts every stage as a child process with
this entry point and a time-out; the stage writes its record to
``DIR/stages/NAME.json`` (the figures and a one-line ``headline``, or a
``skip_reason``) and whatever files it makes under ``DIR``. Stages that run
children of their own (the tests, ncu) stop them a little before the scheduler's
time-out, so that what they finished is still written.
"""

from __future__ import annotations

import argparse
import os
import time

from _common.atomic import write_json
from bench.pytest_run import repo_env, run_pytest

#: Test files that hold ``cuda``-marked tests (collecting only them keeps the stage short).
CUDA_TEST_FILES = (
    "tests/ppcam/test_cuda_large.py",
    "tests/minirast/test_cuda_large.py",
    "tests/minirast/test_texture_triton.py",
)
#: The suite in parts, run in this order, so that a time-out loses only the rest.
SUITE_PARTS = (
    "tests/common",
    "tests/ppcam",
    "tests/minirast",
    "tests/bench",
    "tests/flame",
    "tests/test_imports.py",
    "tests/test_docs.py",
    "tests/train",
)
#: The dry run's suite: one fast part, to prove the machinery (CI runs the whole suite).
DRY_RUN_SUITE = ("tests/common",)


def stage_path(out_dir: str, name: str) -> str:
    """Where stage ``name`` writes its record."""
    return os.path.join(out_dir, "stages", f"{name}.json")


def _device():
    """The device of the measurements; on a CPU, Triton's interpreter is switched on
    before triton is first imported (the test stages never import torch here)."""
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _test_env() -> dict:
    """The tests' environment: the interpreter only where a dry run asked for it."""
    return repo_env(interpret=os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"))


def _tests_record(parts: list[dict]) -> dict:
    keys = ("tests", "passed", "failed", "errors", "skipped")
    total = {k: sum(p[k] for p in parts) for k in keys}
    failures = [f for p in parts for f in p["failures"]]
    incomplete = [p["command"] for p in parts if p["error"]]
    headline = (
        f"{total['passed']} passed, {total['failed']} failed, {total['errors']} errors, "
        f"{total['skipped']} skipped"
        + (f"; incomplete: {len(incomplete)} runs" if incomplete else "")
    )
    return {
        **total,
        "failures": failures,
        "incomplete": incomplete,
        "parts": parts,
        "headline": headline,
    }


def _tests_in_parts(marker: str, parts: tuple[str, ...], deadline: float) -> dict:
    """``pytest -m MARKER PART`` for each part in turn until the deadline, so that a
    time-out loses only the part it hit and those after it."""
    env = _test_env()
    done, not_run = [], []
    for part in parts:
        left = deadline - time.monotonic()
        if left < 5:
            not_run.append(part)
            continue
        done.append(run_pytest(["-m", marker, part], env=env, timeout=left))
    record = _tests_record(done)
    record["not_run"] = not_run
    if not_run:
        record["headline"] += f"; not run (out of time): {', '.join(not_run)}"
    return record


def cuda_tests(deadline: float) -> dict:
    """``pytest -m cuda`` over :data:`CUDA_TEST_FILES` (they skip without CUDA)."""
    return _tests_in_parts("cuda", CUDA_TEST_FILES, deadline)


def suite(deadline: float, dry_run: bool) -> dict:
    """The test suite without the ``cuda`` marker, in parts, until the deadline."""
    return _tests_in_parts("not cuda", DRY_RUN_SUITE if dry_run else SUITE_PARTS, deadline)


def projection(out_root: str, dry_run: bool, seconds: float) -> dict:
    from bench import projection as bench_projection

    if dry_run:
        p = bench_projection.run([1], 200, False, 0.05, out_root, 1, resources=False)
    else:
        # 24 timed cases and 8 copies, plus torch.compile's compilations: half a second
        # each at the default budget. The sm_90 resource table is left to the tests.
        budget = min(0.5, max(0.1, seconds / 160))
        p = bench_projection.run([1, 64, 512, 4096], 5023, True, budget, out_root, resources=False)
    rows = [
        {
            k: r.get(k)
            for k in (
                "batch",
                "backend",
                "mode",
                "ms",
                "fraction_of_copy",
                "achieved_GBps",
                "copy_GBps",
            )
        }
        for r in p["rows"]
    ]
    worst = max(r["max_rel_error"] for r in p["gradient_parity"])
    return {
        "rows": rows,
        "interpreted": p["triton_interpreted"],
        "worst_parity_rel_error": worst,
        "files": ["projection.json", "projection.md", "projection.png"],
        "headline": f"{len(rows)} cases; gradient parity rel. error <= {worst:.1e}",
    }


def raster(out_root: str, dry_run: bool, seconds: float) -> dict:
    from bench import raster as bench_raster

    if dry_run:
        from bench.gpu.determinism import scene_mesh

        payload, _ = bench_raster.run(
            [32], [1], 0.05, out_root, False, False, 32 * 32, mesh=scene_mesh(small=True)
        )
    else:
        budget = min(0.5, max(0.1, seconds / 140))  # 24 timed cases
        payload, _ = bench_raster.run(
            [224, 512], [1, 8, 64], budget, out_root, False, False, bench_raster.CPU_MAX_PIXELS
        )
    rows = payload["results"]
    return {
        "rows": rows,
        "skipped_cases": payload["skipped"],
        "triton_interpreter_smoke": payload["triton_interpreter_smoke"],
        "files": ["raster.json", "raster.md", "raster.png"],
        "headline": f"{len(rows)} cases timed ({len(payload['skipped'])} skipped)",
    }


def regressor(out_root: str, dry_run: bool) -> dict:
    """SMIRK's encoder and our regressor, forward + backward (bench.regressor)."""
    from bench import regressor as bench_regressor

    argv = ["--out", out_root] + (["--quick", "--device", "cpu"] if dry_run else ["--budget", "3"])
    payload = bench_regressor.main(argv)
    rows = payload["rows"]
    smirk = [r for r in rows if r["model"] == "smirk"]
    return {
        "rows": rows,
        "files": ["regressor.json", "regressor.md", "regressor.png"],
        "headline": ", ".join(
            f"smirk {r['precision']} {r['images_per_s']:.0f} images/s" for r in smirk
        ),
    }


def fitting(out_root: str, dry_run: bool) -> dict:
    """Landmark fitting of 4,096 images (bench.fit)."""
    from bench import fit as bench_fit

    argv = ["--out", out_root] + (
        ["--quick", "--device", "cpu"] if dry_run else ["--images", "4096"]
    )
    payload = bench_fit.main(argv)
    rows = payload["rows"]
    return {
        "rows": rows,
        "files": ["fit.json", "fit.md", "fit.png"],
        "headline": ", ".join(f"{r['case']}: {r['seconds']:.2f} s" for r in rows),
    }


def photo_fitting(dry_run: bool, deadline: float) -> dict:
    """``train.fit.fit_images`` on one capture of 64 frames at 512 px (the GPU target;
    ``bench.photo_fit.time_capture``): the default fit (its render at 224 px), then, if
    time is left, the same with the render at the photos' full 512 px. Both without rho's
    interval, which train.fit.photo_posterior computes in float64 on the CPU."""
    from bench import photo_fit
    from bench.gpu.targets import PHOTO_FIT_FRAMES, PHOTO_FIT_PX

    device = _device()
    if dry_run:
        frames, size, steps = 2, 48, {"iterations": 2, "landmark_iterations": 2}
    else:
        frames, size, steps = PHOTO_FIT_FRAMES, PHOTO_FIT_PX, {}
    steps["intervals"] = False
    rows = [photo_fit.time_capture(frames, size, device, **steps)]
    # the second job renders (512/224)² more pixels: run it if that many times the
    # first's time (and as much again for its warm-up) is left
    if time.monotonic() + 2 * rows[0]["seconds"] * (size / rows[0]["resolution"]) ** 2 < deadline:
        rows.append(photo_fit.time_capture(frames, size, device, resolution=size, **steps))
    return {
        "rows": rows,
        "headline": "; ".join(
            f"{r['frames']} frames at {r['size']} px, render {r['resolution']} px: "
            f"{r['seconds']:.2f} s ({r['iterations']} iterations)"
            for r in rows
        ),
    }


def run_stage(name: str, out_dir: str, dry_run: bool, seconds: float, nvdiffrast: str | None):
    """Run stage ``name`` within about ``seconds``; returns its record."""
    deadline = time.monotonic() + 0.95 * seconds - 2.0
    out_root = os.path.dirname(os.path.abspath(out_dir))
    if name == "cuda-tests":
        return cuda_tests(deadline)
    if name == "suite":
        return suite(deadline, dry_run)
    device = _device()
    if name == "env":
        from bench.gpu import env

        return env.run(device)
    if name == "determinism":
        from bench.gpu import determinism

        return determinism.run(device, dry_run)
    if name == "projection":
        return projection(out_root, dry_run, seconds)
    if name == "raster":
        return raster(out_root, dry_run, seconds)
    if name == "nvdiffrast-build":
        from bench.gpu import nvdiffrast_peer

        return nvdiffrast_peer.build(nvdiffrast)
    if name == "nvdiffrast":
        from bench.gpu import nvdiffrast_peer

        return nvdiffrast_peer.run(nvdiffrast, dry_run)
    if name == "texture":
        from bench.gpu import texture_peer

        return texture_peer.run(nvdiffrast, dry_run)
    if name == "train":
        from bench.gpu import throughput

        return throughput.run(dry_run)
    if name == "regressor":
        return regressor(out_root, dry_run)
    if name == "fit":
        return fitting(out_root, dry_run)
    if name == "photo-fit":
        return photo_fitting(dry_run, deadline)
    if name == "ncu":
        from bench.gpu import ncu

        return ncu.run(dry_run, max(1.0, deadline - time.monotonic()))
    raise ValueError(f"unknown stage {name!r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu.stage", description=__doc__)
    parser.add_argument("name")
    parser.add_argument("--dir", required=True, help="the results folder of this device")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--seconds", type=float, default=60.0, help="the stage's time-out")
    parser.add_argument("--nvdiffrast", default=None)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    record = run_stage(args.name, args.dir, args.dry_run, args.seconds, args.nvdiffrast)
    record["stage_seconds"] = time.perf_counter() - start
    write_json(stage_path(args.dir, args.name), record)


if __name__ == "__main__":
    main()
