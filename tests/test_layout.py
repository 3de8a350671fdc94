"""The repository's layout: no Python module over 600 lines (a module that long holds
more than one job; split it by job, as flame/standin/ and minirast/_triton/ are)."""

from __future__ import annotations

import subprocess

from tests.test_imports import ROOT

MAX_LINES = 600


def python_files() -> list[str]:
    """Every tracked or new (not ignored) ``.py`` file of the repository."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(set(out.split()))


def test_no_module_is_over_600_lines():
    files = python_files()
    assert len(files) > 100 and "conftest.py" in files
    long = {}
    for path in files:
        with open(f"{ROOT}/{path}", encoding="utf-8") as f:
            n = sum(1 for _ in f)
        if n > MAX_LINES:
            long[path] = n
    assert long == {}
