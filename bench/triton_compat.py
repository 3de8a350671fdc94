"""``python -m bench.triton_compat``: the kernels under another Triton version, no GPU.

CI and our machines run one Triton (3.9); a GPU machine may have another (the H200
we borrow has 3.6). This check runs in a side virtual environment that holds
that version beside CPU torch, and there:

1. compiles every kernel of ``ppcam._triton`` and ``minirast._triton`` for sm_90
   and sm_80 (``bench.kernel_resources``) and fails on register spills;
2. runs the interpreter tests of ``tests/ppcam`` and ``tests/minirast``
   (``TRITON_INTERPRET=1``) against this checkout.

``--create`` makes the side environment first (needs the package index once):
``python -m venv VENV`` and ``pip install torch==<torch> triton==<version>`` plus
the test requirements; the pinned torch resolves to the CPU wheel. It prints a
markdown report (``--out FILE`` also writes it, with a JSON twin beside it) and
exits 1 when a kernel fails to compile or spills, or a test fails. It is not part
of CI: it installs packages and takes a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common.atomic import write_json, write_text
from bench.pytest_run import ROOT, repo_env, run_pytest

DEFAULT_TRITON = "3.6.0"
#: The torch that the side environment pins: this exact version resolves to the CPU
#: wheel on our machines (an unpinned ``pip install torch`` pulls the CUDA build).
DEFAULT_TORCH = "2.13.0"
#: Everything the interpreter tests import besides torch and triton.
TEST_REQUIREMENTS = (
    "numpy", "pillow", "scipy", "matplotlib", "tqdm", "safetensors", "pytest", "hypothesis",
)  # fmt: skip
KERNEL_MODULES = ("ppcam._triton", "minirast._triton")
TEST_PATHS = ("tests/ppcam", "tests/minirast")


def default_venv(version: str) -> str:
    """Where the side environment of Triton ``version`` lives unless ``--venv`` says."""
    return os.path.join(os.path.expanduser("~"), ".cache", "minirast", f"venv-triton-{version}")


def venv_python(venv: str) -> str:
    return os.path.join(venv, "bin", "python")


def create_venv(venv: str, triton_version: str, torch_version: str) -> None:
    """``python -m venv`` and the pinned installs; raises ``CalledProcessError`` on failure."""
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    pip = [venv_python(venv), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, f"torch=={torch_version}"], check=True)
    subprocess.run([*pip, f"triton=={triton_version}", *TEST_REQUIREMENTS], check=True)


def versions(python: str) -> dict:
    """Python, torch, triton and numpy versions of the interpreter ``python``."""
    code = (
        "import json, sys, numpy, torch, triton; print(json.dumps({"
        "'python': sys.version.split()[0], 'torch': torch.__version__, "
        "'triton': triton.__version__, 'numpy': numpy.__version__}))"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compile_check(python: str, module: str, timeout: float) -> dict:
    """Compile ``module``'s kernels for sm_90 and sm_80 with ``python``; rows and spills."""
    cmd = [python, "-m", "bench.kernel_resources", module, "sm_90", "sm_80"]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=ROOT, env=repo_env(interpret=False), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        return {"module": module, "ok": False, "seconds": seconds, "rows": [],
                "error": proc.stderr.strip()[-3000:]}  # fmt: skip
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    spills = [r for r in rows if r["local_bytes"] > 0 or r["stack_bytes"] > 0]
    return {"module": module, "ok": not spills, "seconds": seconds, "rows": rows,
            "error": f"{len(spills)} kernels spill" if spills else None}  # fmt: skip


def check(python: str, timeout: float = 1200) -> dict:
    """Run both checks with the interpreter ``python``; ``ok`` is their conjunction."""
    if not os.path.exists(python):
        raise FileNotFoundError(f"no Python at {python}: create the side environment with --create")
    info = versions(python)
    compiles = [compile_check(python, m, timeout) for m in KERNEL_MODULES]
    tests = run_pytest(TEST_PATHS, python=python, env=repo_env(interpret=True), timeout=timeout)
    ok = all(c["ok"] for c in compiles) and tests["error"] is None
    ok = ok and tests["failed"] == 0 and tests["errors"] == 0
    return {"python": python, "versions": info, "compile": compiles, "tests": tests, "ok": ok}


def markdown_report(r: dict) -> str:
    v = r["versions"]
    lines = [
        f"# Triton {v['triton']} compatibility",
        "",
        f"Side environment `{r['python']}`: Python {v['python']}, torch {v['torch']}, "
        f"triton {v['triton']}, numpy {v['numpy']}. Result: **{'ok' if r['ok'] else 'FAILED'}**.",
        "",
        "| check | result | seconds |",
        "|---|---|---|",
    ]
    for c in r["compile"]:
        n = len(c["rows"])
        what = f"{n} compiles (kernel x target), no spills" if c["ok"] else f"failed: {c['error']}"
        lines.append(f"| `{c['module']}` for sm_90, sm_80 | {what} | {c['seconds']:.0f} |")
    t = r["tests"]
    what = (
        f"{t['passed']} passed, {t['failed']} failed, {t['errors']} errors, "
        f"{t['skipped']} skipped" + (f" ({t['error']})" if t["error"] else "")
    )
    lines.append(f"| interpreter tests `{' '.join(TEST_PATHS)}` | {what} | {t['seconds']:.0f} |")
    if t["failures"]:
        lines += ["", "Failing tests:", ""]
        lines += [f"- `{f['test']}`: {f['message']}" for f in t["failures"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.triton_compat", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--triton", default=DEFAULT_TRITON, help=f"(default {DEFAULT_TRITON})")
    parser.add_argument("--torch", default=DEFAULT_TORCH, help=f"(default {DEFAULT_TORCH})")
    parser.add_argument("--venv", default=None, help="side environment (default ~/.cache/...)")
    parser.add_argument("--create", action="store_true", help="create the side environment")
    parser.add_argument("--out", default=None, help="also write the report to this .md file")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per step")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error(f"--timeout must be > 0, got {args.timeout}")
    venv = args.venv or default_venv(args.triton)
    if args.create and not os.path.exists(venv_python(venv)):
        create_venv(venv, args.triton, args.torch)
    try:
        result = check(venv_python(venv), args.timeout)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    if result["versions"]["triton"] != args.triton:
        print(
            f"note: {venv} holds triton {result['versions']['triton']}, not {args.triton}",
            file=sys.stderr,
        )
    text = markdown_report(result)
    print(text)
    if args.out:
        write_text(args.out, text)
        write_json(os.path.splitext(args.out)[0] + ".json", result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
