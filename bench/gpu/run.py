"""The scheduler of ``python -m bench.gpu``: stages in child processes, time-outs, summary.

Each stage (:data:`STAGES`) runs as ``python -m bench.gpu.stage NAME`` with a
time-out; a stage that hangs or crashes loses only itself. The budget is shared
out as the run goes: a stage gets the time left times its weight over the
weights of the stages still to come, so time a stage does not use goes to the
later ones. With ``--nvdiffrast PATH`` on a CUDA machine, nvdiffrast's extension
is built in the background from the start (half the cores), and its stage waits
for the build. A progress line is printed as each stage starts and ends.

Writes ``<out>/<device-name>/``: ``summary.md`` (each figure beside its target,
:mod:`bench.gpu.targets`), ``gpu.json`` (every stage record), the benches' own
JSON/markdown/PNG files, ``stages/*.json`` and ``logs/*.log`` (each stage's output).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from _common.atomic import write_json, write_text
from bench.gpu import plots, targets
from bench.gpu.stage import stage_path
from bench.pytest_run import ROOT, repo_env

#: (stage, weight): the share of the budget of each stage, in running order.
STAGES = (
    ("env", 15),
    ("cuda-tests", 70),
    ("determinism", 25),
    ("projection", 80),
    ("raster", 70),
    ("nvdiffrast", 60),
    ("texture", 30),
    ("train", 60),
    ("regressor", 30),
    ("fit", 30),
    ("photo-fit", 50),
    ("ncu", 50),
    ("suite", 50),
)
DEFAULT_BUDGET = 480.0
#: Seconds kept back at the end for the summary; a stage with less than this is not run.
MIN_STAGE_SECONDS = 5.0
#: Share of the nvdiffrast stage's time-out it may spend waiting for the background build.
BUILD_WAIT_SHARE = 0.6


def stage_env(dry_run: bool, extra: dict | None = None) -> dict:
    """The environment of every child: the repository on PYTHONPATH; a dry run hides
    the GPUs and switches the Triton interpreter on, a real run switches it off."""
    extra = {"PYTHONIOENCODING": "utf-8", **(extra or {})}
    if dry_run:
        return repo_env({"CUDA_VISIBLE_DEVICES": "", **extra}, interpret=True)
    return repo_env(extra, interpret=False)


def probe_device(dry_run: bool, timeout: float = 120.0) -> tuple[str, bool]:
    """(the results folder name of this machine's device, whether it is a CUDA device),
    from a child process, so a CUDA start-up that hangs cannot hang the scheduler."""
    code = (
        "import torch; from bench.common import device_name; cuda = torch.cuda.is_available();"
        "print(device_name(torch.device('cuda' if cuda else 'cpu')), int(cuda))"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=stage_env(dry_run),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        name, cuda = out.stdout.split()[-2:]
        return name, cuda == "1"
    except (subprocess.TimeoutExpired, ValueError):
        return "unknown-device", False


def _stage_command(name: str, out_dir: str, dry_run: bool, seconds: float, nvd: str | None):
    cmd = [
        sys.executable,
        "-m",
        "bench.gpu.stage",
        name,
        "--dir",
        out_dir,
        "--seconds",
        f"{seconds:.1f}",
    ]
    if dry_run:
        cmd.append("--dry-run")
    if nvd:
        cmd += ["--nvdiffrast", os.path.abspath(nvd)]
    return cmd


def _log_tail(path: str, lines: int = 8) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return " | ".join(f.read().strip().splitlines()[-lines:])
    except OSError:
        return ""


def run_stage(name: str, out_dir: str, dry_run: bool, timeout: float, nvd: str | None) -> dict:
    """Run one stage in a child process; its status, seconds and record."""
    log = os.path.join(out_dir, "logs", f"{name}.log")
    record_path = stage_path(out_dir, name)
    if os.path.exists(record_path):
        os.remove(record_path)
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as f:
        proc = subprocess.Popen(
            _stage_command(name, out_dir, dry_run, timeout, nvd),
            cwd=ROOT,
            env=stage_env(dry_run),
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            rc = None
    seconds = time.perf_counter() - start
    if rc is None:
        return {
            "status": "timed out",
            "seconds": seconds,
            "timeout": timeout,
            "record": {},
            "error": _log_tail(log),
        }
    if rc != 0 or not os.path.exists(record_path):
        return {
            "status": "failed",
            "seconds": seconds,
            "timeout": timeout,
            "record": {},
            "error": f"exit {rc}: {_log_tail(log)}",
        }
    with open(record_path, encoding="utf-8") as f:
        record = json.load(f)
    status = "skipped" if record.get("skip_reason") else "ok"
    return {"status": status, "seconds": seconds, "timeout": timeout, "record": record}


def _kill(proc: subprocess.Popen) -> None:
    """End a stage's child and everything it started (its own process group)."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def start_build(out_dir: str, nvd: str) -> subprocess.Popen:
    """The background nvdiffrast build (half the cores; its output in logs/)."""
    env = stage_env(False, {"MAX_JOBS": str(max(1, (os.cpu_count() or 2) // 2))})
    cmd = _stage_command("nvdiffrast-build", out_dir, False, 0, nvd)
    stale = stage_path(out_dir, "nvdiffrast-build")
    if os.path.exists(stale):
        os.remove(stale)
    with open(os.path.join(out_dir, "logs", "nvdiffrast-build.log"), "w", encoding="utf-8") as log:
        return subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_build(build: subprocess.Popen, out_dir: str, seconds: float) -> str | None:
    """Wait for the background build; None when it succeeded, else why not."""
    try:
        rc = build.wait(timeout=max(1.0, seconds))
    except subprocess.TimeoutExpired:
        _kill(build)
        return f"nvdiffrast build not done after {seconds:.0f} s more (stopped)"
    if rc != 0:
        log = os.path.join(out_dir, "logs", "nvdiffrast-build.log")
        return f"nvdiffrast build failed (exit {rc}): {_log_tail(log)}"
    return None


def progress(i: int, n: int, name: str, text: str) -> None:
    print(f"[bench.gpu {i}/{n}] {name}: {text}", flush=True)


def run(
    budget: float, out_root: str, dry_run: bool, nvd: str | None, only=None, command: str = ""
) -> dict:
    """Every stage within ``budget`` seconds (``only``: those named); returns the run's
    record (also in gpu.json). ``command``: the command line, for the summary."""
    t0 = time.monotonic()
    device, cuda = probe_device(dry_run)
    out_dir = os.path.join(os.path.abspath(out_root), device)
    for sub in ("logs", "stages"):
        os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
    print(
        f"[bench.gpu] {device}: results in {out_dir}, budget {budget:.0f} s"
        + (" (dry run: tiny sizes, CPU figures are not speed figures)" if dry_run else ""),
        flush=True,
    )
    stages = [(n, w) for n, w in STAGES if only is None or n in only]
    results, build = {}, None
    for i, (name, weight) in enumerate(stages, 1):
        left = budget - (time.monotonic() - t0) - MIN_STAGE_SECONDS
        share = left * weight / sum(w for _, w in stages[i - 1 :])
        if share < MIN_STAGE_SECONDS:
            results[name] = {
                "status": "not run",
                "seconds": 0.0,
                "timeout": 0.0,
                "record": {},
                "error": "budget spent",
            }
            progress(i, len(stages), name, "not run (budget spent)")
            continue
        if name == "nvdiffrast" and build is not None:
            progress(i, len(stages), name, "waiting for the background build")
            waited = time.monotonic()
            why = wait_build(build, out_dir, share * BUILD_WAIT_SHARE)
            share -= time.monotonic() - waited
            if why is not None:
                results[name] = {
                    "status": "failed",
                    "seconds": 0.0,
                    "timeout": share,
                    "record": {},
                    "error": why,
                }
                progress(i, len(stages), name, why)
                continue
        progress(i, len(stages), name, f"started (time-out {share:.0f} s)")
        result = run_stage(name, out_dir, dry_run, share, nvd)
        results[name] = result
        detail = result["record"].get("headline") or result["record"].get("skip_reason") or ""
        detail = detail or result.get("error", "")
        progress(i, len(stages), name, f"{result['status']} in {result['seconds']:.1f} s: {detail}")
        if name == "env" and nvd and cuda and not dry_run and result["status"] == "ok":
            build = start_build(out_dir, nvd)
    build_record = None
    if build is not None:
        if build.poll() is None:
            _kill(build)
        path = stage_path(out_dir, "nvdiffrast-build")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                build_record = json.load(f)
    total = time.monotonic() - t0
    rows = targets.judge(results, on_gpu=cuda and not dry_run)
    payload = {
        "device": device,
        "cuda": cuda,
        "dry_run": dry_run,
        "budget_s": budget,
        "total_s": total,
        "nvdiffrast_path": nvd,
        "nvdiffrast_build": build_record,
        "command": command,
        "stages": results,
        "targets": rows,
    }
    payload["summary_png"] = plots.plot(payload, os.path.join(out_dir, "summary.png"))
    write_json(os.path.join(out_dir, "gpu.json"), payload)
    write_text(os.path.join(out_dir, "summary.md"), summary_markdown(payload))
    payload["out_dir"] = out_dir
    return payload


def summary_markdown(p: dict) -> str:
    """The run's ``summary.md``: environment, targets (met / missed), stages, files."""
    env = p["stages"].get("env", {}).get("record", {})
    lines = [f"# bench.gpu on {env.get('gpu_name') or p['device']}", ""]
    if p["dry_run"] or not p["cuda"]:
        lines += [
            "**Dry run / no GPU: tiny sizes on the CPU, Triton in its interpreter. These "
            "figures prove the command works; they are not speed figures, and no target "
            "is judged.**",
            "",
        ]
    if env:
        copy = env.get("copy", {})
        if env.get("gpu_name"):
            device = (
                f"{env['gpu_name']} ({env['sm_count']} SMs, {env['memory_GiB']:.0f} GiB, "
                f"capability {env['capability']}), driver {env['driver']}"
            )
        else:
            device = f"no GPU; CPU {env.get('cpu')} ({env.get('cpu_cores')} cores)"
        lines += [
            f"- device: {device}",
            f"- software: torch {env.get('torch')} (CUDA {env.get('torch_cuda')}), triton "
            f"{env.get('triton')}, numpy {env.get('numpy')}, Python {env.get('python')}; "
            f"nvcc: {env.get('nvcc')}; ncu: {env.get('ncu')}",
            f"- measured copy bandwidth: {copy.get('GBps', 0):.0f} GB/s "
            f"({copy.get('bytes_per_side', 0) / 2**20:.0f} MiB each way)",
        ]
    lines += [
        f"- command: `{p['command']}`; budget {p['budget_s']:.0f} s, took {p['total_s']:.0f} s",
        "",
        "## Targets",
        "",
        "| target | measured | verdict | note |",
        "|---|---|---|---|",
    ]
    for r in p["targets"]:
        lines.append(f"| {r['target']} | {r['measured']} | **{r['verdict']}** | {r['note']} |")
    lines += [
        "",
        "## Stages",
        "",
        "| stage | status | seconds | time-out | result |",
        "|---|---|---|---|---|",
    ]
    for name, s in p["stages"].items():
        rec = s["record"]
        text = rec.get("headline") or rec.get("skip_reason") or s.get("error", "")
        text = text.replace("|", "/").replace("\n", " ")
        lines.append(
            f"| {name} | {s['status']} | {s['seconds']:.1f} | {s['timeout']:.0f} | {text} |"
        )
    failures = [
        f
        for n in ("cuda-tests", "suite")
        for f in p["stages"].get(n, {}).get("record", {}).get("failures", [])
    ]
    if failures:
        lines += ["", "## Failing tests", ""]
        lines += [f"- `{f['test']}`: {f['message']}" for f in failures]
    files = [f for s in p["stages"].values() for f in s["record"].get("files", [])]
    if p.get("summary_png"):
        lines += ["", "![raster and training figures beside their targets](summary.png)"]
        files.append("summary.png")
    lines += [
        "",
        "Files: `gpu.json` (every record), "
        + ", ".join(f"`{f}`" for f in files)
        + ", `stages/`, `logs/` (each stage's output).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    if hasattr(sys.stdout, "reconfigure"):  # a progress line must never fail on a "²"
        sys.stdout.reconfigure(errors="replace")
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET,
        help=f"seconds for all stages (default {DEFAULT_BUDGET:.0f})",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="results root (default bench/results; a temporary folder with --dry-run)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="every stage at tiny sizes on the CPU (Triton interpreter)",
    )
    parser.add_argument(
        "--nvdiffrast",
        default=None,
        metavar="PATH",
        help="a checkout of github:NVlabs/nvdiffrast to build and compare with",
    )
    parser.add_argument(
        "--stages",
        default=None,
        help="comma-separated subset of: " + ",".join(n for n, _ in STAGES),
    )
    args = parser.parse_args(argv)
    if not args.budget > 0:
        parser.error(f"--budget must be > 0, got {args.budget}")
    only = None
    if args.stages:
        only = [s.strip() for s in args.stages.split(",") if s.strip()]
        unknown = sorted(set(only) - {n for n, _ in STAGES})
        if unknown or not only:
            parser.error(f"unknown stages {unknown}; choose from {[n for n, _ in STAGES]}")
    if args.nvdiffrast and not os.path.isdir(args.nvdiffrast):
        parser.error(f"--nvdiffrast: {args.nvdiffrast!r} is not a folder")
    out = args.out
    if out is None:
        out = (
            tempfile.mkdtemp(prefix="bench-gpu-dry-run-")
            if args.dry_run
            else os.path.join(ROOT, "bench", "results")
        )
    command = "python -m bench.gpu " + " ".join(sys.argv[1:] if argv is None else argv)
    payload = run(args.budget, out, args.dry_run, args.nvdiffrast, only, command.strip())
    print(f"[bench.gpu] done in {payload['total_s']:.0f} s: {payload['out_dir']}/summary.md")
    for r in payload["targets"]:
        print(f"  {r['verdict']:>20}  {r['target']}  {r['measured']}")
    return 0
