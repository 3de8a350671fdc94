"""Run pytest in a child process and read its outcome from a JUnit XML report.

Used by the checks that run the test suite in another interpreter or on another
device (``python -m bench.triton_compat``, ``python -m bench.gpu``): they need
the counts and the failing tests' ids, not pytest's console output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence

#: The repository root (the folder that holds ``bench/``).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def repo_env(extra: Mapping[str, str] | None = None, *, interpret: bool | None = None) -> dict:
    """This process's environment with the repository first on ``PYTHONPATH`` (so a
    child imports this checkout's packages, not an installed copy), plus ``extra``.

    ``interpret``: True sets ``TRITON_INTERPRET=1``, False removes it, None keeps it.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH", "")) if p)
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if interpret is True:
        env["TRITON_INTERPRET"] = "1"
    elif interpret is False:
        env.pop("TRITON_INTERPRET", None)
    env.update(extra or {})
    return env


def parse_junit(path: str) -> dict:
    """Counts (``tests``, ``passed``, ``failed``, ``errors``, ``skipped``) and the ids and
    first message lines of the failed and erroring tests of a JUnit XML report."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {"tests": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures = []
    for suite in suites:
        for case in suite.iter("testcase"):
            counts["tests"] += 1
            test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
            for tag, key in (("failure", "failed"), ("error", "errors")):
                node = case.find(tag)
                if node is not None:
                    counts[key] += 1
                    message = (node.get("message") or node.text or "").strip().splitlines()
                    failures.append(
                        {"test": test_id, "kind": key, "message": (message or [""])[0][:300]}
                    )
                    break
            else:
                if case.find("skipped") is not None:
                    counts["skipped"] += 1
    counts["passed"] = counts["tests"] - counts["failed"] - counts["errors"] - counts["skipped"]
    return {**counts, "failures": failures}


def run_pytest(
    args: Sequence[str],
    *,
    python: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> dict:
    """``python -m pytest -q -p no:cacheprovider ARGS`` in the repository root.

    Returns the :func:`parse_junit` counts plus ``returncode``, ``seconds``,
    ``timed_out`` and the last lines of pytest's output (``output_tail``). A run that
    times out or leaves no report gives zero counts and says so in ``error``.
    """
    python = python or sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        junit = os.path.join(tmp, "junit.xml")
        cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"]
        cmd += list(args)
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd,
                cwd=ROOT,
                env=dict(env) if env is not None else repo_env(),
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            returncode, output, timed_out = proc.returncode, proc.stdout + proc.stderr, False
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout or b""
            output = out.decode(errors="replace") if isinstance(out, bytes) else out
            returncode, timed_out = None, True
        seconds = time.perf_counter() - start
        if os.path.exists(junit):
            result = parse_junit(junit)
            error = None
        else:
            result = {"tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0}
            result["failures"] = []
            error = "timed out" if timed_out else f"pytest wrote no report (exit {returncode})"
    tail = "\n".join(output.strip().splitlines()[-15:])
    return {
        **result,
        "command": " ".join(cmd[:1] + ["-m", "pytest", *args]),
        "returncode": returncode,
        "seconds": seconds,
        "timed_out": timed_out,
        "error": error,
        "output_tail": tail,
    }
