"""Fixtures of the benchmarks' tests: one thread for tiny fits, and a bench's quick run."""

from __future__ import annotations

import json
import os

import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny fits: one thread is far faster on a shared, loaded CPU (tests/train/conftest.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def quick_run(tmp_path, one_thread):
    """``run(module, name, *flags) -> (payload, saved)``: the bench ``module``'s
    ``main(["--quick", "--out", tmp_path, *flags])``, its ``name.json``, ``.md`` and
    ``.png`` checked non-empty, and the JSON read back."""

    def run(module, name: str, *flags: str) -> tuple[dict, dict]:
        payload = module.main(["--quick", "--out", str(tmp_path), *flags])
        for ext in ("json", "md", "png"):
            assert os.path.getsize(os.path.join(payload["out_dir"], f"{name}.{ext}")) > 0
        with open(os.path.join(payload["out_dir"], f"{name}.json")) as f:
            return payload, json.load(f)

    return run
